/// The opaque token that identifies one reception of a message, for deleting it or changing its visibility.
///
/// SQS issues a new receipt handle on every receive; the embedded queue does the same, so a
/// receipt from an earlier reception cannot delete or hide a message that was received again since.
public struct QueueReceipt: Sendable, Hashable, CustomStringConvertible {
    /// The ID of the message this receipt belongs to.
    public var messageID: String
    /// The source's token for this reception (an SQS receipt handle, or the embedded queue's token).
    public var handle: String

    /// Creates a receipt.
    public init(messageID: String, handle: String) {
        self.messageID = messageID
        self.handle = handle
    }

    /// The message ID; the handle is left out because it is long and meaningless to a reader.
    public var description: String { messageID }
}
