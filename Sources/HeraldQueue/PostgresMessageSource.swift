/// A ``MessageSource`` over a ``PostgresOutbox``: rows of one key are handled one after the
/// other, in the order they were inserted (the key is the message's group), rows without a key
/// concurrently. The dead-letter policy is the outbox's ``PostgresOutbox/Configuration/maxReceiveCount``.
public struct PostgresMessageSource: MessageSource {
    public let outbox: PostgresOutbox

    public init(outbox: PostgresOutbox) { self.outbox = outbox }

    /// The table's name.
    public var name: String { outbox.configuration.tableName }

    /// Up to 100 rows per receive: one transaction whatever its size.
    public var maxReceiveBatchSize: Int { 100 }

    /// Up to 256 receipts per delete: one statement.
    public var maxAcknowledgeBatchSize: Int { 256 }

    /// A delete costs a round trip whatever its size: what is pending goes as soon as the
    /// previous delete has finished.
    public var acknowledgeFlushPolicy: AcknowledgeFlushPolicy { .afterPreviousDelete }

    public func describe() async throws -> QueueDescription {
        QueueDescription(
            deadLetterPolicy: outbox.configuration.maxReceiveCount.map {
                DeadLetterPolicy(target: "\(name)_dead_letters", maxReceiveCount: $0)
            },
            visibilityTimeout: outbox.configuration.visibilityTimeout,
            isFIFO: true
        )
    }

    public func receive(maxMessages: Int, waitTime: Duration) async throws -> [QueueMessage] {
        try await outbox.receive(maxMessages: maxMessages, waitTime: waitTime)
    }

    /// Deletes by receipt; a receipt that matches nothing is reported as not retryable.
    public func acknowledge(_ receipts: [QueueReceipt]) async throws -> [AcknowledgeFailure] {
        try await outbox.delete(receipts).map {
            AcknowledgeFailure(
                receipt: $0, code: "ReceiptNotFound", message: "row \($0.messageID) was deleted or received again", isRetryable: false)
        }
    }

    public func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws {
        try await outbox.changeVisibility(of: receipt, to: timeout)
    }
}
