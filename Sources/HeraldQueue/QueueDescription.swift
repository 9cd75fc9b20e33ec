/// What a consumer needs to know about a queue before consuming it.
public struct QueueDescription: Sendable, Hashable {
    /// The redrive policy, or `nil` when the queue has no dead-letter queue.
    public var deadLetterPolicy: DeadLetterPolicy?
    /// How long a received message stays invisible unless its visibility is changed.
    public var visibilityTimeout: Duration
    /// Whether messages of one group must be handled in order (SQS FIFO queues).
    public var isFIFO: Bool

    /// Creates a description.
    public init(deadLetterPolicy: DeadLetterPolicy?, visibilityTimeout: Duration, isFIFO: Bool) {
        self.deadLetterPolicy = deadLetterPolicy
        self.visibilityTimeout = visibilityTimeout
        self.isFIFO = isFIFO
    }
}
