import Foundation
import JWTKit
import SocketIO

/// The claims herald reads from a client's token.
struct HeraldClaims: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var rooms: [String]?

    func verify(using algorithm: some JWTAlgorithm) throws {
        try exp?.verifyNotExpired()
        try nbf?.verifyNotBefore()
    }

    /// The claims as a value, for the application and the upstream forwarder.
    var value: SocketIOValue {
        var object: SocketIOObject = [:]
        if let sub { object["sub"] = .string(sub.value) }
        if let exp { object["exp"] = .number(exp.value.timeIntervalSince1970) }
        if let rooms { object["rooms"] = .array(rooms.map { .string($0) }) }
        return .object(object)
    }

    /// The rooms the client joins: its `rooms` claim, and `user:<sub>`.
    var roomNames: [String] {
        (rooms ?? []) + (sub.map { ["user:\($0.value)"] } ?? [])
    }
}

/// Verifies client tokens (HS256 secret, or RS256/ES256 public keys from PEM or JWKS).
struct JWTAuthenticator: Sendable {
    /// Why a token was refused, in words a client developer understands.
    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    private let keys: JWTKeyCollection

    static func make(_ configuration: HeraldAuthConfiguration) async throws -> JWTAuthenticator? {
        let keys = JWTKeyCollection()
        switch configuration.kind {
        case .disabled:
            return nil
        case .hmac(let secret):
            guard secret.utf8.count >= 32 else {
                throw Refusal(description: "jwt-secret: an HS256 secret must be at least 32 bytes (256 bits); this one has \(secret.utf8.count)")
            }
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        case .publicKeysPEM(let path):
            let pem = try String(contentsOfFile: path, encoding: .utf8)
            var added = 0
            for block in pemBlocks(pem) {
                if let rsa = try? Insecure.RSA.PublicKey(pem: block) {
                    await keys.add(rsa: rsa, digestAlgorithm: .sha256, kid: added == 0 ? nil : JWKIdentifier(string: "pem-\(added)"))
                    added += 1
                } else if let ecdsa = try? ES256PublicKey(pem: block) {
                    await keys.add(ecdsa: ecdsa, kid: added == 0 ? nil : JWKIdentifier(string: "pem-\(added)"))
                    added += 1
                }
            }
            guard added > 0 else { throw Refusal(description: "\(path) holds no RSA or P-256 public key in PEM form") }
        case .jwks(let path):
            try await keys.add(jwksJSON: String(contentsOfFile: path, encoding: .utf8))
        }
        return JWTAuthenticator(keys: keys)
    }

    /// Verifies a token and returns its claims.
    func verify(_ token: String) async throws(Refusal) -> HeraldClaims {
        do {
            return try await keys.verify(token, as: HeraldClaims.self)
        } catch let error as JWTError {
            switch error.errorType {
            case .claimVerificationFailure:
                throw Refusal(description: error.reason?.contains("expired") == true || error.failedClaim is ExpirationClaim ? "token expired" : "token not valid: \(error.reason ?? "a claim failed")")
            case .signatureVerificationFailed:
                throw Refusal(description: "invalid token: bad signature")
            default:
                throw Refusal(description: "invalid token: \(error.reason ?? String(describing: error.errorType))")
            }
        } catch {
            throw Refusal(description: "invalid token: \(error)")
        }
    }

    private static func pemBlocks(_ text: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("-----BEGIN") { current = [] }
            current.append(line)
            if line.hasPrefix("-----END") { blocks.append(current.joined(separator: "\n")) }
        }
        return blocks
    }
}
