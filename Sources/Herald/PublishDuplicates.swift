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

    private struct State {
        var seen: [String: ContinuousClock.Instant] = [:]
        var order: [(id: String, at: ContinuousClock.Instant)] = []
        var head = 0
    }

    private let window: Duration
    private let state = Mutex(State())

    init(window: Duration = QueueConsumerConfiguration().duplicateWindow) {
        self.window = window
    }

    /// Reserves the ids of a request: returns, for each id (`nil` for a message without one),
    /// whether it is new. A repeated id within one request counts as a duplicate too.
    func reserve(_ ids: [String?], now: ContinuousClock.Instant = .now) -> [Bool] {
        guard window > .zero else { return ids.map { _ in true } }
        return state.withLock { state in
            Self.evict(&state, before: now - window)
            return ids.map { id in
                guard let id else { return true }
                guard state.seen[id] == nil else { return false }
                state.seen[id] = now
                state.order.append((id, now))
                return true
            }
        }
    }

    /// Forgets ids whose publishing failed, so that a retry is not answered as a duplicate.
    func release(_ ids: some Sequence<String>) {
        state.withLock { state in
            for id in ids { state.seen[id] = nil }
        }
    }

    private static func evict(_ state: inout State, before limit: ContinuousClock.Instant) {
        while state.head < state.order.count,
            state.order[state.head].at < limit || state.order.count - state.head > capacity
        {
            let entry = state.order[state.head]
            if state.seen[entry.id] == entry.at { state.seen[entry.id] = nil }
            state.head += 1
        }
        if state.head > 1024, state.head * 2 > state.order.count {
            state.order.removeFirst(state.head)
            state.head = 0
        }
    }
}
