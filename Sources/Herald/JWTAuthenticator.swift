import Foundation
import JWTKit
import Logging
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
///
/// The keys of a PEM file carry no key id that an issuer would send, so each one is kept in a
/// collection of its own and a token is tried against each in turn: a token signed by any of
/// them is accepted, with or without a `kid`. A JWKS's keys are chosen by the token's `kid`, as
/// JWKS intends; a JWKS served over HTTPS is fetched again when a token names a `kid` it lacks
/// (``RemoteJWKS``).
struct JWTAuthenticator: Sendable {
    /// Why a token was refused, in words a client developer understands.
    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// The message a token without `exp` is refused with when expiry is required.
    static let missingExpiration = "token has no exp claim: this gateway only accepts tokens that expire (jwt-require-exp)"

    private let candidates: [JWTKeyCollection]
    private let remote: RemoteJWKS?
    private let requireExpiration: Bool

    static func make(
        _ configuration: HeraldAuthConfiguration, requireExpiration: Bool = false, logger: Logger = Logger(label: "herald.auth")
    ) async throws -> JWTAuthenticator? {
        var candidates: [JWTKeyCollection] = []
        var remote: RemoteJWKS?
        switch configuration.kind {
        case .disabled:
            return nil
        case .hmac(let secret):
            guard secret.utf8.count >= 32 else {
                throw Refusal(description: "jwt-secret: an HS256 secret must be at least 32 bytes (256 bits); this one has \(secret.utf8.count)")
            }
            candidates.append(await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256))
        case .publicKeysPEM(let path):
            let pem = try String(contentsOfFile: path, encoding: .utf8)
            for block in pemBlocks(pem) {
                if let rsa = try? Insecure.RSA.PublicKey(pem: block) {
                    candidates.append(await JWTKeyCollection().add(rsa: rsa, digestAlgorithm: .sha256))
                } else if let ecdsa = try? ES256PublicKey(pem: block) {
                    candidates.append(await JWTKeyCollection().add(ecdsa: ecdsa))
                }
            }
            guard !candidates.isEmpty else { throw Refusal(description: "\(path) holds no RSA or P-256 public key in PEM form") }
        case .jwks(let path):
            candidates.append(try await JWTKeyCollection().add(jwksJSON: String(contentsOfFile: path, encoding: .utf8)))
        case .remoteJWKS(let url, let trustRootsFile):
            let keys = try RemoteJWKS(url: url, trustRootsFile: trustRootsFile, logger: logger)
            try await keys.load()
            remote = keys
        }
        return JWTAuthenticator(candidates: candidates, remote: remote, requireExpiration: requireExpiration)
    }

    /// Verifies a token and returns its claims. A token that only a signature check failed for
    /// is refused as a bad signature; any other reason (expired, malformed) wins over that.
    func verify(_ token: String) async throws(Refusal) -> HeraldClaims {
        guard let remote else { return try await verify(token, against: candidates) }
        let kid = Self.keyID(of: token)
        // jwt-kit verifies a token whose kid it lacks with the set's first key: the kid is
        // looked up here, so that a rotated key is fetched instead.
        guard let keys = await remote.keys(for: kid) else { throw Refusal(description: "invalid token: unknown key id '\(kid ?? "")'") }
        return try await verify(token, against: [keys])
    }

    private func verify(_ token: String, against candidates: [JWTKeyCollection]) async throws(Refusal) -> HeraldClaims {
        var refusal: Refusal?
        for keys in candidates {
            do {
                let claims = try await keys.verify(token, as: HeraldClaims.self)
                guard claims.exp != nil || !requireExpiration else { throw Refusal(description: Self.missingExpiration) }
                return claims
            } catch let error as Refusal {
                throw error
            } catch {
                let reason = Self.refusal(for: error)
                if refusal == nil || !Self.isSignatureFailure(error) { refusal = reason }
                if !Self.isSignatureFailure(error) { break }
            }
        }
        throw refusal ?? Refusal(description: "invalid token: no key to verify it with")
    }

    private static func isSignatureFailure(_ error: any Error) -> Bool {
        (error as? JWTError)?.errorType == .signatureVerificationFailed
    }

    private static func refusal(for error: any Error) -> Refusal {
        guard let error = error as? JWTError else { return Refusal(description: "invalid token: \(error)") }
        switch error.errorType {
        case .claimVerificationFailure:
            return Refusal(
                description: error.reason?.contains("expired") == true || error.failedClaim is ExpirationClaim
                    ? "token expired" : "token not valid: \(error.reason ?? "a claim failed")")
        case .signatureVerificationFailed:
            return Refusal(description: "invalid token: bad signature")
        default:
            return Refusal(description: "invalid token: \(error.reason ?? String(describing: error.errorType))")
        }
    }

    /// The `kid` of a token's header, if it names one.
    static func keyID(of token: String) -> String? {
        guard let header = token.split(separator: ".", maxSplits: 1).first else { return nil }
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["kid"] as? String
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
