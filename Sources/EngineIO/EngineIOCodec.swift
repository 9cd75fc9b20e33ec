public import NIOCore

/// Encodes and decodes Engine.IO v4 packets, for both transports.
///
/// Over WebSocket a text frame holds one packet (`4hello`) and a binary frame holds one binary
/// message. Over HTTP long-polling a payload holds packets separated by the record separator
/// `0x1e`, binary messages being written as `b` followed by their base64 encoding.
public enum EngineIOCodec {
    /// The byte that separates packets in a polling payload.
    public static let recordSeparator: UInt8 = 0x1e

    /// Decodes one packet from the text of a WebSocket frame (or one polling segment).
    public static func decodePacket(text: ByteBuffer) throws(EngineIOCodecError) -> EngineIOPacket {
        var buffer = text
        guard let first = buffer.readInteger(as: UInt8.self) else { throw .emptyPacket }
        guard let type = EngineIOPacketType(rawValue: first) else { throw .unknownPacketType(first) }
        return EngineIOPacket(type, buffer.readableBytes > 0 || type == .message ? .text(buffer) : nil)
    }

    /// Decodes a binary WebSocket frame, which is always a message.
    public static func decodePacket(binary: ByteBuffer) -> EngineIOPacket {
        EngineIOPacket(.message, .binary(binary))
    }

    /// Decodes the body of a polling POST into its packets.
    public static func decodePayload(_ body: ByteBuffer) throws(EngineIOCodecError) -> [EngineIOPacket] {
        var packets: [EngineIOPacket] = []
        var rest = body
        while let index = rest.readableBytesView.firstIndex(of: recordSeparator) {
            let segment = rest.readSlice(length: index - rest.readerIndex)!
            rest.moveReaderIndex(forwardBy: 1)
            packets.append(try decodeSegment(segment))
        }
        packets.append(try decodeSegment(rest))
        return packets
    }

    private static func decodeSegment(_ segment: ByteBuffer) throws(EngineIOCodecError) -> EngineIOPacket {
        guard let first = segment.getInteger(at: segment.readerIndex, as: UInt8.self) else { throw .emptyPacket }
        if first == UInt8(ascii: "b") {
            guard let data = Base64.decode(segment.readableBytesView.dropFirst()) else { throw .invalidBase64 }
            return EngineIOPacket(.message, .binary(data))
        }
        return try decodePacket(text: segment)
    }

    /// Appends one packet as it appears in a polling payload (binary as `b` + base64).
    public static func encodeForPolling(_ packet: EngineIOPacket, into buffer: inout ByteBuffer) {
        switch packet.payload {
        case .binary(let data):
            buffer.writeInteger(UInt8(ascii: "b"))
            Base64.encode(data.readableBytesView, into: &buffer)
        case .text(var data):
            buffer.writeInteger(packet.type.rawValue)
            buffer.writeBuffer(&data)
        case nil:
            buffer.writeInteger(packet.type.rawValue)
        }
    }

    /// Encodes packets as one polling payload.
    public static func encodePayload(_ packets: [EngineIOPacket], allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 64)
        for (index, packet) in packets.enumerated() {
            if index > 0 { buffer.writeInteger(recordSeparator) }
            encodeForPolling(packet, into: &buffer)
        }
        return buffer
    }

    /// Encodes a packet as the content of a WebSocket frame: text (`type` + data) or raw binary.
    public static func encodeForWebSocket(_ packet: EngineIOPacket) -> (bytes: ByteBuffer, isBinary: Bool) {
        switch packet.payload {
        case .binary(let data):
            return (data, true)
        case .text(var data):
            var buffer = ByteBuffer()
            buffer.reserveCapacity(data.readableBytes + 1)
            buffer.writeInteger(packet.type.rawValue)
            buffer.writeBuffer(&data)
            return (buffer, false)
        case nil:
            return (ByteBuffer(integer: packet.type.rawValue), false)
        }
    }
}
