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
