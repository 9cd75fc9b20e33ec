import EngineIO
import NIOCore
import Testing

@testable import SocketIO

@Suite("socket.io-msgpack-parser packets")
struct SocketIOMessagePackParserTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        /// The bytes, as python-socketio's `msgpack.dumps` writes the same packet (the keys in
        /// the reference server's order: type, data, id, nsp).
        let hex: String
        let packet: SocketIOPacket
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        .init(
            name: "CONNECT with auth", hex: "83a47479706500a46461746181a5746f6b656ea3616263a36e7370a12f",
            packet: SocketIOPacket(type: .connect, data: ["token": "abc"])),
        .init(
            name: "CONNECT reply in a namespace", hex: "83a47479706500a46461746181a3736964a27331a36e7370a62f61646d696e",
            packet: SocketIOPacket(type: .connect, namespace: "/admin", data: ["sid": "s1"])),
        .init(name: "DISCONNECT", hex: "82a47479706501a36e7370a12f", packet: SocketIOPacket(type: .disconnect)),
        .init(
            name: "EVENT with binary, null and an ack id",
            hex: "84a47479706502a46461746194a568656c6c6f01c40200ff81a161c0a2696407a36e7370a12f",
            packet: SocketIOPacket(type: .event, id: 7, data: ["hello", 1, .binary(ByteBuffer(bytes: [0, 0xff])), ["a": nil]])),
        .init(
            name: "ACK with a float", hex: "84a47479706503a46461746192a26f6bcb3ff8000000000000a2696407a36e7370a12f",
            packet: SocketIOPacket(type: .ack, id: 7, data: ["ok", 1.5])),
        .init(
            name: "CONNECT_ERROR",
            hex: "83a47479706504a46461746181a76d657373616765ae6e6f7420617574686f72697a6564a36e7370a82f70726976617465",
            packet: SocketIOPacket(type: .connectError, namespace: "/private", data: ["message": "not authorized"])),
    ]

    static func bytes(_ hex: String) -> ByteBuffer {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return ByteBuffer(bytes: bytes)
    }

    @Test("every packet type is one binary message, written as python-socketio writes it and read back", arguments: cases)
    func roundTrip(_ test: Case) throws {
        let payloads = SocketIOParser.msgpack.encode(test.packet)
        #expect(payloads == [.binary(Self.bytes(test.hex))])
        var decoder = SocketIODecoder(parser: .msgpack)
        #expect(try decoder.decode(.binary(Self.bytes(test.hex))) == test.packet)
    }

    @Test("binary packet types are written as EVENT and ACK: binary values stay inline")
    func binaryTypes() throws {
        let event = SocketIOPacket(type: .binaryEvent, data: ["file", .binary(ByteBuffer(bytes: [1]))])
        let decoded = try SocketIOParser.msgpack.decode(SocketIOParser.msgpack.encode(event))
        #expect(decoded.type == .event)
        #expect(decoded.data == event.data)
    }

    @Test(
        "what other clients send is read: python-socketio's DISCONNECT with data nil, notepack's undefined CONNECT data, and extra keys",
        arguments: [
            ("83a47479706501a464617461c0a36e7370a12f", SocketIOPacket(type: .disconnect)),
            // {type: 0, data: undefined, nsp: "/"} as notepack.io writes it.
            ("83a47479706500a464617461d40000a36e7370a12f", SocketIOPacket(type: .connect)),
            // The JavaScript client's {type, data, options: {compress: true}, nsp}.
            (
                "84a47479706502a46461746191a161a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f",
                SocketIOPacket(type: .event, data: ["a"])
            ),
        ])
    func otherWriters(_ hex: String, _ packet: SocketIOPacket) throws {
        var decoder = SocketIODecoder(parser: .msgpack)
        #expect(try decoder.decode(.binary(Self.bytes(hex))) == packet)
    }

    @Test(
        "malformed packets are refused as the reference parser refuses them",
        arguments: [
            ("c0", "invalid payload: a msgpack packet must be a map"),
            ("a161", "invalid payload: a msgpack packet must be a map"),
            ("82a47479706505a36e7370a12f", "invalid payload: invalid packet type"),
            ("82a474797065cb3ff8000000000000a36e7370a12f", "invalid payload: invalid packet type"),
            ("81a47479706501", "invalid payload: invalid namespace"),
            ("82a47479706501a36e737001", "invalid payload: invalid namespace"),
            ("83a47479706502a46461746191a161a36e7370a12fc0", "invalid payload: invalid MessagePack at byte 21: 1 bytes after the value"),
            ("84a47479706502a46461746191a161a26964a178a36e7370a12f", "acknowledgement id out of range"),
            ("84a47479706502a46461746191a161a26964cb3ff8000000000000a36e7370a12f", "acknowledgement id out of range"),
            ("84a47479706502a46461746191a161a26964ffa36e7370a12f", "acknowledgement id out of range"),
            ("83a47479706502a46461746190a36e7370a12f", "invalid payload: EVENT data must be a non-empty array"),
            ("83a47479706501a46461746190a36e7370a12f", "invalid payload: DISCONNECT carries no data"),
            ("83a47479706500a464617461a178a36e7370a12f", "invalid payload: CONNECT data must be an object"),
            ("83a474797065", "invalid payload: invalid MessagePack at byte 1: truncated: 3 members announced"),
        ])
    func refusals(_ hex: String, _ reason: String) {
        var decoder = SocketIODecoder(parser: .msgpack)
        do {
            _ = try decoder.decode(.binary(Self.bytes(hex)))
            Issue.record("\(hex) was accepted")
        } catch {
            #expect(error.description == reason)
        }
    }

    @Test("a text message is refused: every msgpack packet is binary")
    func textRefused() {
        var decoder = SocketIODecoder(parser: .msgpack)
        #expect(throws: SocketIOCodecError.textWithMessagePack) { try decoder.decode(.text(ByteBuffer(string: #"2["a"]"#))) }
    }

    @Test("an event from raw JSON is parsed once into MessagePack, its offset appended")
    func splicedEvent() throws {
        let payloads = SocketIOParser.msgpack.encodeEvent(
            "item_added", jsonArguments: ByteBuffer(string: #" [{"id": 1, "tags": ["a"]}, 2.5] "#), namespace: "/items", id: nil,
            trailingString: "17")
        let packet = try SocketIOParser.msgpack.decode(payloads)
        #expect(packet == SocketIOPacket(type: .event, namespace: "/items", data: ["item_added", ["id": 1, "tags": ["a"]], 2.5, "17"]))
        let empty = try SocketIOParser.msgpack.decode(
            SocketIOParser.msgpack.encodeEvent("ping", jsonArguments: ByteBuffer(string: "[]"), namespace: "/", id: nil, trailingString: nil))
        #expect(empty.data == ["ping"])
    }
}
