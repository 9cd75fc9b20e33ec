import Foundation
import NIOConcurrencyHelpers
import SocketIO
import Testing

/// Runs a Socket.IO server configured by `configure` on a free port for the duration of `body`.
private func withServer(
    _ configuration: SocketIOConfiguration = .init(),
    configure: (SocketIOServer) -> Void,
    _ body: @Sendable (SocketIOServer, _ port: Int) async throws -> Void
) async throws {
    let io = SocketIOServer(configuration: configuration)
    configure(io)
    try await withApplication(router: .init(), server: .socketIO(io)) { port in try await body(io, port) }
}

@Suite(
    "The server's limits hold against a real client", .serialized,
    .enabled(if: testPython != nil, "run through scripts/test, which installs python-socketio"))
struct LimitsTests {
    @Test("dynamic namespaces are removed once their last socket left, or when their only socket was refused")
    func emptyChildNamespacesAreRemoved() async throws {
        nonisolated(unsafe) var parent: SocketIOParentNamespace!
        try await withServer(configure: { io in
            parent = io.of(matching: { name, _ in name.hasPrefix("/team-") })
            parent.use { socket in
                if socket.namespace.name == "/team-refused" { throw SocketIOConnectError("no") }
            }
        }) { io, port in
            let names = (1...20).map { "/team-\($0)" }
            let result = try await PythonProcess(
                script: "limits.py", arguments: ["http://127.0.0.1:\(port)", "namespaces", names.joined(separator: ",")]
            ).result()
            #expect(result["connected"] as? [String] == names.sorted())
            try await eventually { parent.namespaces.isEmpty }
            let refused = try await PythonProcess(script: "limits.py", arguments: ["http://127.0.0.1:\(port)", "namespaces", "/team-refused"])
                .result()
            #expect(refused["refused"] != nil)
            try await eventually { io.statistics.emptyNamespacesRemoved == 21 }
            #expect(parent.namespaces.isEmpty)
        }
    }

    @Test("a socket whose events pile up behind a blocked handler is disconnected at the configured bound")
    func eventBacklogIsBounded() async throws {
        var configuration = SocketIOConfiguration()
        configuration.maxPendingEventsPerSocket = 10
        let (release, releaser) = AsyncStream.makeStream(of: Void.self)
        let ticks = NIOLockedValueBox(0)
        try await withServer(
            configuration,
            configure: { io in
                io.onConnection { socket in
                    socket.on("block") { _ in
                        for await _ in release { break }
                    }
                    socket.on("tick") { _ in ticks.withLockedValue { $0 += 1 } }
                }
            }
        ) { io, port in
            let result = try await PythonProcess(script: "limits.py", arguments: ["http://127.0.0.1:\(port)", "flood", "50"]).result()
            #expect(result["disconnected"] as? Bool == true)
            #expect(io.statistics.eventBacklogDisconnects == 1)
            releaser.yield()
            releaser.finish()
            // Once the blocked handler returns, the socket's disconnect runs and it leaves; of the
            // ticks, at most the ten that were queued before the bound could have run.
            try await eventually { await io.sockets.sockets.isEmpty }
            #expect(ticks.withLockedValue { $0 } <= 10)
        }
    }
}
