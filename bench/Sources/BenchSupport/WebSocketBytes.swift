import NIOCore

/// Hand-built WebSocket frames (RFC 6455), so that a frame can be built once and the same
/// ByteBuffer written to many channels.
public enum WebSocketBytes {
    public static let opText: UInt8 = 0x1
    public static let opClose: UInt8 = 0x8
    public static let opPing: UInt8 = 0x9
    public static let opPong: UInt8 = 0xA

    /// Writes a server-to-client (unmasked) frame header for `length` payload bytes.
    public static func writeHeader(into buffer: inout ByteBuffer, opcode: UInt8, length: Int, masked: Bool) {
        buffer.writeInteger(UInt8(0x80 | opcode))
        let maskBit: UInt8 = masked ? 0x80 : 0
        if length < 126 {
            buffer.writeInteger(UInt8(length) | maskBit)
        } else if length <= 0xFFFF {
            buffer.writeInteger(UInt8(126) | maskBit)
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127) | maskBit)
            buffer.writeInteger(UInt64(length))
        }
        if masked {
            // A zero masking key: the payload goes out unchanged (XOR with 0).
            buffer.writeInteger(UInt32(0))
        }
    }

    /// A complete unmasked (server) frame.
    public static func serverFrame(opcode: UInt8 = opText, payload: some Collection<UInt8>, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.count + 10)
        writeHeader(into: &buffer, opcode: opcode, length: payload.count, masked: false)
        buffer.writeBytes(payload)
        return buffer
    }

    /// A complete unmasked (server) frame around bytes already in a ByteBuffer.
    public static func serverFrame(opcode: UInt8 = opText, payload: ByteBuffer, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.readableBytes + 10)
        writeHeader(into: &buffer, opcode: opcode, length: payload.readableBytes, masked: false)
        var copy = payload
        buffer.writeBuffer(&copy)
        return buffer
    }

    /// A complete masked (client) frame, with a zero masking key.
    public static func clientFrame(opcode: UInt8 = opText, payload: some Collection<UInt8>, allocator: ByteBufferAllocator = .init()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: payload.count + 14)
        writeHeader(into: &buffer, opcode: opcode, length: payload.count, masked: true)
        buffer.writeBytes(payload)
        return buffer
    }
}
