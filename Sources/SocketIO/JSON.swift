import NIOCore

/// Why a JSON text could not be read.
public struct JSONError: Error, Hashable, CustomStringConvertible {
    /// What was wrong.
    public let reason: String
    /// The byte offset where it was found.
    public let offset: Int

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// A small, strict JSON reader and writer over bytes, for Socket.IO packets.
enum JSON {
    /// Parses a complete JSON text.
    static func parse(_ bytes: ByteBufferView) throws(JSONError) -> SocketIOValue {
        let result =
            bytes.withContiguousStorageIfAvailable { raw in
                var reader = Reader(bytes: raw)
                return Result { () throws(JSONError) in try reader.parseDocument() }
            }
            ?? Array(bytes).withUnsafeBufferPointer { raw in
                var reader = Reader(bytes: raw)
                return Result { () throws(JSONError) in try reader.parseDocument() }
            }
        return try result.get()
    }

    /// Writes `value` as JSON. Binary values become `{"_placeholder":true,"num":N}` and are
    /// appended to `attachments`; without `attachments` they are written as placeholders numbered 0.
    static func write(_ value: SocketIOValue, into buffer: inout ByteBuffer, attachments: UnsafeMutablePointer<[ByteBuffer]>?) {
        switch value {
        case .null: buffer.writeStaticString("null")
        case .bool(let flag): buffer.writeStaticString(flag ? "true" : "false")
        case .number(let number): writeNumber(number, into: &buffer)
        case .string(let string): writeString(string, into: &buffer)
        case .array(let values):
            buffer.writeInteger(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                write(element, into: &buffer, attachments: attachments)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        case .object(let object):
            buffer.writeInteger(UInt8(ascii: "{"))
            var first = true
            for (key, element) in object {
                if !first { buffer.writeInteger(UInt8(ascii: ",")) }
                first = false
                writeString(key, into: &buffer)
                buffer.writeInteger(UInt8(ascii: ":"))
                write(element, into: &buffer, attachments: attachments)
            }
            buffer.writeInteger(UInt8(ascii: "}"))
        case .binary(let data):
            let number = attachments?.pointee.count ?? 0
            attachments?.pointee.append(data)
            buffer.writeString(#"{"_placeholder":true,"num":\#(number)}"#)
        }
    }

    static func writeNumber(_ number: Double, into buffer: inout ByteBuffer) {
        if !number.isFinite {
            buffer.writeStaticString("null")
        } else if number == number.rounded(), abs(number) < 9_007_199_254_740_992 {
            buffer.writeString(String(Int64(number)))
        } else {
            buffer.writeString("\(number)")
        }
    }

    static func writeString(_ string: String, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var pending = string.utf8.startIndex
        let utf8 = string.utf8
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                buffer.writeBytes(utf8[pending..<index])
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case 0x0A: buffer.writeStaticString("\\n")
                case 0x0D: buffer.writeStaticString("\\r")
                case 0x09: buffer.writeStaticString("\\t")
                case 0x08: buffer.writeStaticString("\\b")
                case 0x0C: buffer.writeStaticString("\\f")
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    buffer.writeBytes([
                        UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xf)],
                    ])
                }
                pending = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        buffer.writeBytes(utf8[pending..<utf8.endIndex])
        buffer.writeInteger(UInt8(ascii: "\""))
    }

    /// A recursive-descent reader; depth is bounded so hostile input cannot exhaust the stack.
    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var offset = 0
        var depth = 0
        static let maxDepth = 128

        init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

        mutating func parseDocument() throws(JSONError) -> SocketIOValue {
            let value = try parseValue()
            skipWhitespace()
            guard offset == bytes.count else { throw fail("unexpected data after the value") }
            return value
        }

        /// Parses one value starting at the current offset, leaving the offset after it.
        mutating func parseValue() throws(JSONError) -> SocketIOValue {
            skipWhitespace()
            guard offset < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[offset] {
            case UInt8(ascii: "{"): return try parseObject()
            case UInt8(ascii: "["): return try parseArray()
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
            default: throw fail("unexpected character")
            }
        }

        func fail(_ reason: String) -> JSONError { JSONError(reason: reason, offset: offset) }

