import Synchronization

/// Waits until this node received every notification of a channel that PostgreSQL committed
/// before the wait began: the node notifies a marker of its own (a HEARTBEAT carrying
/// `{"barrier": n}`, which other servers take as a heartbeat), and the wait ends when the marker
/// comes back through its listening connection, behind everything committed before it.
///
/// Waits that begin while a marker of their channel is queued but not yet committed share it.
/// A marker that never comes back (the listening connection was lost meanwhile) ends its waits
/// after their timeout.
final class ClusterBarrier: Sendable {
    private struct Waiter {
        let namespace: String
        let marker: Int
        let continuation: CheckedContinuation<Bool, Never>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var lastMarker = 0
        /// The marker of each namespace that is queued and not yet committed.
        var uncommitted: [String: Int] = [:]
        /// The last marker of each namespace that came back.
        var arrived: [String: Int] = [:]
        var waiters: [Int: Waiter] = [:]
        var nextWaiter = 0
    }

    private let state = Mutex(State())

    /// The marker a wait on `namespace` needs: the uncommitted one, or a new one (`isNew`: the
    /// caller notifies it, and calls ``committed(_:namespace:)`` once it is committed).
    func marker(for namespace: String) -> (marker: Int, isNew: Bool) {
        state.withLock { state in
            if let marker = state.uncommitted[namespace] { return (marker, false) }
            state.lastMarker += 1
            state.uncommitted[namespace] = state.lastMarker
            return (state.lastMarker, true)
        }
    }

    /// The marker's notification was committed (or failed): later waits need a new one.
    func committed(_ marker: Int, namespace: String) {
        state.withLock { state in
            if state.uncommitted[namespace] == marker { state.uncommitted[namespace] = nil }
        }
    }

    /// Waits until `marker` of `namespace` (or a later one) came back; `false` after `timeout`.
    func wait(for marker: Int, namespace: String, timeout: Duration) async -> Bool {
        await withCheckedContinuation { continuation in
            let id = state.withLock { state -> Int? in
                guard state.arrived[namespace, default: 0] < marker else { return nil }
                state.nextWaiter += 1
                state.waiters[state.nextWaiter] = Waiter(namespace: namespace, marker: marker, continuation: continuation)
                return state.nextWaiter
            }
            guard let id else { return continuation.resume(returning: true) }
            let timer = Task { [self] in
                try? await Task.sleep(for: timeout)
                if let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) { waiter.continuation.resume(returning: false) }
            }
            let gone = state.withLock { state in
                state.waiters[id]?.timer = timer
                return state.waiters[id] == nil
            }
            if gone { timer.cancel() }
        }
    }

    /// A marker of this node came back through the listening connection.
    func arrived(_ marker: Int, namespace: String) {
        let done = state.withLock { state -> [Waiter] in
            state.arrived[namespace] = max(state.arrived[namespace, default: 0], marker)
            let ids = state.waiters.filter { $0.value.namespace == namespace && $0.value.marker <= marker }.map(\.key)
            return ids.compactMap { state.waiters.removeValue(forKey: $0) }
        }
        for waiter in done {
            waiter.timer?.cancel()
            waiter.continuation.resume(returning: true)
        }
    }
}
