/// Where a source's messages go after too many receives: its redrive policy.
public struct DeadLetterPolicy: Sendable, Hashable, CustomStringConvertible {
    /// The dead-letter target, e.g. the DLQ's ARN for SQS or the dead-letter table of the embedded queue.
    public var target: String
    /// Receives after which the message is moved to the target on its next receive.
    public var maxReceiveCount: Int

    /// Creates a policy.
    public init(target: String, maxReceiveCount: Int) {
        self.target = target
        self.maxReceiveCount = maxReceiveCount
    }

    /// `target after N receives`.
    public var description: String { "\(target) after \(maxReceiveCount) receives" }
}
