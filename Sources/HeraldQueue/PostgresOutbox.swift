import Foundation
public import Logging
public import NIOCore
public import PostgresNIO
import Synchronization

/// A transactional outbox in PostgreSQL: producers insert rows into a table inside their own
/// transactions, so that a message exists exactly when the change it announces committed, and
/// herald consumes the table with SQS's semantics (``PostgresMessageSource``).
///
/// ```sql
/// INSERT INTO herald_outbox (body) VALUES ('{"event": "item_added", "data": {"id": 7}}');
/// INSERT INTO herald_outbox (body, key, attributes) VALUES ('{"id": 8}', 'order-42', '{"herald-event": "item_added"}');
/// ```
///
/// A receive hides the rows it takes for the visibility timeout and counts the receive; a
/// delete removes a row by its receipt (the row's id and receive count, so a receipt of an
/// earlier reception deletes nothing). Rows of one `key` are received one batch after the other,
/// in insertion (id) order: a row is taken only when no earlier row of its key is in flight.
/// Rows without a key are taken in any order. A row received ``Configuration/maxReceiveCount``
/// times moves to `<table>_dead_letters` on its next receive, which frees its key.
///
/// Receives take rows with `FOR UPDATE SKIP LOCKED` under a transaction-scoped advisory lock, so
/// that several herald processes on one table never take the same row, nor two rows of one key
/// at once. A trigger notifies `<table>` when rows are inserted, or deleted while later rows of
/// their key wait (those can be taken now); a waiting
/// receive wakes on it (through ``listen()``) and looks again every ``Configuration/pollInterval``
/// for what no notification announces (visibility that ran out).
public final class PostgresOutbox: Sendable {
    /// The table and its timings.
    public struct Configuration: Sendable {
        /// The table (a plain SQL identifier); its dead letters go to `<table>_dead_letters`.
        public var tableName = "herald_outbox"
        /// How long a received row stays hidden unless its visibility is changed.
        public var visibilityTimeout: Duration = .seconds(30)
        /// Receives after which a row moves to the dead-letter table on its next receive; `nil`
        /// keeps rows until they are deleted.
        public var maxReceiveCount: Int? = 10
        /// How often a waiting receive looks again without a notification.
        public var pollInterval: Duration = .seconds(1)
        /// The wait before listening again after the connection was lost.
        public var reconnectDelay: Duration = .seconds(1)

        public init() {}
    }

    /// Rows by state, for readiness and tests.
    public struct Counts: Sendable, Equatable {
        public var visible: Int
        public var invisible: Int
        public var deadLettered: Int
    }

    public let client: PostgresClient
    public let configuration: Configuration
    private let logger: Logger
    private let wakeUps = WakeUps()
    private let listening = Mutex(false)

