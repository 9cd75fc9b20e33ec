public import Foundation

/// An AWS access key pair, with the session token and expiry of temporary credentials.
///
/// `description` never prints the secret or the token, so credentials can be logged safely.
public struct AWSCredentials: Sendable, Hashable, CustomStringConvertible {
    /// The access key ID, e.g. `AKIDEXAMPLE`.
    public var accessKeyID: String
    /// The secret access key used to derive signing keys.
    public var secretAccessKey: String
    /// The session token of temporary credentials (sent as `X-Amz-Security-Token`).
    public var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-lived keys.
    public var expiration: Date?

    /// Creates credentials from their parts.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    /// A redacted summary: the key ID, whether a token is present and the expiry.
    public var description: String {
        var text = "AWSCredentials(accessKeyID: \(accessKeyID), secretAccessKey: <redacted>"
        if sessionToken != nil { text += ", sessionToken: <redacted>" }
        if let expiration { text += ", expiration: \(expiration)" }
        return text + ")"
    }

    /// Whether these credentials expire before `now + margin`.
    func expires(before now: Date, margin: TimeInterval = 0) -> Bool {
        guard let expiration else { return false }
        return expiration <= now.addingTimeInterval(margin)
    }
}

/// Parses the ISO 8601 timestamps AWS uses for credential expiry, with or without fractional seconds.
func parseAWSTimestamp(_ text: String) -> Date? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if let date = try? Date(trimmed, strategy: .iso8601) { return date }
    let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    return try? fractional.parse(trimmed)
}
