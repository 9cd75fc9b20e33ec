import NIOCore

/// Standard base64 (RFC 4648, with padding), as the polling transport carries binary packets.
/// Works on raw buffers: it is on the polling path of every binary message.
enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Appends the base64 encoding of `bytes` to `buffer`.
    static func encode(_ bytes: ByteBufferView, into buffer: inout ByteBuffer) {
        let count = bytes.count
        let length = (count + 2) / 3 * 4
        bytes.withContiguousStorageIfAvailable { input in
            alphabet.withUnsafeBufferPointer { table in
                _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { output in
                    var i = 0
                    var o = 0
                    while i + 3 <= count {
                        let value = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                        output[o] = table[Int(value >> 18)]
                        output[o + 1] = table[Int(value >> 12 & 0x3f)]
                        output[o + 2] = table[Int(value >> 6 & 0x3f)]
                        output[o + 3] = table[Int(value & 0x3f)]
                        i += 3
                        o += 4
                    }
                    let rest = count - i
                    if rest > 0 {
                        let value = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
                        output[o] = table[Int(value >> 18)]
                        output[o + 1] = table[Int(value >> 12 & 0x3f)]
                        output[o + 2] = rest == 2 ? table[Int(value >> 6 & 0x3f)] : UInt8(ascii: "=")
                        output[o + 3] = UInt8(ascii: "=")
                    }
                    return length
                }
            }
        }
    }

    /// Decodes base64 text (padding optional); `nil` when it is not valid base64.
    static func decode(_ text: ByteBufferView) -> ByteBuffer? {
        let result: ByteBuffer?? = text.withContiguousStorageIfAvailable { input in
            reverse.withUnsafeBufferPointer { table -> ByteBuffer? in
                var count = input.count
                var padding = 0
                while count > 0, input[count - 1] == UInt8(ascii: "="), padding < 2 {
                    count -= 1
                    padding += 1
                }
                guard count % 4 != 1, padding == 0 || (count + padding) % 4 == 0 else { return nil }
                var output = ByteBuffer()
                let length = count / 4 * 3 + max(count % 4 - 1, 0)
                var valid = true
                output.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { out in
                    var i = 0
                    var o = 0
                    var accumulator: UInt32 = 0
                    var bits = 0
                    while i < count {
                        let value = table[Int(input[i])]
                        if value == 0xff {
                            valid = false
                            return 0
                        }
                        accumulator = accumulator << 6 | UInt32(value)
                        bits += 6
                        if bits >= 8 {
                            bits -= 8
                            out[o] = UInt8(truncatingIfNeeded: accumulator >> UInt32(bits))
                            o += 1
                        }
                        i += 1
                    }
                    return o
                }
                return valid ? output : nil
            }
        }
        return result ?? nil
    }
}
