public import Foundation
public import Logging
import NIOCore
public import PostgresNIO
public import SocketIO
import Synchronization

/// Connection state recovery kept in PostgreSQL: a server restarted on the same database, on this
/// machine or another one, recovers the clients that come back.
///
/// Tables (created when missing): `<prefix>_events`, one row per logged broadcast (never per
/// recipient) keyed by (namespace, offset), and `<prefix>_sessions`, one row per session by pid,
/// `disconnected_at` NULL while connected. Every write deletes the rows past the window.
///
/// One server at a time uses a set of tables: ``run()`` holds a PostgreSQL advisory lock on them
/// while the server runs, ``prepare()`` fails when another server holds it, and writes fail
/// (to be written again, the events waiting) while the lock is not held.
///
/// The nodes of a ``PostgresCluster`` share one set instead (``Configuration/node``): the
/// cluster gives each namespace's replayable broadcasts one order through `<prefix>_offsets`
/// (``sequence(namespace:messageID:event:publish:)``), every node logs every event, and a client
/// whose node died takes its session over on the node it comes back to (``claimSession(pid:namespace:since:)``).
public final class PostgresRecoveryStore: SocketIOSharedRecoveryStore {
    /// Where the store keeps its rows.
    public struct Configuration: Sendable {
        /// The tables' prefix (a plain SQL identifier): `<prefix>_events`, `<prefix>_sessions`.
        public var tablePrefix = "socket_io_recovery"
        /// The wait before taking the lock again after its connection was lost.
        public var reconnectDelay: Duration = .seconds(1)
        /// How long ``PostgresRecoveryStore/run()`` tries to take the lock when it starts: the
        /// connection of a server that just died may hold it for a moment.
        public var startupLockWait: Duration = .seconds(5)
        /// The cluster node (its uid) this store writes for, when the nodes of a cluster share
        /// the tables; `nil`: one server uses them, under the lock.
        public var node: String?
        /// Put before each namespace's name in the rows, so that clusters that share a database
        /// (their channel prefixes differ) keep their events and sessions apart.
        public var scope = ""

        public init() {}
    }

    public let client: PostgresClient
    public let configuration: Configuration
    private let logger: Logger
    /// Whether this store holds the tables' lock now.
    private let holding = Mutex(false)
    /// Resumed by ``run()`` once it took the lock the first time, with whether it could.
    private let firstLock = Mutex<(taken: Bool?, waiters: [CheckedContinuation<Bool, Never>])>((nil, []))

