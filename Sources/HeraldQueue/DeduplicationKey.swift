/// What identifies duplicates of one message for the consumer's duplicate suppression.
public enum DeduplicationKey: Sendable, Hashable {
    /// The queue's message ID: suppresses redeliveries of the same message.
    case messageID
    /// A message attribute set by the publisher (e.g. `herald-id`): also suppresses the same event
    /// published twice. Messages without the attribute fall back to their message ID.
    case attribute(String)

    /// The key of `message`.
    func key(of message: QueueMessage) -> String {
        switch self {
        case .messageID:
            return "id:" + message.id
        case .attribute(let name):
            if let value = message.messageAttributes[name] { return "attr:" + value }
            return "id:" + message.id
        }
    }
}
