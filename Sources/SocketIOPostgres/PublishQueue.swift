import Synchronization

/// The messages a node has yet to publish, in the order they were made, taken by one publisher a
/// batch at a time: what was queued while a publish ran goes out in the next one, in one round trip.
final class PublishQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var waiter: CheckedContinuation<[Element]?, Never>?
        var finished = false
    }

    private let state = Mutex(State())

    /// Queues `item`; `false` once the queue is finished (the item is not queued).
    func push(_ item: Element) -> Bool {
        let (accepted, waiter) = state.withLock { state -> (Bool, CheckedContinuation<[Element]?, Never>?) in
            guard !state.finished else { return (false, nil) }
            guard let waiter = state.waiter else {
                state.items.append(item)
                return (true, nil)
            }
            state.waiter = nil
            return (true, waiter)
        }
        waiter?.resume(returning: [item])
        return accepted
    }

    /// No more items: once those queued are taken, ``take(max:)`` returns `nil`.
    func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    /// Up to `max` of the oldest items, waiting for one when none is queued; `nil` once the
    /// queue is finished and empty. One taker at a time.
    func take(max: Int) async -> [Element]? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> [Element]?? in
                if !state.items.isEmpty {
                    let count = min(max, state.items.count)
                    defer { state.items.removeFirst(count) }
                    return .some(Array(state.items.prefix(count)))
                }
                if state.finished { return .some(nil) }
                state.waiter = continuation
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
