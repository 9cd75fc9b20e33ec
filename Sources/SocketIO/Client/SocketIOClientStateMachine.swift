import EngineIO
import NIOCore

/// One Engine.IO connection as Socket.IO sees it, as a value: the packet decoder (binary
/// attachments are put back in place across messages), the namespaces being connected (their
/// middlewares running) or connected, and the connect timeout.
///
/// It takes events and returns actions; a loop-confined ``SocketIOClient`` performs them. Each
/// namespace connection attempt gets a ``Member`` number that names its socket in later events.
///
/// A duplicate CONNECT behaves as in the reference server (socket.io 4.8, `lib/client.ts`,
/// `ondecoded` and `doConnect`, and `lib/namespace.ts`, `_add` and `_doConnect`): the client maps a
/// namespace to its socket (`nsps`) only once the socket's middlewares let it in. So a CONNECT for
/// a namespace that is already connected is an invalid state and closes the whole connection
/// ("forced server close"), while a CONNECT that arrives while an earlier one for the same
/// namespace is still in its middlewares starts a second socket: each one admitted is connected
/// (and disconnected when the connection closes), and the namespace's packets go to the last one
/// admitted.
struct SocketIOClientStateMachine: Sendable {
    /// Names one namespace connection attempt, and then its socket.
    typealias Member = Int

    /// What the handler does after an event.
    enum Action: Equatable, Sendable {
        /// Nothing to do.
        case none
        /// Look the namespace up and run its middlewares for a new socket `member`.
        case connect(namespace: String, auth: SocketIOValue?, member: Member)
        /// Hand the packet to the socket `member`.
        case deliver(SocketIOPacket, to: Member)
        /// Close the given sockets with `reason` (writing DISCONNECT to each first when
        /// `writeDisconnect`), then the Engine.IO connection with `engineReason`.
        case closeConnection(sockets: [Member], reason: SocketIODisconnectReason, engineReason: EngineIOCloseReason, writeDisconnect: Bool)
    }

    /// What the handler does once a socket's middlewares accepted it.
    enum Admission: Equatable, Sendable {
        /// Admit it: it joins its rooms, then CONNECT is written and its connection handlers run.
        case admit
        /// The connection closed meanwhile: forget the socket, it never connected.
        case discard
    }

    private var decoder: SocketIODecoder
    /// The namespaces whose packets have a socket to go to, and that socket.
    private var routes: [String: Member] = [:]
    /// Every admitted socket, routed to or not (a duplicate CONNECT can leave one unrouted).
    private var admitted: [Member: String] = [:]
    /// Attempts whose middlewares are running.
    private var connecting: [Member: String] = [:]
    private var nextMember: Member = 0
    /// When the connection is closed if it joined no namespace; `nil` once one was joined.
    private(set) var connectDeadline: NIODeadline?
    private(set) var isClosed = false
    /// v3: a Socket.IO v4-protocol client, connected to `/` without asking, whose CONNECT packets
    /// carry their auth as a query (`0/admin?token=abc,`).
    private let protocolVersion: EngineIOProtocol

    /// What the connection starts with: for a v4-protocol client, joining `/`.
    mutating func start() -> Action {
        guard protocolVersion == .v3, !isClosed else { return .none }
        return route(SocketIOPacket(type: .connect, namespace: "/"))
    }

    /// A client whose connection opened at `now`.
    init(maxAttachments: Int, parser: SocketIOParser = .json, connectTimeout: TimeAmount, protocolVersion: EngineIOProtocol = .v4, now: NIODeadline) {
        self.protocolVersion = protocolVersion
        self.decoder = SocketIODecoder(maxAttachments: maxAttachments, parser: parser)
        self.connectDeadline = now + connectTimeout
    }

    /// The sockets the client has connected, routed to or not.
    var members: [Member] { admitted.keys.sorted() }

    /// The namespaces with a socket that receives their packets.
    var connectedNamespaces: Set<String> { Set(routes.keys) }

