import NIOCore

/// Standard base64 (RFC 4648, with padding), as the polling transport carries binary packets.
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
        buffer.reserveCapacity(minimumWritableBytes: (count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        var remaining = count
        while remaining >= 3 {
            let a = iterator.next()!, b = iterator.next()!, c = iterator.next()!
            buffer.writeBytes([
                alphabet[Int(a >> 2)],
                alphabet[Int((a & 0x03) << 4 | b >> 4)],
                alphabet[Int((b & 0x0f) << 2 | c >> 6)],
                alphabet[Int(c & 0x3f)],
            ])
            remaining -= 3
        }
        if remaining == 2 {
            let a = iterator.next()!, b = iterator.next()!
            buffer.writeBytes([
                alphabet[Int(a >> 2)], alphabet[Int((a & 0x03) << 4 | b >> 4)], alphabet[Int((b & 0x0f) << 2)], UInt8(ascii: "="),
            ])
        } else if remaining == 1 {
            let a = iterator.next()!
            buffer.writeBytes([alphabet[Int(a >> 2)], alphabet[Int((a & 0x03) << 4)], UInt8(ascii: "="), UInt8(ascii: "=")])
        }
    }

    /// Decodes base64 text (padding optional); `nil` when it is not valid base64.
    static func decode(_ text: ByteBufferView) -> ByteBuffer? {
        var output = ByteBuffer()
        output.reserveCapacity(text.count / 4 * 3 + 3)
        var accumulator: UInt32 = 0
        var bits = 0
        var padding = 0
        for byte in text {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            guard padding == 0 else { return nil }
            let value = reverse[Int(byte)]
            guard value != 0xff else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.writeInteger(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        guard padding <= 2, bits < 6 else { return nil }
        return output
    }
}
