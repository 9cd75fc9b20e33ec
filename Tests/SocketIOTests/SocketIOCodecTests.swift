import EngineIO
import NIOCore
import Testing

@testable import SocketIO

@Suite("Socket.IO packet codec")
struct SocketIOCodecTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let wire: String
        let packet: SocketIOPacket
        var testDescription: String { wire }
    }

    static let cases: [Case] = [
        .init(wire: "0", packet: SocketIOPacket(type: .connect)),
        .init(wire: "0/admin,", packet: SocketIOPacket(type: .connect, namespace: "/admin")),
        .init(wire: #"0{"token":"123"}"#, packet: SocketIOPacket(type: .connect, data: ["token": "123"])),
        .init(
            wire: #"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#,
            packet: SocketIOPacket(type: .connect, namespace: "/admin", data: ["sid": "oSO0OpakMV_3jnilAAAA"])),
        .init(wire: "1", packet: SocketIOPacket(type: .disconnect)),
        .init(wire: "1/admin,", packet: SocketIOPacket(type: .disconnect, namespace: "/admin")),
        .init(wire: #"2["hello",1]"#, packet: SocketIOPacket(type: .event, data: ["hello", 1])),
        .init(
            wire: #"2/admin,456["project:delete",123]"#,
            packet: SocketIOPacket(type: .event, namespace: "/admin", id: 456, data: ["project:delete", 123])),
        .init(
            wire: #"212["x",null,true,false,-1.5,"a\"b\\c\n"]"#,
            packet: SocketIOPacket(type: .event, id: 12, data: ["x", nil, true, false, -1.5, "a\"b\\c\n"])),
        .init(wire: "3/admin,456[]", packet: SocketIOPacket(type: .ack, namespace: "/admin", id: 456, data: [])),
        .init(wire: #"31["ok"]"#, packet: SocketIOPacket(type: .ack, id: 1, data: ["ok"])),
        .init(wire: #"4{"message":"Invalid namespace"}"#, packet: SocketIOPacket(type: .connectError, data: ["message": "Invalid namespace"])),
        .init(
            wire: #"4/admin,{"message":"Not authorized"}"#,
            packet: SocketIOPacket(type: .connectError, namespace: "/admin", data: ["message": "Not authorized"])),
    ]

    @Test("every packet type decodes and encodes back to the same text", arguments: cases)
    func roundTrip(_ testCase: Case) throws {
        var decoder = SocketIODecoder()
        let decoded = try decoder.decode(.text(ByteBuffer(string: testCase.wire)))
        #expect(decoded == testCase.packet)
        let (text, attachments) = SocketIOEncoder.encode(testCase.packet)
        #expect(attachments.isEmpty)
        #expect(String(buffer: text) == testCase.wire)
    }

    @Test("binary arguments become placeholders and attachments, and come back in place")
    func binaryRoundTrip() throws {
        let first = ByteBuffer(bytes: [1, 2, 3])
        let second = ByteBuffer(bytes: [4])
        let packet = SocketIOPacket(type: .event, namespace: "/admin", id: 7, data: ["upload", .binary(first), ["nested": .binary(second)]])
        let (text, attachments) = SocketIOEncoder.encode(packet)
        #expect(String(buffer: text).hasPrefix(#"52-/admin,7["upload",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]"#))
        #expect(attachments == [first, second])

        var decoder = SocketIODecoder()
        #expect(try decoder.decode(.text(text)) == nil)
        #expect(try decoder.decode(.binary(first)) == nil)
        var expected = packet
        expected.type = .binaryEvent
        #expect(try decoder.decode(.binary(second)) == expected)
    }

    @Test("a binary ack is reassembled")
    func binaryAck() throws {
        var decoder = SocketIODecoder()
        #expect(try decoder.decode(.text(ByteBuffer(string: #"61-3[{"_placeholder":true,"num":0}]"#))) == nil)
        let packet = try decoder.decode(.binary(ByteBuffer(bytes: [9])))
        #expect(packet == SocketIOPacket(type: .binaryAck, id: 3, data: [.binary(ByteBuffer(bytes: [9]))]))
    }

    struct Bad: CustomTestStringConvertible, Sendable {
        let wire: String
        let error: SocketIOCodecError
        var testDescription: String { "\(wire.debugDescription) → \(error)" }
    }

    static let badInputs: [Bad] = [
        .init(wire: "", error: .empty),
        .init(wire: "7", error: .unknownType(UInt8(ascii: "7"))),
        .init(wire: "a", error: .unknownType(UInt8(ascii: "a"))),
        .init(wire: #"5["x"]"#, error: .invalidAttachmentCount),
        .init(wire: #"51["x"]"#, error: .invalidAttachmentCount),
        .init(wire: #"2["x""#, error: .invalidPayload("invalid JSON at byte 4: unexpected end of input")),
        .init(wire: #"2{"a":1}"#, error: .invalidPayload("EVENT data must be a non-empty array")),
        .init(wire: "2[]", error: .invalidPayload("EVENT data must be a non-empty array")),
        .init(wire: "2", error: .invalidPayload("EVENT data must be a non-empty array")),
        .init(wire: #"2[{}]"#, error: .invalidPayload("the event name must be a string or a number")),
        .init(wire: #"2["disconnect"]"#, error: .invalidPayload("'disconnect' is a reserved event name")),
        .init(wire: #"3{"a":1}"#, error: .invalidPayload("ACK data must be an array")),
        .init(wire: #"0"abc""#, error: .invalidPayload("CONNECT data must be an object")),
        .init(wire: #"1{}"#, error: .invalidPayload("DISCONNECT carries no data")),
        .init(wire: #"2["a"] x"#, error: .invalidPayload("invalid JSON at byte 6: unexpected data after the value")),
        .init(wire: "299999999999999999999999[\"a\"]", error: .invalidID),
        .init(wire: #"511-["x"]"#, error: .tooManyAttachments(11, limit: 10)),
        .init(wire: #"510000-["x"]"#, error: .tooManyAttachments(10000, limit: 10)),
        .init(wire: #"2["a\q"]"#, error: .invalidPayload("invalid JSON at byte 5: invalid escape")),
    ]

    @Test("malformed packets each give a specific error", arguments: badInputs)
    func malformed(_ input: Bad) {
        var decoder = SocketIODecoder()
        #expect(throws: input.error) { try decoder.decode(.text(ByteBuffer(string: input.wire))) }
    }

    @Test("the attachment limit is the decoder's: ten by default, as configured otherwise")
    func attachmentLimit() throws {
        var decoder = SocketIODecoder()
        #expect(try decoder.decode(.text(ByteBuffer(string: #"510-["x"]"#))) == nil)
        var strict = SocketIODecoder(maxAttachments: 1)
        #expect(throws: SocketIOCodecError.tooManyAttachments(2, limit: 1)) { try strict.decode(.text(ByteBuffer(string: #"52-["x"]"#))) }
    }

    @Test("attachments out of order with the text are refused")
    func attachmentStateErrors() throws {
        var decoder = SocketIODecoder()
        #expect(throws: SocketIOCodecError.unexpectedBinary) { try decoder.decode(.binary(ByteBuffer(bytes: [1]))) }
        _ = try decoder.decode(.text(ByteBuffer(string: #"51-["x",{"_placeholder":true,"num":0}]"#)))
        #expect(throws: SocketIOCodecError.unexpectedText) { try decoder.decode(.text(ByteBuffer(string: "2[\"y\"]"))) }

        var other = SocketIODecoder()
        _ = try other.decode(.text(ByteBuffer(string: #"51-["x",{"_placeholder":true,"num":3}]"#)))
        #expect(throws: SocketIOCodecError.invalidPlaceholder) { try other.decode(.binary(ByteBuffer(bytes: [1]))) }
    }

    @Test(
        "raw JSON arguments are spliced after the event name",
        arguments: [
            ("[1,{\"a\":2}]", #"2["item_added",1,{"a":2}]"#),
            ("[]", #"2["item_added"]"#),
            (" [ ] ", #"2["item_added"]"#),
            ("[\"x\"]", #"2["item_added","x"]"#),
        ])
    func rawJSONEvent(arguments: String, wire: String) {
        let text = SocketIOEncoder.encodeEvent("item_added", jsonArguments: ByteBuffer(string: arguments))
        #expect(String(buffer: text) == wire)
    }

    @Test("raw JSON events carry their namespace and ack id")
    func rawJSONEventNamespace() {
        let text = SocketIOEncoder.encodeEvent("e", jsonArguments: ByteBuffer(string: "[true]"), namespace: "/feed", id: 3)
        #expect(String(buffer: text) == #"2/feed,3["e",true]"#)
    }
}

@Suite("JSON reader and writer")
struct JSONTests {
    static let values: [SocketIOValue] = [
        .null, true, false, 0, -12, 1.5, 1e300, "", "ünïcødé ✓ 😀", "\u{1}\t\"\\/",
        [1, [2, [3, []]]], ["a": ["b": nil], "c": [true]],
    ]

    @Test("values survive a write and a parse", arguments: values)
    func roundTrip(_ value: SocketIOValue) throws {
        var buffer = ByteBuffer()
        JSON.write(value, into: &buffer, attachments: nil)
        #expect(try JSON.parse(buffer.readableBytesView) == value)
    }

    static let readable: [(String, SocketIOValue)] = [
        (#""\u00e9\ud83d\ude00\n\/""#, .string("é😀\n/")),
        // Lone surrogates become U+FFFD, as JSON.parse's strings reach UTF-8; the validator
        // accepts them too (a disagreement found by fuzz-json).
        (#""\ud83d\ucad0""#, .string("\u{FFFD}\u{CAD0}")),
        (#""\ud83d\ud83d\ude00""#, .string("\u{FFFD}😀")),
        (#""\ude00x""#, .string("\u{FFFD}x")),
        (" { \"a\" : [ 1 , 2 ] } ", ["a": [1, 2]]),
        ("-0.5e2", -50),
    ]

    @Test("a number past Double's range reads as an infinity and is written as null, as in JavaScript (fuzz-json)")
    func outOfRangeNumber() throws {
        let value = try JSON.parse(ByteBuffer(string: "[-2.5e380]").readableBytesView)
        #expect(value == [.number(-.infinity)])
        var written = ByteBuffer()
        JSON.write(value, into: &written, attachments: nil)
        #expect(String(buffer: written) == "[null]")
    }

    @Test("escapes, surrogate pairs and whitespace are read", arguments: readable)
    func parsing(text: String, value: SocketIOValue) throws {
        #expect(try JSON.parse(ByteBuffer(string: text).readableBytesView) == value)
        try RawJSON.validate(ByteBuffer(string: text))
    }

    @Test(
        "invalid JSON is refused",
        arguments: ["", "{", "[1,]", "01", "1.", "tru", "\"\u{1}\"", "{\"a\" 1}", "nul", "[1 2]", String(repeating: "[", count: 200)])
    func invalid(_ text: String) {
        #expect(throws: JSONError.self) { try JSON.parse(ByteBuffer(string: text).readableBytesView) }
    }
}

@Suite("Ordered JSON objects")
struct SocketIOObjectTests {
    @Test("members keep the order they arrived in through a decode and an encode")
    func orderKept() throws {
        let text = #"{"zeta":1,"alpha":2,"mid":{"b":1,"a":2},"yy":3}"#
        let value = try SocketIOValue(json: ByteBuffer(string: text))
        #expect(String(buffer: value.jsonBytes) == text)
        #expect(value.objectValue?.keys == ["zeta", "alpha", "mid", "yy"])
    }

    @Test("a repeated key keeps its first place and its last value, as JavaScript does")
    func repeatedKey() throws {
        let value = try SocketIOValue(json: ByteBuffer(string: #"{"a":1,"b":2,"a":3}"#))
        #expect(String(buffer: value.jsonBytes) == #"{"a":3,"b":2}"#)
    }

    @Test("equality ignores member order; setting nil removes a member")
    func equalityAndRemoval() {
        var object: SocketIOObject = ["a": 1, "b": 2]
        #expect(object == ["b": 2, "a": 1])
        #expect(object.hashValue == SocketIOObject(["b": 2, "a": 1]).hashValue)
        object["a"] = nil
        object["c"] = true
        #expect(object.keys == ["b", "c"])
        #expect(object != ["b": 2])
    }
}
