import EngineIO
import Foundation
import Logging
import NIOCore

/// One Engine.IO connection seen by Socket.IO: performs what its ``SocketIOClientStateMachine``
/// decides (namespace connections, packet routing, closes), confined to the connection's event
/// loop.
final class SocketIOClient: EngineIOConnectionDelegate {
    let connection: EngineIOConnection
    let server: SocketIOServer.Core

    private struct State {
        var machine: SocketIOClientStateMachine
        var sockets: [SocketIOClientStateMachine.Member: SocketIOSocket] = [:]
        var connectTimer: Scheduled<Void>?
    }

    private let state: NIOLoopBoundBox<State>

    init(connection: EngineIOConnection, server: SocketIOServer.Core) {
        self.connection = connection
        self.server = server
        let machine = SocketIOClientStateMachine(
            maxAttachments: server.configuration.maxAttachments,
            parser: server.configuration.parser,
            connectTimeout: TimeAmount(server.configuration.connectTimeout),
            protocolVersion: connection.protocolVersion,
            now: .now()
        )
        self.state = .makeBoxSendingValue(State(machine: machine), eventLoop: connection.eventLoop)
        onLoop { [weak self] in self?.armConnectTimer() }
        if connection.protocolVersion == .v3 {
            // A Socket.IO v4-protocol client is in the main namespace from the start; queued, so
            // that the Engine.IO handshake, written once this delegate exists, goes out first.
            eventLoop.execute { [weak self] in
                guard let self else { return }
                perform(state.value.machine.start())
            }
        }
    }

    var eventLoop: any EventLoop { connection.eventLoop }

