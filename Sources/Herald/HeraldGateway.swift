import Foundation
public import Logging
import NIOCore
public import SocketIO
public import SocketIOPostgres
import Synchronization

/// The gateway: a Socket.IO server whose clients authenticate with JWTs and join the rooms of
/// their claims, and a delivery path that pushes ``HeraldMessage``s to them.
public final class HeraldGateway: Sendable {
    /// The Socket.IO server clients connect to.
    public let io: SocketIOServer
    /// The gateway's settings.
    public let configuration: HeraldConfiguration
    /// Counters shown by `/metrics` and the live page.
    public let stats = GatewayStats()
    /// How often publishers were held back by the broadcast backlog.
    public let backpressure = BackpressureStats()
    let logger: Logger
    private let authenticator: JWTAuthenticator?
    /// The cluster this node belongs to, when it is one of several.
    public let cluster: PostgresCluster?
    /// Forwards client events upstream, with one bound for every namespace.
    let upstream: UpstreamForwarder?
    private let expiry: TokenExpiry?

    /// Creates the gateway, a node of `cluster` when given (run the cluster beside it); loads the
    /// token verification keys.
    public init(
        configuration: HeraldConfiguration, socketIO: SocketIOConfiguration = .init(), cluster: PostgresCluster? = nil,
        logger: Logger = Logger(label: "herald")
    ) async throws {
        self.configuration = configuration
        self.cluster = cluster
        self.logger = logger
        self.authenticator = try await JWTAuthenticator.make(
            configuration.auth, requireExpiration: configuration.requireTokenExpiration, logger: logger)
        self.expiry = authenticator == nil ? nil : TokenExpiry()
        var socketIO = socketIO
        configuration.applyOrigins(to: &socketIO.engine)
        // A client coming back with its session presents its token again (the JavaScript client
        // sends its auth with the pid): it is verified again, so that a token that expired while
        // the client was away gets no replay.
        if authenticator != nil { socketIO.connectionStateRecovery?.skipMiddlewares = false }
        if let cluster {
            self.io = SocketIOServer(configuration: socketIO, adapter: cluster.adapterFactory)
        } else {
            self.io = SocketIOServer(configuration: socketIO)
        }
        self.upstream = configuration.upstream.map { UpstreamForwarder(configuration: $0, logger: logger) }
        for name in configuration.namespaces {
            installHandlers(on: io.of(name))
        }
    }

    private func installHandlers(on namespace: SocketIONamespace) {
        if let authenticator {
            namespace.use { socket in
                // Engine.IO v3 clients (socket.io-client 2.x) have no auth payload: their token
                // comes in the query, as `io(url, {query: {token}})` sends it.
                let fromQuery = socket.connection.protocolVersion == .v3 ? socket.handshake.query["token"] : nil
                guard let token = socket.handshake.auth["token"]?.stringValue ?? fromQuery else {
                    let how = socket.connection.protocolVersion == .v3 ? "as the query parameter token" : "as auth.token"
                    throw SocketIOConnectError("authentication required: send a JWT \(how)")
                }
                let claims: HeraldClaims
                do {
                    claims = try await authenticator.verify(token)
                } catch {
                    throw SocketIOConnectError(String(describing: error))
                }
                socket.data = ["rooms": .array(claims.roomNames.map { .string($0) }), "claims": claims.value]
                // Joined on admission, before CONNECT is written: a publish to these rooms right
                // after the client's `connect` reaches it.
                socket.join(claims.roomNames)
            }
        }
        let stats = self.stats
        let upstream = self.upstream
        let expiry = self.expiry
        // The other nodes' broadcasts reach this node's clients, and count here as its own do.
        namespace.localSockets.onPeerBroadcast { stats.peerMessageBroadcast($0, namespace: namespace.name) }
        namespace.onConnection { socket in
            stats.clientConnected()
            socket.onAny { event in
                stats.eventReceived()
                if let upstream, upstream.configuration.forwards(event.name) { upstream.submit(event) }
            }
            socket.onDisconnect { _, _ in stats.clientDisconnected() }
            if let expiry {
                expiry.watch(socket, expiresAt: socket.data["claims"]?["exp"]?.numberValue.map { Date(timeIntervalSince1970: $0) })
            }
        }
    }

    /// Hands a message to the broadcast path: each event loop then writes it to its recipients
    /// (the counts reach the statistics once every loop did). Throws when the message names a namespace herald does
    /// not serve.
    public func deliver(_ message: HeraldMessage) throws(HeraldMessageError) {
        _ = try deliver(message, messageID: nil, delivered: nil)
    }

