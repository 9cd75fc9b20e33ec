import NIOCore
import Testing

@testable import EngineIO

@Suite("Engine.IO packet and payload codec")
struct EngineIOCodecTests {
    struct TextCase: CustomTestStringConvertible, Sendable {
        let wire: String
        let type: EngineIOPacketType
        let text: String?
        var testDescription: String { "\"\(wire)\"" }
    }

    static let textCases: [TextCase] = [
        .init(wire: "0{\"sid\":\"x\"}", type: .open, text: "{\"sid\":\"x\"}"),
        .init(wire: "1", type: .close, text: nil),
        .init(wire: "2", type: .ping, text: nil),
        .init(wire: "2probe", type: .ping, text: "probe"),
        .init(wire: "3", type: .pong, text: nil),
        .init(wire: "3probe", type: .pong, text: "probe"),
        .init(wire: "4hello €", type: .message, text: "hello €"),
        .init(wire: "4", type: .message, text: ""),
        .init(wire: "5", type: .upgrade, text: nil),
        .init(wire: "6", type: .noop, text: nil),
    ]

    @Test("every packet type decodes from text and encodes back to the same text", arguments: textCases)
    func textRoundTrip(_ testCase: TextCase) throws {
        let packet = try EngineIOCodec.decodePacket(text: ByteBuffer(string: testCase.wire))
        #expect(packet.type == testCase.type)
        #expect(packet.text == testCase.text)
        let encoded = EngineIOCodec.encodeForWebSocket(packet)
        #expect(!encoded.isBinary)
        #expect(String(buffer: encoded.bytes) == testCase.wire)
        #expect(String(buffer: EngineIOCodec.encodePayload([packet])) == testCase.wire)
    }

    @Test("a binary WebSocket frame is a binary message")
    func binaryFrame() {
        let packet = EngineIOCodec.decodePacket(binary: ByteBuffer(bytes: [1, 2, 3]))
        #expect(packet == EngineIOPacket(.message, .binary(ByteBuffer(bytes: [1, 2, 3]))))
        #expect(EngineIOCodec.encodeForWebSocket(packet).isBinary)
    }

