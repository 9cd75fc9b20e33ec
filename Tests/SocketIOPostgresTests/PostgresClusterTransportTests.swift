import Foundation
import Logging
import NIOCore
import PostgresNIO
import SocketIO
import SocketIOPostgres
import Synchronization
import Testing

/// The PostgreSQL server of `scripts/with-postgres`, when the tests run under it.
let postgresURL = ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_URL"]

@Suite(
    "The cluster over PostgreSQL: LISTEN/NOTIFY and attachments, as @socket.io/postgres-adapter", .serialized,
    .enabled(if: postgresURL != nil, "run through scripts/test, which starts a PostgreSQL server")
)
struct PostgresClusterTransportTests {
    /// Messages a listening node received, waited for by count.
    final class Inbox: Sendable {
        private let messages = Mutex<[SocketIOClusterMessage]>([])

        func receive(_ message: SocketIOClusterMessage) { messages.withLock { $0.append(message) } }
        var received: [SocketIOClusterMessage] { messages.withLock { $0 } }

        /// Waits until `count` messages arrived (checking every 10 ms, for at most 10 s).
        func wait(for count: Int) async throws -> [SocketIOClusterMessage] {
            let deadline = ContinuousClock.now + .seconds(10)
            while received.count < count {
                guard ContinuousClock.now < deadline else { throw InboxError.timedOut(expected: count, received: received.count) }
                try await Task.sleep(for: .milliseconds(10))
            }
            return received
        }
    }

    enum InboxError: Error {
        case timedOut(expected: Int, received: Int)
    }

