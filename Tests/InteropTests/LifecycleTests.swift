import Foundation
import NIOConcurrencyHelpers
import SocketIO
import Testing

@testable import Herald

@Suite(
    "A socket's lifecycle as clients see it", .serialized, .enabled(if: testPython != nil, "run through scripts/test, which installs python-socketio")
)
struct LifecycleTests {
    @Test("a publish to a token's room right after the client's connect reaches it, 1000 times out of 1000")
    func claimedRoomsAreJoinedBeforeConnect() async throws {
        var configuration = HeraldConfiguration()
        let secret = "a-lifecycle-secret-of-at-least-32-bytes"
        configuration.auth = .hs256(secret: secret)
        try await withGateway(configuration) { _, port in
            let jwt = try await token(secret: secret, sub: "42")
            // Keep the task pool busy, as a loaded server's is: work that waits for a task (a
            // connection handler) waits a few milliseconds, while the event loops go on serving
            // the client's CONNECT and its publish.
            let busy = (0..<2).map { _ in
                Task.detached {
                    while !Task.isCancelled {
                        let end = ContinuousClock.now + .milliseconds(2)
                        while ContinuousClock.now < end {}
                        await Task.yield()
                    }
                }
            }
            defer { for task in busy { task.cancel() } }
            let result = try await PythonProcess(script: "claimed.py", arguments: ["http://127.0.0.1:\(port)", jwt, "user:42", "1000"]).result()
            #expect(result["received"] as? Int == 1000)
        }
    }

    @Test("a room joined by a task is reached by the broadcast that task makes next", arguments: ["websocket", "polling"])
    func joinThenBroadcastFromOneTask(transport: String) async throws {
        let io = SocketIOServer()
        io.onConnection { socket in
            socket.join("fresh")
            io.to("fresh").emit("item_added", .string(socket.id))
        }
        try await withApplication(router: .init(), server: .socketIO(io)) { port in
            let result = try await PythonProcess(
                script: "listen.py", arguments: ["http://127.0.0.1:\(port)", "--transports", transport, "--count", "1", "--timeout", "10"]
            ).result()
            #expect((result["events"] as? [[Any]])?.count == 1)
        }
    }

    @Test("a client that leaves while its connection handler runs leaves no room and no count behind")
    func closeDuringConnectionHandler() async throws {
        let (release, releaser) = AsyncStream.makeStream(of: Void.self)
        let connected = NIOLockedValueBox(0)
        let handlerFinished = NIOLockedValueBox(false)
        let captured = NIOLockedValueBox<SocketIOSocket?>(nil)
        let io = SocketIOServer()
        io.onConnection { socket in
            captured.withLockedValue { $0 = socket }
            for await _ in release { break }
            socket.join("late")
            connected.withLockedValue { $0 += 1 }
            socket.onDisconnect { _, _ in connected.withLockedValue { $0 -= 1 } }
            handlerFinished.withLockedValue { $0 = true }
        }
        try await withApplication(router: .init(), server: .socketIO(io)) { port in
            let result = try await PythonProcess(script: "limits.py", arguments: ["http://127.0.0.1:\(port)", "namespaces", "/"]).result()
            #expect(result["connected"] as? [String] == ["/"])
            try await eventually { captured.withLockedValue { $0.map { !$0.isConnected } ?? false } }
            releaser.yield()
            releaser.finish()
            try await eventually { handlerFinished.withLockedValue { $0 } && connected.withLockedValue { $0 } == 0 }
            #expect(await !io.sockets.localSockets.roomSizes().contains { $0.name == "late" })
            #expect(await io.sockets.sockets.isEmpty)
        }
    }
}
