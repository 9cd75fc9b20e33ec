import Foundation
import SocketIO
import Testing

/// python-socketio 4.x, the Engine.IO v3 / Socket.IO protocol v4 client of deployed apps, against
/// a server with `allowEIO3`: the older handshake, client pings, length-prefixed polling payloads,
/// binary frames with a type byte, the main namespace joined without asking.
@Suite(
    "python-socketio 4.x (Engine.IO v3) against the server", .serialized,
    .enabled(if: testPythonEIO3 != nil, "run through scripts/test, which installs python-socketio 4.x"))
struct EngineIOv3InteropTests {
    func run(_ scenario: String, over transports: String, allowEIO3: Bool) async throws -> ([String: Any], ServerObservations) {
        let observations = ServerObservations()
        nonisolated(unsafe) var result: [String: Any] = [:]
        try await withLiveServer(allowEIO3: allowEIO3, configure: { configureInteropServer($0, observations: observations) }) { port in
            let output = try await PythonProcess(
                script: "eio3_client.py", arguments: ["http://127.0.0.1:\(port)", transports, scenario], python: testPythonEIO3
            ).result()
            nonisolated(unsafe) let copy = output
            result = copy
        }
        return (result, observations)
    }

    @Test("connect, a second namespace, events both ways with binary, acks both ways, client pings", arguments: PythonClientInteropTests.transports)
    func basic(transports: String) async throws {
        let (result, server) = try await run("basic", over: transports, allowEIO3: true)
        #expect(result["transport"] as? String == (transports == "polling" ? "polling" : "websocket"))
        #expect((result["auth"] as? [Any])?.count == 1)
        #expect((result["welcome"] as? [Any])?.first as? String == "/custom")
        let echoed = try #require(result["echo"] as? [Any])
        #expect(echoed.count == 4)
        #expect(echoed[0] as? String == "text")
        #expect(echoed[1] as? Int == 42)
        #expect((echoed[3] as? [String: String]) == ["$bytes": "0001feff"])
        #expect(server.values("echo").count == 1)
        let ack = try #require(result["ack"] as? [Any])
        #expect(ack.count == 3)
        #expect((ack[1] as? [String: String]) == ["$bytes": "07"])
        #expect(ack[2] as? String == "acked")
        #expect(result["answer_seen_by_server"] as? [String] == ["answer to", "what is 6x7?"])
        #expect(result["connected_after_pings"] as? Bool == true)
    }

    @Test("without allowEIO3 the handshake is refused as the reference refuses it")
    func refused() async throws {
        let (result, _) = try await run("refused", over: "polling", allowEIO3: false)
        #expect(result["connected"] as? Bool == false)
        #expect((result["error"] as? String)?.contains("400") == true)
    }
}
