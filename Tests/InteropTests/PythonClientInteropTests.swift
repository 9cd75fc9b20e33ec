import Foundation
import NIOConcurrencyHelpers
import NIOCore
import SocketIO
import Testing

/// What the server saw during a scenario.
final class ServerObservations: Sendable {
    private let values = NIOLockedValueBox<[String: [String]]>([:])

    func record(_ key: String, _ value: String) {
        values.withLockedValue { $0[key, default: []].append(value) }
    }

    func values(_ key: String) -> [String] {
        values.withLockedValue { $0[key] ?? [] }
    }
}

/// The server every interop scenario talks to.
func configureInteropServer(_ io: SocketIOServer, observations: ServerObservations) {
    io.onConnection { socket in
        // Join first: the client takes "auth" as the sign that it is in its room.
        if let room = socket.handshake.auth["room"]?.stringValue { socket.join(room) }
        socket.emit("auth", socket.handshake.auth)
        socket.on("echo") { event in
            observations.record("echo", event.arguments.description)
            socket.emit("echo-back", arguments: event.arguments)
        }
        socket.on("ack-me") { event in
            event.ack?.send(event.arguments + ["acked"])
        }
        socket.on("ask-me") { _ in
            let answer = try await socket.emitWithAck("question", "what is 6x7?", timeout: .seconds(5))
            observations.record("answer", SocketIOValue.array(answer).description)
            socket.emit("answer-received", arguments: answer)
        }
        socket.on("broadcast") { event in
            guard let room = event.arguments.first?["room"]?.stringValue, let text = event.arguments.first?["text"] else { return }
            io.to(room).emit("room-message", text)
            io.emit("done")
        }
        socket.on("kick-me") { _ in
            socket.disconnect()
        }
        socket.on("start-broadcast-ack") { _ in
            let answers = try await io.to("ack-room").timeout(.seconds(5)).emitWithAck("poll-question", "ready?")
            let sorted = answers.map { SocketIOValue.array($0) }.sorted { $0.description < $1.description }
            socket.emit("broadcast-answers", arguments: sorted)
        }
        socket.on("start-slow-question") { _ in
            do {
                let answer = try await socket.emitWithAck("slow-question", timeout: .milliseconds(300))
                socket.emit("slow-outcome", ["answered": .array(answer)])
            } catch let error as SocketIOAckError {
                socket.emit("slow-outcome", ["error": .string(error.description)])
            }
        }
        let seen = NIOLockedValueBox<[SocketIOValue]>([])
        socket.onAny { event in
            seen.withLockedValue { $0.append(.string(event.name)) }
        }
        socket.on("report") { _ in
            socket.emit("seen", arguments: seen.withLockedValue { $0 })
        }
        socket.onDisconnect { socket, reason in
            observations.record("disconnect", reason.description)
        }
        observations.record("transport-at-connect", socket.connection.transportName)
    }
    io.of("/custom").onConnection { socket in
        socket.emit("welcome", .string(socket.namespace.name), socket.handshake.auth)
    }
    io.of(matching: { name, _ in name.hasPrefix("/team-") }).onConnection { socket in
        socket.emit("welcome", .string(socket.namespace.name))
    }
    io.of("/private").use { socket in
        guard socket.handshake.auth["token"]?.stringValue == "secret" else {
            throw SocketIOConnectError("not authorized", data: ["reason": "token refused"])
        }
    }
}

@Suite(
    "python-socketio client against the server", .serialized,
    .enabled(if: testPython != nil, "run through scripts/test, which installs python-socketio"))
struct PythonClientInteropTests {
    static let transports = ["polling", "websocket", "polling,websocket"]

    /// Runs a scenario against a server of `parser`, with clients of the same serializer.
    func run(_ scenario: String, over transports: String, parser: SocketIOParser) async throws -> ([String: Any], ServerObservations) {
        let observations = ServerObservations()
        nonisolated(unsafe) var result: [String: Any] = [:]
        try await withLiveServer(parser: parser, configure: { configureInteropServer($0, observations: observations) }) { port in
            let output = try await runPythonClient(port: port, transports: transports, scenario: scenario, parser: parser)
            nonisolated(unsafe) let copy = output
            result = copy
        }
        return (result, observations)
    }

