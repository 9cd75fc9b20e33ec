public import NIOCore
import Synchronization

/// How many sessions one address may open: a bucket of `burst` handshakes, refilled at
/// `perSecond`. Past it the address's handshakes are refused with 429 until the bucket refills.
public struct EngineIOHandshakeLimit: Sendable, Hashable {
    /// Handshakes one address may make at once.
    public var burst: Int
    /// Handshakes per second one address may keep making.
    public var perSecond: Double

    /// A limit of `burst` at once and `perSecond` sustained.
    public init(burst: Int, perSecond: Double) {
        self.burst = burst
        self.perSecond = perSecond
    }
}

/// The token buckets of the addresses that made handshakes lately. Buckets that filled up again
/// are forgotten, so that the table stays as small as the set of addresses handshaking now.
final class EngineIOHandshakeLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let limit: EngineIOHandshakeLimit
    private let buckets = Mutex<[String: Bucket]>([:])
    private let clock = ContinuousClock()

    init(_ limit: EngineIOHandshakeLimit) {
        self.limit = limit
    }

    /// Takes a token of `address`'s bucket; `false` when it has none left. Requests without an
    /// address (not over TCP) are not limited.
    func admit(_ address: SocketAddress?) -> Bool {
        guard let key = address?.ipAddress else { return true }
        let now = clock.now
        return buckets.withLock { buckets in
            if buckets.count > 10_000 { forgetFull(&buckets, now: now) }
            var bucket = buckets[key] ?? Bucket(tokens: Double(limit.burst), updated: now)
            bucket.tokens = min(Double(limit.burst), bucket.tokens + seconds(now - bucket.updated) * limit.perSecond)
            bucket.updated = now
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return false
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            return true
        }
    }

    private func forgetFull(_ buckets: inout [String: Bucket], now: ContinuousClock.Instant) {
        let refill = Double(limit.burst) / max(limit.perSecond, .leastNonzeroMagnitude)
        buckets = buckets.filter { seconds(now - $0.value.updated) < refill }
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