    /// Runs `body` on the connection's event loop: now when already there, else in call order.
    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop { body() } else { eventLoop.execute(body) }
    }

    private func armConnectTimer() {
        guard let deadline = state.value.machine.connectDeadline else { return }
        state.value.connectTimer = eventLoop.scheduleTask(deadline: deadline) { [weak self] in
            guard let self else { return }
            perform(state.value.machine.connectTimerFired(now: .now()))
        }
    }

    // MARK: EngineIOConnectionDelegate

    func connection(_ connection: EngineIOConnection, didReceive payload: EngineIOPayload) {
        onLoop { [self] in perform(state.value.machine.receive(payload)) }
    }

    func connection(_ connection: EngineIOConnection, didCloseWith reason: EngineIOCloseReason) {
        onLoop { [self] in
            let members = state.value.machine.connectionClosed(reason)
            closeSockets(members, reason: SocketIODisconnectReason(reason), writeDisconnect: false)
        }
    }

    // MARK: Actions

    private func perform(_ action: SocketIOClientStateMachine.Action) {
        switch action {
        case .none:
            break
        case .connect(let namespace, let auth, let member):
            connect(to: namespace, auth: auth, member: member)
        case .deliver(let packet, let member):
            state.value.sockets[member]?.receive(packet)
        case .closeConnection(let members, let reason, let engineReason, let writeDisconnect):
            server.logger.debug("closing a client's connection: \(reason)", metadata: ["sid": .string(connection.id)])
            closeSockets(members, reason: reason, writeDisconnect: writeDisconnect)
            connection.close(reason: engineReason)
        }
    }

    private func closeSockets(_ members: [SocketIOClientStateMachine.Member], reason: SocketIODisconnectReason, writeDisconnect: Bool) {
        state.value.connectTimer?.cancel()
        state.value.connectTimer = nil
        var sockets: [SocketIOSocket] = []
        for member in members {
            if let socket = state.value.sockets.removeValue(forKey: member) { sockets.append(socket) }
        }
        for socket in sockets {
            if writeDisconnect { socket.sendPacket(SocketIOPacket(type: .disconnect, namespace: socket.namespace.name)) }
            socket.close(reason: reason)
        }
    }

    private func connect(to name: String, auth: SocketIOValue?, member: SocketIOClientStateMachine.Member) {
        guard let namespace = server.beginConnect(to: name, auth: auth) else {
            if state.value.machine.refuse(member) {
                send(SocketIOPacket(type: .connectError, namespace: name, data: ["message": "Invalid namespace"]))
            }
            return
        }
        // Broadcasts made from now on visit this loop, so none misses the socket that follows.
        namespace.localSockets.prepare(eventLoop)
        guard let (pid, sentOffset) = recoveryRequest(in: namespace, auth: auth) else {
            return connectNew(to: namespace, auth: auth, member: member)
        }
        if let session = server.sessions?.take(pid: pid, namespace: namespace.name, now: .now) {
            return recover(session, sentOffset: sentOffset, in: namespace, auth: auth, member: member)
        }
        guard let shared = server.configuration.connectionStateRecovery?.store as? any SocketIOSharedRecoveryStore else {
            server.statistics.recovery(.unknownSession)
            return connectNew(to: namespace, auth: auth, member: member)
        }
        // Another server of the cluster may have kept it (its client came here when that one died).
        let since = Date() - TimeInterval(server.configuration.connectionStateRecovery?.maxDisconnectionDuration.components.seconds ?? 0)
        Task { [self] in
            var claimed: SocketIORecoverySession?
            do {
                claimed = try await shared.claimSession(pid: pid, namespace: namespace.name, since: since).flatMap {
                    SocketIORecoverySession(stored: $0)
                }
            } catch {
                namespace.logger.warning("Could not look up a session in the shared recovery store", metadata: ["error": "\(error)"])
            }
            onLoop { [self, claimed] in
                guard let claimed else {
                    server.statistics.recovery(.unknownSession)
                    return connectNew(to: namespace, auth: auth, member: member)
                }
                recover(claimed, sentOffset: sentOffset, in: namespace, auth: auth, member: member)
            }
        }
    }

    /// A kept session comes back: its socket is restored with the events missed since
    /// `sentOffset` (since it was admitted, when the client sent none), unless the log cannot
    /// replay them (then it gets a new socket).
    private func recover(
        _ session: SocketIORecoverySession, sentOffset: UInt64?, in namespace: SocketIONamespace, auth: SocketIOValue?,
        member: SocketIOClientStateMachine.Member
    ) {
        guard let log = namespace.recoveryLog else { return connectNew(to: namespace, auth: auth, member: member) }
        // Taken once: the store forgets it too (a recovered socket writes it again when admitted).
        server.recoveryWriter?.forget(pid: session.pid)
        let offset = sentOffset ?? session.admittedAtOffset
        if let refusal = log.refusal(after: offset, through: log.lastOffset, rooms: session.rooms, limit: replayLimit) {
            server.statistics.recovery(refusal.outcome)
            return connectNew(to: namespace, auth: auth, member: member)
        }
        let socket = SocketIOSocket(namespace: namespace, client: self, member: member, auth: auth, restoring: session)
        let skip = server.configuration.connectionStateRecovery?.skipMiddlewares ?? true
        runMiddlewares(skip ? [] : namespace.middlewares, of: socket) { [self] in
            admitRecovered(socket, session: session, after: offset, log: log, auth: auth)
        }
    }

    /// A new socket: its middlewares run, then it is admitted.
    private func connectNew(to namespace: SocketIONamespace, auth: SocketIOValue?, member: SocketIOClientStateMachine.Member) {
        let socket = SocketIOSocket(namespace: namespace, client: self, member: member, auth: auth)
        runMiddlewares(namespace.middlewares, of: socket) { [self] in admit(socket) }
    }

    /// Runs the middlewares on a task (none: `then` at once), then `then` on the loop; a refusal
    /// is answered with CONNECT_ERROR.
    private func runMiddlewares(_ middlewares: [SocketIOMiddleware], of socket: SocketIOSocket, then: @escaping @Sendable () -> Void) {
        if middlewares.isEmpty {
            then()
            return
        }
        Task { [self] in
            do {
                for middleware in middlewares { try await middleware(socket) }
            } catch {
                let refusal = error as? SocketIOConnectError ?? SocketIOConnectError(String(describing: error))
                onLoop { [self] in refuse(socket, refusal) }
                return
            }
            onLoop(then)
        }
    }

    // MARK: Recovery

    /// The session a CONNECT asks to recover (`{pid, offset}` in its payload, as the reference
    /// client sends them): its pid, and the offset the client has seen everything up to (`nil`
    /// when it received no event, and so sent none). `nil` (a new session) when recovery is off,
    /// no pid is given, or the offset is not one.
    private func recoveryRequest(in namespace: SocketIONamespace, auth: SocketIOValue?) -> (pid: String, offset: UInt64?)? {
        guard server.sessions != nil, namespace.recoveryLog != nil, let object = auth?.objectValue, let pid = object["pid"]?.stringValue
        else { return nil }
        switch object["offset"] {
        case nil: return (pid, nil)
        case .string(let text)?:
            guard let offset = SocketIORecoveryOffset.parse(text) else {
                server.statistics.recovery(.unknownOffset)
                return nil
            }
            return (pid, offset)
        default:
            server.statistics.recovery(.unknownOffset)
            return nil
        }
    }

    /// The most events replayed to one recovering socket.
    private var replayLimit: Int { server.configuration.connectionStateRecovery?.maxReplayedEvents ?? 0 }

    /// Admits a recovered socket behind every logged broadcast handed to this loop so far, with the
    /// events it missed up to there; later broadcasts reach it live. Should the log no longer
    /// answer (pruned or past the limit meanwhile), the client gets a new socket instead, through
    /// the namespace's middlewares like any other.
    private func admitRecovered(
        _ socket: SocketIOSocket, session: SocketIORecoverySession, after offset: UInt64, log: SocketIORecoveryLog, auth: SocketIOValue?
    ) {
        log.admitInOrder(on: eventLoop) { [self] through in
            let replay = log.replay(after: offset, through: through, rooms: session.rooms, limit: replayLimit)
            if case .events(let events) = replay {
                server.statistics.recovery(.recovered, replayed: events.count)
                admit(socket, replay: events, offset: through)
            } else {
                server.statistics.recovery(replay.outcome)
                connectNew(to: socket.namespace, auth: auth, member: socket.member)
            }
        }
    }

    private func admit(_ socket: SocketIOSocket, replay: [[EngineIOFrame]] = [], offset: UInt64? = nil) {
        defer { server.connectFinished(socket.namespace) }
        // As the reference, a socket whose connection closed while its middlewares ran is dropped.
        guard connection.isOpen, state.value.machine.admit(socket.member) == .admit else {
            _ = state.value.machine.refuse(socket.member)
            socket.close(reason: .forcedClose)
            return
        }
        state.value.sockets[socket.member] = socket
        state.value.connectTimer?.cancel()
        state.value.connectTimer = nil
        socket.admit(replay: replay, offset: offset)
    }

    private func refuse(_ socket: SocketIOSocket, _ refusal: SocketIOConnectError) {
        defer { server.connectFinished(socket.namespace) }
        socket.close(reason: .forcedClose)
        guard state.value.machine.refuse(socket.member) else { return }
        if connection.protocolVersion == .v3 {
            // The v4 protocol's ERROR carries the data, or the message as a string.
            send(SocketIOPacket(type: .connectError, namespace: socket.namespace.name, data: refusal.data ?? .string(refusal.message)))
            return
        }
        var data: SocketIOObject = ["message": .string(refusal.message)]
        if let extra = refusal.data { data["data"] = extra }
        send(SocketIOPacket(type: .connectError, namespace: socket.namespace.name, data: .object(data)))
    }

    func send(_ packet: SocketIOPacket) {
        connection.send(SocketIOOutboundPacket(packet, parser: server.configuration.parser).frames)
    }

    /// A socket left its namespace (on the loop): its namespace's packets no longer reach it.
    func socketLeft(_ socket: SocketIOSocket) {
        state.value.machine.socketLeft(socket.member)
        if state.value.sockets[socket.member] === socket { state.value.sockets[socket.member] = nil }
    }

    /// Writes DISCONNECT to every namespace, closes its sockets, then the connection.
    func closeByServer() {
        onLoop { [self] in perform(state.value.machine.closeByServer()) }
    }
}
