public import AsyncHTTPClient
public import Foundation

/// Exchanges a web identity token (EKS IRSA and similar) for role credentials with STS.
///
/// Reads the token from `AWS_WEB_IDENTITY_TOKEN_FILE` on every call (the file is rotated),
/// assumes `AWS_ROLE_ARN` with `AssumeRoleWithWebIdentity` (query API, XML answer) and uses
/// `AWS_ROLE_SESSION_NAME` when set. The request is unsigned, as STS expects for this action.
public struct WebIdentityCredentialsProvider: CredentialsProvider {
    /// The client used to reach STS.
    public var httpClient: HTTPClient
    /// The variables to read; the process environment unless injected.
    public var environment: [String: String]
    /// The STS endpoint; defaults to the regional endpoint of `AWS_REGION`, else the global one.
    public var stsEndpoint: URL
    /// How long to wait for STS.
    public var timeout: Duration

    /// Creates a provider; `stsEndpoint` overrides the STS URL (for tests and private endpoints).
    public init(
        httpClient: HTTPClient = .shared,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        stsEndpoint: URL? = nil,
        timeout: Duration = .seconds(10)
    ) {
        self.httpClient = httpClient
        self.environment = environment
        self.timeout = timeout
        let region = environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"]
        let fromEnvironment = environment["AWS_ENDPOINT_URL_STS"].flatMap(URL.init(string:))
        self.stsEndpoint =
            stsEndpoint ?? fromEnvironment
            ?? URL(
                string: region.map { "https://sts.\($0).amazonaws.com\($0.hasPrefix("cn-") ? ".cn" : "")" }
                    ?? "https://sts.amazonaws.com")!
    }

    /// Reads the token, calls STS, and returns the temporary credentials.
    public func credentials() async throws -> AWSCredentials {
        guard let tokenFile = environment["AWS_WEB_IDENTITY_TOKEN_FILE"], !tokenFile.isEmpty else {
            throw SQSError.credentials("web identity: AWS_WEB_IDENTITY_TOKEN_FILE is not set")
        }
        guard let roleARN = environment["AWS_ROLE_ARN"], !roleARN.isEmpty else {
            throw SQSError.credentials("web identity: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not")
        }
        guard let tokenData = FileManager.default.contents(atPath: tokenFile) else {
            throw SQSError.credentials("web identity: cannot read token file \(tokenFile)")
        }
        let token = String(decoding: tokenData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let sessionName =
            environment["AWS_ROLE_SESSION_NAME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "herald-\(Int(Date().timeIntervalSince1970))"

        let form = [
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"),
            ("RoleArn", roleARN), ("RoleSessionName", sessionName), ("WebIdentityToken", token),
        ].map { "\($0.0)=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&")

        let response = try await performHTTP(
            client: httpClient, method: "POST", url: stsEndpoint,
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Accept", "text/xml")],
            body: Array(form.utf8), timeout: timeout, operation: "AssumeRoleWithWebIdentity"
        )
        let xml = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200 else {
            throw SQSError(
                kind: .service, operation: "AssumeRoleWithWebIdentity",
                code: xmlValue("Code", in: xml), isSenderFault: xmlValue("Type", in: xml).map { $0 == "Sender" },
                message: xmlValue("Message", in: xml) ?? String(xml.prefix(256)), statusCode: response.status
            )
        }
        guard let keyID = xmlValue("AccessKeyId", in: xml),
            let secret = xmlValue("SecretAccessKey", in: xml)
        else {
            throw SQSError(
                kind: .invalidResponse, operation: "AssumeRoleWithWebIdentity",
                message: "no credentials in STS answer: \(xml.prefix(256))", statusCode: response.status
            )
        }
        return AWSCredentials(
            accessKeyID: keyID,
            secretAccessKey: secret,
            sessionToken: xmlValue("SessionToken", in: xml),
            expiration: xmlValue("Expiration", in: xml).flatMap(parseAWSTimestamp)
        )
    }
}
