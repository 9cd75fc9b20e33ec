public import NIOCore

/// The Engine.IO protocol revision a session speaks.
public enum EngineIOProtocol: Int, Sendable, Hashable {
    /// Engine.IO v3 (socket.io-client 2.x, python-engineio 3.x): the client pings, polling
    /// payloads are length-prefixed, binary WebSocket frames carry a type byte.
    case v3 = 3
    /// Engine.IO v4 (socket.io-client 3.x and later).
    case v4 = 4
}

/// Engine.IO v3's polling payloads, in its two framings.
///
/// Text: each packet as `<length>:<packet>`, the length counted in UTF-16 code units (as
/// JavaScript's `String.length`), binary packets as `b<type><base64>`. Binary (for clients that
/// take binary, the default, and what python-engineio 3.x always POSTs): each packet as a kind
/// byte (0 string, 1 binary), its length as one byte per decimal digit, `0xFF`, then the packet:
/// a string packet's UTF-8 bytes, or a binary packet's type byte and data.
public enum EngineIOCodecV3 {
    /// Decodes a POST body of either framing.
    public static func decodePayload(_ body: ByteBuffer) throws(EngineIOCodecError) -> [EngineIOPacket] {
        guard let first = body.getInteger(at: body.readerIndex, as: UInt8.self) else { throw .emptyPacket }
        return first <= 1 ? try decodeBinaryPayload(body) : try decodeTextPayload(body)
    }

    /// The text framing; the lengths count UTF-16 code units of the UTF-8 text, which must be
    /// valid (a length may not end inside a character).
    private static func decodeTextPayload(_ body: ByteBuffer) throws(EngineIOCodecError) -> [EngineIOPacket] {
        guard let text = String(validating: body.readableBytesView, as: UTF8.self) else { throw .invalidUTF8 }
        var packets: [EngineIOPacket] = []
        var rest = Substring(text)
        while !rest.isEmpty {
            guard let colon = rest.firstIndex(of: ":"), let units = Int(rest[..<colon]), units >= 0 else { throw .invalidLength }
            let start = rest.index(after: colon)
            let scalars = rest.unicodeScalars
            var end = start
            var counted = 0
            while counted < units, end < scalars.endIndex {
                counted += scalars[end].utf16.count
                end = scalars.index(after: end)
            }
            guard counted == units else { throw .invalidLength }
            packets.append(try decodeTextPacket(ByteBuffer(substring: rest[start..<end])))
            rest = rest[end...]
        }
        return packets
    }

    private static func decodeTextPacket(_ segment: ByteBuffer) throws(EngineIOCodecError) -> EngineIOPacket {
        guard let first = segment.getInteger(at: segment.readerIndex, as: UInt8.self) else { throw .emptyPacket }
        guard first == UInt8(ascii: "b") else { return try EngineIOCodec.decodePacket(text: segment) }
        // `b4` + base64: a binary message.
        guard segment.getInteger(at: segment.readerIndex + 1, as: UInt8.self) == EngineIOPacketType.message.rawValue,
            let data = Base64.decode(segment.readableBytesView.dropFirst(2))
        else { throw .invalidBase64 }
        return EngineIOPacket(.message, .binary(data))
    }

    private static func decodeBinaryPayload(_ body: ByteBuffer) throws(EngineIOCodecError) -> [EngineIOPacket] {
        var packets: [EngineIOPacket] = []
        var rest = body
        while let kind = rest.readInteger(as: UInt8.self) {
            guard kind <= 1 else { throw .invalidLength }
            var length = 0
            var digits = 0
            while let digit = rest.readInteger(as: UInt8.self), digit != 0xFF {
                guard digit <= 9, digits < 10 else { throw .invalidLength }
                length = length * 10 + Int(digit)
                digits += 1
            }
            guard digits > 0, var packet = rest.readSlice(length: length) else { throw .invalidLength }
            if kind == 0 {
                guard String(validating: packet.readableBytesView, as: UTF8.self) != nil else { throw .invalidUTF8 }
                packets.append(try EngineIOCodec.decodePacket(text: packet))
            } else {
                guard packet.readInteger(as: UInt8.self) == 4 else { throw .binaryNotMessage }
                packets.append(EngineIOPacket(.message, .binary(packet)))
            }
        }
        return packets
    }

    /// Encodes packets as one payload: in the binary framing when `binary` (the client takes it)
    /// and a packet is binary, else in the text framing. Returns whether it is binary.
    public static func encodePayload(_ packets: [EngineIOPacket], binary: Bool) -> (body: ByteBuffer, isBinary: Bool) {
        var body = ByteBuffer()
        if binary, packets.contains(where: { $0.payload?.isBinary == true }) {
            for packet in packets {
                if case .binary(let data) = packet.payload {
                    body.writeInteger(UInt8(1))
                    writeDigits(data.readableBytes + 1, into: &body)
                    body.writeInteger(UInt8(4))
                    body.writeImmutableBuffer(data)
                } else {
                    var text = ByteBuffer()
                    EngineIOCodec.encodeForPolling(packet, into: &text)
                    body.writeInteger(UInt8(0))
                    writeDigits(text.readableBytes, into: &body)
                    body.writeBuffer(&text)
                }
            }
            return (body, true)
        }
        for packet in packets {
            var text = ByteBuffer()
            if case .binary(let data) = packet.payload {
                text.writeString("b4")
                Base64.encode(data.readableBytesView, into: &text)
            } else {
                EngineIOCodec.encodeForPolling(packet, into: &text)
            }
            let units = String(decoding: text.readableBytesView, as: UTF8.self).utf16.count
            body.writeString("\(units):")
            body.writeBuffer(&text)
        }
        return (body, false)
    }

    private static func writeDigits(_ length: Int, into buffer: inout ByteBuffer) {
        for digit in String(length).utf8 { buffer.writeInteger(digit - UInt8(ascii: "0")) }
        buffer.writeInteger(UInt8(0xFF))
    }
}
