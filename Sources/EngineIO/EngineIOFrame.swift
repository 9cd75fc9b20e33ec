public import NIOCore

/// A packet encoded once for both transports, so that a broadcast hands the very same bytes to
/// every session that receives it.
public struct EngineIOFrame: Sendable, Hashable {
    /// The packet, as the polling transport writes it into a payload.
    public let packet: EngineIOPacket
    /// The complete WebSocket frame (header and payload), ready to be written to a socket.
    public let webSocketFrame: ByteBuffer
    /// Whether the packet may be dropped when its receiver is slow.
    public let isVolatile: Bool
    /// The packet as it appears in a polling payload, when already encoded: for text packets a
    /// slice of ``webSocketFrame`` (the type byte and text follow the frame header), so it costs
    /// nothing; for binary packets (`b` + base64) only once ``preparedForPolling()`` made it.
    let pollingEncoding: ByteBuffer?

    /// Encodes `packet` for both transports.
    public init(_ packet: EngineIOPacket, isVolatile: Bool = false, allocator: ByteBufferAllocator = .init()) {
        self.packet = packet
        self.isVolatile = isVolatile
        switch packet.payload {
        case .binary(let data):
            self.webSocketFrame = WebSocketFraming.frame(opcode: .binary, typeByte: nil, payload: data, allocator: allocator)
            self.pollingEncoding = nil
        case .text(let data):
            let frame = WebSocketFraming.frame(opcode: .text, typeByte: packet.type.rawValue, payload: data, allocator: allocator)
            self.webSocketFrame = frame
            self.pollingEncoding = frame.getSlice(at: frame.writerIndex - 1 - data.readableBytes, length: 1 + data.readableBytes)
        case nil:
            let frame = WebSocketFraming.frame(opcode: .text, typeByte: packet.type.rawValue, payload: nil, allocator: allocator)
            self.webSocketFrame = frame
            self.pollingEncoding = frame.getSlice(at: frame.writerIndex - 1, length: 1)
        }
    }

    private init(_ frame: EngineIOFrame, pollingEncoding: ByteBuffer) {
        self.packet = frame.packet
        self.webSocketFrame = frame.webSocketFrame
        self.isVolatile = frame.isVolatile
        self.pollingEncoding = pollingEncoding
    }

    /// The same frame with its polling encoding computed, so that the polling sessions of a
    /// broadcast share it instead of each encoding the packet again.
    func preparedForPolling() -> EngineIOFrame {
        if pollingEncoding != nil { return self }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(pollingByteCount)
        EngineIOCodec.encodeForPolling(packet, into: &buffer)
        return EngineIOFrame(self, pollingEncoding: buffer)
    }

    /// The bytes the packet takes in a polling payload (without the separator).
    var pollingByteCount: Int {
        if let pollingEncoding { return pollingEncoding.readableBytes }
        let count = packet.payload?.bytes.readableBytes ?? 0
        return 1 + (packet.payload?.isBinary == true ? (count + 2) / 3 * 4 : count)
    }

    /// Appends the packet as it appears in a polling payload.
    func writePollingEncoding(into buffer: inout ByteBuffer) {
        if var encoded = pollingEncoding {
            buffer.writeBuffer(&encoded)
        } else {
            EngineIOCodec.encodeForPolling(packet, into: &buffer)
        }
    }

    /// Frames are equal when they carry the same packet with the same volatility: both
    /// encodings are derived from the packet.
    public static func == (lhs: EngineIOFrame, rhs: EngineIOFrame) -> Bool {
        lhs.packet == rhs.packet && lhs.isVolatile == rhs.isVolatile
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(packet)
        hasher.combine(isVolatile)
    }

    /// A text message packet (type `4`) whose text is `text`.
    public static func message(_ text: ByteBuffer, isVolatile: Bool = false) -> Self {
        Self(EngineIOPacket(.message, .text(text)), isVolatile: isVolatile)
    }

    /// A binary message packet.
    public static func binary(_ data: ByteBuffer, isVolatile: Bool = false) -> Self {
        Self(EngineIOPacket(.message, .binary(data)), isVolatile: isVolatile)
    }
}

/// Server-side WebSocket framing (RFC 6455): unmasked frames, written as whole byte buffers.
enum WebSocketFraming {
    enum Opcode: UInt8 {
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA
    }

    /// One final frame: header, the optional Engine.IO type byte, then the payload.
    static func frame(opcode: Opcode, typeByte: UInt8?, payload: ByteBuffer?, allocator: ByteBufferAllocator) -> ByteBuffer {
        let length = (typeByte == nil ? 0 : 1) + (payload?.readableBytes ?? 0)
        var buffer = allocator.buffer(capacity: length + 10)
        buffer.writeInteger(0x80 | opcode.rawValue)
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
        if let typeByte { buffer.writeInteger(typeByte) }
        if var payload { buffer.writeBuffer(&payload) }
        return buffer
    }

    /// A close frame with a status code.
    static func close(code: UInt16, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = allocator.buffer(capacity: 2)
        payload.writeInteger(code)
        return frame(opcode: .close, typeByte: nil, payload: payload, allocator: allocator)
    }
}
