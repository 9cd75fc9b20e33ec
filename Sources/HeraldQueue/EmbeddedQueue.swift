import Foundation
public import Logging
public import Metrics
public import NIOCore
import NIOPosix
import SQLiteNIO

/// A durable queue in one SQLite file (WAL mode), with SQS's semantics: messages received are
/// invisible until a deadline, count their receives, are deleted by receipt, and are moved to a
/// dead-letter table after ``Configuration/maxReceiveCount`` receives.
///
/// ``enqueue(body:attributes:groupID:)`` returns once the row is committed with `synchronous=FULL`,
/// so an enqueued message survives a crash of the process or of the machine. One instance may be
/// used from many tasks at once; several processes may open the same file.
public final class EmbeddedQueue: Sendable {
    /// How an ``EmbeddedQueue`` hides and dead-letters messages.
    public struct Configuration: Sendable {
        /// How long a received message stays invisible unless its visibility is changed.
        public var visibilityTimeout: Duration = .seconds(30)
        /// Receives after which a message is moved to the dead-letter table on its next receive;
        /// `nil` keeps messages forever.
        public var maxReceiveCount: Int? = 5
        /// How often a waiting receive looks for messages it was not told about: those other
        /// processes enqueued, and those whose visibility ran out. A message enqueued through
        /// this queue wakes a waiting receive as soon as it is committed.
        public var pollInterval: Duration = .milliseconds(100)
        /// Whether opening takes an exclusive lock on `<path>.lock`, so that no other queue
        /// opened with this option (in this process or another) can use the file at the same
        /// time: ``EmbeddedQueue/open(path:configuration:logger:metricsFactory:)`` then throws
        /// ``EmbeddedQueueLockError/held(queuePath:)``. Queues opened without it take no lock
        /// and are not kept out (several processes may then share the file, for example
        /// producers enqueueing for one consumer).
        public var exclusive = false

        /// Creates a configuration with the defaults; set the properties to change them.
        public init() {}
    }

    /// A message to enqueue.
    public struct NewMessage: Sendable {
        /// The body bytes.
        public var body: ByteBuffer
        /// Attributes delivered as ``QueueMessage/messageAttributes``.
        public var attributes: [String: String]
        /// A group ID, delivered as ``QueueMessage/groupID``.
        public var groupID: String?

        /// Creates a message.
        public init(body: ByteBuffer, attributes: [String: String] = [:], groupID: String? = nil) {
            self.body = body
            self.attributes = attributes
            self.groupID = groupID
        }
    }

    /// How many messages are where.
    public struct Counts: Sendable, Hashable {
        /// Visible now.
        public var visible: Int
        /// Received and hidden (in flight, or given back with a delay).
        public var invisible: Int
        /// In the dead-letter table.
        public var deadLettered: Int

        /// Creates counts.
        public init(visible: Int, invisible: Int, deadLettered: Int) {
            self.visible = visible
            self.invisible = invisible
            self.deadLettered = deadLettered
        }
    }

    /// The file the queue lives in.
    public let path: String
    /// The queue's settings.
    public let configuration: Configuration
    private let connection: SQLiteConnection
    private let lock = AsyncLock()
    /// Bumped after each commit that may make messages visible: waiting receives look again.
    let changes = ChangeSignal()
    private let processLock: EmbeddedQueueLock?
    private let deadLetterCounter: Counter
    private let logger: Logger

    private init(
        path: String, configuration: Configuration, connection: SQLiteConnection, processLock: EmbeddedQueueLock?, logger: Logger,
        factory: any MetricsFactory
    ) {
        self.path = path
        self.configuration = configuration
        self.connection = connection
        self.processLock = processLock
        self.logger = logger
        deadLetterCounter = Counter(
            label: "herald_queue_dead_letter_moves_total", dimensions: [("queue", (path as NSString).lastPathComponent)], factory: factory
        )
    }

