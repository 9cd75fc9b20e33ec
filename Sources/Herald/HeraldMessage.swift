import Foundation
public import NIOCore
import SocketIO

/// One message to push to clients: an event, its arguments as raw JSON, and where it goes.
///
/// Every source produces it the same way: the JSON envelope
/// `{"event": "item_added", "data": <json>}` (or `"args": [<json>, …]`) with optional
/// `"namespace"`, `"to"`, `"except"`, `"volatile"` and `"id"`; or a raw JSON body routed by the
/// queue message's attributes (`herald-event`, `herald-namespace`, `herald-to`, `herald-except`)
/// or by a configured default event. The arguments are kept as the bytes they arrived as.
public struct HeraldMessage: Sendable {
    /// The Socket.IO event name.
    public var event: String
    /// The event's arguments: the bytes of a JSON array, spliced into the packet unparsed.
    public var arguments: ByteBuffer
    /// The namespace, `/` by default.
    public var namespace: String
    /// Rooms to reach; every client of the namespace when empty.
    public var rooms: [String]
    /// Rooms whose clients are left out.
    public var exceptRooms: [String]
    /// Whether clients that are not ready may miss the message.
    public var isVolatile: Bool
    /// The producer's idempotency key, used to drop duplicates.
    public var id: String?

    /// Creates a message.
    public init(
        event: String,
        arguments: ByteBuffer,
        namespace: String = "/",
        rooms: [String] = [],
        exceptRooms: [String] = [],
        isVolatile: Bool = false,
        id: String? = nil
    ) {
        self.event = event
        self.arguments = arguments
        self.namespace = namespace
        self.rooms = rooms
        self.exceptRooms = exceptRooms
        self.isVolatile = isVolatile
        self.id = id
    }
}

/// Why a body could not become a ``HeraldMessage``; the text says what to fix.
public struct HeraldMessageError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong with the message.
    public let description: String

    init(_ description: String) { self.description = description }
}

extension HeraldMessage {
    /// The attribute naming the event of a raw body.
    public static let eventAttribute = "herald-event"
    /// The attribute naming the namespace of a raw body.
    public static let namespaceAttribute = "herald-namespace"
    /// The attribute listing the rooms of a raw body (comma-separated).
    public static let roomsAttribute = "herald-to"
    /// The attribute listing the rooms to leave out for a raw body (comma-separated).
    public static let exceptAttribute = "herald-except"
    /// The attribute carrying a raw body's idempotency key.
    public static let idAttribute = "herald-id"

    /// Decodes a queue message or a published body.
    ///
    /// With a `herald-event` attribute the body is the event's data, as is. Otherwise a body that
    /// is an envelope (an object with a string `"event"`) is read as one; anything else is the
    /// data of `defaultEvent`, when one is configured.
    public static func decode(
        body: ByteBuffer,
        attributes: [String: String] = [:],
        defaultEvent: String? = nil
    ) throws(HeraldMessageError) -> HeraldMessage {
        if let event = attributes[eventAttribute] {
            return try raw(body: body, event: event, attributes: attributes)
        }
        if let members = try? RawJSON.members(of: body), let eventBytes = members.first(where: { $0.key == "event" })?.value,
            case .string = try? SocketIOValue(json: eventBytes)
        {
            return try envelope(members)
        }
        if let defaultEvent {
            return try raw(body: body, event: defaultEvent, attributes: attributes)
        }
        do {
            try RawJSON.validate(body)
        } catch {
            throw HeraldMessageError("the body is not JSON (\(error)); send an envelope {\"event\": ..., \"data\": ...}")
        }
        throw HeraldMessageError(
            "the body is not an envelope (no string \"event\" member) and names no event: send {\"event\": ..., \"data\": ...}, set the herald-event attribute, or configure a default event"
        )
    }

