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
        var handedOff: ExpiringKeySet
        var inProgress: Set<String> = []
    }

    private let window: Duration
    private let state: Mutex<State>

    init(window: Duration) {
        self.window = window
        self.state = Mutex(State(handedOff: ExpiringKeySet(window: window)))
    }

    /// Classifies `key` and, when it is new, marks it as being handled.
    func begin(_ key: String, now: ContinuousClock.Instant = .now) -> Status {
        guard window > .zero else { return .new }
        return state.withLock { state in
            state.handedOff.evict(now: now)
            if state.handedOff.contains(key) { return .duplicate }
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
            if handedOff { state.handedOff.insert(key, at: now) }
        }
    }

    /// How many handed-off keys are remembered.
    var count: Int { state.withLock { $0.handedOff.count } }
}
