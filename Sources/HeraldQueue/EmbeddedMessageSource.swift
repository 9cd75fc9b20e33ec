/// A ``MessageSource`` over an ``EmbeddedQueue``.
///
/// A waiting receive wakes as soon as a message enqueued through the same ``EmbeddedQueue`` is
/// committed, and looks again every ``EmbeddedQueue/Configuration/pollInterval`` for what it
/// cannot be told about (other processes' messages, expired visibility) until the wait time is over. The dead-letter policy is the queue's
/// ``EmbeddedQueue/Configuration/maxReceiveCount``. When `ordered`, the source is FIFO: the
/// messages of one group (``EmbeddedQueue/NewMessage/groupID``) are handled one after the other,
/// in the order they were enqueued (with a single poller).
public struct EmbeddedMessageSource: MessageSource {
    /// The queue.
    public let queue: EmbeddedQueue
    /// Whether messages of one group are handled in order.
    public let ordered: Bool

    /// Creates a source.
    public init(queue: EmbeddedQueue, ordered: Bool = false) {
        self.queue = queue
        self.ordered = ordered
    }

    /// The file name of the queue.
    public var name: String {
        queue.path.split(separator: "/").last.map(String.init) ?? queue.path
    }

    /// Deletes go in batches of up to 100.
    public var maxAcknowledgeBatchSize: Int { 100 }

    /// The queue's dead-letter table and visibility timeout.
    public func describe() async throws -> QueueDescription {
        QueueDescription(
            deadLetterPolicy: queue.configuration.maxReceiveCount.map {
                DeadLetterPolicy(target: "\(name) dead_letters", maxReceiveCount: $0)
            },
            visibilityTimeout: queue.configuration.visibilityTimeout,
            isFIFO: ordered
        )
    }

    /// Receives what is visible, waiting until `waitTime` is over for an enqueue to commit (or,
    /// at each poll interval, for anything else to become visible).
    public func receive(maxMessages: Int, waitTime: Duration) async throws -> [QueueMessage] {
        let deadline = ContinuousClock.now + waitTime
        while true {
            // Read before looking, so that a commit during the look wakes the wait below at once.
            let seen = queue.changes.generation
            let messages = try await queue.receive(maxMessages: maxMessages)
            let now = ContinuousClock.now
            if !messages.isEmpty || now >= deadline { return messages }
            await queue.changes.wait(after: seen, timeout: min(queue.configuration.pollInterval, deadline - now))
            try Task.checkCancellation()
        }
    }

    /// Deletes by receipt; a receipt that matches nothing is reported as not retryable.
    public func acknowledge(_ receipts: [QueueReceipt]) async throws -> [AcknowledgeFailure] {
        try await queue.delete(receipts).map {
            AcknowledgeFailure(
                receipt: $0, code: "ReceiptNotFound",
                message: EmbeddedQueueError.receiptNotFound(messageID: $0.messageID).description, isRetryable: false
            )
        }
    }

    /// Changes the visibility in the queue.
    public func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws {
        try await queue.changeVisibility(of: receipt, to: timeout)
    }
}