        mutating func skipWhitespace() {
            while offset < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[offset]) { offset += 1 }
        }

        mutating func expect(_ word: StaticString) throws(JSONError) {
            let count = word.utf8CodeUnitCount
            guard offset + count <= bytes.count else { throw fail("unexpected end of input") }
            for index in 0..<count where bytes[offset + index] != word.utf8Start[index] { throw fail("invalid literal") }
            offset += count
        }

        mutating func enter() throws(JSONError) {
            depth += 1
            if depth > Self.maxDepth { throw fail("nesting too deep") }
        }

        mutating func parseObject() throws(JSONError) -> SocketIOValue {
            try enter()
            offset += 1
            var members: [(String, SocketIOValue)] = []
            skipWhitespace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
                offset += 1
                depth -= 1
                return .object(SocketIOObject())
            }
            while true {
                skipWhitespace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                let key = try parseString()
                skipWhitespace()
                guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                offset += 1
                members.append((key, try parseValue()))
                skipWhitespace()
                guard offset < bytes.count else { throw fail("unexpected end of input") }
                if bytes[offset] == UInt8(ascii: ",") {
                    offset += 1
                } else if bytes[offset] == UInt8(ascii: "}") {
                    offset += 1
                    depth -= 1
                    return .object(SocketIOObject(members))
                } else {
                    throw fail("expected ',' or '}'")
                }
            }
        }

        mutating func parseArray() throws(JSONError) -> SocketIOValue {
            try enter()
            offset += 1
            var elements: [SocketIOValue] = []
            skipWhitespace()
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
                offset += 1
                depth -= 1
                return .array(elements)
            }
            while true {
                elements.append(try parseValue())
                skipWhitespace()
                guard offset < bytes.count else { throw fail("unexpected end of input") }
                if bytes[offset] == UInt8(ascii: ",") {
                    offset += 1
                } else if bytes[offset] == UInt8(ascii: "]") {
                    offset += 1
                    depth -= 1
                    return .array(elements)
                } else {
                    throw fail("expected ',' or ']'")
                }
            }
        }

        mutating func parseNumber() throws(JSONError) -> Double {
            let start = offset
            if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) else { throw fail("invalid number") }
            if bytes[offset] == UInt8(ascii: "0") {
                offset += 1
            } else {
                skipDigits()
            }
            if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
                offset += 1
                guard skipDigits() > 0 else { throw fail("invalid number") }
            }
            if offset < bytes.count, bytes[offset] | 0x20 == UInt8(ascii: "e") {
                offset += 1
                if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
                guard skipDigits() > 0 else { throw fail("invalid number") }
            }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
            guard let value = Double(text) else { throw fail("invalid number") }
            return value
        }

        @discardableResult
        mutating func skipDigits() -> Int {
            let start = offset
            while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) { offset += 1 }
            return offset - start
        }

        mutating func parseString() throws(JSONError) -> String {
            offset += 1
            let start = offset
            // Fast path: no escapes.
            while offset < bytes.count {
                let byte = bytes[offset]
                if byte == UInt8(ascii: "\"") {
                    let string = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
                    offset += 1
                    return string
                }
                if byte == UInt8(ascii: "\\") { break }
                if byte < 0x20 { throw fail("control character in string") }
                if byte >= 0x80 { try skipUTF8Sequence() } else { offset += 1 }
            }
            var output = Array(UnsafeBufferPointer(rebasing: bytes[start..<offset]))
            while offset < bytes.count {
                let byte = bytes[offset]
                switch byte {
                case UInt8(ascii: "\""):
                    offset += 1
                    return String(decoding: output, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    offset += 1
                    guard offset < bytes.count else { throw fail("unexpected end of input") }
                    let escape = bytes[offset]
                    offset += 1
                    switch escape {
                    case UInt8(ascii: "\""): output.append(0x22)
                    case UInt8(ascii: "\\"): output.append(0x5C)
                    case UInt8(ascii: "/"): output.append(0x2F)
                    case UInt8(ascii: "b"): output.append(0x08)
                    case UInt8(ascii: "f"): output.append(0x0C)
                    case UInt8(ascii: "n"): output.append(0x0A)
                    case UInt8(ascii: "r"): output.append(0x0D)
                    case UInt8(ascii: "t"): output.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try parseHex4()
                        while (0xD800..<0xDC00).contains(scalar), offset + 1 < bytes.count,
                            bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u")
                        {
                            offset += 2
                            let next = try parseHex4()
                            if (0xDC00..<0xE000).contains(next) {
                                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (next - 0xDC00)
                                break
                            }
                            // A high surrogate without its low half is a lone surrogate, as
                            // JavaScript's JSON.parse keeps it (it reaches UTF-8 as U+FFFD);
                            // the escape after it is a character of its own.
                            output.append(contentsOf: [0xEF, 0xBF, 0xBD])
                            scalar = next
                        }
                        let character = Unicode.Scalar(scalar) ?? "\u{FFFD}"
                        output.append(contentsOf: Array(String(character).utf8))
                    default:
                        throw fail("invalid escape")
                    }
                default:
                    if byte < 0x20 { throw fail("control character in string") }
                    let sequenceStart = offset
                    if byte >= 0x80 { try skipUTF8Sequence() } else { offset += 1 }
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[sequenceStart..<offset]))
                }
            }
            throw fail("unterminated string")
        }

        /// Steps over one value, checking its syntax, without building it.
        mutating func skipValue() throws(JSONError) {
            skipWhitespace()
            guard offset < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[offset] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = bytes[offset] == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                let isObject = close == UInt8(ascii: "}")
                try enter()
                offset += 1
                skipWhitespace()
                if offset < bytes.count, bytes[offset] == close {
                    offset += 1
                    depth -= 1
                    return
                }
                while true {
                    if isObject {
                        skipWhitespace()
                        guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                        try skipString()
                        skipWhitespace()
                        guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                        offset += 1
                    }
                    try skipValue()
                    skipWhitespace()
                    guard offset < bytes.count else { throw fail("unexpected end of input") }
                    if bytes[offset] == UInt8(ascii: ",") {
                        offset += 1
                    } else if bytes[offset] == close {
                        offset += 1
                        depth -= 1
                        return
                    } else {
                        throw fail(isObject ? "expected ',' or '}'" : "expected ',' or ']'")
                    }
                }
            case UInt8(ascii: "\""):
                try skipString()
            default:
                _ = try parseValue()
            }
        }

        /// Steps over a string, checking its escapes and its UTF-8 as strictly as ``parseString()``.
        mutating func skipString() throws(JSONError) {
            offset += 1
            while offset < bytes.count {
                switch bytes[offset] {
                case UInt8(ascii: "\""):
                    offset += 1
                    return
                case UInt8(ascii: "\\"):
                    offset += 1
                    guard offset < bytes.count else { throw fail("unexpected end of input") }
                    switch bytes[offset] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        offset += 1
                    case UInt8(ascii: "u"):
                        offset += 1
                        _ = try parseHex4()
                    default:
                        throw fail("invalid escape")
                    }
                case 0..<0x20:
                    throw fail("control character in string")
                case 0x80...:
                    try skipUTF8Sequence()
                default:
                    offset += 1
                }
            }
            throw fail("unterminated string")
        }

        /// Steps over one multi-byte UTF-8 sequence starting at `offset`, refusing overlong forms,
        /// surrogates and code points past U+10FFFF (what a WebSocket text frame may not carry).
        mutating func skipUTF8Sequence() throws(JSONError) {
            let lead = bytes[offset]
            let length: Int
            var lower: UInt8 = 0x80
            var upper: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0:
                length = 3
                lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED:
                length = 3
                upper = 0x9F
            case 0xF0:
                length = 4
                lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4:
                length = 4
                upper = 0x8F
            default: throw fail("invalid UTF-8")
            }
            guard offset + length <= bytes.count else { throw fail("invalid UTF-8") }
            let second = bytes[offset + 1]
            guard second >= lower, second <= upper else { throw fail("invalid UTF-8") }
            for index in 2..<length where bytes[offset + index] & 0xC0 != 0x80 { throw fail("invalid UTF-8") }
            offset += length
        }

        mutating func parseHex4() throws(JSONError) -> UInt32 {
            guard offset + 4 <= bytes.count else { throw fail("invalid unicode escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[offset]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw fail("invalid unicode escape")
                }
                value = value << 4 | UInt32(digit)
                offset += 1
            }
            return value
        }
    }
}