    /// An Engine.IO message arrived.
    mutating func receive(_ payload: EngineIOPayload) -> Action {
        guard !isClosed else { return .none }
        let packet: SocketIOPacket?
        do {
            packet = try decoder.decode(payload)
        } catch {
            return close(reason: .parseError, engineReason: .parseError)
        }
        guard let packet else { return .none }
        return route(packet)
    }

    private mutating func route(_ packet: SocketIOPacket) -> Action {
        let member = routes[packet.namespace]
        switch (packet.type, member) {
        case (.connect, nil) where protocolVersion == .v3:
            let (namespace, auth) = Self.splitQuery(packet.namespace)
            guard routes[namespace] == nil, !connecting.values.contains(namespace) else { return .none }
            let new = nextMember
            nextMember += 1
            connecting[new] = namespace
            return .connect(namespace: namespace, auth: auth, member: new)
        case (.connect, nil):
            let new = nextMember
            nextMember += 1
            connecting[new] = packet.namespace
            return .connect(namespace: packet.namespace, auth: packet.data, member: new)
        case (.connect, .some), (.connectError, _), (_, nil):
            // The reference's "invalid state": a CONNECT for a connected namespace, a CONNECT_ERROR
            // (only servers send it), or a packet for a namespace without a socket.
            return close(reason: .forcedServerClose, engineReason: .forcedClose)
        case (_, .some(let member)):
            return .deliver(packet, to: member)
        }
    }

    /// `/admin?token=abc&x=1` as the namespace and the auth object its query stands for.
    static func splitQuery(_ name: String) -> (String, SocketIOValue?) {
        guard let mark = name.firstIndex(of: "?") else { return (name, nil) }
        var auth = SocketIOObject()
        for pair in name[name.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            auth[key] = .string(value)
        }
        return (String(name[..<mark]), .object(auth))
    }

    /// The middlewares of `member` accepted it.
    mutating func admit(_ member: Member) -> Admission {
        guard let namespace = connecting.removeValue(forKey: member), !isClosed else { return .discard }
        admitted[member] = namespace
        routes[namespace] = member
        connectDeadline = nil
        return .admit
    }

    /// The namespace of `member` does not exist or its middlewares refused it; `true` when the
    /// client should still be told (with CONNECT_ERROR).
    mutating func refuse(_ member: Member) -> Bool {
        connecting.removeValue(forKey: member) != nil && !isClosed
    }

    /// The socket `member` left its namespace: its namespace's packets no longer reach it.
    mutating func socketLeft(_ member: Member) {
        guard let namespace = admitted.removeValue(forKey: member) else { return }
        if routes[namespace] == member { routes[namespace] = nil }
    }

    /// The connect timer fired at `now`.
    mutating func connectTimerFired(now: NIODeadline) -> Action {
        guard !isClosed, let deadline = connectDeadline, now >= deadline, routes.isEmpty else { return .none }
        return close(reason: .forcedServerClose, engineReason: .forcedClose)
    }

    /// The server closes every socket (after writing DISCONNECT to each) and then the connection.
    mutating func closeByServer() -> Action {
        guard !isClosed else { return .none }
        isClosed = true
        return .closeConnection(sockets: takeAll(), reason: .serverNamespaceDisconnect, engineReason: .forcedClose, writeDisconnect: true)
    }

    /// The Engine.IO connection closed; returns the sockets to close, with the reason.
    mutating func connectionClosed(_ reason: EngineIOCloseReason) -> [Member] {
        guard !isClosed else { return [] }
        isClosed = true
        return takeAll()
    }

    private mutating func close(reason: SocketIODisconnectReason, engineReason: EngineIOCloseReason) -> Action {
        isClosed = true
        return .closeConnection(sockets: takeAll(), reason: reason, engineReason: engineReason, writeDisconnect: false)
    }

    private mutating func takeAll() -> [Member] {
        let members = self.members
        admitted = [:]
        routes = [:]
        connecting = [:]
        connectDeadline = nil
        return members
    }
}
