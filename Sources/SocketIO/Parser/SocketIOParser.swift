public import EngineIO
import NIOCore

/// How Socket.IO packets travel in Engine.IO messages, chosen per server as the reference
/// server's `parser` option: every client of the server must use the same one.
public enum SocketIOParser: String, Sendable, Hashable, CaseIterable {
    /// The default format (socket.io-parser): a text message per packet, its data as JSON, with
    /// binary values sent as attachments after it.
    case json
    /// socket.io-msgpack-parser's format (the JavaScript clients' `parser` option,
    /// python-socketio's `serializer='msgpack'`): each packet one binary message holding the
    /// MessagePack map of its type, data, namespace and ack id; binary values stay inline.
    case msgpack

    /// The Engine.IO message payloads of `packet`.
    public func encode(_ packet: SocketIOPacket) -> [EngineIOPayload] {
        switch self {
        case .json:
            let (text, attachments) = SocketIOEncoder.encode(packet)
            return [.text(text)] + attachments.map { .binary($0) }
        case .msgpack:
            return [.binary(SocketIOMessagePackCodec.encode(packet))]
        }
    }

    /// The packet whose messages ``encode(_:)`` wrote.
    public func decode(_ payloads: [EngineIOPayload]) throws(SocketIOCodecError) -> SocketIOPacket {
        var decoder = SocketIODecoder(maxAttachments: max(payloads.count - 1, 0), parser: self)
        for payload in payloads {
            if let packet = try decoder.decode(payload) { return packet }
        }
        throw .empty
    }

    /// An event whose arguments are the bytes of a JSON array: spliced in unparsed for `json`;
    /// parsed once and written as MessagePack for `msgpack` (once per broadcast, not per client).
    /// `trailingString`, when given, is appended as the last argument (a recovery offset).
    func encodeEvent(_ event: String, jsonArguments: ByteBuffer, namespace: String, id: Int?, trailingString: String?) -> [EngineIOPayload] {
        switch self {
        case .json:
            let text = SocketIOEncoder.encodeEvent(event, jsonArguments: jsonArguments, namespace: namespace, id: id, trailingString: trailingString)
            return [.text(text)]
        case .msgpack:
            // The bytes were checked as JSON when they were accepted (RawJSON); anything else
            // than an array is one argument.
            let parsed = (try? JSON.parse(jsonArguments.readableBytesView)) ?? .null
            let arguments = parsed.arrayValue ?? (jsonArguments.readableBytes > 0 ? [parsed] : [])
            let data = [.string(event)] + arguments + (trailingString.map { [.string($0)] } ?? [])
            return encode(SocketIOPacket(type: .event, namespace: namespace, id: id, data: .array(data)))
        }
    }
}

/// socket.io-msgpack-parser's packets: the MessagePack map `{type, data, id, nsp}`, as the
/// reference server writes it (`id` only with an acknowledgement, `data` only when there is some).
enum SocketIOMessagePackCodec {
    static func encode(_ packet: SocketIOPacket) -> ByteBuffer {
        var buffer = ByteBuffer()
        let type: SocketIOPacketType =
            switch packet.type {
            case .binaryEvent: .event
            case .binaryAck: .ack
            default: packet.type
            }
        let count = 2 + (packet.data == nil ? 0 : 1) + (packet.id == nil ? 0 : 1)
        buffer.writeInteger(UInt8(0x80 | count))
        MessagePack.write("type", into: &buffer)
        MessagePack.write(.number(Double(type.rawValue)), into: &buffer)
        if let data = packet.data {
            MessagePack.write("data", into: &buffer)
            MessagePack.write(data, into: &buffer)
        }
        if let id = packet.id {
            MessagePack.write("id", into: &buffer)
            MessagePack.write(.number(Double(id)), into: &buffer)
        }
        MessagePack.write("nsp", into: &buffer)
        MessagePack.write(.string(packet.namespace), into: &buffer)
        return buffer
    }

    /// The packet of one binary message. As socket.io-msgpack-parser, it requires an integer
    /// type from CONNECT to CONNECT_ERROR, a string namespace and an integer id when there is
    /// one; the data is checked against the type as the text format's is. A null `data` counts
    /// as none (python-socketio sends `data: nil` with DISCONNECT, notepack writes an absent
    /// CONNECT payload as `undefined`).
    static func decode(_ buffer: ByteBuffer) throws(SocketIOCodecError) -> SocketIOPacket {
        let value: SocketIOValue
        do {
            value = try MessagePack.decode(buffer)
        } catch {
            throw .invalidPayload(error.description)
        }
        guard case .object(let members) = value else { throw .invalidPayload("a msgpack packet must be a map") }
        guard let number = members["type"]?.numberValue, number == number.rounded(), number >= 0,
            number <= Double(SocketIOPacketType.connectError.rawValue), let type = SocketIOPacketType(rawValue: UInt8(number))
        else { throw .invalidPayload("invalid packet type") }
        guard let namespace = members["nsp"]?.stringValue else { throw .invalidPayload("invalid namespace") }
        var id: Int?
        if let raw = members["id"], raw != .null {
            guard let number = raw.numberValue, number == number.rounded(), number >= 0, number < 9_007_199_254_740_991 else {
                throw .invalidID
            }
            id = Int(number)
        }
        var data = members["data"]
        if data == .null, type == .connect || type == .disconnect { data = nil }
        try SocketIODecoder.validate(type: type, data: data)
        return SocketIOPacket(type: type, namespace: namespace, id: id, data: data)
    }
}
