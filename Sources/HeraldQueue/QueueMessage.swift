public import Foundation
public import NIOCore

/// A message received from a ``MessageSource``, as handed to the consumer's handler.
///
/// The body is kept as bytes: nothing in this module decodes it.
public struct QueueMessage: Sendable {
    /// The ID the queue assigned when the message was sent; stable across receives.
    public var id: String
    /// The body bytes, as sent.
    public var body: ByteBuffer
    /// System attributes by name, e.g. `ApproximateReceiveCount` or `SentTimestamp` for SQS.
    public var attributes: [String: String]
    /// User (message) attributes by name; SQS `Binary` attributes are given in base64.
    public var messageAttributes: [String: String]
    /// How many times the message has been received, this reception included (1 the first time).
    public var receiveCount: Int
    /// When the message was sent, when the source knows.
    public var sentTimestamp: Date?
    /// The FIFO message group, for FIFO queues.
    public var groupID: String?
    /// The token for deleting this reception or changing its visibility.
    public var receipt: QueueReceipt

    /// Creates a message.
    public init(
        id: String,
        body: ByteBuffer,
        attributes: [String: String] = [:],
        messageAttributes: [String: String] = [:],
        receiveCount: Int = 1,
        sentTimestamp: Date? = nil,
        groupID: String? = nil,
        receipt: QueueReceipt
    ) {
        self.id = id
        self.body = body
        self.attributes = attributes
        self.messageAttributes = messageAttributes
        self.receiveCount = receiveCount
        self.sentTimestamp = sentTimestamp
        self.groupID = groupID
        self.receipt = receipt
    }
}
