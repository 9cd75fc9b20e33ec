import EngineIO
import Foundation
import HummingbirdBcrypt
import NIOPosix
public import SocketIO
import Synchronization

/// How the official Socket.IO Admin UI (`@socket.io/admin-ui`, admin.socket.io) is served.
public struct SocketIOAdminUIConfiguration: Sendable {
    /// Who may open the UI.
    public enum Authentication: Sendable {
        /// Anyone who reaches the namespace (development only).
        case none
        /// The UI's login: `username`, and a password checked against a bcrypt hash
        /// (`$2a$`/`$2b$`/`$2y$`, as `htpasswd -nbBC 10 admin PASSWORD` or bcryptjs make).
        case basic(username: String, passwordHash: String)
    }

    /// What the UI is sent about clients.
    public enum Mode: String, Sendable, CaseIterable {
        /// Statistics only (`server_stats` every interval).
        case production
        /// Also every socket, its connection and disconnection, and its room changes.
        case development
    }

    public var authentication: Authentication
    /// The namespace the UI connects to.
    public var namespace = "/admin"
    /// A read-only UI can watch but not join, leave, disconnect or emit.
    public var isReadOnly = false
    /// How this server is named in the UI; each server of a cluster needs its own.
    public var serverID = "\(ProcessInfo.processInfo.hostName)#\(ProcessInfo.processInfo.processIdentifier)"
    public var mode: Mode = .production
    /// How often `server_stats` goes out (the reference's is 2 s).
    public var statsInterval: Duration = .seconds(2)

    /// A configuration with the reference's defaults and the given authentication.
    public init(authentication: Authentication) {
        self.authentication = authentication
    }
}

/// The server side of the official Socket.IO Admin UI on a ``SocketIOServer``: its namespace and
/// login, `config`, `server_stats` with the Engine.IO traffic aggregated per second, the
/// development mode's socket and room events, and the UI's `emit`, `join`, `leave` and
/// `_disconnect`, which act across a cluster as the namespace's broadcast operators do.
/// ``run()`` sends the statistics until it is cancelled.
public final class SocketIOAdminUI: Sendable {
    /// Why a configuration cannot be served.
    public struct ConfigurationError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The features the UI shows buttons for, as the reference names them.
    static let writeFeatures = ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"]

    private let io: SocketIOServer
    private let configuration: SocketIOAdminUIConfiguration
    private let started = ContinuousClock.now
    private let sessions = Mutex<Set<String>>([])
    private let issuedSessions = Mutex<[String: String]>([:])
    private let lastTraffic: Mutex<EngineIOTraffic>

    /// Serves the UI on `io`; throws when the password hash is not a bcrypt hash.
    public init(server io: SocketIOServer, configuration: SocketIOAdminUIConfiguration) throws(ConfigurationError) {
        if case .basic(_, let hash) = configuration.authentication, !Self.isBcryptHash(hash) {
            throw ConfigurationError(description: "the password hash must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)")
        }
        self.io = io
        self.configuration = configuration
        self.lastTraffic = Mutex(io.engine.statistics.traffic)
        let admin = io.of(configuration.namespace)
        admin.use { [self] socket in try await authenticate(socket) }
        admin.onConnection { [self] socket in await welcome(socket) }
        if configuration.mode == .development {
            for namespace in io.namespaces { watch(namespace) }
        }
    }

    /// Sends `server_stats` every interval until cancelled.
    public func run() async {
        while !Task.isCancelled {
            sendStats()
            try? await Task.sleep(for: configuration.statsInterval)
        }
    }

    // MARK: The admin socket

