/// What a consumer's handler did with a message.
public enum HandOffResult: Sendable, Hashable {
    /// The message was handed to the broadcast path: delete it from the queue.
    case handedOff
    /// The message could not be handled now: deliver it again after a backoff.
    case retryLater
    /// The message can never be handled (bad JSON, unknown namespace…): send it to the dead-letter
    /// queue, or, when the queue has none, log and count it, then delete it.
    case reject(reason: String)
}
