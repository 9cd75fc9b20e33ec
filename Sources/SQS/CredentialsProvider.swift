/// A source of AWS credentials, asked before every signed request.
///
/// Providers that hit the network or disk should be wrapped in ``CachingCredentialsProvider``
/// (``CredentialsProvider/defaultChain(httpClient:environment:)`` already is).
/// A provider that is simply not configured throws an ``SQSError`` of kind ``SQSError/Kind/credentials``,
/// which lets ``CredentialsProviderChain`` move on to the next one.
public protocol CredentialsProvider: Sendable {
    /// Returns credentials valid for at least the next request.
    func credentials() async throws -> AWSCredentials
}

/// Always returns the same credentials, e.g. ones from configuration or for tests against moto.
public struct StaticCredentialsProvider: CredentialsProvider {
    /// The credentials returned on every call.
    public var value: AWSCredentials

    /// Creates a provider that returns `credentials`.
    public init(_ credentials: AWSCredentials) {
        self.value = credentials
    }

    /// Returns ``value``.
    public func credentials() async throws -> AWSCredentials {
        value
    }
}

extension CredentialsProvider where Self == StaticCredentialsProvider {
    /// Explicit credentials, for configuration files and local emulators.
    public static func `static`(
        accessKeyID: String,
        secretAccessKey: String,
        sessionToken: String? = nil
    ) -> StaticCredentialsProvider {
        StaticCredentialsProvider(
            AWSCredentials(accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: sessionToken)
        )
    }
}

extension SQSError {
    /// A provider is not configured, or could not produce credentials.
    static func credentials(_ message: String, underlying: (any Error)? = nil) -> SQSError {
        SQSError(kind: .credentials, message: message, underlying: underlying)
    }
}