    @Test("connect with auth, events both ways with binary, acks both ways", arguments: SocketIOParser.allCases, transports)
    func basic(parser: SocketIOParser, transports: String) async throws {
        let (result, server) = try await run("basic", over: transports, parser: parser)
        #expect(result["transport"] as? String == (transports == "polling" ? "polling" : "websocket"))
        let auth = try #require((result["auth"] as? [Any])?.first as? [String: Any])
        #expect(auth["token"] as? String == "abc")
        #expect(auth["n"] as? Int == 1)
        let echoed = try #require(result["echo"] as? [Any])
        #expect(echoed.count == 4)
        #expect(echoed[0] as? String == "text")
        #expect(echoed[1] as? Int == 42)
        #expect((echoed[2] as? [String: Any]).map { ($0["nested"] as? [Any])?.count } == 3)
        #expect((echoed[3] as? [String: String]) == ["$bytes": "0001feff"])
        #expect(server.values("echo").count == 1)
        let ack = try #require(result["ack"] as? [Any])
        #expect(ack.count == 3)
        #expect(ack[0] as? String == "x")
        #expect((ack[1] as? [String: String]) == ["$bytes": "07"])
        #expect(ack[2] as? String == "acked")
        #expect(server.values("answer") == [#"["answer to","what is 6x7?"]"#])
        #expect(result["answer_seen_by_server"] as? [String] == ["answer to", "what is 6x7?"])
    }

    @Test("a custom namespace is joined and greeted", arguments: SocketIOParser.allCases, transports)
    func customNamespace(parser: SocketIOParser, transports: String) async throws {
        let (result, _) = try await run("custom-namespace", over: transports, parser: parser)
        #expect(result["namespaces"] as? [String] == ["/custom"])
        let welcome = try #require(result["welcome"] as? [Any])
        #expect(welcome.first as? String == "/custom")
        #expect(welcome.last as? [String: String] == ["who": "custom"])
    }

    @Test("a broadcast to a room reaches only its members", arguments: SocketIOParser.allCases, transports)
    func rooms(parser: SocketIOParser, transports: String) async throws {
        let (result, _) = try await run("rooms", over: transports, parser: parser)
        #expect(result["a"] as? [[String]] == [["hello red"]])
        #expect(result["b"] as? [[String]] == [])
        #expect(result["c"] as? [[String]] == [["hello red"]])
    }

    @Test("a server-side disconnect reaches the client", arguments: SocketIOParser.allCases, transports)
    func serverDisconnect(parser: SocketIOParser, transports: String) async throws {
        let (result, server) = try await run("server-disconnect", over: transports, parser: parser)
        #expect(result["disconnected"] as? Bool == true)
        #expect(result["connected_after"] as? Bool == false)
        #expect(server.values("disconnect").first == "server namespace disconnect")
    }

    @Test("a middleware refusal is a connect error with its message and data", arguments: SocketIOParser.allCases, transports)
    func refusal(parser: SocketIOParser, transports: String) async throws {
        let (result, _) = try await run("refused", over: transports, parser: parser)
        #expect(result["outcome"] as? String != "connected")
        let errors = try #require(result["errors"] as? [[String: Any]])
        #expect(errors.first?["message"] as? String == "not authorized")
        #expect(errors.first?["data"] as? [String: String] == ["reason": "token refused"])
    }
}

extension PythonClientInteropTests {
    @Test("a broadcast with acknowledgement collects one answer per client in the rooms", arguments: SocketIOParser.allCases, transports)
    func broadcastAck(parser: SocketIOParser, transports: String) async throws {
        let (result, _) = try await run("broadcast-ack", over: transports, parser: parser)
        let answers = try #require(result["answers"] as? [[String]])
        #expect(answers == [["yes from a", "ready?"], ["yes from b", "ready?"]])
    }

    @Test("an acknowledgement that comes too late times out on the server", arguments: SocketIOParser.allCases, transports)
    func ackTimeout(parser: SocketIOParser, transports: String) async throws {
        let (result, _) = try await run("ack-timeout", over: transports, parser: parser)
        let outcome = try #require((result["outcome"] as? [Any])?.first as? [String: String])
        #expect(outcome == ["error": "operation has timed out"])
    }

    @Test("a dynamic namespace is created for a matching name and refused otherwise", arguments: SocketIOParser.allCases, transports)
    func dynamicNamespace(parser: SocketIOParser, transports: String) async throws {
        let (result, _) = try await run("dynamic-namespace", over: transports, parser: parser)
        #expect(result["welcome"] as? [String] == ["/team-42"])
        let errors = try #require(result["errors"] as? [[String: Any]])
        #expect(errors.first?["message"] as? String == "Invalid namespace")
    }

    @Test("a catch-all listener sees every event before its own handlers", arguments: SocketIOParser.allCases, transports)
    func catchAll(parser: SocketIOParser, transports: String) async throws {
        let (result, _) = try await run("catch-all", over: transports, parser: parser)
        #expect(result["seen"] as? [String] == ["alpha", "beta", "report"])
    }
}

@Test("CI runs the interop tests (the python-socketio client is installed)")
func interopPeersArePresentInCI() {
    if ProcessInfo.processInfo.environment["CI"] != nil {
        #expect(testPython != nil, "HERALD_TEST_PYTHON is not set: CI must run the tests through scripts/test")
    }
}
