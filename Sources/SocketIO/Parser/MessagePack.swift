public import NIOCore

/// Why bytes could not be read as MessagePack.
public struct MessagePackError: Error, Hashable, CustomStringConvertible {
    /// What was wrong.
    public let reason: String
    /// The byte offset where it was found.
    public let offset: Int

    public var description: String { "invalid MessagePack at byte \(offset): \(reason)" }
}

/// MessagePack (msgpack.org) for ``SocketIOValue``, as JavaScript's `@msgpack/msgpack` and
/// `notepack.io` write and read it: the cluster adapters' format for messages with binary data or
/// over the NOTIFY limit, and the wire format of ``SocketIOParser/msgpack``.
///
/// Numbers are doubles, as in JavaScript: a safe integer (at most 2^53 − 1 in magnitude, as
/// `Number.isSafeInteger`) is written in the smallest integer format, any other number as a float
/// 64; every integer or float read becomes a double. Binary data is written as `bin`. Of the
/// extension types, only those notepack.io writes are read: `undefined` (fixext 1 of type 0)
/// becomes null, as `JSON.stringify` makes it in an array, and an `ArrayBuffer` (ext 8/16/32 of
/// type 0, what notepack writes for one in Node) becomes binary data.
public enum MessagePack {
    /// The most nested arrays and maps a value read may have.
    public static let maxDepth = 128

    /// The value as MessagePack bytes.
    public static func encode(_ value: SocketIOValue) -> ByteBuffer {
        var buffer = ByteBuffer()
        write(value, into: &buffer)
        return buffer
    }

    /// The value `buffer` holds, which must be exactly one MessagePack value.
    public static func decode(_ buffer: ByteBuffer) throws(MessagePackError) -> SocketIOValue {
        var reader = Reader(buffer: buffer)
        let value = try reader.value(depth: 0)
        guard reader.buffer.readableBytes == 0 else { throw reader.fail("\(reader.buffer.readableBytes) bytes after the value") }
        return value
    }

    static func write(_ value: SocketIOValue, into buffer: inout ByteBuffer) {
        switch value {
        case .null: buffer.writeInteger(UInt8(0xc0))
        case .bool(let flag): buffer.writeInteger(UInt8(flag ? 0xc3 : 0xc2))
        case .number(let number): writeNumber(number, into: &buffer)
        case .string(let string):
            let count = string.utf8.count
            if count < 32 {
                buffer.writeInteger(UInt8(0xa0 | count))
            } else {
                writeHeader(count, into: &buffer, formats: (0xd9, 0xda, 0xdb))
            }
            buffer.writeString(string)
        case .binary(let bytes):
            writeHeader(bytes.readableBytes, into: &buffer, formats: (0xc4, 0xc5, 0xc6))
            buffer.writeImmutableBuffer(bytes)
        case .array(let values):
            if values.count < 16 {
                buffer.writeInteger(UInt8(0x90 | values.count))
            } else {
                writeHeader(values.count, into: &buffer, formats: nil, wide: (0xdc, 0xdd))
            }
            for element in values { write(element, into: &buffer) }
        case .object(let object):
            if object.count < 16 {
                buffer.writeInteger(UInt8(0x80 | object.count))
            } else {
                writeHeader(object.count, into: &buffer, formats: nil, wide: (0xde, 0xdf))
            }
            for (key, element) in object {
                write(.string(key), into: &buffer)
                write(element, into: &buffer)
            }
        }
    }

    /// A length header: 8, 16 or 32 bits (`formats`), or 16 or 32 bits only (`wide`).
    private static func writeHeader(
        _ count: Int, into buffer: inout ByteBuffer, formats: (UInt8, UInt8, UInt8)?, wide: (UInt8, UInt8)? = nil
    ) {
        if let formats, count <= Int(UInt8.max) {
            buffer.writeInteger(formats.0)
            buffer.writeInteger(UInt8(count))
        } else if count <= Int(UInt16.max) {
            buffer.writeInteger(formats?.1 ?? wide!.0)
            buffer.writeInteger(UInt16(count))
        } else {
            buffer.writeInteger(formats?.2 ?? wide!.1)
            buffer.writeInteger(UInt32(count))
        }
    }

    private static func writeNumber(_ number: Double, into buffer: inout ByteBuffer) {
        guard number == number.rounded(), abs(number) <= 9_007_199_254_740_991 else {
            buffer.writeInteger(UInt8(0xcb))
            buffer.writeInteger(number.bitPattern)
            return
        }
        if number >= 0 {
            let value = UInt64(number)
            switch value {
            case 0..<0x80: buffer.writeInteger(UInt8(value))
            case 0..<0x100:
                buffer.writeInteger(UInt8(0xcc))
                buffer.writeInteger(UInt8(value))
            case 0..<0x1_0000:
                buffer.writeInteger(UInt8(0xcd))
                buffer.writeInteger(UInt16(value))
            case 0..<0x1_0000_0000:
                buffer.writeInteger(UInt8(0xce))
                buffer.writeInteger(UInt32(value))
            default:
                buffer.writeInteger(UInt8(0xcf))
                buffer.writeInteger(value)
            }
        } else {
            let value = Int64(number)
            switch value {
            case -32..<0: buffer.writeInteger(Int8(value))
            case -0x80..<0:
                buffer.writeInteger(UInt8(0xd0))
                buffer.writeInteger(Int8(value))
            case -0x8000..<0:
                buffer.writeInteger(UInt8(0xd1))
                buffer.writeInteger(Int16(value))
            case -0x8000_0000..<0:
                buffer.writeInteger(UInt8(0xd2))
                buffer.writeInteger(Int32(value))
            default:
                buffer.writeInteger(UInt8(0xd3))
                buffer.writeInteger(value)
            }
        }
    }

