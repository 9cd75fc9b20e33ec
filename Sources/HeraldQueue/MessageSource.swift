/// A queue that a ``QueueConsumer`` consumes: SQS (``SQSMessageSource``) or the embedded queue
/// (``EmbeddedMessageSource``).
///
/// Semantics are SQS's: a received message stays invisible for the visibility timeout, is
/// delivered again if it is not deleted by then, and counts its receives.
public protocol MessageSource: Sendable {
    /// A short name for logs and the `queue` metric dimension, e.g. the queue name.
    var name: String { get }

    /// The most messages one ``receive(maxMessages:waitTime:)`` call may ask for (10 for SQS).
    var maxReceiveBatchSize: Int { get }

    /// The most receipts one ``acknowledge(_:)`` call takes (10 for SQS).
    var maxAcknowledgeBatchSize: Int { get }

    /// When the consumer sends the deletes it has collected.
    var acknowledgeFlushPolicy: AcknowledgeFlushPolicy { get }

    /// Reads what the consumer must know before it starts: the dead-letter policy, the visibility
    /// timeout and whether the queue is FIFO.
    func describe() async throws -> QueueDescription

    /// Receives up to `maxMessages` messages, waiting up to `waitTime` for the first one (long poll).
    ///
    /// Returns an empty array when the wait ended with none. Cancelling the calling task ends the
    /// wait promptly (it then throws).
    func receive(maxMessages: Int, waitTime: Duration) async throws -> [QueueMessage]

    /// Deletes received messages (at most ``maxAcknowledgeBatchSize``), returning the ones that failed.
    ///
    /// Throws when the request as a whole failed; then none of them is known to be deleted.
    func acknowledge(_ receipts: [QueueReceipt]) async throws -> [AcknowledgeFailure]

    /// Makes a received message invisible for `timeout` from now (`.zero` makes it visible at once).
    func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws
}

extension MessageSource {
    /// 10 messages per receive, as SQS.
    public var maxReceiveBatchSize: Int { 10 }

    /// Full batches, or after ``QueueConsumerConfiguration/deleteMaxWait``.
    public var acknowledgeFlushPolicy: AcknowledgeFlushPolicy { .fullBatchOrMaxWait }

    /// Keeps a message that is still being worked on invisible for `timeout` more (a visibility heartbeat).
    public func extendVisibility(of receipt: QueueReceipt, by timeout: Duration) async throws {
        try await changeVisibility(of: receipt, to: timeout)
    }

    /// Gives a message back to the queue to be delivered again after `delay`.
    public func retryLater(_ receipt: QueueReceipt, after delay: Duration) async throws {
        try await changeVisibility(of: receipt, to: delay)
    }
}
