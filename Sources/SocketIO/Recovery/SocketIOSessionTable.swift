import Foundation
import NIOCore
import Synchronization

/// The sessions of sockets whose clients went away, by private session id, until they come back
/// or their window ends. Sessions arrive in time order, so the expired ones are always at the
/// front of ``order``.
final class SocketIOSessionTable: Sendable {
    private struct State {
        var sessions: [String: SocketIORecoverySession] = [:]
        var order: [(pid: String, at: ContinuousClock.Instant)] = []
        var orderStart = 0
    }

    private let state = Mutex(State())
    let window: Duration
    let capacity: Int

    init(window: Duration, capacity: Int) {
        self.window = window
        self.capacity = max(capacity, 1)
    }

    /// How many sessions are kept at `now`: those whose window ended by then are let go first,
    /// so that a quiet server's table (and the gauge that reads it) empties too.
    func count(now: ContinuousClock.Instant = .now) -> Int {
        state.withLock { state in
            Self.prune(&state, now: now, window: window, capacity: capacity)
            return state.sessions.count
        }
    }

    /// Keeps a session (replacing one with the same pid).
    func keep(_ session: SocketIORecoverySession) {
        state.withLock { state in
            Self.prune(&state, now: session.disconnectedAt, window: window, capacity: capacity - 1)
            state.sessions[session.pid] = session
            state.order.append((session.pid, session.disconnectedAt))
        }
    }

    /// Takes back the sessions a store kept, oldest first; those still connected belonged to a
    /// server that died, and count as gone now.
    func restore(_ stored: [SocketIOStoredSession], now: ContinuousClock.Instant = .now, wallClock: Date = Date()) {
        let sessions = stored.compactMap { SocketIORecoverySession(stored: $0, now: now, wallClock: wallClock) }
        for session in sessions.sorted(by: { $0.disconnectedAt < $1.disconnectedAt }) { keep(session) }
    }

    /// Takes the session `pid` of `namespace` if it is known and fresh: a session comes back once.
    func take(pid: String, namespace: String, now: ContinuousClock.Instant) -> SocketIORecoverySession? {
        state.withLock { state in
            Self.prune(&state, now: now, window: window, capacity: capacity)
            guard let session = state.sessions[pid], session.namespace == namespace else { return nil }
            state.sessions[pid] = nil
            return session
        }
    }

    private static func prune(_ state: inout State, now: ContinuousClock.Instant, window: Duration, capacity: Int) {
        while state.orderStart < state.order.count {
            let (pid, at) = state.order[state.orderStart]
            let expired = now - at > window
            let stale = state.sessions[pid]?.disconnectedAt != at
            guard expired || stale || state.sessions.count > capacity else { break }
            if !stale { state.sessions[pid] = nil }
            state.orderStart += 1
        }
        if state.orderStart > 1024, state.orderStart * 2 > state.order.count {
            state.order.removeFirst(state.orderStart)
            state.orderStart = 0
        }
    }
}
