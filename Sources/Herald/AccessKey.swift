import Crypto
import Foundation

/// A secret key an HTTP request must present, compared in constant time.
///
/// Both the configured key and the presented one are hashed with SHA-256 and the two digests
/// are compared byte by byte without an early exit: the time taken depends neither on where
/// the keys differ nor on the configured key's length (the presented key's own length is all
/// that shows, and the caller knows it).
struct AccessKey: Sendable {
    private let digest: [UInt8]

    init(_ key: String) {
        digest = Array(SHA256.hash(data: Array(key.utf8)))
    }

    /// Whether `candidate` is the key.
    func matches(_ candidate: some StringProtocol) -> Bool {
        let presented = Array(SHA256.hash(data: Array(candidate.utf8)))
        var difference: UInt8 = 0
        for index in digest.indices { difference |= digest[index] ^ presented[index] }
        return difference == 0
    }

    /// Whether a request's `Authorization` header carries the key as `Authorization: Bearer <key>` or, with
    /// `allowBasic`, as the password of HTTP Basic credentials (any user name): what a browser
    /// sends once its user typed the key into the login prompt.
    func authorizes(authorization value: String?, allowBasic: Bool) -> Bool {
        guard let value else { return false }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2 else { return false }
        let scheme = parts[0].lowercased()
        let credentials = parts[1].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "bearer":
            return matches(credentials)
        case "basic" where allowBasic:
            guard let decoded = Data(base64Encoded: credentials).map({ String(decoding: $0, as: UTF8.self) }),
                let colon = decoded.firstIndex(of: ":")
            else { return false }
            return matches(decoded[decoded.index(after: colon)...])
        default:
            return false
        }
    }
}
