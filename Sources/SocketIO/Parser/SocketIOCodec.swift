public import EngineIO
public import NIOCore

/// Encodes Socket.IO packets into Engine.IO message texts and attachments.
public enum SocketIOEncoder {
    /// Encodes a packet: the text of its Engine.IO message and its binary attachments. Packets
    /// whose data holds binary values become `BINARY_EVENT`/`BINARY_ACK` with placeholders.
    public static func encode(_ packet: SocketIOPacket, allocator: ByteBufferAllocator = .init()) -> (text: ByteBuffer, attachments: [ByteBuffer]) {
        var attachments: [ByteBuffer] = []
        var body = allocator.buffer(capacity: 64)
        if let data = packet.data {
            withUnsafeMutablePointer(to: &attachments) { JSON.write(data, into: &body, attachments: $0) }
        }
        var type = packet.type
        if !attachments.isEmpty {
            if type == .event { type = .binaryEvent }
            if type == .ack { type = .binaryAck }
        }
        var text = allocator.buffer(capacity: body.readableBytes + packet.namespace.utf8.count + 8)
        writeHeader(type: type, attachments: attachments.count, namespace: packet.namespace, id: packet.id, into: &text)
        text.writeBuffer(&body)
        return (text, attachments)
    }

    /// Writes the packet header: type, attachment count, namespace and id.
    static func writeHeader(type: SocketIOPacketType, attachments: Int, namespace: String, id: Int?, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "0") + type.rawValue)
        if type == .binaryEvent || type == .binaryAck {
            buffer.writeString(String(attachments))
            buffer.writeInteger(UInt8(ascii: "-"))
        }
        if namespace != "/" {
            buffer.writeString(namespace)
            buffer.writeInteger(UInt8(ascii: ","))
        }
        if let id { buffer.writeString(String(id)) }
    }

    /// Encodes an event whose arguments are already JSON, without parsing them: `arguments` is
    /// the bytes of a JSON array (`[1,{"a":2}]`), spliced after the event name.
    public static func encodeEvent(
        _ event: String,
        jsonArguments arguments: ByteBuffer,
        namespace: String = "/",
        id: Int? = nil,
        trailingString: String? = nil,
        allocator: ByteBufferAllocator = .init()
    ) -> ByteBuffer {
        var text = allocator.buffer(
            capacity: arguments.readableBytes + event.utf8.count + namespace.utf8.count + (trailingString?.utf8.count ?? 0) + 16)
        writeHeader(type: .event, attachments: 0, namespace: namespace, id: id, into: &text)
        text.writeInteger(UInt8(ascii: "["))
        JSON.writeString(event, into: &text)
        // The array's elements: after its opening bracket, before its closing one.
        var start = arguments.readerIndex
        let view = arguments.readableBytesView
        if let open = view.firstIndex(of: UInt8(ascii: "[")) { start = open + 1 }
        var end = arguments.writerIndex
        while end > start, let byte = arguments.getInteger(at: end - 1, as: UInt8.self), isWhitespace(byte) { end -= 1 }
        if end > start, arguments.getInteger(at: end - 1, as: UInt8.self) == UInt8(ascii: "]") { end -= 1 }
        if let elements = arguments.getSlice(at: start, length: max(end - start, 0)),
            elements.readableBytesView.contains(where: { !isWhitespace($0) })
        {
            text.writeInteger(UInt8(ascii: ","))
            text.writeImmutableBuffer(elements)
        }
        if let trailingString {
            text.writeInteger(UInt8(ascii: ","))
            JSON.writeString(trailingString, into: &text)
        }
        text.writeInteger(UInt8(ascii: "]"))
        return text
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}

/// Decodes Engine.IO messages into Socket.IO packets: in the text format, reassembling binary
/// packets from the attachments that follow them; in msgpack, one packet per binary message. One
/// decoder per client connection.
public struct SocketIODecoder: Sendable {
    private var pending: (packet: SocketIOPacket, expected: Int, attachments: [ByteBuffer])?
    /// The most attachments a binary packet may announce.
    public let maxAttachments: Int
    /// The format the messages are in.
    public let parser: SocketIOParser

    /// Creates a decoder of `parser`'s format that refuses packets announcing more than
    /// `maxAttachments` attachments (the reference parser's default is 10).
    public init(maxAttachments: Int = 10, parser: SocketIOParser = .json) {
        self.maxAttachments = maxAttachments
        self.parser = parser
    }

