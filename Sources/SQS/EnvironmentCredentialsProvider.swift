public import Foundation

/// Reads `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally `AWS_SESSION_TOKEN`.
public struct EnvironmentCredentialsProvider: CredentialsProvider {
    /// The variables to read; the process environment unless injected (e.g. by tests).
    public var environment: [String: String]

    /// Creates a provider over `environment` (default: the process environment).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Returns the credentials in the environment, or throws if either key is missing or empty.
    public func credentials() async throws -> AWSCredentials {
        let value = { (name: String) in environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let keyID = value("AWS_ACCESS_KEY_ID") else {
            throw SQSError.credentials("environment: AWS_ACCESS_KEY_ID is not set")
        }
        guard let secret = value("AWS_SECRET_ACCESS_KEY") else {
            throw SQSError.credentials("environment: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not")
        }
        return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN"))
    }
}
