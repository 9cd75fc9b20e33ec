/// Why bytes received from a client could not be decoded as Engine.IO packets.
public struct EngineIOCodecError: Error, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        case emptyPacket
        case unknownPacketType(UInt8)
        case invalidBase64
        case binaryNotMessage
        case invalidLength
        case invalidUTF8
    }

    private let kind: Kind

    /// A packet with no type character (for example two adjacent separators).
    public static let emptyPacket = Self(kind: .emptyPacket)
    /// The first character of a packet is not one of `0`…`6` (or `b` in a polling payload).
    public static func unknownPacketType(_ byte: UInt8) -> Self { Self(kind: .unknownPacketType(byte)) }
    /// A `b`-prefixed polling packet whose data is not valid base64.
    public static let invalidBase64 = Self(kind: .invalidBase64)
    /// Raw binary data can only be a message packet.
    public static let binaryNotMessage = Self(kind: .binaryNotMessage)
    /// An Engine.IO v3 payload whose packet lengths do not match its bytes.
    public static let invalidLength = Self(kind: .invalidLength)
    /// An Engine.IO v3 text payload that is not UTF-8.
    public static let invalidUTF8 = Self(kind: .invalidUTF8)

    public var description: String {
        switch kind {
        case .emptyPacket: "empty Engine.IO packet"
        case .unknownPacketType(let byte): "unknown Engine.IO packet type \(Self.describe(byte))"
        case .invalidBase64: "binary polling packet is not valid base64"
        case .binaryNotMessage: "binary data can only be sent as a message packet"
        case .invalidLength: "Engine.IO v3 payload with a packet length that does not match its bytes"
        case .invalidUTF8: "Engine.IO v3 text payload that is not UTF-8"
        }
    }

    private static func describe(_ byte: UInt8) -> String {
        (0x20..<0x7f).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x\(String(byte, radix: 16))"
    }
}
