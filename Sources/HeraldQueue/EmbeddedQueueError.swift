/// An error of the embedded queue.
public enum EmbeddedQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The receipt matches no message: it was deleted, or received again since (with a new receipt).
    case receiptNotFound(messageID: String)

    /// A sentence for logs.
    public var description: String {
        switch self {
        case .receiptNotFound(let id):
            "no message \(id) with this receipt: it was deleted or received again since"
        }
    }
}