    /// An outbox over `client`; throws when the table name is not a plain SQL identifier.
    public init(client: PostgresClient, configuration: Configuration = .init(), logger: Logger) throws(PostgresOutboxError) {
        try Self.checkTableName(configuration.tableName)
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    private var table: String { configuration.tableName }
    private var deadLetters: String { table + "_dead_letters" }

    /// How many receives wait for a wake-up now.
    var waitingReceives: Int { wakeUps.waiting }

    /// Whether the wake-up channel is being listened to now.
    public var isListening: Bool { listening.withLock { $0 } }

    /// Creates the table, its dead-letter table, index and notifying trigger when missing;
    /// processes that start together create them once.
    public func prepare() async throws {
        let (table, deadLetters) = (table, deadLetters)
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(table)))", logger: logger)
            let statements: [String] = [
                """
                CREATE TABLE IF NOT EXISTS \(table) (
                    id bigserial PRIMARY KEY,
                    body text NOT NULL,
                    key text,
                    attributes jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    visible_at timestamptz NOT NULL DEFAULT now(),
                    receive_count integer NOT NULL DEFAULT 0
                )
                """,
                "CREATE INDEX IF NOT EXISTS \(table)_key_id ON \(table) (key, id) WHERE key IS NOT NULL",
                "CREATE INDEX IF NOT EXISTS \(table)_visible_at ON \(table) (visible_at)",
                """
                CREATE TABLE IF NOT EXISTS \(deadLetters) (
                    id bigint PRIMARY KEY, body text NOT NULL, key text, attributes jsonb NOT NULL,
                    created_at timestamptz NOT NULL, receive_count integer NOT NULL, dead_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                """
                CREATE OR REPLACE FUNCTION \(table)_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN PERFORM pg_notify('\(table)', ''); RETURN NULL; END $$
                """,
                """
                CREATE OR REPLACE FUNCTION \(table)_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM gone JOIN \(table) waiting ON waiting.key = gone.key) THEN
                        PERFORM pg_notify('\(table)', '');
                    END IF;
                    RETURN NULL;
                END $$
                """,
                "DROP TRIGGER IF EXISTS \(table)_inserted ON \(table)",
                "CREATE TRIGGER \(table)_inserted AFTER INSERT ON \(table) FOR EACH STATEMENT EXECUTE FUNCTION \(table)_inserted()",
                "DROP TRIGGER IF EXISTS \(table)_deleted ON \(table)",
                """
                CREATE TRIGGER \(table)_deleted AFTER DELETE ON \(table) REFERENCING OLD TABLE AS gone
                FOR EACH STATEMENT EXECUTE FUNCTION \(table)_deleted()
                """,
            ]
            for statement in statements {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
    }

    /// Listens on the wake-up channel until the task is cancelled, waking waiting receives on
    /// each notification; listens again after ``Configuration/reconnectDelay`` when the
    /// connection is lost (and wakes the receives then: what was notified meanwhile is unknown).
    public func listen() async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: table) { notifications in
                        listening.withLock { $0 = true }
                        wakeUps.wake()
                        for try await _ in notifications { wakeUps.wake() }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("The outbox's PostgreSQL connection was lost; listening again", metadata: ["error": "\(String(reflecting: error))"])
            }
            listening.withLock { $0 = false }
            try? await Task.sleep(for: configuration.reconnectDelay)
        }
        listening.withLock { $0 = false }
    }

    /// Inserts messages in one transaction, each with its attributes and key (`nil` or empty: none).
    public func insert(_ messages: [(body: ByteBuffer, attributes: [String: String], key: String?)]) async throws {
        guard !messages.isEmpty else { return }
        var (bodies, attributes, keys) = ([String](), [String](), [String]())
        for message in messages {
            bodies.append(String(buffer: message.body))
            attributes.append(String(decoding: try JSONSerialization.data(withJSONObject: message.attributes, options: [.sortedKeys]), as: UTF8.self))
            keys.append(message.key ?? "")
        }
        try await client.query(
            """
            INSERT INTO \(unescaped: table) (body, attributes, key)
            SELECT b, a::jsonb, NULLIF(k, '') FROM unnest(\(bodies)::text[], \(attributes)::text[], \(keys)::text[]) WITH ORDINALITY AS m(b, a, k, n) ORDER BY n
            """, logger: logger)
    }

    /// Takes up to `maxMessages` rows, waiting up to `waitTime` for the first; empty when the
    /// wait ended with none. Rows past the receive limit move to the dead-letter table first.
    public func receive(maxMessages: Int, waitTime: Duration) async throws -> [QueueMessage] {
        let deadline = ContinuousClock.now + waitTime
        while true {
            let seen = wakeUps.generation
            let messages = try await receiveVisible(maxMessages: max(1, maxMessages))
            let now = ContinuousClock.now
            guard messages.isEmpty, now < deadline else { return messages }
            await wakeUps.wait(after: seen, for: min(deadline - now, configuration.pollInterval))
            try Task.checkCancellation()
        }
    }

    private func receiveVisible(maxMessages: Int) async throws -> [QueueMessage] {
        let (table, deadLetters, logger) = (table, deadLetters, logger)
        let visibility =
            Double(configuration.visibilityTimeout.components.seconds)
            + Double(configuration.visibilityTimeout.components.attoseconds) / 1e18
        let maxReceives = configuration.maxReceiveCount.map(Int32.init) ?? Int32.max
        let (messages, deadLettered) = try await client.withTransaction(logger: logger) { connection in
            // One receive at a time per table: the next one sees which keys are in flight.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(table + ".receive")))", logger: logger)
            var deadLettered: [Int64] = []
            let moved = try await connection.query(
                """
                WITH moved AS (
                    DELETE FROM \(unescaped: table) WHERE visible_at <= now() AND receive_count >= \(maxReceives)
                    RETURNING id, body, key, attributes, created_at, receive_count)
                INSERT INTO \(unescaped: deadLetters) (id, body, key, attributes, created_at, receive_count)
                SELECT id, body, key, attributes, created_at, receive_count FROM moved RETURNING id
                """, logger: logger)
            for try await id in moved.decode(Int64.self) { deadLettered.append(id) }
            let rows = try await connection.query(
                """
                WITH picked AS (
                    SELECT id FROM \(unescaped: table) o
                    WHERE visible_at <= now() AND (key IS NULL OR NOT EXISTS (
                        SELECT 1 FROM \(unescaped: table) p WHERE p.key = o.key AND p.id < o.id AND p.visible_at > now()))
                    ORDER BY id LIMIT \(Int64(maxMessages)) FOR UPDATE SKIP LOCKED)
                UPDATE \(unescaped: table) t SET visible_at = now() + make_interval(secs => \(visibility)), receive_count = t.receive_count + 1
                FROM picked WHERE t.id = picked.id
                RETURNING t.id, t.body, t.key, t.attributes::text, t.created_at, t.receive_count
                """, logger: logger)
            var messages: [QueueMessage] = []
            for try await (id, body, key, attributes, created, count) in rows.decode((Int64, String, String?, String, Date, Int32).self) {
                let id = String(id)
                messages.append(
                    QueueMessage(
                        id: id, body: ByteBuffer(string: body), messageAttributes: Self.attributes(attributes), receiveCount: Int(count),
                        sentTimestamp: created, groupID: key, receipt: QueueReceipt(messageID: id, handle: String(count))))
            }
            return (messages.sorted { Int64($0.id)! < Int64($1.id)! }, deadLettered)
        }
        for id in deadLettered {
            logger.warning(
                "Moved an outbox row to the dead-letter table after too many receives",
                metadata: ["message_id": "\(id)", "dead_letter": "\(deadLetters)", "max_receive_count": "\(maxReceives)"])
        }
        return messages
    }

    /// Deletes rows by receipt; returns the receipts that matched nothing (deleted already, or
    /// received again since).
    public func delete(_ receipts: [QueueReceipt]) async throws -> [QueueReceipt] {
        guard !receipts.isEmpty else { return [] }
        let keys = receipts.map { (Int64($0.messageID), Int32($0.handle)) }
        let ids = keys.map { $0.0 ?? -1 }
        let counts = keys.map { $0.1 ?? -1 }
        let rows = try await client.query(
            """
            DELETE FROM \(unescaped: table) t USING unnest(\(ids)::bigint[], \(counts)::integer[]) AS r(id, receive_count)
            WHERE t.id = r.id AND t.receive_count = r.receive_count RETURNING t.id
            """, logger: logger)
        var deleted = Set<String>()
        for try await id in rows.decode(Int64.self) { deleted.insert(String(id)) }
        return receipts.filter { !deleted.contains($0.messageID) }
    }

    /// Hides a received row for `timeout` from now; `.zero` makes it visible at once and wakes
    /// the waiting receives. Throws ``PostgresOutboxError`` when the receipt matches no row.
    public func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws {
        guard let id = Int64(receipt.messageID), let count = Int32(receipt.handle) else {
            throw PostgresOutboxError("'\(receipt.messageID)' is not a receipt of this outbox")
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        let rows = try await client.query(
            """
            UPDATE \(unescaped: table) SET visible_at = now() + make_interval(secs => \(seconds))
            WHERE id = \(id) AND receive_count = \(count) RETURNING id
            """, logger: logger)
        var found = false
        for try await _ in rows { found = true }
        guard found else { throw PostgresOutboxError("row \(receipt.messageID) was deleted or received again") }
        if timeout <= .zero { try await client.query("SELECT pg_notify(\(table), '')", logger: logger) }
    }

    /// How many rows wait, are in flight, and were dead-lettered.
    public func counts() async throws -> Counts {
        let rows = try await client.query(
            """
            SELECT (SELECT count(*) FROM \(unescaped: table) WHERE visible_at <= now()),
                   (SELECT count(*) FROM \(unescaped: table) WHERE visible_at > now()),
                   (SELECT count(*) FROM \(unescaped: deadLetters))
            """, logger: logger)
        for try await (visible, invisible, dead) in rows.decode((Int64, Int64, Int64).self) {
            return Counts(visible: Int(visible), invisible: Int(invisible), deadLettered: Int(dead))
        }
        throw PostgresOutboxError("the counts query returned no row")
    }

    /// A row's attributes: its JSON object's members, strings as they are, other values as JSON.
    static func attributes(_ json: String) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else { return [:] }
        var attributes: [String: String] = [:]
        for (name, value) in object {
            if let text = value as? String {
                attributes[name] = text
            } else if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]) {
                attributes[name] = String(decoding: data, as: UTF8.self)
            }
        }
        return attributes
    }

    /// Throws unless `name` is a plain SQL identifier (letters, digits and `_`, not starting with
    /// a digit) of at most 50 bytes, so that its dead-letter table's name is one too.
    public static func checkTableName(_ name: String) throws(PostgresOutboxError) {
        let scalars = name.unicodeScalars
        guard let first = scalars.first, !("0"..."9").contains(first), name.utf8.count <= 50,
            scalars.allSatisfy({ $0 == "_" || ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) })
        else { throw PostgresOutboxError("'\(name)' is not a plain SQL identifier (letters, digits and _, at most 50 bytes)") }
    }
}

/// Why the outbox refused a configuration or an operation.
public struct PostgresOutboxError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Wakes waiting receives: each wake-up starts a new generation, and a receive waits for one
/// after the generation it saw before it looked (so a wake-up between its look and its wait is
/// not lost), or for its timeout, or for its task's cancellation.
final class WakeUps: Sendable {
    private struct Waiter {
        let continuation: CheckedContinuation<Void, Never>
        var timer: Task<Void, Never>?
    }

    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    var generation: UInt64 { state.withLock { $0.generation } }

    /// How many receives wait now.
    var waiting: Int { state.withLock { $0.waiters.count } }

    func wake() {
        let waiters = state.withLock { state in
            state.generation += 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { finish(waiter) }
    }

    func wait(after generation: UInt64, for timeout: Duration) async {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let waiting = state.withLock { state in
                    guard state.generation == generation, !Task.isCancelled else { return false }
                    state.waiters[id] = Waiter(continuation: continuation)
                    return true
                }
                guard waiting else { return continuation.resume() }
                let timer = Task { [self] in
                    try? await Task.sleep(for: timeout)
                    resume(id)
                }
                let gone = state.withLock { state in
                    state.waiters[id]?.timer = timer
                    return state.waiters[id] == nil
                }
                if gone { timer.cancel() }
            }
        } onCancel: {
            resume(id)
        }
    }

    private func resume(_ id: UInt64) {
        if let waiter = state.withLock({ $0.waiters.removeValue(forKey: id) }) { finish(waiter) }
    }

    private func finish(_ waiter: Waiter) {
        waiter.timer?.cancel()
        waiter.continuation.resume()
    }
}
