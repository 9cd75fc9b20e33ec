import SQLiteNIO

/// What waits for an ``EmbeddedQueue``'s next write transaction: a group commit.
///
/// Writes (enqueues, deletes, visibility changes) and receives submitted while a transaction runs
/// all go into the next one, so a burst costs a few transactions (and syncs to disk) rather than
/// one each. A receive that found nothing is parked: the next transaction that may make messages
/// visible (an enqueue, a visibility reset) receives for it after its writes, so a published
/// message reaches a waiting consumer in the very transaction that commits it.
///
/// A value type that performs nothing: ``EmbeddedQueue`` keeps it in a mutex, runs the batches it
/// hands out, and resumes the callers it names.
struct GroupCommit {
    /// Rows to insert; resumed after COMMIT.
    struct Insert {
        var rows: [[SQLiteData]]
        var continuation: CheckedContinuation<Void, any Error>
    }

    /// Receipts to delete; resumed with those that matched nothing.
    struct Delete {
        var receipts: [QueueReceipt]
        var continuation: CheckedContinuation<[QueueReceipt], any Error>
    }

    /// A visibility change; resumed with whether the receipt matched a message.
    struct VisibilityChange {
        var receipt: QueueReceipt
        var timeout: Duration
        var continuation: CheckedContinuation<Bool, any Error>
    }

    /// Statements of another part of the program that share the queue's database (the recovery
    /// log): they run first in the transaction, so that what they write is committed with, or
    /// before, the deletes grouped with them. Resumed after COMMIT.
    struct Statements {
        var perform: @Sendable (SQLiteConnection) async throws -> Void
        var continuation: CheckedContinuation<Void, any Error>
    }

    /// A receive; it parks when it finds nothing and its deadline is ahead.
    struct Receive {
        var id: UInt64
        var maxMessages: Int
        var visibilityTimeout: Duration
        /// `nil`: look once and return.
        var deadline: ContinuousClock.Instant?
        var continuation: CheckedContinuation<[QueueMessage], any Error>
        /// Tells this park's poll timer from those of earlier parks.
        var park = 0
    }

    /// One transaction's worth of requests.
    struct Batch {
        var statements: [Statements] = []
        var inserts: [Insert] = []
        var changes: [VisibilityChange] = []
        var deletes: [Delete] = []
        /// Receives that look for themselves: the dead-letter sweep runs before them.
        var looks: [Receive] = []
        /// Parked receives that join because this batch may make messages visible.
        var joiners: [Receive] = []
        /// Whether the inserted rows go to the first joiner as they are inserted (received with
        /// the INSERT itself): nothing else was visible when the batch was taken.
        var insertsReceived = false

        /// The requests in the batch.
        var count: Int { statements.count + inserts.count + changes.count + deletes.count + looks.count + joiners.count }

        /// The receives, looks first.
        var receives: [Receive] { looks + joiners }

        /// Whether committing the batch may make messages visible.
        var makesVisible: Bool { !inserts.isEmpty || changes.contains { $0.timeout == .zero } }

        /// Each request in a batch of its own, to run one by one when the whole batch failed.
        func split() -> [Batch] {
            statements.map { Batch(statements: [$0]) } + inserts.map { Batch(inserts: [$0]) } + changes.map { Batch(changes: [$0]) }
                + deletes.map { Batch(deletes: [$0]) }
                + receives.map { Batch(looks: [$0]) }
        }
    }

    /// A timer to start: after `delay`, call ``pollTimerFired(id:park:)``.
    struct PollTimer {
        var id: UInt64
        var park: Int
        var delay: Duration
    }

    /// A receive to resume once a transaction is over.
    struct Resumption {
        var continuation: CheckedContinuation<[QueueMessage], any Error>
        var result: Result<[QueueMessage], any Error>

        func resume() { continuation.resume(with: result) }
    }

    /// What a finished transaction leads to.
    struct Aftermath {
        var resumptions: [Resumption] = []
        var timers: [PollTimer] = []
        /// The next batch to write, when requests came in meanwhile.
        var next: Batch?
    }

    private var pending = Batch()
    private var parked: [UInt64: Receive] = [:]
    /// Receives cancelled while their transaction ran: they return what it found, and do not park.
    private var cancelled: Set<UInt64> = []
    private var writing = false
    /// Whether the last receive left nothing visible and no write since may have made anything
    /// visible: a long poll then parks at once instead of looking (its poll timer still looks
    /// for what other processes enqueued and for expired visibility).
    private var drained = false
    private var nextID: UInt64 = 0