    /// ``deliver(_:)`` for a queue message: `messageID` is kept in the recovery log, so that the
    /// message delivered again is not broadcast twice (then nothing is sent and this returns
    /// `false`); `delivered` is called once every event loop wrote the event.
    func deliver(
        _ message: HeraldMessage, messageID: String?, delivered: (@Sendable (SocketIODelivery) -> Void)?
    ) throws(HeraldMessageError) -> Bool {
        guard configuration.namespaces.contains(message.namespace) else {
            throw HeraldMessageError("unknown namespace '\(message.namespace)' (served: \(configuration.namespaces.joined(separator: ", ")))")
        }
        var target = io.of(message.namespace).all.to(message.rooms).except(message.exceptRooms)
        if message.isVolatile { target = target.volatile }
        return target.emit(message.event, jsonArguments: message.arguments, messageID: messageID) { [stats] delivery in
            if delivery.wasDuplicate {
                stats.duplicateSkipped()
            } else {
                stats.messageBroadcast(message, recipients: delivery.localRecipients)
            }
            delivered?(delivery)
        }
    }
}

/// Figures about the gateway's traffic, updated without locks.
public final class GatewayStats: Sendable {
    private let connected = Atomic<Int>(0)
    private let connectionsTotal = Atomic<Int>(0)
    private let eventsIn = Atomic<Int>(0)
    private let broadcasts = Atomic<Int>(0)
    private let recipients = Atomic<Int>(0)
    private let unheard = Atomic<Int>(0)
    private let duplicates = Atomic<Int>(0)
    private let recent = Mutex<[RecentEvent]>([])
    private let shuttingDown = Atomic<Bool>(false)
    private let lag = Mutex<Double?>(nil)

    /// A broadcast message, for the live page's feed.
    public struct RecentEvent: Sendable {
        /// When it was broadcast (seconds since 1970).
        public let time: Double
        /// The event name.
        public let event: String
        /// Its namespace.
        public let namespace: String
        /// Its rooms.
        public let rooms: [String]
        /// The start of its arguments, as JSON text.
        public let preview: String
        /// How many local clients it was written to.
        public let recipients: Int
    }

    /// Clients connected now.
    public var connectedClients: Int { connected.load(ordering: .relaxed) }
    /// Clients connected since start.
    public var totalConnections: Int { connectionsTotal.load(ordering: .relaxed) }
    /// Events received from clients.
    public var eventsReceived: Int { eventsIn.load(ordering: .relaxed) }
    /// Messages handed to the broadcast path, whether or not any client was there to get them.
    public var messagesBroadcast: Int { broadcasts.load(ordering: .relaxed) }
    /// Deliveries: each message counts once per local client it was written to.
    public var deliveries: Int { recipients.load(ordering: .relaxed) }
    /// Messages that reached no client: nobody connected was in their rooms (or nobody at all).
    public var messagesWithoutRecipients: Int { unheard.load(ordering: .relaxed) }
    /// Queue messages that came again while their event was in the recovery log: not broadcast twice.
    public var duplicatesSkipped: Int { duplicates.load(ordering: .relaxed) }
    /// Whether the gateway is shutting down (then it is no longer ready).
    public var isShuttingDown: Bool { shuttingDown.load(ordering: .relaxed) }
    /// How old the last consumed queue message was when it was handed off, in seconds.
    public var queueLag: Double? { lag.withLock { $0 } }

    /// Marks the gateway as shutting down.
    public func beginShutdown() { shuttingDown.store(true, ordering: .relaxed) }

    /// Records the age of a consumed queue message at hand-off.
    public func recordQueueLag(seconds: Double) { lag.withLock { $0 = seconds } }

    /// The latest broadcast messages, newest last.
    public var recentEvents: [RecentEvent] { recent.withLock { $0 } }

    func clientConnected() {
        connected.add(1, ordering: .relaxed)
        connectionsTotal.add(1, ordering: .relaxed)
    }

    func clientDisconnected() { connected.subtract(1, ordering: .relaxed) }
    func eventReceived() { eventsIn.add(1, ordering: .relaxed) }

    func duplicateSkipped() { duplicates.add(1, ordering: .relaxed) }

    func messageBroadcast(_ message: HeraldMessage, recipients count: Int) {
        let preview = String(
            buffer: message.arguments.getSlice(at: message.arguments.readerIndex, length: min(message.arguments.readableBytes, 120))!)
        record(
            RecentEvent(
                time: Date().timeIntervalSince1970, event: message.event, namespace: message.namespace, rooms: message.rooms, preview: preview,
                recipients: count))
    }

    /// A broadcast of another node of the cluster, written to this node's clients.
    func peerMessageBroadcast(_ broadcast: SocketIOPeerBroadcast, namespace: String) {
        let arguments = SocketIOValue.array(Array(broadcast.data?.arrayValue?.dropFirst() ?? [])).description
        record(
            RecentEvent(
                time: Date().timeIntervalSince1970, event: broadcast.event, namespace: namespace, rooms: broadcast.rooms.sorted(),
                preview: String(decoding: arguments.utf8.prefix(120), as: UTF8.self), recipients: broadcast.recipients))
    }

    private func record(_ event: RecentEvent) {
        broadcasts.add(1, ordering: .relaxed)
        recipients.add(event.recipients, ordering: .relaxed)
        if event.recipients == 0 { unheard.add(1, ordering: .relaxed) }
        recent.withLock { recent in
            recent.append(event)
            if recent.count > 50 { recent.removeFirst(recent.count - 50) }
        }
    }
}
