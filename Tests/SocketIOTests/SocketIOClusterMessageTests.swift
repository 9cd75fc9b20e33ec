import NIOCore
import Testing

@testable import SocketIO

@Suite("Cluster messages: the adapter protocol's JSON and MessagePack")
struct SocketIOClusterMessageTests {
    struct Golden: CustomTestStringConvertible, Sendable {
        let name: String
        let message: SocketIOClusterMessage
        let json: String
        var testDescription: String { name }
    }

    static let options: SocketIOValue = ["rooms": ["r1"], "except": [], "flags": [:]]

    /// One of each kind, written from the protocol (socket.io-adapter 2.5's `ClusterAdapter`):
    /// `{type, data, uid, nsp}` in that order; the broadcast is the one seen between two
    /// reference nodes (the inner packet carries no namespace).
    static let goldens: [Golden] = [
        Golden(
            name: "INITIAL_HEARTBEAT", message: .init(uid: "a1", namespace: "/", type: .initialHeartbeat),
            json: #"{"type":1,"uid":"a1","nsp":"/"}"#),
        Golden(name: "HEARTBEAT", message: .init(uid: "a1", namespace: "/", type: .heartbeat), json: #"{"type":2,"uid":"a1","nsp":"/"}"#),
        Golden(
            name: "BROADCAST",
            message: .init(
                uid: "a1", namespace: "/", type: .broadcast,
                data: ["packet": ["type": 2, "data": ["bcast", ["n": 1]]], "opts": options]),
            json:
                #"{"type":3,"data":{"packet":{"type":2,"data":["bcast",{"n":1}]},"opts":{"rooms":["r1"],"except":[],"flags":{}}},"uid":"a1","nsp":"/"}"#
        ),
        Golden(
            name: "BROADCAST with acks",
            message: .init(
                uid: "a1", namespace: "/chat", type: .broadcast,
                data: [
                    "packet": ["type": 2, "data": ["ask"]], "requestId": "9f", "opts": ["rooms": [], "except": ["x"], "flags": ["timeout": 5000]],
                ]
            ),
            json:
                #"{"type":3,"data":{"packet":{"type":2,"data":["ask"]},"requestId":"9f","opts":{"rooms":[],"except":["x"],"flags":{"timeout":5000}}},"uid":"a1","nsp":"/chat"}"#
        ),
        Golden(
            name: "SOCKETS_JOIN", message: .init(uid: "a1", namespace: "/", type: .socketsJoin, data: ["opts": options, "rooms": ["r2"]]),
            json: #"{"type":4,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":["r2"]},"uid":"a1","nsp":"/"}"#),
        Golden(
            name: "SOCKETS_LEAVE", message: .init(uid: "a1", namespace: "/", type: .socketsLeave, data: ["opts": options, "rooms": ["r2"]]),
            json: #"{"type":5,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":["r2"]},"uid":"a1","nsp":"/"}"#),
        Golden(
            name: "DISCONNECT_SOCKETS", message: .init(uid: "a1", namespace: "/", type: .disconnectSockets, data: ["opts": options, "close": true]),
            json: #"{"type":6,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"close":true},"uid":"a1","nsp":"/"}"#),
        Golden(
            name: "FETCH_SOCKETS", message: .init(uid: "a1", namespace: "/", type: .fetchSockets, data: ["opts": options, "requestId": "r-1"]),
            json: #"{"type":7,"data":{"opts":{"rooms":["r1"],"except":[],"flags":{}},"requestId":"r-1"},"uid":"a1","nsp":"/"}"#),
        Golden(
            name: "FETCH_SOCKETS_RESPONSE",
            message: .init(
                uid: "b2", namespace: "/", type: .fetchSocketsResponse,
                data: [
                    "requestId": "r-1",
                    "sockets": [["id": "s1", "handshake": ["address": "127.0.0.1", "auth": [:]], "rooms": ["s1", "r1"], "data": [:]]],
                ]),
            json:
                #"{"type":8,"data":{"requestId":"r-1","sockets":[{"id":"s1","handshake":{"address":"127.0.0.1","auth":{}},"rooms":["s1","r1"],"data":{}}]},"uid":"b2","nsp":"/"}"#
        ),
        Golden(
            name: "SERVER_SIDE_EMIT",
            message: .init(uid: "a1", namespace: "/", type: .serverSideEmit, data: ["requestId": "e-1", "packet": ["ping", 1]]),
            json: #"{"type":9,"data":{"requestId":"e-1","packet":["ping",1]},"uid":"a1","nsp":"/"}"#),
        Golden(
            // The answer is the first ack argument, not an array of them (as seen from the reference).
            name: "SERVER_SIDE_EMIT_RESPONSE",
            message: .init(uid: "b2", namespace: "/", type: .serverSideEmitResponse, data: ["requestId": "e-1", "packet": "pong"]),
            json: #"{"type":10,"data":{"requestId":"e-1","packet":"pong"},"uid":"b2","nsp":"/"}"#),
        Golden(
            name: "BROADCAST_CLIENT_COUNT",
            message: .init(uid: "b2", namespace: "/", type: .broadcastClientCount, data: ["requestId": "9f", "clientCount": 3]),
            json: #"{"type":11,"data":{"requestId":"9f","clientCount":3},"uid":"b2","nsp":"/"}"#),
        Golden(
            name: "BROADCAST_ACK", message: .init(uid: "b2", namespace: "/", type: .broadcastAck, data: ["requestId": "9f", "packet": ["ok"]]),
            json: #"{"type":12,"data":{"requestId":"9f","packet":["ok"]},"uid":"b2","nsp":"/"}"#),
        Golden(name: "ADAPTER_CLOSE", message: .init(uid: "a1", namespace: "/", type: .adapterClose), json: #"{"type":13,"uid":"a1","nsp":"/"}"#),
    ]

    @Test("each kind is written as the reference writes it, and read back", arguments: goldens)
    func golden(_ golden: Golden) throws {
        #expect(String(buffer: golden.message.json) == golden.json)
        #expect(try SocketIOClusterNotification(json: ByteBuffer(string: golden.json)) == .message(golden.message))
        #expect(try SocketIOClusterMessage(messagePack: golden.message.messagePack) == golden.message)
    }

    @Test("the reference's keys in any order are read, an emitter's uid included")
    func keyOrder() throws {
        let text = #"{"uid":"emitter","nsp":"/","type":3,"data":{"opts":{"rooms":[],"except":[],"flags":{}},"packet":{"type":2,"data":["e"]}}}"#
        guard case .message(let message) = try SocketIOClusterNotification(json: ByteBuffer(string: text)) else {
            Issue.record("not read as a message")
            return
        }
        #expect(message.uid == SocketIOClusterMessage.emitterUID)
        #expect(message.type == .broadcast)
        #expect(message.data?["packet"]?["data"] == ["e"])
    }

    @Test("an attachment header carries uid, type and the id as a string, and no namespace")
    func attachmentHeader() throws {
        let message = SocketIOClusterMessage(uid: "a1", namespace: "/", type: .broadcast, data: ["packet": ["type": 2, "data": ["e"]]])
        let header = SocketIOClusterNotification.attachmentHeader(of: message, id: "17")
        #expect(String(buffer: header) == #"{"uid":"a1","type":3,"attachmentId":"17"}"#)
        #expect(try SocketIOClusterNotification(json: header) == .attachment(uid: "a1", type: .broadcast, id: "17"))
        #expect(
            try SocketIOClusterNotification(json: ByteBuffer(string: #"{"uid":"a1","type":3,"attachmentId":17}"#))
                == .attachment(uid: "a1", type: .broadcast, id: "17"))
    }

    @Test(
        "what is not a cluster message is refused with the reason",
        arguments: [
            (#"[1,2]"#, "not a cluster message: not a JSON object"),
            (#"{"type":14,"uid":"a","nsp":"/"}"#, "not a cluster message: unknown type 14"),
            (#"{"type":"3","uid":"a","nsp":"/"}"#, "not a cluster message: no numeric 'type'"),
            (#"{"type":3,"nsp":"/"}"#, "not a cluster message: no string 'uid'"),
            (#"{"type":3,"uid":"a"}"#, "not a cluster message: no string 'nsp'"),
            (#"{"type":3,"uid":"a","attachmentId":[1]}"#, "not a cluster message: an 'attachmentId' that is no id"),
            (#"{"type":3,"#, "not a cluster message: invalid JSON at byte 10: expected a member name"),
        ])
    func refusals(_ text: String, _ reason: String) {
        #expect(throws: SocketIOClusterMessageError.self) { try SocketIOClusterNotification(json: ByteBuffer(string: text)) }
        do {
            _ = try SocketIOClusterNotification(json: ByteBuffer(string: text))
        } catch {
            #expect(error.description == reason)
        }
    }

    @Test("binary data, or JSON of 8000 bytes and more, makes a message an attachment")
    func attachmentThreshold() {
        let binary = SocketIOClusterMessage(
            uid: "a1", namespace: "/", type: .broadcast, data: ["packet": ["type": 2, "data": ["e", .binary(ByteBuffer(bytes: [1, 2]))]]])
        #expect(binary.needsAttachment())
        // The JSON without the text is 42 bytes: `{"type":9,"data":["` + `"],"uid":"a","nsp":"/"}`.
        func emit(_ length: Int) -> SocketIOClusterMessage {
            SocketIOClusterMessage(uid: "a", namespace: "/", type: .serverSideEmit, data: [.string(String(repeating: "x", count: length))])
        }
        #expect(emit(7957).json.readableBytes == 7999)
        #expect(emit(7957).needsAttachment() == false)
        #expect(emit(7958).needsAttachment() == true)
        #expect(!emit(100).needsAttachment(threshold: 200) && emit(200).needsAttachment(threshold: 200))
    }

    @Test("a socket in a FETCH_SOCKETS_RESPONSE, as the reference sends it, is read with its handshake")
    func remoteSocket() throws {
        let text = #"""
            {"id":"s1","handshake":{"headers":{"host":"127.0.0.1:3000","user-agent":"node"},"time":"Wed Dec 02 2026 20:00:00 GMT+0000 (Coordinated Universal Time)","address":"::ffff:127.0.0.1","xdomain":false,"secure":false,"issued":1796241600000,"url":"/socket.io/?EIO=4&transport=websocket","query":{"EIO":"4","transport":"websocket"},"auth":{"token":"t"}},"rooms":["s1","r1"],"data":{"user":"u"}}
            """#
        let socket = try #require(SocketIORemoteSocket(clusterValue: try JSON.parse(ByteBuffer(string: text).readableBytesView)))
        #expect(socket.id == "s1" && socket.rooms == ["s1", "r1"] && socket.data == ["user": "u"] && socket.local == nil)
        let handshake = try #require(socket.handshake)
        #expect(handshake.header("user-agent") == "node")
        #expect(handshake.address == "::ffff:127.0.0.1")
        #expect(handshake.issued == 1_796_241_600_000)
        #expect(handshake.url == "/socket.io/?EIO=4&transport=websocket")
        #expect(handshake.query == ["EIO": "4", "transport": "websocket"])
        #expect(handshake.auth == ["token": "t"])
        // Written back, it has the reference's keys.
        #expect(
            socket.clusterValue["handshake"]?.objectValue?.keys == [
                "headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth",
            ])
        #expect(socket.clusterValue["handshake"]?["time"] == "Wed Dec 02 2026 20:00:00 GMT+0000 (Coordinated Universal Time)")
        #expect(SocketIORemoteSocket.javaScriptTime(issued: 1_796_282_563_000) == "Thu Dec 03 2026 07:22:43 GMT+0000 (Coordinated Universal Time)")
        // A socket whose data was never set sends the reference's default, {}.
        let bare = try #require(SocketIORemoteSocket(clusterValue: ["id": "s2"]))
        #expect(bare.data == .null && bare.clusterValue["data"] == .object([:]))
        #expect(SocketIORemoteSocket(clusterValue: ["rooms": []]) == nil)
    }

    // MARK: MessagePack

    struct PackCase: CustomTestStringConvertible, Sendable {
        let value: SocketIOValue
        let bytes: [UInt8]
        var testDescription: String { "\(value) → \(bytes.prefix(12).map { String($0, radix: 16) })" }
    }

    /// From the MessagePack specification; numbers as JavaScript's `@msgpack/msgpack` writes
    /// them (safe integers in the smallest integer format, other numbers as float 64).
    static let packCases: [PackCase] = [
        PackCase(value: .null, bytes: [0xc0]),
        PackCase(value: false, bytes: [0xc2]),
        PackCase(value: true, bytes: [0xc3]),
        PackCase(value: 0, bytes: [0x00]),
        PackCase(value: 127, bytes: [0x7f]),
        PackCase(value: 128, bytes: [0xcc, 0x80]),
        PackCase(value: 255, bytes: [0xcc, 0xff]),
        PackCase(value: 256, bytes: [0xcd, 0x01, 0x00]),
        PackCase(value: 65536, bytes: [0xce, 0x00, 0x01, 0x00, 0x00]),
        PackCase(value: 4_294_967_296, bytes: [0xcf, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00]),
        PackCase(value: -1, bytes: [0xff]),
        PackCase(value: -32, bytes: [0xe0]),
        PackCase(value: -33, bytes: [0xd0, 0xdf]),
        PackCase(value: -129, bytes: [0xd1, 0xff, 0x7f]),
        PackCase(value: -32769, bytes: [0xd2, 0xff, 0xff, 0x7f, 0xff]),
        PackCase(value: -2_147_483_649, bytes: [0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff]),
        PackCase(value: 1.5, bytes: [0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]),
        PackCase(value: .number(9_007_199_254_740_992), bytes: [0xcb, 0x43, 0x40, 0, 0, 0, 0, 0, 0]),
        PackCase(value: "", bytes: [0xa0]),
        PackCase(value: "é", bytes: [0xa2, 0xc3, 0xa9]),
        PackCase(value: .string(String(repeating: "a", count: 31)), bytes: [0xbf] + Array(repeating: 0x61, count: 31)),
        PackCase(value: .string(String(repeating: "a", count: 32)), bytes: [0xd9, 0x20] + Array(repeating: 0x61, count: 32)),
        PackCase(value: .string(String(repeating: "a", count: 256)), bytes: [0xda, 0x01, 0x00] + Array(repeating: 0x61, count: 256)),
        PackCase(value: .binary(ByteBuffer(bytes: [1, 2, 3])), bytes: [0xc4, 0x03, 1, 2, 3]),
        PackCase(value: .binary(ByteBuffer(bytes: Array(repeating: 7, count: 256))), bytes: [0xc5, 0x01, 0x00] + Array(repeating: 7, count: 256)),
        PackCase(value: [], bytes: [0x90]),
        PackCase(value: [1, [2]], bytes: [0x92, 0x01, 0x91, 0x02]),
        PackCase(value: .array(Array(repeating: .null, count: 16)), bytes: [0xdc, 0x00, 0x10] + Array(repeating: 0xc0, count: 16)),
        PackCase(value: [:], bytes: [0x80]),
        PackCase(value: ["type": 1], bytes: [0x81, 0xa4, 0x74, 0x79, 0x70, 0x65, 0x01]),
        PackCase(
            value: .object(SocketIOObject((0..<16).map { ("\(Character(UnicodeScalar(UInt8(97 + $0))))", SocketIOValue.null) })),
            bytes: [0xde, 0x00, 0x10] + (0..<16).flatMap { [0xa1, UInt8(97 + $0), 0xc0] }),
    ]

    @Test("values are written in the smallest format and read back", arguments: packCases)
    func messagePack(_ test: PackCase) throws {
        #expect(Array(MessagePack.encode(test.value).readableBytesView) == test.bytes)
        #expect(try MessagePack.decode(ByteBuffer(bytes: test.bytes)) == test.value)
    }

    @Test(
        "formats the writer does not use are read too",
        arguments: [
            ([0xca, 0x3f, 0xc0, 0x00, 0x00], SocketIOValue.number(1.5)),
            ([0xd0, 0x05], 5),
            ([0xcf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07], 7),
            ([0xd9, 0x01, 0x61], "a"),
            ([0xc6, 0x00, 0x00, 0x00, 0x01, 0x09], .binary(ByteBuffer(bytes: [9]))),
            ([0xdd, 0x00, 0x00, 0x00, 0x01, 0xc3], [true]),
            ([0xdf, 0x00, 0x00, 0x00, 0x01, 0xa1, 0x6b, 0xc2], ["k": false]),
            // notepack.io's undefined, and its ArrayBuffer (in Node).
            ([0x92, 0xd4, 0x00, 0x00, 0x01], [.null, 1]),
            ([0xc7, 0x02, 0x00, 0x07, 0x08], .binary(ByteBuffer(bytes: [7, 8]))),
            ([0xc8, 0x00, 0x01, 0x00, 0x07], .binary(ByteBuffer(bytes: [7]))),
        ] as [([UInt8], SocketIOValue)])
    func otherFormats(_ bytes: [UInt8], _ value: SocketIOValue) throws {
        #expect(try MessagePack.decode(ByteBuffer(bytes: bytes)) == value)
    }

    @Test(
        "bytes that are not one MessagePack value are refused, without allocating what they announce",
        arguments: [
            ([], "invalid MessagePack at byte 0: truncated"),
            ([0xc1], "invalid MessagePack at byte 0: format 0xc1 (this extension type or the reserved byte)"),
            ([0xd7, 0x00, 0, 0, 0, 0, 0, 0, 0, 0], "invalid MessagePack at byte 0: format 0xd7 (this extension type or the reserved byte)"),
            ([0xd4, 0x01, 0x00], "invalid MessagePack at byte 2: a fixext 1 that is not notepack's undefined"),
            ([0xc7, 0x01, 0x05, 0x00], "invalid MessagePack at byte 3: extension type 5 (only notepack's ArrayBuffer, type 0, is read)"),
            ([0xa3, 0x61], "invalid MessagePack at byte 1: truncated: 3 bytes announced"),
            ([0xdd, 0xff, 0xff, 0xff, 0xff], "invalid MessagePack at byte 5: truncated: 4294967295 elements announced"),
            ([0xdf, 0x7f, 0xff, 0xff, 0xff, 0x00], "invalid MessagePack at byte 5: truncated: 2147483647 members announced"),
            ([0x81, 0x01, 0x02], "invalid MessagePack at byte 2: a map key that is not a string"),
            ([0xa1, 0xff], "invalid MessagePack at byte 2: a string that is not UTF-8"),
            ([0xc0, 0xc0], "invalid MessagePack at byte 1: 1 bytes after the value"),
        ] as [([UInt8], String)])
    func messagePackRefusals(_ bytes: [UInt8], _ reason: String) {
        #expect(throws: MessagePackError.self) { try MessagePack.decode(ByteBuffer(bytes: bytes)) }
        do {
            _ = try MessagePack.decode(ByteBuffer(bytes: bytes))
        } catch {
            #expect(error.description == reason)
        }
    }

    @Test("nesting past the limit is refused")
    func messagePackDepth() {
        let deep = ByteBuffer(bytes: Array(repeating: 0x91, count: MessagePack.maxDepth + 1) + [0xc0])
        #expect(throws: MessagePackError.self) { try MessagePack.decode(deep) }
        let fine = ByteBuffer(bytes: Array(repeating: 0x91, count: MessagePack.maxDepth) + [0xc0])
        #expect((try? MessagePack.decode(fine)) != nil)
    }
}
