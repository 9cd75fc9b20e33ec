import Synchronization

/// Remembers the keys of handed-off messages for a window, and the keys being handled now.
final class DuplicateFilter: Sendable {
    /// What ``begin(_:)`` found.
    enum Status: Equatable {
        /// Not seen: handle it.
        case new
        /// Handed off within the window: delete it without handling it.
        case duplicate
        /// Another copy is being handled now: give this one back for later.
        case inProgress
    }

    private struct State {
        var handedOff: [String: ContinuousClock.Instant] = [:]
        var order: [(key: String, at: ContinuousClock.Instant)] = []
        var head = 0
        var inProgress: Set<String> = []
    }

    private let window: Duration
    private let state = Mutex(State())

    init(window: Duration) {
        self.window = window
    }

    /// Classifies `key` and, when it is new, marks it as being handled.
    func begin(_ key: String, now: ContinuousClock.Instant = .now) -> Status {
        guard window > .zero else { return .new }
        return state.withLock { state in
            Self.evict(&state, before: now - window)
            if state.handedOff[key] != nil { return .duplicate }
            if state.inProgress.contains(key) { return .inProgress }
            state.inProgress.insert(key)
            return .new
        }
    }

    /// Ends the handling of `key`, remembering it when it was handed off.
    func finish(_ key: String, handedOff: Bool, now: ContinuousClock.Instant = .now) {
        guard window > .zero else { return }
        state.withLock { state in
            state.inProgress.remove(key)
            if handedOff {
                state.handedOff[key] = now
                state.order.append((key, now))
            }
        }
    }

    /// How many handed-off keys are remembered.
    var count: Int { state.withLock { $0.handedOff.count } }

    private static func evict(_ state: inout State, before limit: ContinuousClock.Instant) {
        while state.head < state.order.count, state.order[state.head].at < limit {
            let entry = state.order[state.head]
            if state.handedOff[entry.key] == entry.at { state.handedOff[entry.key] = nil }
            state.head += 1
        }
        if state.head > 1024, state.head * 2 > state.order.count {
            state.order.removeFirst(state.head)
            state.head = 0
        }
    }
}
