import Foundation
import Hummingbird
import Logging
import PostgresNIO
import SocketIO
import SocketIOPostgres
import Synchronization
import Testing

/// The PostgreSQL server of `scripts/with-postgres`, when the tests run under it.
private let postgresURL = ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_URL"]

@Suite(
    "Two Socket.IO servers in one cluster over PostgreSQL", .serialized,
    .enabled(if: testPython != nil && postgresURL != nil, "run through scripts/test (Python peers and a PostgreSQL server)")
)
struct ClusterTests {
    /// A node: a Socket.IO server whose adapter is a cluster over the test database, served on a
    /// free port while `body` runs, its cluster running beside it.
    func withNode(
        prefix: String, configure: @Sendable (SocketIOServer) -> Void = { _ in },
        _ body: @Sendable (_ io: SocketIOServer, _ cluster: PostgresCluster, _ port: Int) async throws -> Void
    ) async throws {
        let client = PostgresClient(configuration: try PostgresClusterTransport.clientConfiguration(url: try #require(postgresURL)))
        var settings = PostgresClusterTransport.Configuration()
        settings.channelPrefix = prefix
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let transport = try PostgresClusterTransport(client: client, configuration: settings, logger: logger)
        var heartbeats = PostgresCluster.Configuration()
        heartbeats.heartbeatInterval = .milliseconds(500)
        heartbeats.heartbeatTimeout = .seconds(2)
        let cluster = PostgresCluster(transport: transport, configuration: heartbeats, logger: logger)
        var configuration = SocketIOConfiguration()
        configuration.engine.pingInterval = .seconds(2)
        configuration.engine.pingTimeout = .seconds(2)
        let io = SocketIOServer(configuration: configuration, adapter: cluster.adapterFactory)
        configure(io)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            try await transport.prepare()
            let running = Task { await cluster.run(namespaces: ["/"]) }
            do {
                try await withApplication(router: Router(), server: .socketIO(io)) { port in try await body(io, cluster, port) }
            } catch {
                running.cancel()
                await running.value
                throw error
            }
            // The cluster says goodbye (ADAPTER_CLOSE) before its database client closes.
            running.cancel()
            await running.value
            group.cancelAll()
        }
    }

    @Test("a broadcast, socketsJoin and socketsLeave from one node reach the other node's clients, with rooms and exceptions; a local one does not")
    func broadcastAcrossNodes() async throws {
        let prefix = "cluster-\(UInt32.random(in: 0...UInt32.max))"
        try await withNode(prefix: prefix) { a, clusterA, _ in
            try await withNode(prefix: prefix, configure: { io in io.onConnection { $0.join("members") } }) { b, clusterB, port in
                try await eventually { clusterA.serverCount() == 2 && clusterB.serverCount() == 2 }
                let listener = try PythonProcess(
                    script: "listen.py", arguments: ["http://127.0.0.1:\(port)", "--event", "item", "--count", "4", "--timeout", "15"])
                try await eventually { b.sockets.localSockets.count == 1 }

                a.to("members").emit("item", "to members")
                a.except("members").emit("item", "not for members")
                a.emit("item", "to all")
                a.sockets.all.socketsJoin(["joined"])
                try await eventually { (try? await b.sockets.all.to("joined").fetchSockets().count) == 1 }
                a.to("joined").emit("item", "to joined")
                a.sockets.all.socketsLeave(["joined"])
                try await eventually { (try? await b.sockets.all.to("joined").fetchSockets().isEmpty) == true }
                a.to("joined").emit("item", "to joined, after leaving")
                // Were a local broadcast to reach B, the listener would stop before "last".
                a.local.emit("item", "only on a")
                a.to("members").emit("item", "last")

                let events = try #require(try await listener.result()["events"] as? [[Any]])
                // The python client hands each event to a thread of its own: compare without order.
                #expect(events.compactMap { $0.first as? String }.sorted() == ["last", "to all", "to joined", "to members"])
            }
        }
    }

    @Test("a namespace made after the cluster started (a dynamic one) is listened to: broadcasts in it reach the other node's clients")
    func dynamicNamespaceAcrossNodes() async throws {
        let prefix = "cluster-\(UInt32.random(in: 0...UInt32.max))"
        try await withNode(prefix: prefix) { a, clusterA, _ in
            try await withNode(prefix: prefix, configure: { io in _ = io.of(matching: { name, _ in name.hasPrefix("/team-") }) }) {
                b, clusterB, port in
                try await eventually { clusterA.serverCount() == 2 && clusterB.serverCount() == 2 }
                // B makes /team-7 when the client connects to it; A when it first emits there.
                let listener = try PythonProcess(
                    script: "listen.py",
                    arguments: ["http://127.0.0.1:\(port)", "--namespace", "/team-7", "--event", "item", "--count", "1", "--timeout", "15"])
                try await eventually { b.of("/team-7").localSockets.count == 1 }
                let team = a.of("/team-7")
                try await eventually { clusterA.serverCount(namespace: "/team-7") == 2 && clusterB.serverCount(namespace: "/team-7") == 2 }
                team.emit("item", "to the team")
                let events = try #require(try await listener.result()["events"] as? [[Any]])
                #expect(events.compactMap { $0.first as? String } == ["to the team"])
            }
        }
    }

    @Test("nodes know each other from their heartbeats, and forget one that closes at once")
    func peers() async throws {
        let prefix = "cluster-\(UInt32.random(in: 0...UInt32.max))"
        try await withNode(prefix: prefix) { _, clusterA, _ in
            try await withNode(prefix: prefix) { _, clusterB, _ in
                try await eventually { clusterA.serverCount() == 2 && clusterB.serverCount() == 2 }
            }
            // B's run ended with ADAPTER_CLOSE: A forgets it before any heartbeat timeout.
            try await eventually(timeout: .seconds(1)) { clusterA.serverCount() == 1 }
        }
    }

    @Test("fetchSockets on one node gathers the other node's sockets, and names the peers that did not answer in time")
    func fetchSocketsAcrossNodes() async throws {
        let prefix = "cluster-\(UInt32.random(in: 0...UInt32.max))"
        try await withNode(prefix: prefix) { a, clusterA, _ in
            let configureB: @Sendable (SocketIOServer) -> Void = { io in
                io.onConnection { socket in
                    socket.data = ["user": "u-1"]
                    socket.join("members")
                }
            }
            try await withNode(prefix: prefix, configure: configureB) { b, clusterB, port in
                try await eventually { clusterA.serverCount() == 2 && clusterB.serverCount() == 2 }
                let listener = try PythonProcess(
                    script: "listen.py", arguments: ["http://127.0.0.1:\(port)", "--event", "done", "--count", "1", "--timeout", "15"])
                try await eventually { (try? await b.sockets.all.fetchSockets().first?.data) == ["user": "u-1"] }

                let found = try await a.sockets.all.fetchSockets()
                #expect(found.count == 1)
                let remote = try #require(found.first)
                #expect(remote.local == nil)
                #expect(remote.rooms == [remote.id, "members"])
                #expect(remote.data == ["user": "u-1"])
                #expect(remote.handshake?.address == "127.0.0.1")
                #expect(remote.handshake?.query["EIO"] == "4")
                #expect(try await a.to("members").fetchSockets().count == 1)
                #expect(try await a.to("nobody").fetchSockets().isEmpty)

                // A peer that never answers: the request ends at its timeout with what came.
                try await clusterA.transport.publish(SocketIOClusterMessage(uid: "silent", namespace: "/", type: .heartbeat))
                try await eventually { clusterA.serverCount() == 3 }
                let error = await #expect(throws: SocketIOClusterTimeoutError.self) {
                    try await a.sockets.all.timeout(.milliseconds(300)).fetchSockets()
                }
                #expect(error?.description == "timeout reached: only 1 responses received out of 2")
                a.emit("done")
                _ = try await listener.result()
            }
        }
    }

