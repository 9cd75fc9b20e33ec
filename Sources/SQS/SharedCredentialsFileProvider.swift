public import Foundation

/// Reads a profile from the shared credentials file, `~/.aws/credentials`.
///
/// The file is `AWS_SHARED_CREDENTIALS_FILE` when set, and the profile is `AWS_PROFILE`
/// (then `default`). Only static keys are read: `aws_access_key_id`, `aws_secret_access_key`
/// and `aws_session_token`; SSO, `credential_process` and `role_arn` profiles are not supported.
public struct SharedCredentialsFileProvider: CredentialsProvider {
    /// The file to read, after applying the environment.
    public var path: String
    /// The profile (INI section) to read, after applying the environment.
    public var profile: String

    /// Creates a provider; `path` and `profile` override the environment when given.
    public init(
        path: String? = nil,
        profile: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        self.path =
            path ?? environment["AWS_SHARED_CREDENTIALS_FILE"].map { Self.expandTilde($0, home: home) }
            ?? "\(home)/.aws/credentials"
        self.profile = profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
    }

    /// Returns the profile's keys, or throws if the file, the profile or a key is missing.
    public func credentials() async throws -> AWSCredentials {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SQSError.credentials("shared credentials file: \(path) not found or unreadable")
        }
        let sections = Self.parseINI(String(decoding: data, as: UTF8.self))
        guard let section = sections[profile] else {
            throw SQSError.credentials("shared credentials file: no profile [\(profile)] in \(path)")
        }
        guard let keyID = section["aws_access_key_id"], let secret = section["aws_secret_access_key"] else {
            throw SQSError.credentials(
                "shared credentials file: profile [\(profile)] in \(path) lacks aws_access_key_id or aws_secret_access_key"
            )
        }
        let token = section["aws_session_token"] ?? section["aws_security_token"]
        return AWSCredentials(accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
    }

    /// Parses `[section]` headers and `key = value` lines; `#` and `;` start comment lines.
    static func parseINI(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                current = name
                if sections[name] == nil { sections[name] = [:] }
            } else if let current, let equals = line.firstIndex(of: "=") {
                let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
                let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                sections[current]?[key] = value
            }
        }
        return sections
    }

    private static func expandTilde(_ path: String, home: String) -> String {
        path.hasPrefix("~/") ? home + path.dropFirst() : path
    }
}
