public import NIOCore

/// The kinds of messages the nodes of a Socket.IO cluster exchange, with the numbers of
/// socket.io-adapter's `ClusterAdapter` (shared by the PostgreSQL, Redis Streams, MongoDB and
/// AWS SQS adapters).
public enum SocketIOClusterMessageType: Int, Sendable, CaseIterable {
    /// A node started; every peer answers with a heartbeat.
    case initialHeartbeat = 1
    /// A node is alive.
    case heartbeat
    /// A packet for the selected sockets of every node (`requestId` when acks are expected).
    case broadcast
    /// The selected sockets join rooms.
    case socketsJoin
    /// The selected sockets leave rooms.
    case socketsLeave
    /// The selected sockets are disconnected.
    case disconnectSockets
    /// A request for the selected sockets.
    case fetchSockets
    /// A node's answer to ``fetchSockets``.
    case fetchSocketsResponse
    /// An event for the other servers (`requestId` when answers are expected).
    case serverSideEmit
    /// A server's answer to ``serverSideEmit``.
    case serverSideEmitResponse
    /// How many of a node's clients a broadcast with acks reached.
    case broadcastClientCount
    /// One client's answer to a broadcast with acks.
    case broadcastAck
    /// A node leaves the cluster at once.
    case adapterClose

    /// The answers to requests: sent to the requester, read by the requester only.
    public var isResponse: Bool {
        switch self {
        case .fetchSocketsResponse, .serverSideEmitResponse, .broadcastClientCount, .broadcastAck: true
        default: false
        }
    }

    /// The kinds whose data may carry binary values (then sent as an attachment, in MessagePack).
    public var mayCarryBinary: Bool {
        switch self {
        case .broadcast, .broadcastAck, .serverSideEmit, .serverSideEmitResponse: true
        default: false
        }
    }
}

/// One message between the nodes of a cluster: `{type, data, uid, nsp}` in JSON (the reference's
/// key order), or the same object in MessagePack when it carries binary data or is too long for
/// a notification.
public struct SocketIOClusterMessage: Sendable, Hashable {
    /// The sending node (`"emitter"` for an external publisher that is no node).
    public var uid: String
    /// The namespace.
    public var namespace: String
    public var type: SocketIOClusterMessageType
    /// The kind's data (`nil` for heartbeats and ADAPTER_CLOSE).
    public var data: SocketIOValue?

    /// The uid of external publishers (`@socket.io/postgres-emitter` and its siblings).
    public static let emitterUID = "emitter"

    public init(uid: String, namespace: String, type: SocketIOClusterMessageType, data: SocketIOValue? = nil) {
        self.uid = uid
        self.namespace = namespace
        self.type = type
        self.data = data
    }

    /// The message as the object both encodings write.
    public var object: SocketIOObject {
        var object: SocketIOObject = ["type": .number(Double(type.rawValue))]
        if let data { object["data"] = data }
        object["uid"] = .string(uid)
        object["nsp"] = .string(namespace)
        return object
    }

    /// The message read from its object; throws a ``SocketIOClusterMessageError`` naming what is wrong.
    public init(object: SocketIOObject) throws(SocketIOClusterMessageError) {
        guard let number = object["type"]?.intValue else { throw SocketIOClusterMessageError("no numeric 'type'") }
        guard let type = SocketIOClusterMessageType(rawValue: number) else { throw SocketIOClusterMessageError("unknown type \(number)") }
        guard let uid = object["uid"]?.stringValue else { throw SocketIOClusterMessageError("no string 'uid'") }
        guard let namespace = object["nsp"]?.stringValue else { throw SocketIOClusterMessageError("no string 'nsp'") }
        self.init(uid: uid, namespace: namespace, type: type, data: object["data"])
    }

    /// The JSON text of the message. Only for messages without binary data (see ``needsAttachment(threshold:)``).
    public var json: ByteBuffer {
        var buffer = ByteBuffer()
        JSON.write(.object(object), into: &buffer, attachments: nil)
        return buffer
    }

    /// The MessagePack bytes of the message.
    public var messagePack: ByteBuffer { MessagePack.encode(.object(object)) }

    /// Whether the message must travel as an attachment: it carries binary data, or its JSON is
    /// `threshold` bytes or more (PostgreSQL refuses notifications of 8000 bytes and more).
    public func needsAttachment(threshold: Int = 8000) -> Bool {
        if type.mayCarryBinary, data?.containsBinary == true { return true }
        return json.readableBytes >= threshold
    }
}

/// Why bytes are not a cluster message.
public struct SocketIOClusterMessageError: Error, Hashable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = "not a cluster message: " + description }
}

/// A notification as it arrives on a cluster's channel: a whole message, or the header of one
/// kept as an attachment (`{uid, type, attachmentId}`, with the id as a string and no namespace).
public enum SocketIOClusterNotification: Sendable, Hashable {
    case message(SocketIOClusterMessage)
    case attachment(uid: String, type: SocketIOClusterMessageType, id: String)

    /// Reads a notification's JSON payload.
    public init(json: ByteBuffer) throws(SocketIOClusterMessageError) {
        let value: SocketIOValue
        do {
            value = try JSON.parse(json.readableBytesView)
        } catch {
            throw SocketIOClusterMessageError(error.description)
        }
        guard let object = value.objectValue else { throw SocketIOClusterMessageError("not a JSON object") }
        if let id = object["attachmentId"] {
            guard let uid = object["uid"]?.stringValue else { throw SocketIOClusterMessageError("no string 'uid'") }
            guard let number = object["type"]?.intValue, let type = SocketIOClusterMessageType(rawValue: number) else {
                throw SocketIOClusterMessageError("no known 'type'")
            }
            // The reference sends the id as a string; a number is read too.
            guard let text = id.stringValue ?? id.intValue.map(String.init) else {
                throw SocketIOClusterMessageError("an 'attachmentId' that is no id")
            }
            self = .attachment(uid: uid, type: type, id: text)
        } else {
            self = .message(try SocketIOClusterMessage(object: object))
        }
    }

    /// The header notified for a message kept as attachment `id`.
    public static func attachmentHeader(of message: SocketIOClusterMessage, id: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        let header: SocketIOObject = ["uid": .string(message.uid), "type": .number(Double(message.type.rawValue)), "attachmentId": .string(id)]
        JSON.write(.object(header), into: &buffer, attachments: nil)
        return buffer
    }
}

extension SocketIOClusterMessage {
    /// A message kept as an attachment: its MessagePack bytes.
    public init(messagePack: ByteBuffer) throws(SocketIOClusterMessageError) {
        let value: SocketIOValue
        do {
            value = try MessagePack.decode(messagePack)
        } catch {
            throw SocketIOClusterMessageError(error.description)
        }
        guard let object = value.objectValue else { throw SocketIOClusterMessageError("not a MessagePack map") }
        try self.init(object: object)
    }
}
