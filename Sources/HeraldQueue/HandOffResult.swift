/// What a consumer's handler did with a message.
public enum HandOffResult: Sendable, Hashable {
    /// The message was handed to the broadcast path: delete it from the queue.
    case handedOff
    /// The message was handed to the broadcast path in order, but may be deleted only once
    /// `settled` returns `true` (its event is being written to durable storage, or published to
    /// a cluster, first); `false` leaves it in the queue, to come again after a backoff. The
    /// handler returns at once, so that the next message of its group follows without waiting
    /// for the write; the message counts as in flight until it is settled.
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
    private let settled: @Sendable () async -> Bool

    /// `settled` returns once the hand-off is complete: `true` when the message may be deleted,
    /// `false` when it must come again.
    public init(_ settled: @escaping @Sendable () async -> Bool) { self.settled = settled }

    /// Returns once the hand-off is complete: whether the message may be deleted.
    public func wait() async -> Bool { await settled() }

    public static func == (lhs: HandOffSettlement, rhs: HandOffSettlement) -> Bool { lhs === rhs }
    public func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(self)) }
}
