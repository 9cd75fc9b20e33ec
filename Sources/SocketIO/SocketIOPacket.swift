import NIOCore

/// The kind of a Socket.IO v5 packet.
public enum SocketIOPacketType: UInt8, Sendable, CaseIterable {
    /// Connects to a namespace (client) or confirms the connection (server).
    case connect = 0
    /// Leaves a namespace.
    case disconnect = 1
    /// An event with JSON arguments.
    case event = 2
    /// The answer to an event that asked for one.
    case ack = 3
    /// The server refused a namespace connection.
    case connectError = 4
    /// An event whose arguments include binary attachments.
    case binaryEvent = 5
    /// An acknowledgement whose arguments include binary attachments.
    case binaryAck = 6
}

/// One Socket.IO packet, with its binary attachments already put back in place.
public struct SocketIOPacket: Sendable, Hashable {
    /// The packet's kind.
    public var type: SocketIOPacketType
    /// The namespace, `/` by default.
    public var namespace: String
    /// The acknowledgement id, for events that want an answer and for acks.
    public var id: Int?
    /// The payload: the argument array for events and acks, an object for connect packets.
    public var data: SocketIOValue?

    /// Creates a packet.
    public init(type: SocketIOPacketType, namespace: String = "/", id: Int? = nil, data: SocketIOValue? = nil) {
        self.type = type
        self.namespace = namespace
        self.id = id
        self.data = data
    }
}

/// Why a Socket.IO packet could not be decoded.
public struct SocketIOCodecError: Error, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        case empty
        case unknownType(UInt8)
        case invalidAttachmentCount
        case tooManyAttachments(Int, limit: Int)
        case invalidPayload(String)
        case invalidPlaceholder
        case invalidID
        case unexpectedBinary
        case unexpectedText
        case textWithMessagePack
    }

    private let kind: Kind

    /// An empty packet.
    public static let empty = Self(kind: .empty)
    /// The first character is not a packet type (`0`…`6`).
    public static func unknownType(_ byte: UInt8) -> Self { Self(kind: .unknownType(byte)) }
    /// A binary packet without a valid `N-` attachment count.
    public static let invalidAttachmentCount = Self(kind: .invalidAttachmentCount)
    /// A binary packet announces more attachments than the decoder allows.
    public static func tooManyAttachments(_ count: Int, limit: Int) -> Self { Self(kind: .tooManyAttachments(count, limit: limit)) }
    /// The JSON payload is malformed or of the wrong shape for the packet type.
    public static func invalidPayload(_ detail: String) -> Self { Self(kind: .invalidPayload(detail)) }
    /// A placeholder refers to an attachment that does not exist.
    public static let invalidPlaceholder = Self(kind: .invalidPlaceholder)
    /// An acknowledgement id larger than JavaScript's safe integers.
    public static let invalidID = Self(kind: .invalidID)
    /// Binary data arrived while no binary packet was waiting for attachments.
    public static let unexpectedBinary = Self(kind: .unexpectedBinary)
    /// Text arrived while a binary packet was still waiting for attachments.
    public static let unexpectedText = Self(kind: .unexpectedText)
    /// A text message arrived at a server whose parser is msgpack.
    public static let textWithMessagePack = Self(kind: .textWithMessagePack)

    public var description: String {
        switch kind {
        case .empty: "empty Socket.IO packet"
        case .unknownType(let byte): "unknown Socket.IO packet type 0x\(String(byte, radix: 16))"
        case .invalidAttachmentCount: "binary packet without a valid attachment count"
        case .tooManyAttachments(let count, let limit): "binary packet announces \(count) attachments (at most \(limit) allowed)"
        case .invalidPayload(let detail): "invalid payload: \(detail)"
        case .invalidPlaceholder: "placeholder refers to a missing attachment"
        case .invalidID: "acknowledgement id out of range"
        case .unexpectedBinary: "binary data received while no packet was waiting for attachments"
        case .unexpectedText: "text received while a binary packet was waiting for attachments"
        case .textWithMessagePack: "text received, but this server's parser is msgpack: every packet is one binary message"
        }
    }
}