    @Test("a polling payload splits on the record separator and decodes base64 binary")
    func payloadDecoding() throws {
        let packets = try EngineIOCodec.decodePayload(ByteBuffer(string: "4hello\u{1e}bAQID\u{1e}2\u{1e}4"))
        #expect(
            packets == [
                EngineIOPacket(.message, text: "hello"),
                EngineIOPacket(.message, .binary(ByteBuffer(bytes: [1, 2, 3]))),
                EngineIOPacket(.ping),
                EngineIOPacket(.message, text: ""),
            ])
    }

    @Test(
        "binary messages are written as b + base64 in a polling payload",
        arguments: [
            ([UInt8](), "b"), ([0x01], "bAQ=="), ([0x01, 0x02], "bAQI="), ([0x01, 0x02, 0x03], "bAQID"), ([0xff, 0xfe, 0xfd, 0xfc], "b//79/A=="),
        ])
    func payloadEncodingBinary(bytes: [UInt8], wire: String) throws {
        let packet = EngineIOPacket(.message, .binary(ByteBuffer(bytes: bytes)))
        #expect(String(buffer: EngineIOCodec.encodePayload([packet])) == wire)
        #expect(try EngineIOCodec.decodePayload(ByteBuffer(string: wire)) == [packet])
    }

    @Test("packets are joined with the record separator")
    func payloadEncoding() {
        let body = EngineIOCodec.encodePayload([EngineIOPacket(.message, text: "a"), EngineIOPacket(.noop), EngineIOPacket(.close)])
        #expect(String(buffer: body) == "4a\u{1e}6\u{1e}1")
    }

    struct BadInput: CustomTestStringConvertible, Sendable {
        let payload: String
        let error: EngineIOCodecError
        var testDescription: String { "\(payload.debugDescription) → \(error)" }
    }

    static let badPayloads: [BadInput] = [
        .init(payload: "", error: .emptyPacket),
        .init(payload: "4a\u{1e}\u{1e}4b", error: .emptyPacket),
        .init(payload: "4a\u{1e}", error: .emptyPacket),
        .init(payload: "7", error: .unknownPacketType(UInt8(ascii: "7"))),
        .init(payload: "x4", error: .unknownPacketType(UInt8(ascii: "x"))),
        .init(payload: "b!!!", error: .invalidBase64),
        .init(payload: "bAQ=x", error: .invalidBase64),
    ]

    @Test("malformed payloads each give a specific error", arguments: badPayloads)
    func malformedPayloads(_ input: BadInput) {
        #expect(throws: input.error) { try EngineIOCodec.decodePayload(ByteBuffer(string: input.payload)) }
    }

    @Test("pre-encoded WebSocket frames carry the right header for each length", arguments: [0, 1, 125, 126, 65535, 65536])
    func webSocketFrameHeader(length: Int) {
        let text = ByteBuffer(repeating: UInt8(ascii: "a"), count: max(length - 1, 0))
        let frame = EngineIOFrame.message(text).webSocketFrame
        let payloadLength = text.readableBytes + 1
        #expect(frame.getInteger(at: 0, as: UInt8.self) == 0x81)
        let second = frame.getInteger(at: 1, as: UInt8.self)!
        switch payloadLength {
        case ..<126:
            #expect(Int(second) == payloadLength)
            #expect(frame.readableBytes == payloadLength + 2)
        case ...65535:
            #expect(second == 126)
            #expect(frame.getInteger(at: 2, as: UInt16.self).map(Int.init) == payloadLength)
            #expect(frame.readableBytes == payloadLength + 4)
        default:
            #expect(second == 127)
            #expect(frame.getInteger(at: 2, as: UInt64.self).map(Int.init) == payloadLength)
            #expect(frame.readableBytes == payloadLength + 10)
        }
        #expect(frame.getInteger(at: frame.readableBytes - payloadLength, as: UInt8.self) == UInt8(ascii: "4"))
    }

    @Test("request errors carry the reference server's codes, statuses and messages")
    func requestErrors() {
        let table: [(EngineIORequestError, Int, Int, String)] = [
            (.unknownTransport, 0, 400, "Transport unknown"),
            (.unknownSessionID, 1, 400, "Session ID unknown"),
            (.badHandshakeMethod, 2, 400, "Bad handshake method"),
            (.badRequest, 3, 400, "Bad request"),
            (.forbidden, 4, 403, "Forbidden"),
            (.unsupportedProtocolVersion, 5, 400, "Unsupported protocol version"),
        ]
        for (error, code, status, message) in table {
            #expect(error.code == code && error.status == status && error.message == message)
            #expect(error.jsonBody == #"{"code":\#(code),"message":"\#(message)"}"#)
        }
    }

    @Test("query strings are split and percent-decoded")
    func query() {
        let (path, query) = EngineIOQuery.parse(uri: "/socket.io/?EIO=4&transport=polling&t=a%20b+c&flag")
        #expect(path == "/socket.io/")
        #expect(query == ["EIO": "4", "transport": "polling", "t": "a b c", "flag": ""])
    }

    @Test("session and socket ids are 20 URL-safe characters, and every character position varies")
    func randomIDs() {
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let ids = (0..<2000).map { _ in RandomID.make() }
        #expect(Set(ids).count == ids.count)
        for id in ids { #expect(id.count == 20 && id.allSatisfy(alphabet.contains)) }
        // 2000 draws of 6 random bits leave no position with fewer than 40 of its 64 characters.
        for position in 0..<20 {
            let characters = Set(ids.map { Array($0)[position] })
            #expect(characters.count > 40, "position \(position) took \(characters.count) characters")
        }
    }
}
