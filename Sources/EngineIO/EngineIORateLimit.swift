package import NIOCore
import Synchronization

/// A rate limit as a token bucket: `burst` at once, refilled at `perSecond`. Used for the
/// handshakes of one address (``EngineIOConfiguration/maxHandshakesPerAddress``) and for the
/// events of one socket (Socket.IO's `eventRateLimit`).
public struct EngineIORateLimit: Sendable, Hashable {
    /// How many may come at once.
    public var burst: Int
    /// How many per second may keep coming.
    public var perSecond: Double

    /// A limit of `burst` at once and `perSecond` sustained.
    public init(burst: Int, perSecond: Double) {
        self.burst = burst
        self.perSecond = perSecond
    }
}

/// The state of one bucket of an ``EngineIORateLimit``, as a value: it starts full and refills
/// with the time passed since it was last used.
package struct EngineIOTokenBucket: Sendable {
    private var tokens: Double
    private var updated: NIODeadline

    /// A full bucket at `now`.
    package init(_ limit: EngineIORateLimit, now: NIODeadline) {
        self.tokens = Double(limit.burst)
        self.updated = now
    }

    /// Takes a token at `now`; `false` when none is left.
    package mutating func take(_ limit: EngineIORateLimit, now: NIODeadline) -> Bool {
        let elapsed = Double(max(0, (now - updated).nanoseconds)) / 1e9
        tokens = min(Double(limit.burst), tokens + elapsed * limit.perSecond)
        updated = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }

    /// Whether the bucket has refilled completely by `now` (it can be forgotten).
    package func isFull(_ limit: EngineIORateLimit, now: NIODeadline) -> Bool {
        let refill = Double(limit.burst) / max(limit.perSecond, .leastNonzeroMagnitude)
        return Double((now - updated).nanoseconds) / 1e9 >= refill
    }
}

/// The token buckets of the addresses that made handshakes lately. Buckets that filled up again
/// are forgotten, so that the table stays as small as the set of addresses handshaking now.
final class EngineIOHandshakeLimiter: Sendable {
    private let limit: EngineIORateLimit
    private let buckets = Mutex<[String: EngineIOTokenBucket]>([:])

    init(_ limit: EngineIORateLimit) {
        self.limit = limit
    }

    /// Takes a token of `address`'s bucket; `false` when it has none left. Requests without an
    /// address (not over TCP) are not limited.
    func admit(_ address: SocketAddress?) -> Bool {
        guard let key = address?.ipAddress else { return true }
        let now = NIODeadline.now()
        return buckets.withLock { buckets in
            if buckets.count > 10_000 { buckets = buckets.filter { !$0.value.isFull(limit, now: now) } }
            return buckets[key, default: EngineIOTokenBucket(limit, now: now)].take(limit, now: now)
        }
    }
}
