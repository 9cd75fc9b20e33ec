import Foundation
public import Logging
import Metrics
import NIOCore
public import PostgresNIO
public import SocketIO
import Synchronization

/// How the nodes of a cluster reach each other through PostgreSQL, as `@socket.io/postgres-adapter`
/// 0.5 does, so that herald nodes and Node socket.io servers with that adapter share one cluster:
/// one channel per namespace (`socket.io#/chat`), each message a `NOTIFY` of its JSON, and a
/// message with binary data or of 8000 bytes and more kept in the attachments table in MessagePack
/// with only `{uid, type, attachmentId}` notified.
///
/// Run ``listen(to:receive:)`` and ``cleanUp()`` on tasks of their own, beside the client's `run()`.
public final class PostgresClusterTransport: Sendable {
    /// Channel, table and timing settings; the defaults are the reference adapter's.
    public struct Configuration: Sendable {
        /// Channels are named `<prefix>#<namespace>`.
        public var channelPrefix = "socket.io"
        /// The table of attachments (a plain SQL identifier).
        public var tableName = "socket_io_attachments"
        /// Messages whose JSON is this long or longer go through the table (PostgreSQL refuses
        /// notifications of 8000 bytes and more).
        public var payloadThreshold = 8000
        /// Attachments older than this are deleted, this often.
        public var cleanupInterval: Duration = .seconds(30)
        /// The wait before listening again after the connection was lost (±50 %, as the reference).
        public var reconnectDelay: Duration = .seconds(2)

        /// The reference adapter's settings.
        public init() {}
    }

