import Synchronization

/// The bytes of broadcasts handed to event loops that have not selected and written their
/// recipients yet: what a publisher outpacing the loops piles up in memory. One per server, shared
/// by the Engine.IO fan-out and the Socket.IO shards above it. Publishers check it against their limit
/// and wait for it to go down (``wait(untilAtMost:)``) or refuse new work.
public final class EngineIOBroadcastBacklog: Sendable {
    private let bytes = Atomic<Int>(0)
    private let waiting = Atomic<Int>(0)
    private let waiters = Mutex<[Waiter]>([])

    private struct Waiter {
        let id: Int
        let limit: Int
        let continuation: CheckedContinuation<Void, Never>
    }

    private let nextWaiterID = Atomic<Int>(0)

    package init() {}

    /// The bytes waiting for an event loop now.
    public var pendingBytes: Int { bytes.load(ordering: .relaxed) }

    package func add(_ count: Int) {
        bytes.add(count, ordering: .relaxed)
    }

    package func remove(_ count: Int) {
        let now = bytes.subtract(count, ordering: .relaxed).newValue
        guard waiting.load(ordering: .relaxed) > 0 else { return }
        let ready = waiters.withLock { waiters -> [Waiter] in
            let ready = waiters.filter { now <= $0.limit }
            waiters.removeAll { now <= $0.limit }
            waiting.store(waiters.count, ordering: .relaxed)
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    /// Returns once at most `limit` bytes are pending (at once when they already are), or when
    /// the task is cancelled.
    public func wait(untilAtMost limit: Int) async {
        guard pendingBytes > limit else { return }
        let id = nextWaiterID.add(1, ordering: .relaxed).newValue
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = waiters.withLock { waiters -> Bool in
                    if Task.isCancelled || bytes.load(ordering: .relaxed) <= limit { return true }
                    waiters.append(Waiter(id: id, limit: limit, continuation: continuation))
                    waiting.store(waiters.count, ordering: .relaxed)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let cancelled = waiters.withLock { waiters -> Waiter? in
                guard let index = waiters.firstIndex(where: { $0.id == id }) else { return nil }
                defer { waiting.store(waiters.count - 1, ordering: .relaxed) }
                return waiters.remove(at: index)
            }
            cancelled?.continuation.resume()
        }
    }
}
