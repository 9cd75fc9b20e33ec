/// When a ``QueueConsumer`` sends the deletes it has collected: what a source's deletes cost
/// decides it (``MessageSource/acknowledgeFlushPolicy``).
public struct AcknowledgeFlushPolicy: Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        case fullBatchOrMaxWait
        case afterPreviousDelete
    }

    private let kind: Kind

    /// Waits for a full batch (``QueueConsumerConfiguration/deleteBatchSize``), or until the
    /// oldest pending receipt has waited ``QueueConsumerConfiguration/deleteMaxWait``, with up to
    /// ``QueueConsumerConfiguration/deleteConcurrency`` requests at once: for sources that charge
    /// per request and take few receipts per request (SQS: 10).
    public static let fullBatchOrMaxWait = AcknowledgeFlushPolicy(kind: .fullBatchOrMaxWait)

    /// A group commit: sends every pending receipt (up to ``MessageSource/maxAcknowledgeBatchSize``)
    /// as soon as the previous delete has finished, one delete at a time and without a timer, so
    /// the receipts that finish while a delete is being written go together in the next: for
    /// sources whose cost is per transaction, not per receipt (the embedded queue).
    public static let afterPreviousDelete = AcknowledgeFlushPolicy(kind: .afterPreviousDelete)

    /// Whether this is ``afterPreviousDelete``.
    var isGroupCommit: Bool { kind == .afterPreviousDelete }

    /// The policy's name.
    public var description: String {
        switch kind {
        case .fullBatchOrMaxWait: "full batch or max wait"
        case .afterPreviousDelete: "after previous delete"
        }
    }
}