    /// The pool every query goes through (the listening connection is one of its connections).
    public let client: PostgresClient
    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())
    private let reconnectsCounter = Counter(label: "socketio_cluster_reconnects_total")

    private struct State {
        var listening = false
        var reconnects = 0
        /// The namespaces listened to, those added while listening included.
        var namespaces: [String] = []
        /// Takes the namespaces added while a connection listens.
        var additions: AsyncStream<String>.Continuation?
    }

    /// A transport over `client`. Throws when the table name is not a plain SQL identifier.
    public init(client: PostgresClient, configuration: Configuration = .init(), logger: Logger) throws(PostgresClusterError) {
        try Self.checkIdentifier(configuration.tableName)
        self.client = client
        self.configuration = configuration
        self.logger = logger
    }

    /// Throws unless `name` is a plain SQL identifier (letters, digits and `_`, not starting with
    /// a digit, at most 63 bytes), so that it can stand in a statement unquoted.
    static func checkIdentifier(_ name: String) throws(PostgresClusterError) {
        let bytes = name.utf8
        guard let first = bytes.first, first == UInt8(ascii: "_") || (first | 0x20) >= UInt8(ascii: "a") && (first | 0x20) <= UInt8(ascii: "z"),
            bytes.allSatisfy({
                $0 == UInt8(ascii: "_") || ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") || ($0 >= 0x30 && $0 <= 0x39)
            }),
            bytes.count <= 63
        else { throw PostgresClusterError("table name '\(name)' is not a plain SQL identifier (letters, digits, _; at most 63 bytes)") }
    }

    /// Whether the channels are being listened to now.
    public var isListening: Bool { state.withLock { $0.listening } }

    /// How often the listening connection was lost and made again.
    public var reconnects: Int { state.withLock { $0.reconnects } }

    /// The channel of a namespace.
    public func channel(for namespace: String) -> String { "\(configuration.channelPrefix)#\(namespace)" }

    /// Creates the attachments table when it is missing (the reference adapter leaves that to
    /// whoever deploys it); nodes that start together create it once.
    public func prepare() async throws {
        let table = configuration.tableName
        // Nodes that start together would race in CREATE TABLE IF NOT EXISTS (it can fail on the
        // catalog's unique indexes): a transaction-scoped advisory lock, keyed by the table's
        // name, lets one create it and the others find it.
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(table)))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS \(unescaped: table) (
                    id bigserial PRIMARY KEY, created_at timestamptz DEFAULT now(), payload bytea)
                """, logger: logger)
        }
    }

    /// Sends a message to every node listening on its namespace's channel.
    public func publish(_ message: SocketIOClusterMessage) async throws {
        try await publish([message])
    }

    /// Sends messages in order, each to every node listening on its namespace's channel: a run
    /// of messages notified as they are goes in one statement (notifications of one transaction
    /// are delivered in the order they were made), a message kept in the table on its own.
    /// PostgreSQL delivers one of identical notifications of a transaction, so a message equal to
    /// one already in the run starts the next run.
    public func publish(_ messages: [SocketIOClusterMessage]) async throws {
        var run: (channels: [String], payloads: [String]) = ([], [])
        var inRun = Set<[String]>()
        for message in messages {
            guard message.needsAttachment(threshold: configuration.payloadThreshold) else {
                let (channel, payload) = (channel(for: message.namespace), String(buffer: message.json))
                if !inRun.insert([channel, payload]).inserted {
                    try await notify(run)
                    (run, inRun) = (([], []), [[channel, payload]])
                }
                run.channels.append(channel)
                run.payloads.append(payload)
                continue
            }
            try await notify(run)
            (run, inRun) = (([], []), [])
            try await publishAttachment(message)
        }
        try await notify(run)
    }

    private func notify(_ run: (channels: [String], payloads: [String])) async throws {
        switch run.channels.count {
        case 0: return
        case 1: try await client.query("SELECT pg_notify(\(run.channels[0]), \(run.payloads[0]))")
        default:
            // Read to the end: the connection goes back to the pool once every row was read.
            let rows = try await client.query(
                "SELECT pg_notify(c, p) FROM unnest(\(run.channels)::text[], \(run.payloads)::text[]) WITH ORDINALITY AS m(c, p, n) ORDER BY n")
            for try await _ in rows {}
        }
    }

    private func publishAttachment(_ message: SocketIOClusterMessage) async throws {
        try await client.withConnection { try await publish(message, on: $0) }
    }

    /// Sends a message inside a transaction of the caller's (on its `connection`): the nodes get
    /// it once that commits, or never.
    public func publish(_ message: SocketIOClusterMessage, on connection: PostgresConnection) async throws {
        let channel = channel(for: message.namespace)
        guard message.needsAttachment(threshold: configuration.payloadThreshold) else {
            try await connection.query("SELECT pg_notify(\(channel), \(String(buffer: message.json)))", logger: logger)
            return
        }
        let rows = try await connection.query(
            "INSERT INTO \(unescaped: configuration.tableName) (payload) VALUES (\(message.messagePack)) RETURNING id", logger: logger)
        var id: Int64?
        for try await (value) in rows.decode(Int64.self) { id = value }
        guard let id else { throw PostgresClusterError("the attachment was stored without an id") }
        let header = SocketIOClusterNotification.attachmentHeader(of: message, id: String(id))
        try await connection.query("SELECT pg_notify(\(channel), \(String(buffer: header)))", logger: logger)
    }

    /// Listens on the channels of `namespaces` (and of those added with ``listen(toMore:)``) until
    /// the task is cancelled, and hands `receive` each message (attachments read from the table),
    /// in the order each channel notified them. When the connection is lost it listens again after
    /// ``Configuration/reconnectDelay``; what was notified meanwhile is not received. `listening`
    /// runs each time the channels are listened to, before the first message is handed on (to
    /// catch up on what was missed); when it throws, the transport listens again.
    public func listen(
        to namespaces: [String], listening: @escaping @Sendable () async throws -> Void = {},
        receive: @escaping @Sendable (SocketIOClusterMessage) async -> Void
    ) async {
        state.withLock { state in
            for namespace in namespaces where !state.namespaces.contains(namespace) { state.namespaces.append(namespace) }
        }
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    let (additions, more) = AsyncStream<String>.makeStream()
                    let current = state.withLock { state in
                        state.additions = more
                        return state.namespaces
                    }
                    defer {
                        state.withLock { $0.additions = nil }
                        more.finish()
                    }
                    @Sendable func consume(_ notifications: PostgresNotificationSequence) async throws {
                        // Any channel that ends ends the connection's listening: the others go with it.
                        defer { more.finish() }
                        for try await notification in notifications { await self.handle(notification.payload, receive: receive) }
                        throw PostgresClusterError("the listening connection closed")
                    }
                    try await Self.listen(on: current.map(channel(for:))[...], connection: connection, collected: []) { channels in
                        try await listening()
                        try await withThrowingTaskGroup(of: Void.self) { group in
                            for notifications in channels { group.addTask { try await consume(notifications) } }
                            self.state.withLock { $0.listening = true }
                            for await namespace in additions {
                                let channel = self.channel(for: namespace)
                                group.addTask { try await connection.listen(on: channel) { try await consume($0) } }
                            }
                            try await group.next()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { break }
                logger.warning("The cluster's PostgreSQL connection was lost; listening again", metadata: ["error": "\(String(reflecting: error))"])
            }
            state.withLock {
                $0.listening = false
                $0.reconnects += 1
            }
            reconnectsCounter.increment()
            let delay = configuration.reconnectDelay * Double.random(in: 0.5...1.5)
            try? await Task.sleep(for: delay)
        }
        state.withLock { $0.listening = false }
    }

    /// Listens on one more namespace's channel, now if a connection listens, and from then on.
    public func listen(toMore namespace: String) {
        let additions = state.withLock { state -> AsyncStream<String>.Continuation? in
            guard !state.namespaces.contains(namespace) else { return nil }
            state.namespaces.append(namespace)
            return state.additions
        }
        additions?.yield(namespace)
    }

    /// Listens on each channel (`LISTEN`, and `UNLISTEN` when done), then runs `body` with their
    /// notifications.
    private static func listen(
        on channels: ArraySlice<String>, connection: PostgresConnection, collected: [PostgresNotificationSequence],
        _ body: @escaping @Sendable ([PostgresNotificationSequence]) async throws -> Void
    ) async throws {
        guard let channel = channels.first else { return try await body(collected) }
        try await connection.listen(on: channel) { notifications in
            try await listen(on: channels.dropFirst(), connection: connection, collected: collected + [notifications], body)
        }
    }

    private func handle(_ payload: String, receive: @Sendable (SocketIOClusterMessage) async -> Void) async {
        do {
            switch try SocketIOClusterNotification(json: ByteBuffer(string: payload)) {
            case .message(let message):
                await receive(message)
            case .attachment(_, _, let id):
                guard let key = Int64(id) else { throw PostgresClusterError("attachment id '\(id)' is not a number") }
                let rows = try await client.query("SELECT payload FROM \(unescaped: configuration.tableName) WHERE id = \(key)")
                var payload: ByteBuffer?
                for try await value in rows.decode(ByteBuffer.self) { payload = value }
                guard let payload else { throw PostgresClusterError("attachment \(id) is gone") }
                await receive(try SocketIOClusterMessage(messagePack: payload))
            }
        } catch {
            logger.error("Dropped a cluster message that could not be read", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes the attachments older than ``Configuration/cleanupInterval``; returns how many.
    @discardableResult
    public func deleteExpiredAttachments() async throws -> Int {
        let milliseconds = Int64(configuration.cleanupInterval.components.seconds * 1000)
        let rows = try await client.query(
            "DELETE FROM \(unescaped: configuration.tableName) WHERE created_at < now() - make_interval(secs => \(Double(milliseconds) / 1000)) RETURNING id"
        )
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }

    /// Deletes expired attachments every ``Configuration/cleanupInterval`` until the task is cancelled.
    public func cleanUp() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.cleanupInterval)
            guard !Task.isCancelled else { return }
            do {
                try await deleteExpiredAttachments()
            } catch {
                logger.warning("Could not delete the cluster's old attachments", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A client configuration from a `postgres://user:password@host:port/database` URL (TLS
    /// when the URL asks for it with `sslmode=require`).
    public static func clientConfiguration(url text: String) throws(PostgresClusterError) -> PostgresClient.Configuration {
        guard let url = URLComponents(string: text), url.scheme == "postgres" || url.scheme == "postgresql", let host = url.host, !host.isEmpty
        else { throw PostgresClusterError("'\(text)' is not a postgres://user@host:port/database URL") }
        guard let user = url.user, !user.isEmpty else { throw PostgresClusterError("'\(text)' names no user (postgres://user@host/database)") }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        let tls: PostgresClient.Configuration.TLS =
            url.queryItems?.first { $0.name == "sslmode" }?.value == "require" ? .require(.makeClientConfiguration()) : .disable
        return PostgresClient.Configuration(
            host: host, port: url.port ?? 5432, username: user, password: url.password, database: database.isEmpty ? user : database, tls: tls)
    }
}

/// Why the PostgreSQL transport could not do what it was asked.
public struct PostgresClusterError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }
}
