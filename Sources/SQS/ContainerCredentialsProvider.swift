public import AsyncHTTPClient
public import Foundation

/// Fetches task-role credentials from the ECS / EKS Pod Identity container endpoint.
///
/// The endpoint is `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on `http://169.254.170.2`, or
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` (HTTPS, or HTTP to loopback or the ECS/EKS link-local
/// addresses only). `AWS_CONTAINER_AUTHORIZATION_TOKEN`, or the contents of
/// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, is sent as the `Authorization` header.
/// The answer is JSON with `AccessKeyId`, `SecretAccessKey`, `Token` and `Expiration`.
public struct ContainerCredentialsProvider: CredentialsProvider {
    /// The client used to reach the endpoint.
    public var httpClient: HTTPClient
    /// The variables to read; the process environment unless injected.
    public var environment: [String: String]
    /// How long to wait for the endpoint.
    public var timeout: Duration

    /// Creates a provider over `environment` (default: the process environment).
    public init(
        httpClient: HTTPClient = .shared,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        timeout: Duration = .seconds(5)
    ) {
        self.httpClient = httpClient
        self.environment = environment
        self.timeout = timeout
    }

    /// Asks the container endpoint for credentials, or throws if none is configured or it fails.
    public func credentials() async throws -> AWSCredentials {
        let url = try endpoint()
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let token = try authorizationToken() { headers.append(("Authorization", token)) }

        let response = try await performHTTP(
            client: httpClient, method: "GET", url: url, headers: headers, body: [],
            timeout: timeout, operation: "ContainerCredentials"
        )
        guard response.status == 200 else {
            throw SQSError.credentials(
                "container credentials: \(url) answered HTTP \(response.status): "
                    + String(decoding: response.body.prefix(256), as: UTF8.self)
            )
        }
        struct Payload: Decodable {
            var AccessKeyId: String
            var SecretAccessKey: String
            var Token: String?
            var Expiration: String?
        }
        do {
            let payload = try JSONDecoder().decode(Payload.self, from: Data(response.body))
            return AWSCredentials(
                accessKeyID: payload.AccessKeyId,
                secretAccessKey: payload.SecretAccessKey,
                sessionToken: payload.Token,
                expiration: payload.Expiration.flatMap(parseAWSTimestamp)
            )
        } catch {
            throw SQSError.credentials("container credentials: \(url) answered unreadable JSON", underlying: error)
        }
    }

    /// The endpoint URL from the environment, checked against the hosts AWS allows.
    func endpoint() throws -> URL {
        if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            guard let url = URL(string: "http://169.254.170.2" + relative) else {
                throw SQSError.credentials("container credentials: invalid relative URI \(relative)")
            }
            return url
        }
        guard let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty else {
            throw SQSError.credentials("container credentials: AWS_CONTAINER_CREDENTIALS_(RELATIVE|FULL)_URI not set")
        }
        guard let url = URL(string: full), let host = url.host, let scheme = url.scheme?.lowercased() else {
            throw SQSError.credentials("container credentials: invalid full URI \(full)")
        }
        let isLoopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
        let isContainerEndpoint = ["169.254.170.2", "169.254.170.23", "fd00:ec2::23", "[fd00:ec2::23]"].contains(host)
        guard scheme == "https" || (scheme == "http" && (isLoopback || isContainerEndpoint)) else {
            throw SQSError.credentials(
                "container credentials: \(full) must be HTTPS, or HTTP to loopback or the ECS/EKS endpoint"
            )
        }
        return url
    }

    private func authorizationToken() throws -> String? {
        if let path = environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], !path.isEmpty {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SQSError.credentials("container credentials: cannot read token file \(path)")
            }
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
