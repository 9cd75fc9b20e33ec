import SocketIO
import SocketIOTesting
import Testing

/// An application's handlers, tested as an app author would, with the in-process client.
@Suite("The in-process test client")
struct SocketIOTestClientTests {
    static func makeServer(parser: SocketIOParser) -> SocketIOServer {
        var configuration = SocketIOConfiguration()
        configuration.parser = parser
        let io = SocketIOServer(configuration: configuration)
        io.of("/orders").use { socket in
            guard socket.handshake.auth["token"]?.stringValue == "letmein" else {
                throw SocketIOConnectError("not authorized", data: ["hint": "token"])
            }
        }
        io.of("/orders").onConnection { socket in
            socket.join("shop")
            socket.emit("welcome", .string(socket.id))
            socket.on("order") { event in
                event.ack?.send(["accepted", event.arguments.first ?? nil])
                io.of("/orders").to("shop").emit("order_placed", event.arguments.first ?? nil)
            }
            socket.on("confirm") { _ in
                let answer = try await socket.emitWithAck("sure?", "yes or no", timeout: .seconds(5))
                socket.emit("confirmed", arguments: answer)
            }
            socket.on("leave") { _ in socket.disconnect() }
        }
        return io
    }

    @Test("connect, events and acks both ways, broadcasts and binary", arguments: SocketIOParser.allCases)
    func conversation(parser: SocketIOParser) async throws {
        let io = Self.makeServer(parser: parser)
        let client = SocketIOTestClient(server: io, namespace: "/orders", auth: ["token": "letmein"])
        let id = try await client.connect()
        #expect(try await client.receive("welcome") == [.string(id)])

        let order: SocketIOValue = ["sku": "lamp", "photo": .binary(.init(bytes: [0, 1, 255]))]
        #expect(try await client.emitWithAck("order", order) == ["accepted", order])
        #expect(try await client.receive("order_placed") == [order])

        await client.answer("sure?") { arguments in [.string("yes, to \(arguments.first?.stringValue ?? "")")] }
        try await client.emit("confirm")
        #expect(try await client.receive("confirmed") == ["yes, to yes or no"])

        try await client.emit("leave")
        #expect(await client.waitForDisconnect())
    }

    @Test("a middleware's refusal is thrown with its message and data")
    func refusal() async throws {
        let client = SocketIOTestClient(server: Self.makeServer(parser: .json), namespace: "/orders", auth: ["token": "wrong"])
        await #expect(throws: SocketIOTestClient.Failure.refused(message: "not authorized", data: ["hint": "token"])) {
            try await client.connect()
        }
    }

    @Test("an event that never comes times out, naming it")
    func timeout() async throws {
        let client = SocketIOTestClient(server: Self.makeServer(parser: .json), namespace: "/orders", auth: ["token": "letmein"])
        try await client.connect()
        await #expect(throws: SocketIOTestClient.Failure.timeout("the event 'never'")) {
            try await client.receive("never", timeout: .milliseconds(200))
        }
        await client.disconnect()
    }
}
