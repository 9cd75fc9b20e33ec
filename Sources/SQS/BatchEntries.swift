/// One message of a SendMessageBatch call; `id` must be unique within the batch.
public struct SendMessageBatchEntry: Sendable, Hashable, Encodable {
    /// The caller's ID for this entry, echoed in the result (up to 80 of `A-Za-z0-9_-`).
    public var id: String
    /// The message body.
    public var body: String
    /// Seconds to delay delivery (standard queues only).
    public var delaySeconds: Int?
    /// User-defined attributes.
    public var messageAttributes: [String: MessageAttributeValue]
    /// The FIFO message group (required for FIFO queues).
    public var messageGroupID: String?
    /// The FIFO deduplication ID (unless the queue deduplicates by content).
    public var messageDeduplicationID: String?

    /// Creates an entry.
    public init(
        id: String,
        body: String,
        delaySeconds: Int? = nil,
        messageAttributes: [String: MessageAttributeValue] = [:],
        messageGroupID: String? = nil,
        messageDeduplicationID: String? = nil
    ) {
        self.id = id
        self.body = body
        self.delaySeconds = delaySeconds
        self.messageAttributes = messageAttributes
        self.messageGroupID = messageGroupID
        self.messageDeduplicationID = messageDeduplicationID
    }

    private enum CodingKeys: String, CodingKey {
        case id = "Id"
        case body = "MessageBody"
        case delaySeconds = "DelaySeconds"
        case messageAttributes = "MessageAttributes"
        case messageGroupID = "MessageGroupId"
        case messageDeduplicationID = "MessageDeduplicationId"
    }

    /// Encodes the entry, leaving out empty attributes and unset options.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(body, forKey: .body)
        try container.encodeIfPresent(delaySeconds, forKey: .delaySeconds)
        if !messageAttributes.isEmpty { try container.encode(messageAttributes, forKey: .messageAttributes) }
        try container.encodeIfPresent(messageGroupID, forKey: .messageGroupID)
        try container.encodeIfPresent(messageDeduplicationID, forKey: .messageDeduplicationID)
    }
}

/// One message of a DeleteMessageBatch call.
public struct DeleteMessageBatchEntry: Sendable, Hashable, Encodable {
    /// The caller's ID for this entry, echoed in the result.
    public var id: String
    /// The receipt handle from the receive.
    public var receiptHandle: String

    /// Creates an entry.
    public init(id: String, receiptHandle: String) {
        self.id = id
        self.receiptHandle = receiptHandle
    }

    private enum CodingKeys: String, CodingKey {
        case id = "Id"
        case receiptHandle = "ReceiptHandle"
    }
}

/// One message of a ChangeMessageVisibilityBatch call.
public struct ChangeMessageVisibilityBatchEntry: Sendable, Hashable, Encodable {
    /// The caller's ID for this entry, echoed in the result.
    public var id: String
    /// The receipt handle from the receive.
    public var receiptHandle: String
    /// Seconds from now until the message becomes visible again (0–43200).
    public var visibilityTimeout: Int

    /// Creates an entry.
    public init(id: String, receiptHandle: String, visibilityTimeout: Int) {
        self.id = id
        self.receiptHandle = receiptHandle
        self.visibilityTimeout = visibilityTimeout
    }

    private enum CodingKeys: String, CodingKey {
        case id = "Id"
        case receiptHandle = "ReceiptHandle"
        case visibilityTimeout = "VisibilityTimeout"
    }
}
