import Synchronization

/// The bytes of broadcasts handed to event loops whose shards have not selected and written them
/// yet: what a publisher outpacing the loops piles up. Publishers compare it with their limit and
/// wait for it to go down (``wait(untilAtMost:)``) or refuse new work.
public final class SocketIOBroadcastBacklog: Sendable {
    private struct State {
        var bytes = 0
        var waiters: [(id: Int, limit: Int, continuation: CheckedContinuation<Void, Never>)] = []
        var nextID = 0
    }

    private let state = Mutex(State())

    init() {}

    /// The bytes waiting for an event loop now.
    public var pendingBytes: Int { state.withLock { $0.bytes } }

    func add(_ count: Int) {
        state.withLock { $0.bytes += count }
    }

    func remove(_ count: Int) {
        let ready = state.withLock { state in
            state.bytes -= count
            let bytes = state.bytes
            let ready = state.waiters.filter { bytes <= $0.limit }
            if !ready.isEmpty { state.waiters.removeAll { bytes <= $0.limit } }
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    /// Returns once at most `limit` bytes are pending (at once when they already are), or when
    /// the task is cancelled.
    public func wait(untilAtMost limit: Int) async {
        guard pendingBytes > limit else { return }
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state -> Bool in
                    if Task.isCancelled || state.bytes <= limit { return true }
                    state.waiters.append((id, limit, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            cancelled?.resume()
        }
    }
}
