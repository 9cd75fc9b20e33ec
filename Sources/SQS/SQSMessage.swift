public import Foundation

/// A message returned by ReceiveMessage, with the attributes that were asked for.
public struct SQSMessage: Sendable, Hashable, Decodable {
    /// The ID SQS assigned when the message was sent.
    public var messageID: String
    /// The handle for deleting the message or changing its visibility; new on every receive.
    public var receiptHandle: String
    /// The message body.
    public var body: String
    /// The MD5 of the body, as computed by SQS.
    public var md5OfBody: String?
    /// The system attributes that were asked for, by name, e.g. `ApproximateReceiveCount`.
    public var attributes: [String: String]
    /// The user attributes that were asked for, by name.
    public var messageAttributes: [String: MessageAttributeValue]

    /// Creates a message, e.g. for tests of code that consumes messages.
    public init(
        messageID: String,
        receiptHandle: String,
        body: String,
        md5OfBody: String? = nil,
        attributes: [String: String] = [:],
        messageAttributes: [String: MessageAttributeValue] = [:]
    ) {
        self.messageID = messageID
        self.receiptHandle = receiptHandle
        self.body = body
        self.md5OfBody = md5OfBody
        self.attributes = attributes
        self.messageAttributes = messageAttributes
    }

    /// How many times the message has been received, when `ApproximateReceiveCount` was asked for.
    public var approximateReceiveCount: Int? {
        attributes[MessageSystemAttributeName.approximateReceiveCount.rawValue].flatMap { Int($0) }
    }

    /// When the message was sent, when `SentTimestamp` was asked for.
    public var sentTimestamp: Date? {
        attributes[MessageSystemAttributeName.sentTimestamp.rawValue]
            .flatMap { Double($0) }
            .map { Date(timeIntervalSince1970: $0 / 1000) }
    }

    /// The FIFO message group, when `MessageGroupId` was asked for.
    public var messageGroupID: String? {
        attributes[MessageSystemAttributeName.messageGroupID.rawValue]
    }

    private enum CodingKeys: String, CodingKey {
        case messageID = "MessageId"
        case receiptHandle = "ReceiptHandle"
        case body = "Body"
        case md5OfBody = "MD5OfBody"
        case attributes = "Attributes"
        case messageAttributes = "MessageAttributes"
    }

    /// Decodes a message from the JSON protocol, where both attribute maps may be absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        messageID = try container.decode(String.self, forKey: .messageID)
        receiptHandle = try container.decode(String.self, forKey: .receiptHandle)
        body = try container.decodeIfPresent(String.self, forKey: .body) ?? ""
        md5OfBody = try container.decodeIfPresent(String.self, forKey: .md5OfBody)
        attributes = try container.decodeIfPresent([String: String].self, forKey: .attributes) ?? [:]
        messageAttributes =
            try container.decodeIfPresent([String: MessageAttributeValue].self, forKey: .messageAttributes) ?? [:]
    }
}

/// The name of a system attribute to receive with a message, e.g. ``approximateReceiveCount``.
public struct MessageSystemAttributeName: RawRepresentable, Sendable, Hashable, ExpressibleByStringLiteral {
    /// The name on the wire, e.g. `ApproximateReceiveCount`.
    public var rawValue: String

    /// Creates a name from its wire form.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Creates a name from a literal, for attributes without a static member.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// Every system attribute.
    public static let all: Self = "All"
    /// How many times the message has been received.
    public static let approximateReceiveCount: Self = "ApproximateReceiveCount"
    /// When the message was first received, in epoch milliseconds.
    public static let approximateFirstReceiveTimestamp: Self = "ApproximateFirstReceiveTimestamp"
    /// When the message was sent, in epoch milliseconds.
    public static let sentTimestamp: Self = "SentTimestamp"
    /// The FIFO message group.
    public static let messageGroupID: Self = "MessageGroupId"
    /// The FIFO deduplication ID.
    public static let messageDeduplicationID: Self = "MessageDeduplicationId"
    /// The FIFO sequence number.
    public static let sequenceNumber: Self = "SequenceNumber"
    /// The IAM principal that sent the message.
    public static let senderID: Self = "SenderId"
    /// The X-Ray trace header.
    public static let awsTraceHeader: Self = "AWSTraceHeader"
}
