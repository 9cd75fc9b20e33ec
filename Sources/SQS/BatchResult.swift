/// The outcome of a batch call: the entries that succeeded and those that failed.
///
/// A batch call succeeds as a whole even when every entry fails; always check ``failed``.
public struct BatchResult<Success: Sendable & Hashable & Decodable>: Sendable, Hashable, Decodable {
    /// The entries that succeeded.
    public var successful: [Success]
    /// The entries that failed, with AWS's reason.
    public var failed: [BatchResultError]

    /// Creates a result.
    public init(successful: [Success], failed: [BatchResultError]) {
        self.successful = successful
        self.failed = failed
    }

    private enum CodingKeys: String, CodingKey {
        case successful = "Successful"
        case failed = "Failed"
    }

    /// Decodes a result; either list may be absent on the wire.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        successful = try container.decodeIfPresent([Success].self, forKey: .successful) ?? []
        failed = try container.decodeIfPresent([BatchResultError].self, forKey: .failed) ?? []
    }
}

/// A failed batch entry: its ID, AWS's error code and message, and whose fault it was.
public struct BatchResultError: Sendable, Hashable, Decodable, CustomStringConvertible {
    /// The entry's ID, as given in the request.
    public var id: String
    /// The error code, e.g. `ReceiptHandleIsInvalid`.
    public var code: String
    /// AWS's explanation.
    public var message: String?
    /// Whether the request was at fault (retrying it unchanged will fail again).
    public var senderFault: Bool

    /// Creates an entry.
    public init(id: String, code: String, message: String? = nil, senderFault: Bool) {
        self.id = id
        self.code = code
        self.message = message
        self.senderFault = senderFault
    }

    /// `id: code (sender fault): message`.
    public var description: String {
        "\(id): \(code) (\(senderFault ? "sender" : "receiver") fault)" + (message.map { ": \($0)" } ?? "")
    }

    private enum CodingKeys: String, CodingKey {
        case id = "Id"
        case code = "Code"
        case message = "Message"
        case senderFault = "SenderFault"
    }
}

/// A successful entry of DeleteMessageBatch or ChangeMessageVisibilityBatch.
public struct BatchResultEntry: Sendable, Hashable, Decodable {
    /// The entry's ID, as given in the request.
    public var id: String

    /// Creates an entry.
    public init(id: String) { self.id = id }

    private enum CodingKeys: String, CodingKey {
        case id = "Id"
    }
}

/// The result of SendMessage, or one successful entry of SendMessageBatch.
public struct SendMessageResult: Sendable, Hashable, Decodable {
    /// The entry's ID (batch results only).
    public var id: String?
    /// The ID SQS assigned to the message.
    public var messageID: String
    /// The MD5 of the body, as computed by SQS.
    public var md5OfMessageBody: String?
    /// The MD5 of the message attributes, as computed by SQS.
    public var md5OfMessageAttributes: String?
    /// The FIFO sequence number.
    public var sequenceNumber: String?

    /// Creates a result.
    public init(
        id: String? = nil,
        messageID: String,
        md5OfMessageBody: String? = nil,
        md5OfMessageAttributes: String? = nil,
        sequenceNumber: String? = nil
    ) {
        self.id = id
        self.messageID = messageID
        self.md5OfMessageBody = md5OfMessageBody
        self.md5OfMessageAttributes = md5OfMessageAttributes
        self.sequenceNumber = sequenceNumber
    }

    private enum CodingKeys: String, CodingKey {
        case id = "Id"
        case messageID = "MessageId"
        case md5OfMessageBody = "MD5OfMessageBody"
        case md5OfMessageAttributes = "MD5OfMessageAttributes"
        case sequenceNumber = "SequenceNumber"
    }
}