    /// A store over `client`; throws when the prefix is not a plain SQL identifier.
    public init(client: PostgresClient, configuration: Configuration = .init(), logger: Logger) throws(PostgresClusterError) {
        try PostgresClusterTransport.checkIdentifier(configuration.tablePrefix + "_sessions")
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    private var events: String { configuration.tablePrefix + "_events" }
    private var sessions: String { configuration.tablePrefix + "_sessions" }
    private var offsets: String { configuration.tablePrefix + "_offsets" }
    /// A namespace's name in the rows.
    private func key(_ namespace: String) -> String { configuration.scope + namespace }
    private var lockKey: String { configuration.tablePrefix + ".owner" }

    /// Whether this store holds its tables now (writes fail while it does not); always, when
    /// the nodes of a cluster share them.
    public var isHolding: Bool { configuration.node != nil || holding.withLock { $0 } }

    /// Creates the tables when missing (servers that start together create them once).
    public func prepare() async throws {
        let (events, sessions, offsets, logger) = (events, sessions, offsets, logger)
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(events)))", logger: logger)
            let statements = [
                """
                CREATE TABLE IF NOT EXISTS \(events) (
                    namespace text NOT NULL, "offset" bigint NOT NULL, rooms text[] NOT NULL, except_rooms text[] NOT NULL,
                    payloads bytea NOT NULL, emitted_at timestamptz NOT NULL, message_id text, PRIMARY KEY (namespace, "offset"))
                """,
                "CREATE INDEX IF NOT EXISTS \(events)_emitted ON \(events) (emitted_at)",
                """
                CREATE TABLE IF NOT EXISTS \(sessions) (
                    pid text PRIMARY KEY, id text NOT NULL, namespace text NOT NULL, rooms text[] NOT NULL, data text NOT NULL,
                    admitted_offset bigint NOT NULL, disconnected_at timestamptz)
                """,
                "CREATE INDEX IF NOT EXISTS \(sessions)_gone ON \(sessions) (disconnected_at)",
                // The node that keeps a session, in a cluster: another one takes it over.
                "ALTER TABLE \(sessions) ADD COLUMN IF NOT EXISTS node text",
                "CREATE INDEX IF NOT EXISTS \(events)_message ON \(events) (namespace, message_id) WHERE message_id IS NOT NULL",
                // Each namespace's last offset, in a cluster: the row's lock orders the events.
                "CREATE TABLE IF NOT EXISTS \(offsets) (namespace text PRIMARY KEY, last bigint NOT NULL)",
            ]
            for statement in statements { try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
        }
    }

    /// Holds the tables' lock on a connection of its own until the task is cancelled, taking it
    /// again after ``Configuration/reconnectDelay`` when the connection is lost. Returns when
    /// another server still holds the lock after ``Configuration/startupLockWait`` at the start
    /// (``waitForLock()`` then answers `false`).
    public func run() async {
        if configuration.node != nil {
            // The nodes of a cluster share the tables: no lock to hold.
            tookLock(true)
            return
        }
        var first = true
        let giveUp = ContinuousClock.now + configuration.startupLockWait
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    var taken = false
                    while true {
                        let rows = try await connection.query("SELECT pg_try_advisory_lock(hashtext(\(lockKey)))", logger: logger)
                        for try await value in rows.decode(Bool.self) { taken = value }
                        guard !taken, first, ContinuousClock.now < giveUp else { break }
                        try await Task.sleep(for: .milliseconds(200))
                    }
                    holding.withLock { $0 = taken }
                    if first { tookLock(taken) }
                    first = false
                    guard taken else {
                        logger.error(
                            "Another server holds these recovery tables; this store does not write while it does",
                            metadata: ["tables": "\(events), \(sessions)"])
                        return
                    }
                    // Keep the connection (and the lock) until cancelled; a lost connection ends the query.
                    while !Task.isCancelled {
                        try await connection.query("SELECT 1", logger: logger)
                        try await Task.sleep(for: .seconds(1))
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning(
                    "The recovery store's PostgreSQL connection was lost; taking its lock again", metadata: ["error": "\(String(reflecting: error))"])
            }
            holding.withLock { $0 = false }
            if first {
                tookLock(false)
                return
            }
            try? await Task.sleep(for: configuration.reconnectDelay)
        }
        holding.withLock { $0 = false }
    }

    /// Whether ``run()`` took the tables' lock when it started (waits until it tried).
    public func waitForLock() async -> Bool {
        await withCheckedContinuation { continuation in
            let taken = firstLock.withLock { state -> Bool? in
                if state.taken == nil { state.waiters.append(continuation) }
                return state.taken
            }
            if let taken { continuation.resume(returning: taken) }
        }
    }

    private func tookLock(_ taken: Bool) {
        let waiters = firstLock.withLock { state in
            state.taken = taken
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: taken) }
    }

    public func load(since: Date) async throws -> SocketIORecoverySnapshot {
        let eventRows = try await client.query(
            """
            SELECT namespace, "offset", rooms, except_rooms, payloads, emitted_at, message_id FROM \(unescaped: events)
            WHERE emitted_at >= \(since) AND starts_with(namespace, \(configuration.scope)) ORDER BY namespace, "offset"
            """, logger: logger)
        var snapshot = SocketIORecoverySnapshot()
        for try await (namespace, offset, rooms, except, packed, emitted, messageID) in eventRows.decode(
            (String, Int64, [String], [String], ByteBuffer, Date, String?).self)
        {
            guard let payloads = SocketIOStoredEvent.unpack(packed) else { continue }
            snapshot.events.append(
                SocketIOStoredEvent(
                    namespace: String(namespace.dropFirst(configuration.scope.count)), offset: UInt64(bitPattern: offset), rooms: Set(rooms),
                    except: Set(except), payloads: payloads, emittedAt: emitted, messageID: messageID))
        }
        // In a cluster a session is taken over when its client comes back (claimSession).
        guard configuration.node == nil else { return snapshot }
        let sessionRows = try await client.query(
            """
            SELECT pid, id, namespace, rooms, data, admitted_offset, disconnected_at FROM \(unescaped: sessions)
            WHERE (disconnected_at IS NULL OR disconnected_at >= \(since)) AND starts_with(namespace, \(configuration.scope))
            """, logger: logger)
        for try await (pid, id, namespace, rooms, data, admitted, gone) in sessionRows.decode(
            (String, String, String, [String], String, Int64, Date?).self)
        {
            snapshot.sessions.append(
                SocketIOStoredSession(
                    pid: pid, id: id, namespace: String(namespace.dropFirst(configuration.scope.count)), rooms: Set(rooms), data: data,
                    admittedAtOffset: UInt64(bitPattern: admitted), disconnectedAt: gone))
        }
        return snapshot
    }

    /// Keeps a batch in one transaction; throws while this store does not hold its tables.
    public func write(_ batch: SocketIORecoveryBatch) async throws {
        guard isHolding else { throw PostgresClusterError("the recovery tables \(events), \(sessions) are not held by this server") }
        let (events, sessions, logger) = (events, sessions, logger)
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("DELETE FROM \(unescaped: events) WHERE emitted_at < \(batch.pruneBefore)", logger: logger)
            try await connection.query("DELETE FROM \(unescaped: sessions) WHERE disconnected_at < \(batch.pruneBefore)", logger: logger)
            if !batch.events.isEmpty {
                let rows = batch.events
                try await connection.query(
                    """
                    INSERT INTO \(unescaped: events) (namespace, "offset", rooms, except_rooms, payloads, emitted_at, message_id)
                    SELECT n, o, ARRAY(SELECT jsonb_array_elements_text(r::jsonb)), ARRAY(SELECT jsonb_array_elements_text(x::jsonb)), p, e, NULLIF(m, '')
                    FROM unnest(\(rows.map { key($0.namespace) })::text[], \(rows.map { Int64(bitPattern: $0.offset) })::bigint[],
                        \(rows.map { Self.json($0.rooms) })::text[], \(rows.map { Self.json($0.except) })::text[],
                        \(rows.map { SocketIOStoredEvent.pack($0.payloads) })::bytea[], \(rows.map(\.emittedAt))::timestamptz[],
                        \(rows.map { $0.messageID ?? "" })::text[]) AS e(n, o, r, x, p, e, m)
                    ON CONFLICT (namespace, "offset") DO UPDATE SET rooms = excluded.rooms, except_rooms = excluded.except_rooms,
                        payloads = excluded.payloads, emitted_at = excluded.emitted_at, message_id = excluded.message_id
                    """, logger: logger)
            }
            let removed = batch.removedSessions.subtracting(batch.sessions.map(\.pid))
            let node = configuration.node
            if !removed.isEmpty {
                // A session another node took over is that node's to forget.
                try await connection.query(
                    "DELETE FROM \(unescaped: sessions) WHERE pid = ANY(\(Array(removed))::text[]) AND node IS NOT DISTINCT FROM \(node)",
                    logger: logger)
            }
            // The last of each pid counts, as when they are kept one after the other.
            var latest: [String: SocketIOStoredSession] = [:]
            for session in batch.sessions { latest[session.pid] = session }
            if !latest.isEmpty {
                let rows = Array(latest.values)
                // A NULL in a timestamptz[] parameter: the epoch stands for "connected".
                let epoch = Date(timeIntervalSince1970: 0)
                try await connection.query(
                    """
                    INSERT INTO \(unescaped: sessions) (pid, id, namespace, rooms, data, admitted_offset, disconnected_at, node)
                    SELECT p, i, n, ARRAY(SELECT jsonb_array_elements_text(r::jsonb)), d, a, NULLIF(g, \(epoch)), \(node)
                    FROM unnest(\(rows.map(\.pid))::text[], \(rows.map(\.id))::text[], \(rows.map { key($0.namespace) })::text[],
                        \(rows.map { Self.json($0.rooms) })::text[], \(rows.map(\.data))::text[],
                        \(rows.map { Int64(bitPattern: $0.admittedAtOffset) })::bigint[], \(rows.map { $0.disconnectedAt ?? epoch })::timestamptz[])
                        AS s(p, i, n, r, d, a, g)
                    ON CONFLICT (pid) DO UPDATE SET id = excluded.id, namespace = excluded.namespace, rooms = excluded.rooms,
                        data = excluded.data, admitted_offset = excluded.admitted_offset, disconnected_at = excluded.disconnected_at
                    WHERE \(unescaped: sessions).node IS NOT DISTINCT FROM excluded.node
                    """, logger: logger)
            }
        }
    }

    /// Takes a session over for this node (in a cluster): the node that kept it no longer writes
    /// or forgets it. `nil` when there is none, it is past `since`, or this store is not shared.
    public func claimSession(pid: String, namespace: String, since: Date) async throws -> SocketIOStoredSession? {
        guard let node = configuration.node else { return nil }
        let rows = try await client.query(
            """
            UPDATE \(unescaped: sessions) SET node = \(node), disconnected_at = COALESCE(disconnected_at, now())
            WHERE pid = \(pid) AND namespace = \(key(namespace)) AND (disconnected_at IS NULL OR disconnected_at >= \(since))
            RETURNING id, rooms, data, admitted_offset, disconnected_at
            """, logger: logger)
        var session: SocketIOStoredSession?
        for try await (id, rooms, data, admitted, gone) in rows.decode((String, [String], String, Int64, Date).self) {
            session = SocketIOStoredSession(
                pid: pid, id: id, namespace: namespace, rooms: Set(rooms), data: data, admittedAtOffset: UInt64(bitPattern: admitted),
                disconnectedAt: gone)
        }
        return session
    }

    /// Gives a replayable broadcast of `namespace` the namespace's next offset and keeps it, in one
    /// transaction with `publish` (which notifies the cluster on `connection`): the offsets row
    /// stays locked until the commit, so the cluster's nodes receive a namespace's events in
    /// offset order, and the offsets have no gaps. Returns the offset, or `nil` (publishing
    /// nothing) when an event of `messageID` is kept already. The first offset of a namespace is
    /// the wall clock in microseconds, so that offsets handed out before are not handed out again.
    public func sequence(
        namespace: String, messageID: String?, event: @Sendable (UInt64) -> SocketIOStoredEvent,
        publish: @Sendable (UInt64, PostgresConnection) async throws -> Void
    ) async throws -> UInt64? {
        do {
            return try await sequenceTransaction(
                namespace: key(namespace), messageID: messageID, events: events, offsets: offsets, event: event, publish: publish)
        } catch let error as PostgresTransactionError where error.closureError is Duplicate && error.rollbackError == nil {
            return nil
        }
    }

    private func sequenceTransaction(
        namespace: String, messageID: String?, events: String, offsets: String, event: @Sendable (UInt64) -> SocketIOStoredEvent,
        publish: @Sendable (UInt64, PostgresConnection) async throws -> Void
    ) async throws -> UInt64 {
        let logger = logger
        return try await client.withTransaction(logger: logger) { connection -> UInt64 in
            let start = Int64(Date().timeIntervalSince1970 * 1_000_000)
            var next: Int64?
            let rows = try await connection.query(
                """
                INSERT INTO \(unescaped: offsets) (namespace, last) VALUES (\(namespace), \(start))
                ON CONFLICT (namespace) DO UPDATE SET last = \(unescaped: offsets).last + 1 RETURNING last
                """, logger: logger)
            for try await value in rows.decode(Int64.self) { next = value }
            guard let next else { throw PostgresClusterError("no offset for namespace \(namespace)") }
            // Checked under the offsets row's lock: an event committed before is seen.
            if let messageID {
                let found = try await connection.query(
                    "SELECT 1 FROM \(unescaped: events) WHERE namespace = \(namespace) AND message_id = \(messageID) LIMIT 1", logger: logger)
                var duplicate = false
                for try await _ in found { duplicate = true }
                if duplicate { throw Duplicate() }
            }
            let offset = UInt64(bitPattern: next)
            let kept = event(offset)
            try await connection.query(
                """
                INSERT INTO \(unescaped: events) (namespace, "offset", rooms, except_rooms, payloads, emitted_at, message_id)
                VALUES (\(namespace), \(next), \(kept.rooms.sorted()), \(kept.except.sorted()), \(SocketIOStoredEvent.pack(kept.payloads)),
                    \(kept.emittedAt), \(messageID))
                """, logger: logger)
            try await publish(offset, connection)
            return offset
        }
    }

    /// The events of `namespace` after `offset` kept since `since`, oldest first, and the
    /// namespace's last offset (`nil`: it has none yet): what a node missed while it did not listen.
    public func events(of namespace: String, after offset: UInt64, since: Date) async throws -> (events: [SocketIOStoredEvent], last: UInt64?) {
        let rows = try await client.query(
            """
            SELECT "offset", rooms, except_rooms, payloads, emitted_at, message_id FROM \(unescaped: events)
            WHERE namespace = \(key(namespace)) AND "offset" > \(Int64(bitPattern: offset)) AND emitted_at >= \(since) ORDER BY "offset"
            """, logger: logger)
        var found: [SocketIOStoredEvent] = []
        for try await (offset, rooms, except, packed, emitted, messageID) in rows.decode((Int64, [String], [String], ByteBuffer, Date, String?).self)
        {
            guard let payloads = SocketIOStoredEvent.unpack(packed) else { continue }
            found.append(
                SocketIOStoredEvent(
                    namespace: namespace, offset: UInt64(bitPattern: offset), rooms: Set(rooms), except: Set(except), payloads: payloads,
                    emittedAt: emitted, messageID: messageID))
        }
        var last: UInt64?
        for try await value in try await client.query("SELECT last FROM \(unescaped: offsets) WHERE namespace = \(key(namespace))", logger: logger)
            .decode(Int64.self)
        {
            last = UInt64(bitPattern: value)
        }
        return (found, last)
    }

    /// Rooms as a JSON array (a text[] of text[] cannot be bound: each set goes as one string).
    private static func json(_ rooms: Set<String>) -> String {
        String(decoding: (try? JSONEncoder().encode(rooms.sorted())) ?? Data("[]".utf8), as: UTF8.self)
    }
}

/// Ends a sequencing transaction (rolling it back) when its message's event is kept already.
private struct Duplicate: Error {}