    /// The receives parked now.
    var parkedCount: Int { parked.count }

    /// The requests waiting for the next transaction.
    var pendingCount: Int { pending.count }

    /// An ID for a new receive.
    mutating func makeReceiveID() -> UInt64 {
        nextID += 1
        return nextID
    }

    mutating func submit(_ insert: Insert) -> Batch? {
        pending.inserts.append(insert)
        return takeIfIdle()
    }

    mutating func submit(_ statements: Statements) -> Batch? {
        pending.statements.append(statements)
        return takeIfIdle()
    }

    mutating func submit(_ delete: Delete) -> Batch? {
        pending.deletes.append(delete)
        return takeIfIdle()
    }

    mutating func submit(_ change: VisibilityChange) -> Batch? {
        pending.changes.append(change)
        return takeIfIdle()
    }

    /// A receive: it looks in the next transaction, or, when it may wait and nothing can be
    /// visible, parks at once (then start the returned timer).
    mutating func submit(_ receive: Receive, now: ContinuousClock.Instant, pollInterval: Duration) -> (Batch?, PollTimer?) {
        if drained, let deadline = receive.deadline, now < deadline {
            return (nil, park(receive, now: now, deadline: deadline, pollInterval: pollInterval))
        }
        pending.looks.append(receive)
        return (takeIfIdle(), nil)
    }

    /// A parked receive's poll interval is over: it looks again (for messages that other
    /// processes enqueued, or whose visibility ran out).
    mutating func pollTimerFired(id: UInt64, park: Int) -> Batch? {
        guard let receive = parked[id], receive.park == park else { return nil }
        parked[id] = nil
        pending.looks.append(receive)
        return takeIfIdle()
    }

    /// The receive's task was cancelled: returns its continuation when it was waiting (parked or
    /// not yet taken), to be resumed with a `CancellationError`.
    mutating func cancel(id: UInt64) -> CheckedContinuation<[QueueMessage], any Error>? {
        if let receive = parked.removeValue(forKey: id) { return receive.continuation }
        if let index = pending.looks.firstIndex(where: { $0.id == id }) { return pending.looks.remove(at: index).continuation }
        cancelled.insert(id)
        return nil
    }

    /// The transaction of the batch taken last is over; `received` holds each receive's outcome
    /// (by ID). Receives that found nothing with time left are parked again.
    mutating func finished(
        _ batch: Batch, received: [UInt64: Result<[QueueMessage], any Error>], now: ContinuousClock.Instant, pollInterval: Duration
    ) -> Aftermath {
        var aftermath = Aftermath()
        for receive in batch.receives {
            let result = received[receive.id] ?? .success([])
            let wasCancelled = cancelled.remove(receive.id) != nil
            if case .success(let messages) = result, messages.count < receive.maxMessages {
                // It took every visible message there was (received after this batch's writes).
                drained = true
            }
            if case .success(let messages) = result, messages.isEmpty, !wasCancelled, let deadline = receive.deadline, now < deadline {
                aftermath.timers.append(park(receive, now: now, deadline: deadline, pollInterval: pollInterval))
            } else {
                aftermath.resumptions.append(Resumption(continuation: receive.continuation, result: result))
            }
        }
        writing = false
        aftermath.next = takeIfIdle()
        return aftermath
    }

    private mutating func park(
        _ receive: Receive, now: ContinuousClock.Instant, deadline: ContinuousClock.Instant, pollInterval: Duration
    )
        -> PollTimer
    {
        var receive = receive
        receive.park += 1
        parked[receive.id] = receive
        return PollTimer(id: receive.id, park: receive.park, delay: min(pollInterval, deadline - now))
    }

    /// The queue is closing: every parked receive returns empty.
    mutating func close() -> [CheckedContinuation<[QueueMessage], any Error>] {
        defer { parked = [:] }
        return parked.values.map(\.continuation)
    }

    /// Takes what is pending when no transaction runs; parked receives join when the batch may
    /// make messages visible.
    private mutating func takeIfIdle() -> Batch? {
        guard !writing, pending.count > 0 else { return nil }
        var batch = pending
        pending = Batch()
        if batch.makesVisible {
            batch.insertsReceived = drained && !parked.isEmpty && batch.looks.isEmpty && !batch.changes.contains { $0.timeout == .zero }
            drained = false
            batch.joiners = parked.values.sorted { $0.id < $1.id }
            parked = [:]
        }
        writing = true
        return batch
    }
}