    /// Two nodes' transports on the test server, each with a client of its own; `b` listens on
    /// `/` and `/chat` into the inbox.
    func withTwoNodes(
        prefix: String = "test-\(UInt32.random(in: 0...UInt32.max))", reconnectDelay: Duration = .milliseconds(200),
        _ body: (_ a: PostgresClusterTransport, _ b: PostgresClusterTransport, _ inbox: Inbox) async throws -> Void
    ) async throws {
        let configuration = try PostgresClusterTransport.clientConfiguration(url: try #require(postgresURL))
        var settings = PostgresClusterTransport.Configuration()
        settings.channelPrefix = prefix
        settings.reconnectDelay = reconnectDelay
        let logger = Logger(label: "test.cluster")
        let a = try PostgresClusterTransport(client: PostgresClient(configuration: configuration), configuration: settings, logger: logger)
        let b = try PostgresClusterTransport(client: PostgresClient(configuration: configuration), configuration: settings, logger: logger)
        let inbox = Inbox()
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await a.client.run() }
            group.addTask { await b.client.run() }
            try await a.prepare()
            group.addTask { await b.listen(to: ["/", "/chat"]) { inbox.receive($0) } }
            let deadline = ContinuousClock.now + .seconds(10)
            while !b.isListening, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            try #require(b.isListening)
            try await body(a, b, inbox)
            group.cancelAll()
        }
    }

    @Test("a message is notified as JSON on its namespace's channel and read by the other node, in order")
    func notified() async throws {
        try await withTwoNodes { a, _, inbox in
            let messages = [
                SocketIOClusterMessage(uid: "a", namespace: "/", type: .initialHeartbeat),
                SocketIOClusterMessage(
                    uid: "a", namespace: "/chat", type: .broadcast,
                    data: ["packet": ["type": 2, "data": ["hi", 1]], "opts": ["rooms": ["r"], "except": [], "flags": [:]]]),
                SocketIOClusterMessage(uid: "a", namespace: "/", type: .heartbeat),
            ]
            for message in messages { try await a.publish(message) }
            let received = try await inbox.wait(for: 3)
            #expect(received.filter { $0.namespace == "/" } == [messages[0], messages[2]])
            #expect(received.filter { $0.namespace == "/chat" } == [messages[1]])
        }
    }

    @Test("binary data and messages of 8000 bytes and more go through the attachments table in MessagePack")
    func attachments() async throws {
        try await withTwoNodes { a, _, inbox in
            let binary = SocketIOClusterMessage(
                uid: "a", namespace: "/", type: .broadcast,
                data: [
                    "packet": ["type": 2, "data": ["file", .binary(ByteBuffer(bytes: [0, 1, 2, 255]))]],
                    "opts": ["rooms": [], "except": [], "flags": [:]],
                ])
            let big = SocketIOClusterMessage(
                uid: "a", namespace: "/", type: .serverSideEmit, data: ["packet": [.string(String(repeating: "x", count: 9000))]])
            let before = try await count(a)
            try await a.publish(binary)
            try await a.publish(big)
            #expect(try await inbox.wait(for: 2) == [binary, big])
            #expect(try await count(a) == before + 2)
            // Nothing is older than the cleanup interval yet.
            #expect(try await a.deleteExpiredAttachments() == 0)
        }
    }

    @Test("a batch is delivered whole and in order: identical messages each once, a message through the table in its place")
    func batch() async throws {
        try await withTwoNodes { a, _, inbox in
            func event(_ data: SocketIOValue) -> SocketIOClusterMessage {
                SocketIOClusterMessage(
                    uid: "a", namespace: "/", type: .broadcast,
                    data: ["packet": ["type": 2, "data": ["tick", data]], "opts": ["rooms": [], "except": [], "flags": [:]]])
            }
            let big = event(.string(String(repeating: "x", count: 9000)))
            let batch = [event(1), event(1), event(2), big, event(1), event(3), event(3)]
            try await a.publish(batch)
            #expect(try await inbox.wait(for: batch.count) == batch)
        }
    }

    @Test("an external publisher's notification (uid \"emitter\") is read like a node's")
    func emitter() async throws {
        try await withTwoNodes { a, _, inbox in
            let payload =
                #"{"uid":"emitter","nsp":"/","type":3,"data":{"packet":{"type":2,"data":["from-emitter"]},"opts":{"rooms":[],"except":[],"flags":{}}}}"#
            try await a.client.query("SELECT pg_notify(\(a.channel(for: "/")), \(payload))")
            let received = try await inbox.wait(for: 1)
            #expect(received.first?.uid == SocketIOClusterMessage.emitterUID)
            #expect(received.first?.data?["packet"]?["data"] == ["from-emitter"])
        }
    }

    @Test("after its connection is killed a node listens again and receives what is published next")
    func reconnects() async throws {
        try await withTwoNodes { a, b, inbox in
            // Only this test's listening connections: the other suites' clusters run meanwhile.
            let listening = "LISTEN \"\(a.configuration.channelPrefix)#%"
            let killed = try await a.client.query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE \(listening) AND pid <> pg_backend_pid()")
            var terminated = 0
            for try await _ in killed { terminated += 1 }
            #expect(terminated >= 1)
            // Published until it arrives: what is notified while no connection listens is lost.
            var sent = 0
            let deadline = ContinuousClock.now + .seconds(10)
            while inbox.received.isEmpty, ContinuousClock.now < deadline {
                sent += 1
                try await a.publish(SocketIOClusterMessage(uid: "a", namespace: "/", type: .heartbeat))
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(!inbox.received.isEmpty)
            #expect(b.reconnects >= 1)
            #expect(b.isListening)
        }
    }

    @Test("old attachments are deleted, recent ones kept")
    func cleanup() async throws {
        try await withTwoNodes { a, _, _ in
            try await a.client.query(
                "INSERT INTO socket_io_attachments (payload, created_at) VALUES (\(ByteBuffer(bytes: [0x80])), now() - interval '1 hour')")
            try await a.client.query("INSERT INTO socket_io_attachments (payload) VALUES (\(ByteBuffer(bytes: [0x80])))")
            #expect(try await a.deleteExpiredAttachments() >= 1)
            #expect(try await a.deleteExpiredAttachments() == 0)
        }
    }

    @Test("eight nodes preparing a missing table at once all succeed, and it exists once")
    func concurrentPrepare() async throws {
        let client = PostgresClient(configuration: try PostgresClusterTransport.clientConfiguration(url: try #require(postgresURL)))
        var settings = PostgresClusterTransport.Configuration()
        settings.tableName = "attachments_\(UInt32.random(in: 0...UInt32.max))"
        let transport = try PostgresClusterTransport(client: client, configuration: settings, logger: Logger(label: "test.cluster"))
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            try await withThrowingDiscardingTaskGroup { nodes in
                for _ in 0..<8 { nodes.addTask { try await transport.prepare() } }
            }
            let rows = try await client.query("SELECT count(*) FROM pg_class WHERE relname = \(settings.tableName)")
            for try await count in rows.decode(Int.self) { #expect(count == 1) }
            try await client.query("DROP TABLE \(unescaped: settings.tableName)")
            group.cancelAll()
        }
    }

    @Test("a table name that is no plain identifier, and a URL that is no postgres URL, are refused")
    func refusals() {
        var settings = PostgresClusterTransport.Configuration()
        settings.tableName = "attachments; DROP TABLE x"
        let configuration = PostgresClient.Configuration(host: "127.0.0.1", username: "u", password: nil, database: nil, tls: .disable)
        #expect(throws: PostgresClusterError.self) {
            try PostgresClusterTransport(client: PostgresClient(configuration: configuration), configuration: settings, logger: Logger(label: "t"))
        }
        #expect(throws: PostgresClusterError.self) { try PostgresClusterTransport.clientConfiguration(url: "http://x/y") }
        #expect(throws: PostgresClusterError.self) { try PostgresClusterTransport.clientConfiguration(url: "postgres://db.local/herald") }
        let parsed = try? PostgresClusterTransport.clientConfiguration(url: "postgres://herald:secret@db.local:6543/cluster")
        #expect(parsed?.host == "db.local" && parsed?.port == 6543 && parsed?.username == "herald")
        #expect(parsed?.password == "secret" && parsed?.database == "cluster")
    }

    private func count(_ transport: PostgresClusterTransport) async throws -> Int {
        let rows = try await transport.client.query("SELECT count(*) FROM socket_io_attachments")
        var count = 0
        for try await value in rows.decode(Int.self) { count = value }
        return count
    }
}
