/// A ``MessageSource`` over an ``EmbeddedQueue``.
///
/// A waiting receive gets a message enqueued through the same ``EmbeddedQueue`` in the
/// transaction that commits it, and looks again every ``EmbeddedQueue/Configuration/pollInterval``
/// for what it cannot be told about (other processes' messages, expired visibility) until the wait
/// time is over. The dead-letter policy is the queue's ``EmbeddedQueue/Configuration/maxReceiveCount``.
/// When `ordered`, the source is FIFO: the messages of one group (``EmbeddedQueue/NewMessage/groupID``)
/// are handled one after the other, in the order they were enqueued (with a single poller).
/// A message enqueued through this queue while the consumer waits is inserted as already received
/// by it; one that became visible meanwhile without this queue knowing (enqueued by another
/// process, or whose visibility ran out) is received at the next look, so it may come after.
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

    /// Up to 256 messages per receive. A receive is one statement whatever its size, so the bound
    /// is only there to cap what one receive holds in memory and how long it holds the write lock
    /// (a fraction of a millisecond for small messages); the consumer's in-flight limit is the
    /// bound that counts (100 by default).
    public var maxReceiveBatchSize: Int { 256 }

    /// Up to 256 receipts per delete (one transaction, in statements of 100).
    public var maxAcknowledgeBatchSize: Int { 256 }

    /// A delete costs a transaction, whatever its size: the consumer sends what is pending as
    /// soon as the previous delete has finished (a group commit), and the queue folds deletes into
    /// the transactions of concurrent enqueues.
    public var acknowledgeFlushPolicy: AcknowledgeFlushPolicy { .afterPreviousDelete }

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
        let messages = try await queue.receive(maxMessages: maxMessages, waitTime: waitTime)
        if messages.isEmpty { try Task.checkCancellation() }
        return messages
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
