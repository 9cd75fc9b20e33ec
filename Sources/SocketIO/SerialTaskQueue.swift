import NIOConcurrencyHelpers
import NIOCore

/// Runs async jobs one after another, in the order they were enqueued, with no task alive
/// while the queue is empty: a socket's handlers run in order without a task per connection.
///
/// A finished job is released at once, and at most `limit` jobs wait: a client that sends
/// faster than its handlers run is refused instead of growing the server's memory.
final class SerialTaskQueue: Sendable {
    typealias Job = @Sendable () async -> Void

    private struct State {
        var jobs = CircularBuffer<Job>()
        var running = false
    }

    /// The most jobs that may wait behind the running one.
    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int = .max) {
        self.limit = limit
    }

    /// Jobs waiting to run (the running one excluded).
    var waiting: Int { state.withLockedValue { $0.jobs.count } }

    /// Adds a job; `false` (and the job dropped) when `limit` jobs are already waiting.
    /// Jobs of the socket's own lifecycle (its connection and disconnect handlers) pass
    /// `bounded: false`: they must run whatever the client did.
    @discardableResult
    func enqueue(bounded: Bool = true, _ job: @escaping Job) -> Bool {
        enum Outcome { case queued, start, full }
        let outcome: Outcome = state.withLockedValue { state in
            guard !bounded || state.jobs.count < limit else { return .full }
            state.jobs.append(job)
            guard !state.running else { return .queued }
            state.running = true
            return .start
        }
        if outcome == .start { Task { await self.drain() } }
        return outcome != .full
    }

    private func drain() async {
        while let job = next() { await job() }
    }

    private func next() -> Job? {
        state.withLockedValue { state in
            guard let job = state.jobs.popFirst() else {
                state.running = false
                if state.jobs.capacity > 16 { state.jobs = CircularBuffer() }
                return nil
            }
            return job
        }
    }
}
