import Synchronization

/// Counts messages in flight and makes pollers wait while the limit is reached.
final class InFlightLimiter: Sendable {
    private struct Waiter {
        var id: UInt64
        var wanted: Int
        var continuation: CheckedContinuation<Int, any Error>
    }

    private struct State {
        var available: Int
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(available: max(limit, 1)))
    }

    /// Waits until at least one slot is free, then takes up to `count` slots and returns how many.
    ///
    /// Throws `CancellationError` when the task is cancelled while waiting.
    func acquire(upTo count: Int) async throws -> Int {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                let granted: Int? = state.withLock { state in
                    if Task.isCancelled { return 0 }
                    if state.available > 0 && state.waiters.isEmpty {
                        let take = min(count, state.available)
                        state.available -= take
                        return take
                    }
                    state.waiters.append(Waiter(id: id, wanted: count, continuation: continuation))
                    return nil
                }
                switch granted {
                case .none: break
                case .some(0): continuation.resume(throwing: CancellationError())
                case .some(let take): continuation.resume(returning: take)
                }
            }
        } onCancel: {
            let continuation = state.withLock { state -> CheckedContinuation<Int, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            continuation?.resume(throwing: CancellationError())
        }
    }

    /// Gives back `count` slots, waking waiting pollers.
    func release(_ count: Int) {
        guard count > 0 else { return }
        let woken = state.withLock { state -> [(CheckedContinuation<Int, any Error>, Int)] in
            state.available += count
            var woken: [(CheckedContinuation<Int, any Error>, Int)] = []
            while state.available > 0, !state.waiters.isEmpty {
                let waiter = state.waiters.removeFirst()
                let take = min(waiter.wanted, state.available)
                state.available -= take
                woken.append((waiter.continuation, take))
            }
            return woken
        }
        for (continuation, take) in woken { continuation.resume(returning: take) }
    }
}
