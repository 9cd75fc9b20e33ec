/// One message that a ``MessageSource/acknowledge(_:)`` call could not delete.
public struct AcknowledgeFailure: Sendable, Hashable, CustomStringConvertible {
    /// The receipt that was not deleted.
    public var receipt: QueueReceipt
    /// The source's error code, e.g. `ReceiptHandleIsInvalid`.
    public var code: String
    /// The source's explanation.
    public var message: String?
    /// Whether retrying the same delete later may succeed (false when the request itself was at fault).
    public var isRetryable: Bool

    /// Creates a failure.
    public init(receipt: QueueReceipt, code: String, message: String? = nil, isRetryable: Bool) {
        self.receipt = receipt
        self.code = code
        self.message = message
        self.isRetryable = isRetryable
    }

    /// `id: code: message`.
    public var description: String {
        "\(receipt.messageID): \(code)" + (message.map { ": \($0)" } ?? "")
    }
}
