import NIOCore
import Testing

@testable import EngineIO

@Suite("Engine.IO v3 polling payloads")
struct EngineIOCodecV3Tests {
    static func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

    @Test(
        "text framing: lengths in UTF-16 code units, binary as b4 and base64",
        arguments: [
            ([EngineIOPacket(.message, text: "hello")], "6:4hello"),
            ([EngineIOPacket(.ping), EngineIOPacket(.message, text: "é💡")], "1:24:4é💡"),
            ([EngineIOPacket(.message, .binary(ByteBuffer(bytes: [1, 2, 3, 4])))], "10:b4AQIDBA=="),
            ([EngineIOPacket(.noop)], "1:6"),
        ])
    func textFraming(_ packets: [EngineIOPacket], _ text: String) throws {
        let (body, isBinary) = EngineIOCodecV3.encodePayload(packets, binary: false)
        #expect(!isBinary)
        #expect(String(buffer: body) == text)
        #expect(try EngineIOCodecV3.decodePayload(ByteBuffer(string: text)) == packets)
    }

    @Test("binary framing: kind, decimal digits as bytes, 0xFF, then the packet; only with a binary packet")
    func binaryFraming() throws {
        let packets = [EngineIOPacket(.message, text: "é"), EngineIOPacket(.message, .binary(ByteBuffer(bytes: [9, 8])))]
        let (body, isBinary) = EngineIOCodecV3.encodePayload(packets, binary: true)
        #expect(isBinary)
        #expect(Self.bytes(body) == [0, 3, 0xFF, 0x34, 0xC3, 0xA9, 1, 3, 0xFF, 4, 9, 8])
        #expect(try EngineIOCodecV3.decodePayload(body) == packets)
        // Text only: the text framing, even for a client that takes binary.
        #expect(EngineIOCodecV3.encodePayload([EngineIOPacket(.pong)], binary: true).isBinary == false)
        // python-engineio 3.x POSTs text packets in the binary framing: "2" then "4hi".
        let posted = ByteBuffer(bytes: [0, 1, 0xFF, 0x32, 0, 3, 0xFF, 0x34, 0x68, 0x69])
        #expect(try EngineIOCodecV3.decodePayload(posted) == [EngineIOPacket(.ping), EngineIOPacket(.message, text: "hi")])
    }

    @Test(
        "malformed payloads are refused",
        arguments: [
            ("", EngineIOCodecError.emptyPacket),
            ("5:4hi", .invalidLength),
            ("x:4hi", .invalidLength),
            ("2:4h1:", .invalidLength),
            ("2:4h0:", .emptyPacket),
            ("4:b4!!", .invalidBase64),
            ("1:9", .unknownPacketType(0x39)),
            // A length that ends between the two UTF-16 units of one character.
            ("2:4💡", .invalidLength),
        ])
    func refusals(_ text: String, _ error: EngineIOCodecError) {
        #expect(throws: error) { try EngineIOCodecV3.decodePayload(ByteBuffer(string: text)) }
    }

    @Test("a text payload that is not UTF-8 is refused (found by fuzz-engineio-payload)")
    func invalidUTF8() {
        #expect(throws: EngineIOCodecError.invalidUTF8) {
            try EngineIOCodecV3.decodePayload(ByteBuffer(bytes: [0x37, 0x3A, 0x34, 0x68, 0x01, 0x03, 0xFF, 0x00, 0x74, 0x69, 0x7F]))
        }
        // A string packet of the binary framing, likewise.
        #expect(throws: EngineIOCodecError.invalidUTF8) { try EngineIOCodecV3.decodePayload(ByteBuffer(bytes: [0, 0, 3, 0xFF, 0x36, 0x01, 0xFF])) }
    }

    @Test("binary framing refusals: a digit past 9, a binary packet that is not a message, a short packet")
    func binaryRefusals() {
        #expect(throws: EngineIOCodecError.invalidLength) { try EngineIOCodecV3.decodePayload(ByteBuffer(bytes: [0, 12, 0xFF, 0x34])) }
        #expect(throws: EngineIOCodecError.binaryNotMessage) { try EngineIOCodecV3.decodePayload(ByteBuffer(bytes: [1, 2, 0xFF, 2, 7])) }
        #expect(throws: EngineIOCodecError.invalidLength) { try EngineIOCodecV3.decodePayload(ByteBuffer(bytes: [0, 5, 0xFF, 0x34])) }
    }
}
