import EngineIO
import Foundation
import Logging
import NIOCore
import PostgresNIO
import SocketIO
import SocketIOPostgres
import Testing

@Suite(
    "Connection state recovery kept in PostgreSQL", .serialized,
    .enabled(if: postgresURL != nil, "run through scripts/test, which starts a PostgreSQL server")
)
struct PostgresRecoveryStoreTests {
    /// A store on fresh tables of the test server, holding them, with a client of its own.
    func withStore(
        prefix: String = "recovery_\(UInt32.random(in: 0...UInt32.max))", _ body: (PostgresRecoveryStore) async throws -> Void
    ) async throws {
        let client = PostgresClient(configuration: try PostgresClusterTransport.clientConfiguration(url: try #require(postgresURL)))
        var configuration = PostgresRecoveryStore.Configuration()
        configuration.tablePrefix = prefix
        let store = try PostgresRecoveryStore(client: client, configuration: configuration, logger: Logger(label: "test.recovery"))
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            try await store.prepare()
            group.addTask { await store.run() }
            #expect(await store.waitForLock())
            try await body(store)
            group.cancelAll()
        }
    }

    /// A date PostgreSQL keeps exactly (whole milliseconds).
    static func date(_ seconds: TimeInterval) -> Date { Date(timeIntervalSince1970: (seconds * 1000).rounded() / 1000) }

    /// What a store gave back, with times to the millisecond (PostgreSQL keeps microseconds).
    static func rounded(_ events: [SocketIOStoredEvent]) -> [SocketIOStoredEvent] {
        events.map {
            var event = $0
            event.emittedAt = date(event.emittedAt.timeIntervalSince1970)
            return event
        }
    }

    static func rounded(_ sessions: [SocketIOStoredSession]) -> [SocketIOStoredSession] {
        sessions.map {
            var session = $0
            session.disconnectedAt = session.disconnectedAt.map { date($0.timeIntervalSince1970) }
            return session
        }.sorted { $0.pid < $1.pid }
    }

    func event(_ namespace: String, _ offset: UInt64, at date: Date, id: String? = nil, binary: Bool = false) -> SocketIOStoredEvent {
        var payloads = [EngineIOPayload.text(ByteBuffer(string: #"2["e","\#(offset)"]"#))]
        if binary { payloads.append(.binary(ByteBuffer(bytes: [0, 255, 7]))) }
        return SocketIOStoredEvent(
            namespace: namespace, offset: offset, rooms: ["r", "s"], except: ["x"], payloads: payloads, emittedAt: date, messageID: id)
    }

    func session(_ pid: String, gone: Date?, rooms: Set<String> = []) -> SocketIOStoredSession {
        SocketIOStoredSession(
            pid: pid, id: "id-\(pid)", namespace: "/", rooms: rooms, data: #"{"user":"\#(pid)"}"#, admittedAtOffset: 1_733_140_000_000_000,
            disconnectedAt: gone)
    }

    @Test("what is written comes back, events in offset order per namespace, binary attachments and sessions as they were")
    func roundTrip() async throws {
        let now = Self.date(Date().timeIntervalSince1970)
        try await withStore { store in
            var batch = SocketIORecoveryBatch(pruneBefore: now - 120)
            batch.events = [
                event("/", 1_733_140_000_000_001, at: now, id: "m-1"), event("/chat", 5, at: now, binary: true),
                event("/", 1_733_140_000_000_002, at: now),
            ]
            batch.sessions = [session("p1", gone: nil, rooms: ["id-p1", "r"]), session("p2", gone: now - 3)]
            try await store.write(batch)
            // A batch that failed is written again: that changes nothing.
            try await store.write(batch)
            let snapshot = try await store.load(since: now - 120)
            #expect(snapshot.events.map(\.namespace) == ["/", "/", "/chat"])
            #expect(Self.rounded(snapshot.events) == [batch.events[0], batch.events[2], batch.events[1]])
            #expect(Self.rounded(snapshot.sessions) == batch.sessions)
        }
    }

    @Test("sessions are replaced by pid and forgotten on request; what is past the window is pruned")
    func sessionsAndPruning() async throws {
        let now = Self.date(Date().timeIntervalSince1970)
        try await withStore { store in
            var first = SocketIORecoveryBatch(pruneBefore: now - 120)
            first.events = [event("/", 1, at: now - 200), event("/", 2, at: now - 10)]
            first.sessions = [session("a", gone: nil), session("b", gone: now - 200), session("c", gone: nil)]
            try await store.write(first)
            var second = SocketIORecoveryBatch(pruneBefore: now - 120)
            second.sessions = [session("a", gone: now - 5), session("d", gone: nil), session("d", gone: now - 1)]
            second.removedSessions = ["c", "d"]
            try await store.write(second)

            let snapshot = try await store.load(since: .distantPast)
            #expect(snapshot.events.map(\.offset) == [2])
            #expect(Self.rounded(snapshot.sessions) == [session("a", gone: now - 5), session("d", gone: now - 1)])
        }
    }

    @Test("one server at a time holds a set of tables: a second store is refused, and cannot write")
    func oneServerAtATime() async throws {
        let prefix = "recovery_\(UInt32.random(in: 0...UInt32.max))"
        try await withStore(prefix: prefix) { first in
            let client = PostgresClient(configuration: try PostgresClusterTransport.clientConfiguration(url: try #require(postgresURL)))
            var configuration = PostgresRecoveryStore.Configuration()
            configuration.tablePrefix = prefix
            configuration.startupLockWait = .milliseconds(300)
            let second = try PostgresRecoveryStore(client: client, configuration: configuration, logger: Logger(label: "test.recovery"))
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await client.run() }
                try await second.prepare()
                group.addTask { await second.run() }
                #expect(await second.waitForLock() == false)
                #expect(!second.isHolding)
                await #expect(throws: PostgresClusterError.self) {
                    try await second.write(SocketIORecoveryBatch(pruneBefore: .distantPast))
                }
                #expect(first.isHolding)
                group.cancelAll()
            }
        }
    }

    /// Stores of cluster nodes sharing one set of tables, each with its node id and scope.
    func withSharedStores(
        _ nodes: [(node: String, scope: String)], _ body: ([PostgresRecoveryStore]) async throws -> Void
    ) async throws {
        let prefix = "recovery_\(UInt32.random(in: 0...UInt32.max))"
        let client = PostgresClient(configuration: try PostgresClusterTransport.clientConfiguration(url: try #require(postgresURL)))
        let stores = try nodes.map { node, scope in
            var configuration = PostgresRecoveryStore.Configuration()
            configuration.tablePrefix = prefix
            configuration.node = node
            configuration.scope = scope
            return try PostgresRecoveryStore(client: client, configuration: configuration, logger: Logger(label: "test.recovery"))
        }
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { await client.run() }
            for store in stores {
                try await store.prepare()
                await store.run()
                #expect(await store.waitForLock(), "shared tables take no lock")
            }
            try await body(stores)
            group.cancelAll()
        }
    }

    /// Sequences an event of `messageID` in `namespace` through `store`; its payload is "<offset>".
    func sequence(_ store: PostgresRecoveryStore, _ namespace: String = "/", messageID: String? = nil) async throws -> UInt64? {
        try await store.sequence(
            namespace: namespace, messageID: messageID,
            event: { self.event(namespace, $0, at: Self.date(Date().timeIntervalSince1970), id: messageID) },
            publish: { _, connection in try await connection.query("SELECT 1", logger: Logger(label: "test.recovery")) })
    }

    @Test("nodes sharing the tables number a namespace's events one after the other, once per message id, apart from other clusters")
    func sharedSequence() async throws {
        try await withSharedStores([("a", "one#"), ("b", "one#"), ("c", "two#")]) { stores in
            let first = try #require(try await sequence(stores[0], messageID: "m-1"))
            #expect(try await sequence(stores[1]) == first + 1)
            #expect(try await sequence(stores[0], messageID: "m-1") == nil, "a message id is sequenced once")
            #expect(try await sequence(stores[1], messageID: "m-1") == nil, "by any node")
            #expect(try await sequence(stores[1], messageID: "m-2") == first + 2)
            #expect(try await sequence(stores[0], "/chat") != nil, "each namespace has its own sequence")
            // Another cluster on the same tables has a sequence of its own, and sees none of these.
            let other = try #require(try await sequence(stores[2], messageID: "m-1"))
            let (events, last) = try await stores[1].events(of: "/", after: first, since: .distantPast)
            #expect(events.map(\.offset) == [first + 1, first + 2])
            #expect(events.map(\.messageID) == [nil, "m-2"])
            #expect(last == first + 2)
            let (theirs, theirLast) = try await stores[2].events(of: "/", after: 0, since: .distantPast)
            #expect(theirs.map(\.offset) == [other])
            #expect(theirLast == other)
            #expect(try await stores[0].load(since: .distantPast).events.count == 4, "a node restores its own cluster's events")
        }
    }

    @Test("a session moves to the node its client comes back to; the node that kept it no longer writes or forgets it")
    func claims() async throws {
        let now = Self.date(Date().timeIntervalSince1970)
        try await withSharedStores([("a", "one#"), ("b", "one#")]) { stores in
            var batch = SocketIORecoveryBatch(pruneBefore: now - 120)
            batch.sessions = [session("p1", gone: nil, rooms: ["id-p1", "r"])]
            try await stores[0].write(batch)
            #expect(try await stores[0].load(since: now - 120).sessions.isEmpty, "a node of a cluster restores no sessions")

            let claimed = try #require(try await stores[1].claimSession(pid: "p1", namespace: "/", since: now - 120))
            #expect(claimed.rooms == ["id-p1", "r"])
            #expect(claimed.disconnectedAt != nil, "a session still connected when taken over counts as gone")
            #expect(try await stores[1].claimSession(pid: "p1", namespace: "/chat", since: now - 120) == nil, "in its own namespace only")
            // The node that kept it learns late that its client left: that changes nothing.
            var late = SocketIORecoveryBatch(pruneBefore: now - 120)
            late.sessions = [session("p1", gone: now, rooms: ["stale"])]
            try await stores[0].write(late)
            var forget = SocketIORecoveryBatch(pruneBefore: now - 120)
            forget.removedSessions = ["p1"]
            try await stores[0].write(forget)
            let again = try #require(try await stores[1].claimSession(pid: "p1", namespace: "/", since: now - 120))
            #expect(again.rooms == ["id-p1", "r"])
            // Its new node forgets it once it is recovered: then no node takes it over.
            try await stores[1].write(forget)
            #expect(try await stores[0].claimSession(pid: "p1", namespace: "/", since: now - 120) == nil)
        }
    }

    @Test("a table prefix that is not a plain SQL identifier is refused")
    func refusesBadPrefix() throws {
        var configuration = PostgresRecoveryStore.Configuration()
        configuration.tablePrefix = "x; DROP TABLE y"
        let client = PostgresClient(configuration: try PostgresClusterTransport.clientConfiguration(url: "postgres://u@127.0.0.1:1/d"))
        #expect(throws: PostgresClusterError.self) {
            _ = try PostgresRecoveryStore(client: client, configuration: configuration, logger: Logger(label: "test.recovery"))
        }
    }
}