    struct Reader {
        var buffer: ByteBuffer
        let start: Int

        init(buffer: ByteBuffer) {
            self.buffer = buffer
            self.start = buffer.readerIndex
        }

        func fail(_ reason: String) -> MessagePackError {
            MessagePackError(reason: reason, offset: buffer.readerIndex - start)
        }

        mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(MessagePackError) -> T {
            guard let value = buffer.readInteger(as: T.self) else { throw fail("truncated") }
            return value
        }

        mutating func bytes(_ count: Int) throws(MessagePackError) -> ByteBuffer {
            guard let slice = buffer.readSlice(length: count) else { throw fail("truncated: \(count) bytes announced") }
            return slice
        }

        mutating func string(_ count: Int) throws(MessagePackError) -> String {
            let slice = try bytes(count)
            guard let text = String(validating: slice.readableBytesView, as: UTF8.self) else { throw fail("a string that is not UTF-8") }
            return text
        }

        mutating func value(depth: Int) throws(MessagePackError) -> SocketIOValue {
            let byte = try integer(UInt8.self)
            switch byte {
            case 0x00...0x7f: return .number(Double(byte))
            case 0xe0...0xff: return .number(Double(Int8(bitPattern: byte)))
            case 0xa0...0xbf: return .string(try string(Int(byte & 0x1f)))
            case 0x90...0x9f: return try array(Int(byte & 0x0f), depth: depth)
            case 0x80...0x8f: return try map(Int(byte & 0x0f), depth: depth)
            case 0xc0: return .null
            case 0xc2: return .bool(false)
            case 0xc3: return .bool(true)
            case 0xc4: return .binary(try bytes(Int(try integer(UInt8.self))))
            case 0xc5: return .binary(try bytes(Int(try integer(UInt16.self))))
            case 0xc6: return .binary(try bytes(Int(try integer(UInt32.self))))
            case 0xca: return .number(Double(Float(bitPattern: try integer(UInt32.self))))
            case 0xcb: return .number(Double(bitPattern: try integer(UInt64.self)))
            case 0xcc: return .number(Double(try integer(UInt8.self)))
            case 0xcd: return .number(Double(try integer(UInt16.self)))
            case 0xce: return .number(Double(try integer(UInt32.self)))
            case 0xcf: return .number(Double(try integer(UInt64.self)))
            case 0xd0: return .number(Double(try integer(Int8.self)))
            case 0xd1: return .number(Double(try integer(Int16.self)))
            case 0xd2: return .number(Double(try integer(Int32.self)))
            case 0xd3: return .number(Double(try integer(Int64.self)))
            case 0xd9: return .string(try string(Int(try integer(UInt8.self))))
            case 0xda: return .string(try string(Int(try integer(UInt16.self))))
            case 0xdb: return .string(try string(Int(try integer(UInt32.self))))
            case 0xdc: return try array(Int(try integer(UInt16.self)), depth: depth)
            case 0xdd: return try array(Int(try integer(UInt32.self)), depth: depth)
            case 0xde: return try map(Int(try integer(UInt16.self)), depth: depth)
            case 0xdf: return try map(Int(try integer(UInt32.self)), depth: depth)
            case 0xd4:
                guard try integer(UInt8.self) == 0, try integer(UInt8.self) == 0 else { throw fail("a fixext 1 that is not notepack's undefined") }
                return .null
            case 0xc7: return try arrayBuffer(Int(try integer(UInt8.self)))
            case 0xc8: return try arrayBuffer(Int(try integer(UInt16.self)))
            case 0xc9: return try arrayBuffer(Int(try integer(UInt32.self)))
            default:
                buffer.moveReaderIndex(to: buffer.readerIndex - 1)
                throw fail("format 0x\(String(byte, radix: 16)) (this extension type or the reserved byte)")
            }
        }

        /// An extension of type 0, notepack.io's `ArrayBuffer`.
        mutating func arrayBuffer(_ count: Int) throws(MessagePackError) -> SocketIOValue {
            let type = try integer(Int8.self)
            guard type == 0 else { throw fail("extension type \(type) (only notepack's ArrayBuffer, type 0, is read)") }
            return .binary(try bytes(count))
        }

        /// Each element takes at least one byte: a count past what is left is refused before
        /// anything is allocated for it.
        mutating func array(_ count: Int, depth: Int) throws(MessagePackError) -> SocketIOValue {
            guard depth < MessagePack.maxDepth else { throw fail("nesting too deep") }
            guard count <= buffer.readableBytes else { throw fail("truncated: \(count) elements announced") }
            var values: [SocketIOValue] = []
            values.reserveCapacity(count)
            for _ in 0..<count { values.append(try value(depth: depth + 1)) }
            return .array(values)
        }

        mutating func map(_ count: Int, depth: Int) throws(MessagePackError) -> SocketIOValue {
            guard depth < MessagePack.maxDepth else { throw fail("nesting too deep") }
            guard count <= buffer.readableBytes / 2 else { throw fail("truncated: \(count) members announced") }
            var members: [(String, SocketIOValue)] = []
            members.reserveCapacity(count)
            for _ in 0..<count {
                guard case .string(let key) = try value(depth: depth + 1) else { throw fail("a map key that is not a string") }
                members.append((key, try value(depth: depth + 1)))
            }
            return .object(SocketIOObject(members))
        }
    }
}
