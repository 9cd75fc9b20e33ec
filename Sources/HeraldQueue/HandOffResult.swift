/// What a consumer's handler did with a message.
public enum HandOffResult: Sendable, Hashable {
    /// The message was handed to the broadcast path: delete it from the queue.
    case handedOff
    /// The message was handed to the broadcast path in order, but may be deleted only once
    /// `settled` returns (its event is being written to durable storage first). The handler
    /// returns at once, so that the next message of its group follows without waiting for the
    /// write; the message counts as in flight until it is settled.
    case handedOffOnceSettled(HandOffSettlement)
    /// The message could not be handled now: deliver it again after a backoff.
    case retryLater
    /// The message can never be handled (bad JSON, unknown namespace…): send it to the dead-letter
    /// queue, or, when the queue has none, log and count it, then delete it.
    case reject(reason: String)
}

/// What a message handed off with ``HandOffResult/handedOffOnceSettled(_:)`` waits for before
/// it is deleted.
public final class HandOffSettlement: Sendable, Hashable {
    private let settled: @Sendable () async -> Void

    /// `settled` returns once the message may be deleted.
    public init(_ settled: @escaping @Sendable () async -> Void) { self.settled = settled }

    /// Returns once the message may be deleted.
    public func wait() async { await settled() }

    public static func == (lhs: HandOffSettlement, rhs: HandOffSettlement) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
