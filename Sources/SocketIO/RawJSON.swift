public import NIOCore

/// Reads JSON without decoding what it only forwards: the members of an object are handed out
/// as the bytes that encode their values, checked for syntax but never turned into values.
public enum RawJSON {
    /// The members of a JSON object, in order, each value as its raw bytes (a slice of `object`).
    public static func members(of object: ByteBuffer) throws(JSONError) -> [(key: String, value: ByteBuffer)] {
        let view = object.readableBytesView
        let result = view.withContiguousStorageIfAvailable { raw in
            Result { () throws(JSONError) -> [(key: String, value: ByteBuffer)] in
                var reader = JSON.Reader(bytes: raw)
                reader.skipWhitespace()
                guard reader.offset < raw.count, raw[reader.offset] == UInt8(ascii: "{") else { throw reader.fail("expected an object") }
                reader.offset += 1
                var members: [(key: String, value: ByteBuffer)] = []
                reader.skipWhitespace()
                if reader.offset < raw.count, raw[reader.offset] == UInt8(ascii: "}") {
                    reader.offset += 1
                } else {
                    while true {
                        reader.skipWhitespace()
                        guard reader.offset < raw.count, raw[reader.offset] == UInt8(ascii: "\"") else { throw reader.fail("expected a member name") }
                        let key = try reader.parseString()
                        reader.skipWhitespace()
                        guard reader.offset < raw.count, raw[reader.offset] == UInt8(ascii: ":") else { throw reader.fail("expected ':'") }
                        reader.offset += 1
                        reader.skipWhitespace()
                        let start = reader.offset
                        try reader.skipValue()
                        members.append((key, object.getSlice(at: object.readerIndex + start, length: reader.offset - start)!))
                        reader.skipWhitespace()
                        guard reader.offset < raw.count else { throw reader.fail("unexpected end of input") }
                        if raw[reader.offset] == UInt8(ascii: ",") {
                            reader.offset += 1
                        } else if raw[reader.offset] == UInt8(ascii: "}") {
                            reader.offset += 1
                            break
                        } else {
                            throw reader.fail("expected ',' or '}'")
                        }
                    }
                }
                reader.skipWhitespace()
                guard reader.offset == raw.count else { throw reader.fail("unexpected data after the value") }
                return members
            }
        }
        return try result!.get()
    }

    /// The elements of a JSON array, in order, each as its raw bytes (a slice of `array`).
    public static func elements(of array: ByteBuffer) throws(JSONError) -> [ByteBuffer] {
        let result = array.readableBytesView.withContiguousStorageIfAvailable { raw in
            Result { () throws(JSONError) -> [ByteBuffer] in
                var reader = JSON.Reader(bytes: raw)
                reader.skipWhitespace()
                guard reader.offset < raw.count, raw[reader.offset] == UInt8(ascii: "[") else { throw reader.fail("expected an array") }
                reader.offset += 1
                var elements: [ByteBuffer] = []
                reader.skipWhitespace()
                if reader.offset < raw.count, raw[reader.offset] == UInt8(ascii: "]") {
                    reader.offset += 1
                } else {
                    while true {
                        reader.skipWhitespace()
                        let start = reader.offset
                        try reader.skipValue()
                        elements.append(array.getSlice(at: array.readerIndex + start, length: reader.offset - start)!)
                        reader.skipWhitespace()
                        guard reader.offset < raw.count else { throw reader.fail("unexpected end of input") }
                        if raw[reader.offset] == UInt8(ascii: ",") {
                            reader.offset += 1
                        } else if raw[reader.offset] == UInt8(ascii: "]") {
                            reader.offset += 1
                            break
                        } else {
                            throw reader.fail("expected ',' or ']'")
                        }
                    }
                }
                reader.skipWhitespace()
                guard reader.offset == raw.count else { throw reader.fail("unexpected data after the value") }
                return elements
            }
        }
        return try result!.get()
    }

    /// Checks that `bytes` hold exactly one JSON value, without decoding it.
    public static func validate(_ bytes: ByteBuffer) throws(JSONError) {
        let result = bytes.readableBytesView.withContiguousStorageIfAvailable { raw in
            Result { () throws(JSONError) in
                var reader = JSON.Reader(bytes: raw)
                try reader.skipValue()
                reader.skipWhitespace()
                guard reader.offset == raw.count else { throw reader.fail("unexpected data after the value") }
            }
        }
        try result!.get()
    }

    /// Whether the JSON text starts with `[` (after white space): a JSON array.
    public static func isArray(_ bytes: ByteBuffer) -> Bool {
        bytes.readableBytesView.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) } == UInt8(ascii: "[")
    }
}

extension SocketIOValue {
    /// Decodes a JSON text into a value.
    public init(json: ByteBuffer) throws(JSONError) {
        self = try JSON.parse(json.readableBytesView)
    }

    /// The value as JSON text.
    public var jsonBytes: ByteBuffer {
        var buffer = ByteBuffer()
        JSON.write(self, into: &buffer, attachments: nil)
        return buffer
    }
}
