import Synchronization

/// A count of pending work that can be waited for to reach zero: the consumer's hand-offs waiting
/// for their settlement, or the events of one publish waiting to be written.
package final class PendingCount: Sendable {
    private struct State {
        var count = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    /// A count starting at `count`.
    package init(count: Int = 0) { state = Mutex(State(count: count)) }

    /// One more piece of work.
    package func begin() { state.withLock { $0.count += 1 } }

    /// One piece of work is done.
    package func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count -= 1
            guard state.count == 0 else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the count is zero.
    package func drained() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.count == 0 { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
