/// Keys remembered for a window of time, and at most `capacity` of them: the oldest are
/// forgotten first, so a flood of distinct keys costs bounded memory. Not synchronised: its
/// owner keeps it behind a lock.
public struct ExpiringKeySet: Sendable {
    /// How long a key is remembered.
    public let window: Duration
    /// How many keys are remembered at most.
    public let capacity: Int
    private var insertedAt: [String: ContinuousClock.Instant] = [:]
    private var order: [(key: String, at: ContinuousClock.Instant)] = []
    private var head = 0

    /// Creates an empty set remembering keys for `window`, at most `capacity` of them.
    public init(window: Duration, capacity: Int = 1_000_000) {
        self.window = window
        self.capacity = capacity
    }

    /// The keys remembered now.
    public var count: Int { insertedAt.count }

    /// Whether `key` was inserted within the window (as of the last ``evict(now:)``).
    public func contains(_ key: String) -> Bool { insertedAt[key] != nil }

    /// Remembers `key` from `now` on.
    public mutating func insert(_ key: String, at now: ContinuousClock.Instant = .now) {
        insertedAt[key] = now
        order.append((key, now))
    }

    /// Forgets `key`.
    public mutating func remove(_ key: String) {
        insertedAt[key] = nil
    }

    /// Forgets the keys older than the window, and the oldest past the capacity.
    public mutating func evict(now: ContinuousClock.Instant = .now) {
        let limit = now - window
        while head < order.count, order[head].at < limit || order.count - head > capacity {
            let entry = order[head]
            if insertedAt[entry.key] == entry.at { insertedAt[entry.key] = nil }
            head += 1
        }
        if head > 1024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
