import Foundation
public import Logging
public import Metrics
public import NIOCore
import NIOPosix
package import SQLiteNIO
import Synchronization

/// A durable queue in one SQLite file (WAL mode), with SQS's semantics: messages received are
/// invisible until a deadline, count their receives, are deleted by receipt, and are moved to a
/// dead-letter table after ``Configuration/maxReceiveCount`` receives.
///
/// ``enqueue(body:attributes:groupID:)`` returns once the row is committed with `synchronous=FULL`,
/// so an enqueued message survives a crash of the process or of the machine. One instance may be
/// used from many tasks at once; several processes may open the same file.
///
/// Writes are group-committed: the enqueues, receives, deletes and visibility changes that arrive
/// while a transaction is being committed share the next one, so a burst of N messages costs a
/// few transactions (and syncs to disk), not several per message, and each caller still returns
/// only once its part is committed. A receive waiting for messages (a long poll) joins the
/// transaction of the next enqueue, so a published message reaches a waiting consumer without a
/// transaction of its own. ``transactionCount`` counts the transactions.
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
        /// producers enqueueing for one consumer). With the lock, messages a process that died had
        /// received are visible again at once.
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
    let connection: SQLiteConnection
    let lock = AsyncLock()
    /// The requests waiting for the next write transaction, and the parked receives.
    let groupCommit = Mutex(GroupCommit())
    private let transactions = Atomic<Int>(0)
    private let processLock: EmbeddedQueueLock?
    let deadLetterCounter: Counter
    let transactionCounter: Counter
    let logger: Logger

    private init(
        path: String, configuration: Configuration, connection: SQLiteConnection, processLock: EmbeddedQueueLock?, logger: Logger,
        factory: any MetricsFactory
    ) {
        self.path = path
        self.configuration = configuration
        self.connection = connection
        self.processLock = processLock
        self.logger = logger
        let dimensions = [("queue", (path as NSString).lastPathComponent)]
        deadLetterCounter = Counter(label: "herald_queue_dead_letter_moves_total", dimensions: dimensions, factory: factory)
        transactionCounter = Counter(label: "herald_queue_embedded_transactions_total", dimensions: dimensions, factory: factory)
    }

    /// Opens (creating when needed) the queue in the SQLite file at `path`.
    ///
    /// - Parameters:
    ///   - path: The database file; `-wal` and `-shm` files appear beside it.
    ///   - configuration: Visibility and dead-letter settings.
    ///   - logger: Where the queue logs dead-lettered messages.
    ///   - metricsFactory: Where `herald_queue_dead_letter_moves_total` (messages moved to the dead-letter table) and
    ///     `herald_queue_embedded_transactions_total` (write transactions, see ``transactionCount``) go; `nil` for `MetricsSystem.factory`.
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
            if processLock != nil {
                // The lock proves that no other process holds a message: those still hidden were
                // received by a process that died, and come back now rather than after their
                // visibility timeout.
                let now = SQLiteData.integer(milliseconds(Date()))
                _ = try await connection.query("UPDATE messages SET visible_at = ? WHERE visible_at > ? AND receipt IS NOT NULL", [now, now])
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

    /// The write transactions run so far: enqueues, receives, deletes and visibility changes
    /// submitted together share one (see ``enqueue(batch:)``).
    public var transactionCount: Int { transactions.load(ordering: .relaxed) }

    /// Counts a write transaction.
    func countTransaction() {
        transactions.add(1, ordering: .relaxed)
        transactionCounter.increment()
    }

    /// Closes the database, then releases the lock when ``Configuration/exclusive`` took one.
    /// Waiting receives return empty. The queue cannot be used afterwards.
    public func close() async throws {
        defer { processLock?.release() }
        for waiting in groupCommit.withLock({ $0.close() }) { waiting.resume(returning: []) }
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
    ///
    /// Enqueues that arrive while another write is being committed share the next transaction
    /// (a group commit): each still returns only once its rows are committed to disk.
    @discardableResult
    public func enqueue(batch: [NewMessage]) async throws -> [String] {
        guard !batch.isEmpty else { return [] }
        let now = Self.milliseconds(Date())
        var ids: [String] = []
        let rows = try batch.map { message -> [SQLiteData] in
            let id = UUID().uuidString.lowercased()
            ids.append(id)
            let attributes = String(decoding: try JSONEncoder().encode(message.attributes), as: UTF8.self)
            return [
                .text(id), .blob(message.body), .text(attributes),
                message.groupID.map { .text($0) } ?? .null, .integer(now), .integer(now),
            ]
        }
        try await withCheckedThrowingContinuation { continuation in
            submit { $0.submit(GroupCommit.Insert(rows: rows, continuation: continuation)) }
        }
        return ids
    }

    // MARK: Receive

    /// Receives up to `maxMessages` visible messages without waiting, hiding them for
    /// `visibilityTimeout` (the configured one when `nil`). Messages received
    /// ``Configuration/maxReceiveCount`` times are first moved to the dead-letter table.
    public func receive(maxMessages: Int, visibilityTimeout: Duration? = nil) async throws -> [QueueMessage] {
        try await receive(maxMessages: maxMessages, visibilityTimeout: visibilityTimeout, deadline: nil)
    }

    /// Receives up to `maxMessages` visible messages, waiting up to `waitTime` for the first (a
    /// long poll); returns an empty array when none came.
    ///
    /// A message enqueued through this queue meanwhile is received in the transaction that
    /// commits it; what other processes enqueue, and messages whose visibility runs out, are
    /// found at the next look, every ``Configuration/pollInterval``. Cancelling the calling task
    /// ends the wait at once (it then throws `CancellationError`, unless a transaction was already
    /// receiving for it: then it returns what that transaction received).
    public func receive(maxMessages: Int, visibilityTimeout: Duration? = nil, waitTime: Duration) async throws -> [QueueMessage] {
        try await receive(maxMessages: maxMessages, visibilityTimeout: visibilityTimeout, deadline: .now + waitTime)
    }

    private func receive(maxMessages: Int, visibilityTimeout: Duration?, deadline: ContinuousClock.Instant?) async throws -> [QueueMessage] {
        let id = groupCommit.withLock { $0.makeReceiveID() }
        let visibility = visibilityTimeout ?? configuration.visibilityTimeout
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(throwing: CancellationError())
                    return
                }
                let receive = GroupCommit.Receive(
                    id: id, maxMessages: max(1, maxMessages), visibilityTimeout: visibility, deadline: deadline, continuation: continuation
                )
                submit(receive)
            }
        } onCancel: {
            groupCommit.withLock { $0.cancel(id: id) }?.resume(throwing: CancellationError())
        }
    }

    // MARK: Delete and visibility

    /// Deletes received messages; returns the receipts that matched nothing (already deleted, or
    /// received again since, which issued a new receipt).
    ///
    /// Deletes that arrive while another write is being committed share the next transaction.
    @discardableResult
    public func delete(_ receipts: [QueueReceipt]) async throws -> [QueueReceipt] {
        guard !receipts.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            submit { $0.submit(GroupCommit.Delete(receipts: receipts, continuation: continuation)) }
        }
    }

    /// Hides a received message for `timeout` from now (`.zero` makes it visible at once, and
    /// wakes a waiting receive).
    ///
    /// Throws ``EmbeddedQueueError/receiptNotFound`` when the receipt matches no message.
    public func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws {
        let found = try await withCheckedThrowingContinuation { continuation in
            submit { $0.submit(GroupCommit.VisibilityChange(receipt: receipt, timeout: timeout, continuation: continuation)) }
        }
        if !found { throw EmbeddedQueueError.receiptNotFound(messageID: receipt.messageID) }
    }

    // MARK: Sharing the database

    /// Runs `perform` inside the next write transaction (group-committed with the queue's own
    /// requests, before its deletes); returns once it is committed. For tables of the same
    /// program that must commit with the queue (the recovery log): `perform` must not begin or
    /// end transactions.
    package func write(_ perform: @escaping @Sendable (SQLiteConnection) async throws -> Void) async throws {
        try await withCheckedThrowingContinuation { continuation in
            submit { $0.submit(GroupCommit.Statements(perform: perform, continuation: continuation)) }
        }
    }

    /// Runs `read` on the database outside the group commit (reads only).
    package func read<Result: Sendable>(_ read: @escaping @Sendable (SQLiteConnection) async throws -> Result) async throws -> Result {
        try await serialized { try await read(self.connection) }
    }

    static func message(_ row: SQLiteRow) -> QueueMessage {
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

    /// Runs `body` alone on the connection, on a task of its own. SQLite work must never be cut
    /// short by the caller's cancellation: NIO's thread pool skips the work of a cancelled task,
    /// which would leave a transaction open and silently swallow every later write.
    func serialized<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await Task { try await self.lock.withLock(body) }.value
    }

    static func milliseconds(_ date: Date) -> Int {
        Int((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int((duration.seconds * 1000).rounded(.up))
    }
}