    /// Decodes a JSON array of envelopes (the batch publish body).
    public static func decodeBatch(body: ByteBuffer) throws(HeraldMessageError) -> [HeraldMessage] {
        let items: [ByteBuffer]
        do {
            items = try RawJSON.elements(of: body)
        } catch {
            throw HeraldMessageError("a batch must be a JSON array of envelopes: \(error)")
        }
        var messages: [HeraldMessage] = []
        messages.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            do {
                messages.append(try decode(body: item))
            } catch {
                throw HeraldMessageError("item \(index): \(error.description)")
            }
        }
        return messages
    }

    private static func raw(body: ByteBuffer, event: String, attributes: [String: String]) throws(HeraldMessageError) -> HeraldMessage {
        do {
            try RawJSON.validate(body)
        } catch {
            throw HeraldMessageError("the body of event '\(event)' is not JSON: \(error)")
        }
        var message = HeraldMessage(event: event, arguments: wrapInArray(body))
        if let namespace = attributes[namespaceAttribute] { message.namespace = namespace }
        message.rooms = list(attributes[roomsAttribute])
        message.exceptRooms = list(attributes[exceptAttribute])
        message.id = attributes[idAttribute]
        try message.validate()
        return message
    }

    private static func envelope(_ members: [(key: String, value: ByteBuffer)]) throws(HeraldMessageError) -> HeraldMessage {
        var message = HeraldMessage(event: "", arguments: ByteBuffer(string: "[]"))
        var hasData = false
        for (key, value) in members {
            switch key {
            case "event":
                message.event = try string(value, key)
            case "data":
                guard !hasData else { throw HeraldMessageError("an envelope has either \"data\" or \"args\", not both") }
                message.arguments = wrapInArray(value)
                hasData = true
            case "args":
                guard !hasData else { throw HeraldMessageError("an envelope has either \"data\" or \"args\", not both") }
                guard RawJSON.isArray(value) else { throw HeraldMessageError("\"args\" must be an array") }
                message.arguments = value
                hasData = true
            case "namespace":
                message.namespace = try string(value, key)
            case "to":
                message.rooms = try rooms(value, key)
            case "except":
                message.exceptRooms = try rooms(value, key)
            case "volatile":
                guard case .bool(let flag) = try? SocketIOValue(json: value) else { throw HeraldMessageError("\"volatile\" must be true or false") }
                message.isVolatile = flag
            case "id":
                message.id = try string(value, key)
            default:
                throw HeraldMessageError("unknown envelope member \"\(key)\" (known: event, data, args, namespace, to, except, volatile, id)")
            }
        }
        try message.validate()
        return message
    }

    private func validate() throws(HeraldMessageError) {
        guard !event.isEmpty else { throw HeraldMessageError("the event name is empty") }
        guard !["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"].contains(event) else {
            throw HeraldMessageError("'\(event)' is a reserved Socket.IO event name")
        }
        guard namespace.hasPrefix("/") else { throw HeraldMessageError("the namespace '\(namespace)' must start with '/'") }
    }

    private static func string(_ value: ByteBuffer, _ key: String) throws(HeraldMessageError) -> String {
        guard case .string(let string) = try? SocketIOValue(json: value) else { throw HeraldMessageError("\"\(key)\" must be a string") }
        return string
    }

    private static func rooms(_ value: ByteBuffer, _ key: String) throws(HeraldMessageError) -> [String] {
        switch try? SocketIOValue(json: value) {
        case .string(let room): return [room]
        case .array(let rooms):
            return try rooms.map { room throws(HeraldMessageError) in
                guard let room = room.stringValue else { throw HeraldMessageError("\"\(key)\" must be a room name or an array of room names") }
                return room
            }
        default: throw HeraldMessageError("\"\(key)\" must be a room name or an array of room names")
        }
    }

    private static func list(_ attribute: String?) -> [String] {
        attribute?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } ?? []
    }

    private static func wrapInArray(_ value: ByteBuffer) -> ByteBuffer {
        var array = ByteBuffer()
        array.reserveCapacity(value.readableBytes + 2)
        array.writeInteger(UInt8(ascii: "["))
        var copy = value
        array.writeBuffer(&copy)
        array.writeInteger(UInt8(ascii: "]"))
        return array
    }
}