    @Test("a broadcast with acks gathers the answers of every node's clients, counting each node's recipients")
    func broadcastAcksAcrossNodes() async throws {
        let prefix = "cluster-\(UInt32.random(in: 0...UInt32.max))"
        try await withNode(prefix: prefix) { a, clusterA, portA in
            try await withNode(prefix: prefix) { b, clusterB, portB in
                try await eventually { clusterA.serverCount() == 2 && clusterB.serverCount() == 2 }
                func client(_ port: Int, answer: String) throws -> PythonProcess {
                    try PythonProcess(
                        script: "listen.py",
                        arguments: ["http://127.0.0.1:\(port)", "--event", "ask", "--count", "3", "--timeout", "15", "--answer", answer])
                }
                let clients = [try client(portA, answer: #""from a""#), try client(portB, answer: #"{"from": "b"}"#), try client(portB, answer: "2")]
                try await eventually { a.sockets.localSockets.count == 1 && b.sockets.localSockets.count == 2 }

                let answers = try await a.sockets.timeout(.seconds(5)).emitWithAck("ask", "question")
                #expect(answers.count == 3)
                #expect(Set(answers.map { "\($0)" }) == Set([[SocketIOValue.string("from a")], [["from": "b"]], [.number(2)]].map { "\($0)" }))
                // A room no one is in: the answer is empty as soon as each node said it has no recipient.
                #expect(try await a.to("nobody").timeout(.seconds(5)).emitWithAck("ask").isEmpty)
                #expect(try await a.sockets.timeout(.seconds(5)).emitWithAck("ask").count == 3)
                // The clients leave on their third event (one that asks for no answer: a client
                // leaving right after its last event might not have sent its answer yet).
                a.emit("ask")
                for client in clients { _ = try await client.result() }
            }
        }
    }

    @Test("serverSideEmit reaches the other nodes' handlers, with and without acknowledgements, and a silent node times out")
    func serverSideEmitAcrossNodes() async throws {
        let prefix = "cluster-\(UInt32.random(in: 0...UInt32.max))"
        let heard = Mutex<[[SocketIOValue]]>([])
        try await withNode(prefix: prefix) { a, clusterA, _ in
            let configureB: @Sendable (SocketIOServer) -> Void = { io in
                io.sockets.onServerSideEmit("hello") { arguments in
                    heard.withLock { $0.append(arguments) }
                    return .string("hi \(arguments.first?.stringValue ?? "?")")
                }
            }
            try await withNode(prefix: prefix, configure: configureB) { _, clusterB, _ in
                try await eventually { clusterA.serverCount() == 2 && clusterB.serverCount() == 2 }
                #expect(a.sockets.serverCount() == 2)

                a.sockets.serverSideEmit("hello", "one", 1)
                try await eventually { heard.withLock { $0 } == [["one", 1]] }
                #expect(try await a.sockets.serverSideEmitWithAck("hello", "a") == ["hi a"])

                try await clusterA.transport.publish(SocketIOClusterMessage(uid: "silent", namespace: "/", type: .heartbeat))
                try await eventually { clusterA.serverCount() == 3 }
                let error = await #expect(throws: SocketIOClusterTimeoutError.self) { try await a.sockets.serverSideEmitWithAck("hello", "b") }
                #expect(error?.description == "timeout reached: only 1 responses received out of 2")
                #expect(error?.partialResponses == ["hi b"])
                #expect(heard.withLock { $0 }.count == 3)
            }
        }
    }
}
