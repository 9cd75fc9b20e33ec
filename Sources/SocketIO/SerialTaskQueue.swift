import NIOConcurrencyHelpers

/// Runs async jobs one after another, in the order they were enqueued, with no task alive
/// while the queue is empty: a socket's handlers run in order without a task per connection.
final class SerialTaskQueue: Sendable {
    typealias Job = @Sendable () async -> Void

    private struct State {
        var jobs: [Job] = []
        var head = 0
        var running = false
    }

    private let state = NIOLockedValueBox(State())

    func enqueue(_ job: @escaping Job) {
        let start = state.withLockedValue { state -> Bool in
            state.jobs.append(job)
            guard !state.running else { return false }
            state.running = true
            return true
        }
        if start { Task { await self.drain() } }
    }

    private func drain() async {
        while let job = next() { await job() }
    }

    private func next() -> Job? {
        state.withLockedValue { state in
            guard state.head < state.jobs.count else {
                state.jobs.removeAll(keepingCapacity: false)
                state.head = 0
                state.running = false
                return nil
            }
            defer { state.head += 1 }
            return state.jobs[state.head]
        }
    }
}
