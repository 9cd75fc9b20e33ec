import Synchronization

/// The messages received and not yet finished, with when each was last made invisible, for the
/// visibility heartbeat and the in-flight gauge.
final class InFlightTracker: Sendable {
    private struct Entry {
        var message: QueueMessage
        var hiddenSince: ContinuousClock.Instant
    }

    private let entries = Mutex<[QueueReceipt: Entry]>([:])
    private let onChange: @Sendable (Int) -> Void

    /// - Parameter onChange: Called with the new count after every change (for a gauge).
    init(onChange: @escaping @Sendable (Int) -> Void) {
        self.onChange = onChange
    }

    func add(_ message: QueueMessage, now: ContinuousClock.Instant = .now) {
        let count = entries.withLock { entries in
            entries[message.receipt] = Entry(message: message, hiddenSince: now)
            return entries.count
        }
        onChange(count)
    }

    func remove(_ receipt: QueueReceipt) {
        let count = entries.withLock { entries in
            entries[receipt] = nil
            return entries.count
        }
        onChange(count)
    }

    /// The messages hidden for at least `threshold`, marked as extended at `now`.
    func takeDue(threshold: Duration, now: ContinuousClock.Instant = .now) -> [QueueMessage] {
        entries.withLock { entries in
            var due: [QueueMessage] = []
            for (receipt, entry) in entries where now - entry.hiddenSince >= threshold {
                due.append(entry.message)
                entries[receipt]?.hiddenSince = now
            }
            return due
        }
    }

    var count: Int { entries.withLock { $0.count } }

    /// Whether another receipt of `receipt`'s message is tracked (the message was received twice).
    func hasOtherReceipt(of receipt: QueueReceipt) -> Bool {
        entries.withLock { entries in
            entries.keys.contains { $0.messageID == receipt.messageID && $0 != receipt }
        }
    }
}