    /// Feeds one Engine.IO message; returns a packet once it is complete.
    public mutating func decode(_ payload: EngineIOPayload) throws(SocketIOCodecError) -> SocketIOPacket? {
        if parser == .msgpack {
            guard case .binary(let data) = payload else { throw .textWithMessagePack }
            return try SocketIOMessagePackCodec.decode(data)
        }
        switch payload {
        case .binary(let data):
            guard var pending else { throw .unexpectedBinary }
            pending.attachments.append(data)
            if pending.attachments.count < pending.expected {
                self.pending = pending
                return nil
            }
            self.pending = nil
            var packet = pending.packet
            packet.data = try packet.data.map { value throws(SocketIOCodecError) in try Self.fill(value, with: pending.attachments) }
            return packet
        case .text(let text):
            guard pending == nil else { throw .unexpectedText }
            let (packet, attachments) = try Self.decodeText(text)
            guard attachments <= maxAttachments else { throw .tooManyAttachments(attachments, limit: maxAttachments) }
            if attachments > 0 {
                pending = (packet, attachments, [])
                return nil
            }
            return packet
        }
    }

    /// Decodes the text of one packet; for binary packets also returns how many attachments follow.
    public static func decodeText(_ text: ByteBuffer) throws(SocketIOCodecError) -> (SocketIOPacket, attachments: Int) {
        var buffer = text
        guard let first = buffer.readInteger(as: UInt8.self) else { throw .empty }
        guard first >= UInt8(ascii: "0"), let type = SocketIOPacketType(rawValue: first &- UInt8(ascii: "0")) else {
            throw .unknownType(first)
        }
        var attachments = 0
        if type == .binaryEvent || type == .binaryAck {
            guard let count = try? readInteger(&buffer), buffer.readInteger(as: UInt8.self) == UInt8(ascii: "-") else {
                throw .invalidAttachmentCount
            }
            attachments = count
        }
        var namespace = "/"
        if buffer.peekByte == UInt8(ascii: "/") {
            let end = buffer.readableBytesView.firstIndex(of: UInt8(ascii: ",")) ?? buffer.writerIndex
            namespace = buffer.readString(length: end - buffer.readerIndex) ?? "/"
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes > 0 ? 1 : 0)
        }
        let id = try readInteger(&buffer)
        var data: SocketIOValue?
        if buffer.readableBytes > 0 {
            do {
                data = try JSON.parse(buffer.readableBytesView)
            } catch {
                throw .invalidPayload(error.description)
            }
        }
        try validate(type: type, data: data)
        return (SocketIOPacket(type: type, namespace: namespace, id: id, data: data), attachments)
    }

    private static let reservedEvents: Set<String> = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]

    /// Checks the payload's shape against the packet type, as the reference parser does.
    static func validate(type: SocketIOPacketType, data: SocketIOValue?) throws(SocketIOCodecError) {
        switch type {
        case .connect:
            if let data, data.objectValue == nil { throw .invalidPayload("CONNECT data must be an object") }
        case .disconnect:
            if data != nil { throw .invalidPayload("DISCONNECT carries no data") }
        case .event, .binaryEvent:
            guard let arguments = data?.arrayValue, let name = arguments.first else {
                throw .invalidPayload("EVENT data must be a non-empty array")
            }
            if let name = name.stringValue {
                if reservedEvents.contains(name) { throw .invalidPayload("'\(name)' is a reserved event name") }
            } else if name.numberValue == nil {
                throw .invalidPayload("the event name must be a string or a number")
            }
        case .ack, .binaryAck:
            if data?.arrayValue == nil { throw .invalidPayload("ACK data must be an array") }
        case .connectError:
            if let data, data.objectValue == nil, data.stringValue == nil {
                throw .invalidPayload("CONNECT_ERROR data must be an object or a string")
            }
        }
    }

    /// Reads a decimal number; `nil` when there is none. Ack ids stay within JavaScript's safe integers.
    private static func readInteger(_ buffer: inout ByteBuffer) throws(SocketIOCodecError) -> Int? {
        var value = 0
        var digits = 0
        while let byte = buffer.peekByte, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow, product < 9_007_199_254_740_991 else { throw .invalidID }
            value = product + Int(byte - UInt8(ascii: "0"))
            digits += 1
            buffer.moveReaderIndex(forwardBy: 1)
        }
        return digits > 0 ? value : nil
    }

    /// Replaces `{"_placeholder":true,"num":N}` objects with attachment N.
    static func fill(_ value: SocketIOValue, with attachments: [ByteBuffer]) throws(SocketIOCodecError) -> SocketIOValue {
        switch value {
        case .array(let elements):
            var filled: [SocketIOValue] = []
            filled.reserveCapacity(elements.count)
            for element in elements { filled.append(try fill(element, with: attachments)) }
            return .array(filled)
        case .object(let members):
            if members["_placeholder"] == .bool(true) {
                guard let number = members["num"]?.intValue, attachments.indices.contains(number) else { throw .invalidPlaceholder }
                return .binary(attachments[number])
            }
            var filled: [(String, SocketIOValue)] = []
            filled.reserveCapacity(members.count)
            for (key, member) in members { filled.append((key, try fill(member, with: attachments))) }
            return .object(SocketIOObject(filled))
        default:
            return value
        }
    }
}

extension ByteBuffer {
    var peekByte: UInt8? { getInteger(at: readerIndex, as: UInt8.self) }
}
