import HeraldQueue
import Synchronization

/// The message ids the publish API accepted recently, so that it can answer a repeated id as a
/// duplicate (`{"accepted": 0, "duplicates": 1}`) instead of claiming to accept what would be
/// suppressed.
///
/// The window is the queue consumer's duplicate window (five minutes by default): an id seen
/// again within it is not published again, and the consumer would have suppressed its copy
/// anyway. Without a queue (`queue = none`) this window is the only duplicate suppression.
/// At most ``capacity`` ids are remembered; past that the oldest are forgotten early, so a
/// flood of distinct ids costs bounded memory (and an id repeated after such a flood may then be
/// published again — the consumer's own window still applies to queued messages).
final class PublishDuplicates: Sendable {
    /// How many ids are remembered at most.
    static let capacity = 100_000

    private let window: Duration
    private let seen: Mutex<ExpiringKeySet>

    init(window: Duration = QueueConsumerConfiguration().duplicateWindow) {
        self.window = window
        self.seen = Mutex(ExpiringKeySet(window: window, capacity: Self.capacity))
    }

    /// Reserves the ids of a request: returns, for each id (`nil` for a message without one),
    /// whether it is new. A repeated id within one request counts as a duplicate too.
    func reserve(_ ids: [String?], now: ContinuousClock.Instant = .now) -> [Bool] {
        guard window > .zero else { return ids.map { _ in true } }
        return seen.withLock { seen in
            seen.evict(now: now)
            return ids.map { id in
                guard let id else { return true }
                guard !seen.contains(id) else { return false }
                seen.insert(id, at: now)
                return true
            }
        }
    }

    /// Forgets ids whose publishing failed, so that a retry is not answered as a duplicate.
    func release(_ ids: some Sequence<String>) {
        seen.withLock { seen in
            for id in ids { seen.remove(id) }
        }
    }
}