    /// Opens (creating when needed) the queue in the SQLite file at `path`.
    ///
    /// - Parameters:
    ///   - path: The database file; `-wal` and `-shm` files appear beside it.
    ///   - configuration: Visibility and dead-letter settings.
    ///   - logger: Where the queue logs dead-lettered messages.
    ///   - metricsFactory: Where `herald_queue_dead_letter_moves_total` (messages moved to the dead-letter table) goes; `nil` for `MetricsSystem.factory`.
    public static func open(
        path: String,
        configuration: Configuration = .init(),
        logger: Logger = Logger(label: "herald.queue.embedded"),
        metricsFactory: (any MetricsFactory)? = nil
    ) async throws -> EmbeddedQueue {
        let processLock = configuration.exclusive ? try EmbeddedQueueLock.acquire(queuePath: path) : nil
        let connection: SQLiteConnection
        do {
            connection = try await SQLiteConnection.open(
                storage: .file(path: path), threadPool: .singleton, logger: logger,
                on: MultiThreadedEventLoopGroup.singleton.any()
            )
        } catch {
            processLock?.release()
            throw error
        }
        do {
            for statement in schema {
                _ = try await connection.query(statement)
            }
        } catch {
            try? await connection.close()
            processLock?.release()
            throw error
        }
        return EmbeddedQueue(
            path: path, configuration: configuration, connection: connection, processLock: processLock, logger: logger,
            factory: metricsFactory ?? MetricsSystem.factory
        )
    }

    private static let schema = [
        "PRAGMA busy_timeout = 10000",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL",
        """
        CREATE TABLE IF NOT EXISTS messages (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            body BLOB NOT NULL,
            attributes TEXT NOT NULL,
            group_id TEXT,
            sent_at INTEGER NOT NULL,
            visible_at INTEGER NOT NULL,
            receive_count INTEGER NOT NULL DEFAULT 0,
            receipt TEXT
        )
        """,
        "CREATE INDEX IF NOT EXISTS messages_visible ON messages (visible_at, seq)",
        """
        CREATE TABLE IF NOT EXISTS dead_letters (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL,
            body BLOB NOT NULL,
            attributes TEXT NOT NULL,
            group_id TEXT,
            sent_at INTEGER NOT NULL,
            receive_count INTEGER NOT NULL,
            dead_at INTEGER NOT NULL
        )
        """,
    ]

    /// Closes the database, then releases the lock when ``Configuration/exclusive`` took one.
    /// The queue cannot be used afterwards.
    public func close() async throws {
        defer { processLock?.release() }
        try await serialized { try await self.connection.close() }
    }

    // MARK: Enqueue

    /// Enqueues one message; returns its ID once the row is committed to disk.
    @discardableResult
    public func enqueue(body: ByteBuffer, attributes: [String: String] = [:], groupID: String? = nil) async throws -> String {
        try await enqueue(batch: [NewMessage(body: body, attributes: attributes, groupID: groupID)])[0]
    }

    /// Enqueues one message given as bytes; returns its ID once the row is committed to disk.
    @discardableResult
    public func enqueue(body: [UInt8], attributes: [String: String] = [:], groupID: String? = nil) async throws -> String {
        try await enqueue(body: ByteBuffer(bytes: body), attributes: attributes, groupID: groupID)
    }

