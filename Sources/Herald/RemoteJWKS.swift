import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore
import NIOSSL

/// The keys of a JWKS served over HTTPS by an identity provider, cached.
///
/// The set is fetched when herald starts (a failure there stops the start: a gateway that cannot
/// verify any token is of no use), again once it is older than ``Policy/maxAge``, and again when
/// a token names a `kid` the cached set does not hold, which is how a provider's key rotation
/// shows. Refetches are at most one per ``Policy/minInterval``, so tokens with made-up `kid`s
/// cannot turn the gateway into a load generator against the provider; concurrent callers share
/// one fetch. A refetch that fails keeps the keys already held.
actor RemoteJWKS {
    /// How old a set may grow and how often it may be fetched again.
    struct Policy: Sendable {
        /// Age after which the set is fetched again.
        var maxAge: Duration = .seconds(600)
        /// The shortest time between two fetches after the first.
        var minInterval: Duration = .seconds(30)
        /// The largest JWKS document accepted.
        var maxBytes = 1 << 20
        /// How long one fetch may take.
        var timeout: Duration = .seconds(10)
    }

    /// Why the set could not be fetched.
    struct FetchFailure: Error, CustomStringConvertible {
        let description: String
    }

    private let url: String
    private let tls: TLSConfiguration
    private let policy: Policy
    private let logger: Logger
    private let clock = ContinuousClock()

    private var keys = JWTKeyCollection()
    private var kids: Set<String> = []
    private var fetchedAt: ContinuousClock.Instant?
    private var lastAttempt: ContinuousClock.Instant?
    private var inFlight: Task<Void, any Error>?

    /// A set fetched from `url` (https), trusting the system's roots or the PEM certificates of
    /// `trustRootsFile`; nothing is fetched until ``load()``.
    init(url: String, trustRootsFile: String?, policy: Policy = Policy(), logger: Logger) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let trustRootsFile {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(trustRootsFile))
        }
        self.url = url
        self.tls = tls
        self.policy = policy
        self.logger = logger
    }

    /// Fetches the set for the first time; throws when it cannot be had. This fetch does not
    /// count towards the refetch interval: a key rotated just after the start is fetched at once.
    func load() async throws {
        try await fetch()
        lastAttempt = nil
    }

    /// The keys to verify a token naming `kid` with, or `nil` when the set does not hold `kid`
    /// even after fetching it again. The set is fetched again first when it is too old (keeping
    /// the old one if that fails), or when it lacks `kid` and the last fetch is not too recent.
    func keys(for kid: String?) async -> JWTKeyCollection? {
        if let fetchedAt, clock.now - fetchedAt > policy.maxAge {
            await refetch(reason: "the cached set is older than \(policy.maxAge)")
        }
        guard let kid, !kids.contains(kid) else { return keys }
        await refetch(reason: "a token names the unknown key id '\(kid)'")
        return kids.contains(kid) ? keys : nil
    }

    private func refetch(reason: String) async {
        if let inFlight {
            _ = try? await inFlight.value
            return
        }
        if let lastAttempt, clock.now - lastAttempt < policy.minInterval { return }
        do {
            logger.info("fetching the JWKS again", metadata: ["url": "\(url)", "reason": "\(reason)"])
            try await fetch()
        } catch {
            logger.warning("JWKS fetch failed; the keys already held stay in use", metadata: ["url": "\(url)", "error": "\(error)"])
        }
    }

    private func fetch() async throws {
        let task = Task { try await self.download() }
        inFlight = task
        defer { inFlight = nil }
        lastAttempt = clock.now
        try await task.value
    }

    private func download() async throws {
        var request = HTTPClientRequest(url: url)
        request.tlsConfiguration = tls
        request.headers.add(name: "Accept", value: "application/json")
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .init(policy.timeout))
            body = try await response.body.collect(upTo: policy.maxBytes)
        } catch let error as NIOTooManyBytesError {
            throw FetchFailure(description: "\(url): the JWKS is larger than \(policy.maxBytes) bytes (\(error))")
        } catch {
            throw FetchFailure(description: "\(url): \(error)")
        }
        guard response.status == .ok else {
            throw FetchFailure(description: "\(url) answered \(response.status.code) \(response.status.reasonPhrase)")
        }
        let json = String(buffer: body)
        let fresh: JWTKeyCollection
        do {
            fresh = try await JWTKeyCollection().add(jwksJSON: json)
        } catch {
            throw FetchFailure(description: "\(url) sent no usable JWKS: \(error)")
        }
        keys = fresh
        kids = Self.keyIDs(in: json)
        fetchedAt = clock.now
        logger.debug("JWKS fetched", metadata: ["url": "\(url)", "kids": "\(kids.sorted())"])
    }

    /// The `kid`s of a JWKS document.
    private static func keyIDs(in json: String) -> Set<String> {
        struct Document: Decodable {
            struct Key: Decodable { let kid: String? }
            let keys: [Key]
        }
        let document = try? JSONDecoder().decode(Document.self, from: Data(json.utf8))
        return Set(document?.keys.compactMap(\.kid) ?? [])
    }
}