    private func authenticate(_ socket: SocketIOSocket) async throws {
        guard case .basic(let username, let hash) = configuration.authentication else { return }
        let auth = socket.handshake.auth
        if let session = auth["sessionId"]?.stringValue, sessions.withLock({ $0.contains(session) }) { return }
        guard auth["username"]?.stringValue == username, let password = auth["password"]?.stringValue,
            // bcrypt takes tens of milliseconds on purpose: not on an event loop.
            try await NIOThreadPool.singleton.runIfActive({ Bcrypt.verify(password, hash: hash) })
        else { throw SocketIOConnectError("invalid credentials") }
        let session = (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        sessions.withLock { _ = $0.insert(session) }
        issuedSessions.withLock { $0[socket.id] = session }
    }

    /// What the UI needs once connected: its session, the features, and (in development) the sockets.
    private func welcome(_ socket: SocketIOSocket) async {
        // Sent after CONNECT, not from the middleware: the UI listens only once connected.
        if let session = issuedSessions.withLock({ $0.removeValue(forKey: socket.id) }) {
            socket.emit("session", .string(session))
        }
        var features = configuration.isReadOnly ? [] : Self.writeFeatures
        features.append("AGGREGATED_EVENTS")
        socket.emit("config", ["supportedFeatures": .array(features.map { .string($0) })])
        if configuration.mode == .development {
            socket.emit("all_sockets", .array(await allSockets()))
        }
        guard !configuration.isReadOnly else { return }
        let io = self.io
        socket.on("emit") { event in
            guard let (target, rest) = Self.target(io, event.arguments, filterAt: 1), let name = rest.first?.stringValue else { return }
            target.emit(name, arguments: Array(rest.dropFirst()))
        }
        socket.on("join") { event in
            guard let room = event.arguments[safe: 1]?.stringValue, let (target, _) = Self.target(io, event.arguments, filterAt: 2) else { return }
            target.socketsJoin([room])
        }
        socket.on("leave") { event in
            guard let room = event.arguments[safe: 1]?.stringValue, let (target, _) = Self.target(io, event.arguments, filterAt: 2) else { return }
            target.socketsLeave([room])
        }
        socket.on("_disconnect") { event in
            guard let close = event.arguments[safe: 1]?.boolValue, let (target, _) = Self.target(io, event.arguments, filterAt: 2) else { return }
            target.disconnectSockets(close: close)
        }
    }

    /// The namespace (argument 0) narrowed to the room or socket id at `filterAt` when there is
    /// one, and the arguments after the filter.
    private static func target(
        _ io: SocketIOServer, _ arguments: [SocketIOValue], filterAt index: Int
    ) -> (SocketIOBroadcastOperator, [SocketIOValue])? {
        guard let namespace = arguments.first?.stringValue else { return nil }
        let all = io.of(namespace).all
        let rest = Array(arguments.dropFirst(index + 1))
        guard let filter = arguments[safe: index]?.stringValue else { return (all, rest) }
        return (all.to(filter), rest)
    }

    // MARK: Statistics

    func statsPayload(now: Date = Date()) -> SocketIOValue {
        let traffic = io.engine.statistics.traffic
        let previous = lastTraffic.withLock { last in
            defer { last = traffic }
            return last
        }
        let timestamp = Double(Int64(now.timeIntervalSince1970) * 1000)
        var events: [SocketIOValue] = []
        func add(_ type: String, _ count: Int, subType: String? = nil) {
            guard count > 0 else { return }
            var entry: SocketIOObject = ["timestamp": .number(timestamp), "type": .string(type)]
            if let subType { entry["subType"] = .string(subType) }
            entry["count"] = .number(Double(count))
            events.append(.object(entry))
        }
        add("rawConnection", traffic.connections - previous.connections)
        for (reason, count) in traffic.disconnections.sorted(by: { $0.key < $1.key }) {
            add("rawDisconnection", count - (previous.disconnections[reason] ?? 0), subType: reason)
        }
        add("packetsIn", traffic.packetsIn - previous.packetsIn)
        add("packetsOut", traffic.packetsOut - previous.packetsOut)
        add("bytesIn", traffic.bytesIn - previous.bytesIn)
        add("bytesOut", traffic.bytesOut - previous.bytesOut)
        let uptime = ContinuousClock.now - started
        return [
            "serverId": .string(configuration.serverID),
            "hostname": .string(ProcessInfo.processInfo.hostName),
            "pid": .number(Double(ProcessInfo.processInfo.processIdentifier)),
            "uptime": .number(Double(uptime.components.seconds) + Double(uptime.components.attoseconds) / 1e18),
            "clientsCount": .number(Double(io.engine.connectionCount)),
            "pollingClientsCount": .number(Double(io.engine.pollingConnectionCount)),
            "aggregatedEvents": .array(events),
            "namespaces": .array(
                io.namespaces.map { ["name": .string($0.name), "socketsCount": .number(Double($0.localSockets.count))] }),
        ]
    }

    /// To every admin socket of the cluster, as the reference's `adminNamespace.emit`.
    private func sendStats() {
        io.of(configuration.namespace).emit("server_stats", statsPayload())
    }

    // MARK: Development mode

    private func watch(_ namespace: SocketIONamespace) {
        let admin = io.of(configuration.namespace)
        namespace.onConnection { socket in
            admin.emit("socket_connected", Self.serialize(socket: socket, rooms: await socket.rooms), .string(Self.now()))
            socket.onDisconnect { socket, reason in
                admin.emit(
                    "socket_disconnected", .string(socket.namespace.name), .string(socket.id), .string(reason.description),
                    .string(Self.now()))
            }
        }
        namespace.localSockets.onRoomChange { change in
            admin.emit(
                change.joined ? "room_joined" : "room_left", .string(change.socket.namespace.name), .string(change.room),
                .string(change.socket.id), .string(Self.now()))
        }
    }

    private func allSockets() async -> [SocketIOValue] {
        var all: [SocketIOValue] = []
        for namespace in io.namespaces {
            for remote in (try? await namespace.fetchSockets()) ?? [] {
                all.append(Self.serialize(remote, namespace: namespace.name))
            }
        }
        return all
    }

    static func serialize(socket: SocketIOSocket, rooms: Set<String>) -> SocketIOValue {
        serialize(
            id: socket.id, namespace: socket.namespace.name, handshake: socket.handshake, rooms: rooms, data: socket.data,
            connection: socket.connection.id, transport: socket.connection.transportName)
    }

    static func serialize(_ remote: SocketIORemoteSocket, namespace: String) -> SocketIOValue {
        serialize(
            id: remote.id, namespace: namespace, handshake: remote.handshake, rooms: remote.rooms, data: remote.data,
            connection: remote.local?.connection.id ?? remote.id, transport: remote.local?.connection.transportName ?? "websocket")
    }

    /// The reference's serialized socket: `clientId` is the first 12 characters of the
    /// Engine.IO id; the handshake without its `auth` (which may hold credentials).
    private static func serialize(
        id: String, namespace: String, handshake: SocketIOHandshake?, rooms: Set<String>, data: SocketIOValue, connection: String,
        transport: String
    ) -> SocketIOValue {
        var shake: SocketIOObject = [:]
        if let handshake {
            var headers = SocketIOObject()
            for (name, value) in handshake.headers { headers[name] = .string(value) }
            var query = SocketIOObject()
            for (name, value) in handshake.query.sorted(by: { $0.key < $1.key }) { query[name] = .string(value) }
            shake = [
                "address": .string(handshake.header("x-forwarded-for") ?? handshake.address), "headers": .object(headers),
                "query": .object(query), "issued": .number(Double(handshake.issued)), "secure": false,
                "time": .string(Date(timeIntervalSince1970: Double(handshake.issued) / 1000).formatted(.iso8601)),
                "url": .string(handshake.url), "xdomain": .bool(handshake.header("origin") != nil),
            ]
        }
        return [
            "id": .string(id), "clientId": .string(String(connection.prefix(12))), "transport": .string(transport),
            "nsp": .string(namespace), "data": data, "handshake": .object(shake), "rooms": .array(rooms.sorted().map { .string($0) }),
        ]
    }

    private static func now() -> String { Date().formatted(.iso8601) }

    /// Whether `hash` has the shape of a bcrypt hash (its cost and salt are checked on use).
    public static func isBcryptHash(_ hash: String) -> Bool {
        hash.utf8.count == 60 && ["$2a$", "$2b$", "$2y$"].contains(where: { hash.hasPrefix($0) })
    }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
