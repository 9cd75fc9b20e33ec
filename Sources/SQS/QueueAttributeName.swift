/// The name of a queue attribute, read by GetQueueAttributes and set by CreateQueue.
public struct QueueAttributeName: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral {
    /// The name on the wire, e.g. `VisibilityTimeout`.
    public var rawValue: String

    /// Creates a name from its wire form.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Creates a name from a literal, for attributes without a static member.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// Every attribute (GetQueueAttributes only).
    public static let all: Self = "All"
    /// Approximate number of messages available to receive.
    public static let approximateNumberOfMessages: Self = "ApproximateNumberOfMessages"
    /// Approximate number of messages received but not yet deleted.
    public static let approximateNumberOfMessagesNotVisible: Self = "ApproximateNumberOfMessagesNotVisible"
    /// Approximate number of messages still delayed.
    public static let approximateNumberOfMessagesDelayed: Self = "ApproximateNumberOfMessagesDelayed"
    /// Seconds a received message stays hidden (0–43200, default 30).
    public static let visibilityTimeout: Self = "VisibilityTimeout"
    /// Seconds every new message is delayed (0–900).
    public static let delaySeconds: Self = "DelaySeconds"
    /// Seconds messages are kept (60–1209600).
    public static let messageRetentionPeriod: Self = "MessageRetentionPeriod"
    /// Largest message in bytes.
    public static let maximumMessageSize: Self = "MaximumMessageSize"
    /// Default long-poll wait for ReceiveMessage (0–20).
    public static let receiveMessageWaitTimeSeconds: Self = "ReceiveMessageWaitTimeSeconds"
    /// JSON `{"deadLetterTargetArn": "…", "maxReceiveCount": "5"}` naming the dead-letter queue.
    public static let redrivePolicy: Self = "RedrivePolicy"
    /// `"true"` for a FIFO queue; its name must end in `.fifo`.
    public static let fifoQueue: Self = "FifoQueue"
    /// `"true"` to deduplicate FIFO messages by a SHA-256 of the body.
    public static let contentBasedDeduplication: Self = "ContentBasedDeduplication"
    /// The queue's ARN (read-only).
    public static let queueArn: Self = "QueueArn"
    /// The queue's IAM policy document.
    public static let policy: Self = "Policy"
    /// `"true"` for SSE with SQS-owned keys.
    public static let sqsManagedSseEnabled: Self = "SqsManagedSseEnabled"
    /// The KMS key for SSE-KMS.
    public static let kmsMasterKeyID: Self = "KmsMasterKeyId"
}
