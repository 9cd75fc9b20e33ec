/// Tries providers in order and returns the first credentials found.
///
/// A provider that throws a ``SQSError/Kind/credentials`` error (not configured, or failed to load)
/// is skipped; any other error stops the chain. When all fail, the error lists every reason.
public struct CredentialsProviderChain: CredentialsProvider {
    /// The providers, in the order they are tried.
    public var providers: [any CredentialsProvider]

    /// Creates a chain over `providers`.
    public init(_ providers: [any CredentialsProvider]) {
        self.providers = providers
    }

    /// Returns the first provider's credentials that are found.
    public func credentials() async throws -> AWSCredentials {
        var reasons: [String] = []
        for provider in providers {
            do {
                return try await provider.credentials()
            } catch let error as SQSError where error.kind == .credentials {
                reasons.append(error.message ?? "\(type(of: provider)) failed")
            }
        }
        throw SQSError.credentials("no AWS credentials found (" + reasons.joined(separator: "; ") + ")")
    }
}