    /// Enqueues messages in one transaction; returns their IDs, in order, once it is committed.
    @discardableResult
    public func enqueue(batch: [NewMessage]) async throws -> [String] {
        guard !batch.isEmpty else { return [] }
        let now = Self.milliseconds(Date())
        let rows = try batch.map { message -> (String, [SQLiteData]) in
            let id = UUID().uuidString.lowercased()
            let attributes = String(decoding: try JSONEncoder().encode(message.attributes), as: UTF8.self)
            return (id, [
                .text(id), .blob(message.body), .text(attributes),
                message.groupID.map { .text($0) } ?? .null, .integer(now), .integer(now),
            ])
        }
        try await transaction { [self] in
            // At most 100 rows per statement keeps under SQLite's limit on bound parameters.
            var start = 0
            while start < rows.count {
                let chunk = rows[start..<min(start + 100, rows.count)]
                start += 100
                let values = Array(repeating: "(?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
                _ = try await connection.query(
                    "INSERT INTO messages (id, body, attributes, group_id, sent_at, visible_at) VALUES \(values)",
                    chunk.flatMap(\.1)
                )
            }
        }
        changes.notify()
        return rows.map(\.0)
    }

    // MARK: Receive

    /// Receives up to `maxMessages` visible messages without waiting, hiding them for
    /// `visibilityTimeout` (the configured one when `nil`). Messages received
    /// ``Configuration/maxReceiveCount`` times are first moved to the dead-letter table.
    public func receive(maxMessages: Int, visibilityTimeout: Duration? = nil) async throws -> [QueueMessage] {
        let now = Self.milliseconds(Date())
        let hidden = now + Self.milliseconds(visibilityTimeout ?? configuration.visibilityTimeout)
        let rows = try await transaction { [self] () -> [SQLiteRow] in
            if let limit = configuration.maxReceiveCount {
                try await moveToDeadLetters(now: now, limit: limit)
            }
            return try await connection.query(
                """
                UPDATE messages SET receive_count = receive_count + 1, visible_at = ?,
                    receipt = lower(hex(randomblob(12)))
                WHERE seq IN (SELECT seq FROM messages WHERE visible_at <= ? ORDER BY seq LIMIT ?)
                RETURNING seq, id, body, attributes, group_id, sent_at, receive_count, receipt
                """,
                [.integer(hidden), .integer(now), .integer(max(1, maxMessages))]
            )
        }
        return rows
            .sorted { ($0.column("seq")?.integer ?? 0) < ($1.column("seq")?.integer ?? 0) }
            .map(Self.message)
    }

    private func moveToDeadLetters(now: Int, limit: Int) async throws {
        let moved = try await connection.query(
            """
            INSERT INTO dead_letters (seq, id, body, attributes, group_id, sent_at, receive_count, dead_at)
            SELECT seq, id, body, attributes, group_id, sent_at, receive_count, ?
            FROM messages WHERE visible_at <= ? AND receive_count >= ?
            RETURNING id, receive_count
            """,
            [.integer(now), .integer(now), .integer(limit)]
        )
        guard !moved.isEmpty else { return }
        _ = try await connection.query(
            "DELETE FROM messages WHERE visible_at <= ? AND receive_count >= ?", [.integer(now), .integer(limit)]
        )
        deadLetterCounter.increment(by: Int64(moved.count))
        for row in moved {
            logger.warning(
                "Moved a message to the dead-letter table",
                metadata: [
                    "message_id": "\(row.column("id")?.string ?? "?")",
                    "receive_count": "\(row.column("receive_count")?.integer ?? 0)",
                ]
            )
        }
    }

    private static func message(_ row: SQLiteRow) -> QueueMessage {
        let id = row.column("id")?.string ?? ""
        let attributesJSON = row.column("attributes")?.string ?? "{}"
        let attributes = (try? JSONDecoder().decode([String: String].self, from: Data(attributesJSON.utf8))) ?? [:]
        let sent = row.column("sent_at")?.integer.map { Date(timeIntervalSince1970: Double($0) / 1000) }
        let receiveCount = row.column("receive_count")?.integer ?? 1
        return QueueMessage(
            id: id,
            body: row.column("body")?.blob ?? ByteBuffer(),
            attributes: [
                "ApproximateReceiveCount": "\(receiveCount)",
                "SentTimestamp": "\(row.column("sent_at")?.integer ?? 0)",
            ],
            messageAttributes: attributes,
            receiveCount: receiveCount,
            sentTimestamp: sent,
            groupID: row.column("group_id")?.string,
            receipt: QueueReceipt(messageID: id, handle: row.column("receipt")?.string ?? "")
        )
    }

    // MARK: Delete and visibility

    /// Deletes received messages; returns the receipts that matched nothing (already deleted, or
    /// received again since, which issued a new receipt).
    @discardableResult
    public func delete(_ receipts: [QueueReceipt]) async throws -> [QueueReceipt] {
        guard !receipts.isEmpty else { return [] }
        var deleted: Set<QueueReceipt> = []
        var start = 0
        while start < receipts.count {
            let chunk = receipts[start..<min(start + 100, receipts.count)]
            start += 100
            let values = Array(repeating: "(?, ?)", count: chunk.count).joined(separator: ", ")
            let rows = try await serialized { [self] in
                try await connection.query(
                    "DELETE FROM messages WHERE (id, receipt) IN (VALUES \(values)) RETURNING id, receipt",
                    chunk.flatMap { [SQLiteData.text($0.messageID), .text($0.handle)] }
                )
            }
            for row in rows {
                deleted.insert(QueueReceipt(messageID: row.column("id")?.string ?? "", handle: row.column("receipt")?.string ?? ""))
            }
        }
        return receipts.filter { !deleted.contains($0) }
    }

    /// Hides a received message for `timeout` from now (`.zero` makes it visible at once).
    ///
    /// Throws ``EmbeddedQueueError/receiptNotFound`` when the receipt matches no message.
    public func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws {
        let visibleAt = Self.milliseconds(Date()) + Self.milliseconds(timeout)
        let rows = try await serialized { [self] in
            try await connection.query(
                "UPDATE messages SET visible_at = ? WHERE id = ? AND receipt = ? RETURNING id",
                [.integer(visibleAt), .text(receipt.messageID), .text(receipt.handle)]
            )
        }
        if rows.isEmpty { throw EmbeddedQueueError.receiptNotFound(messageID: receipt.messageID) }
        if timeout == .zero { changes.notify() }
    }

    // MARK: Inspection

    /// How many messages are visible, hidden and dead-lettered.
    public func counts() async throws -> Counts {
        let now = Self.milliseconds(Date())
        let rows = try await serialized { [self] in
            try await connection.query(
                """
                SELECT (SELECT count(*) FROM messages WHERE visible_at <= ?) AS visible,
                       (SELECT count(*) FROM messages WHERE visible_at > ?) AS invisible,
                       (SELECT count(*) FROM dead_letters) AS dead
                """,
                [.integer(now), .integer(now)]
            )
        }
        let row = rows.first
        return Counts(
            visible: row?.column("visible")?.integer ?? 0,
            invisible: row?.column("invisible")?.integer ?? 0,
            deadLettered: row?.column("dead")?.integer ?? 0
        )
    }

    /// The IDs of the dead-lettered messages, oldest first.
    public func deadLetterIDs() async throws -> [String] {
        try await serialized { [self] in
            try await connection.query("SELECT id FROM dead_letters ORDER BY seq").compactMap { $0.column("id")?.string }
        }
    }

    // MARK: Helpers

    /// Runs `body` in an immediate transaction, rolling back when it throws.
    private func transaction<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await serialized {
            _ = try await self.connection.query("BEGIN IMMEDIATE")
            do {
                let result = try await body()
                _ = try await self.connection.query("COMMIT")
                return result
            } catch {
                _ = try? await self.connection.query("ROLLBACK")
                throw error
            }
        }
    }

    /// Runs `body` alone on the connection, on a task of its own. SQLite work must never be cut
    /// short by the caller's cancellation: NIO's thread pool skips the work of a cancelled task,
    /// which would leave a transaction open and silently swallow every later write.
    private func serialized<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task { try await self.lock.withLock(body) }.value
    }

    private static func milliseconds(_ date: Date) -> Int {
        Int((date.timeIntervalSince1970 * 1000).rounded())
    }

    private static func milliseconds(_ duration: Duration) -> Int {
        Int((duration.seconds * 1000).rounded(.up))
    }
}
