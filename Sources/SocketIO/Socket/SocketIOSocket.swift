public import EngineIO
import Foundation
import Logging
import NIOConcurrencyHelpers
public import NIOCore

/// A client's membership of one namespace: what handlers receive and what the server emits to.
///
/// Every method may be called from any task. The socket's state lives on its connection's event
/// loop (``SocketIOSocketStateMachine``); calls made elsewhere hop there, in the order they were
/// made. Handlers of one socket run one at a time, in the order their packets arrived; the
/// connection handlers run first.
public final class SocketIOSocket: Sendable {
    /// The socket id, distinct from the Engine.IO session id.
    public let id: String
    /// The namespace the socket belongs to.
    public let namespace: SocketIONamespace
    /// What the client sent when it connected.
    public let handshake: SocketIOHandshake
    /// Whether the socket is a recovered session (connection state recovery): its id, rooms and
    /// data are those it had before its client lost the connection, and the events it missed were
    /// replayed to it.
    public let recovered: Bool
    let client: SocketIOClient
    /// Names the socket to its client's state machine.
    let member: SocketIOClientStateMachine.Member
    /// The private session id the client presents to recover the socket (recovery on only).
    let pid: String?
    private let machine: NIOLoopBoundBox<SocketIOSocketStateMachine>
    /// The recovery log's offset when the socket was admitted (recovery on only).
    private let admittedAtOffset: NIOLoopBoundBox<UInt64>
    /// What callers on other threads read at once: the application data and whether the socket
    /// is connected.
    private let shared = NIOLockedValueBox(Shared())

    private struct Shared {
        var data: SocketIOValue = .null
        var isConnected = false
    }

    /// A new socket, or the socket of `session` coming back.
    init(
        namespace: SocketIONamespace,
        client: SocketIOClient,
        member: SocketIOClientStateMachine.Member,
        auth: SocketIOValue?,
        restoring session: SocketIORecoverySession? = nil
    ) {
        // A Socket.IO v4-protocol client (Engine.IO v3) computes its socket's id itself, as the
        // Engine.IO id, prefixed with `<namespace>#` outside the main namespace.
        let v3 = client.connection.protocolVersion == .v3
        let id = session?.id ?? (v3 ? (namespace.name == "/" ? client.connection.id : "\(namespace.name)#\(client.connection.id)") : RandomID.make())
        self.id = id
        self.namespace = namespace
        self.client = client
        self.member = member
        self.recovered = session != nil
        self.pid = session?.pid ?? (namespace.recoveryLog != nil ? RandomID.make() : nil)
        self.handshake = SocketIOHandshake(connection: client.connection, auth: auth)
        self.machine = .makeBoxSendingValue(
            SocketIOSocketStateMachine(
                id: id, rooms: session?.rooms ?? [], maxPendingEvents: client.server.configuration.maxPendingEventsPerSocket,
                eventRateLimit: client.server.configuration.eventRateLimit),
            eventLoop: client.connection.eventLoop
        )
        self.admittedAtOffset = .makeBoxSendingValue(0, eventLoop: client.connection.eventLoop)
        if let session { shared.withLockedValue { $0.data = session.data } }
    }

    /// The Engine.IO session under this socket.
    public var connection: EngineIOConnection { client.connection }

    var eventLoop: any EventLoop { client.connection.eventLoop }

    /// Whether the socket is connected to its namespace.
    public var isConnected: Bool { shared.withLockedValue { $0.isConnected } }

    /// Application data attached to the socket (visible to ``SocketIONamespace/fetchSockets()``).
    public var data: SocketIOValue {
        get { shared.withLockedValue { $0.data } }
        set { shared.withLockedValue { $0.data = newValue } }
    }

    /// Runs `body` on the socket's event loop: now when already there, else in call order.
    private func onLoop(_ body: @escaping @Sendable () -> Void) {
        if eventLoop.inEventLoop { body() } else { eventLoop.execute(body) }
    }

    // MARK: Handlers

    /// Adds a handler for an event.
    public func on(_ event: String, _ handler: @escaping SocketIOEventHandler) {
        onLoop { [self] in machine.value.on(event, handler) }
    }

    /// Adds a handler that receives every event, before the event's own handlers.
    public func onAny(_ handler: @escaping SocketIOEventHandler) {
        onLoop { [self] in machine.value.onAny(handler) }
    }

    /// Adds a handler run when the socket is about to leave, while it is still in its rooms.
    /// Added to a socket that already left (its client went away while a connection handler
    /// ran), it runs at once, after the handler that added it.
    public func onDisconnecting(_ handler: @escaping SocketIODisconnectHandler) {
        onLoop { [self] in perform(machine.value.onDisconnecting(handler)) }
    }

    /// Adds a handler run once the socket has left. Added to a socket that already left, it runs
    /// at once, after the handler that added it: what a connection handler counts or claims on
    /// connect, its disconnect handler always gives back.
    public func onDisconnect(_ handler: @escaping SocketIODisconnectHandler) {
        onLoop { [self] in perform(machine.value.onDisconnect(handler)) }
    }

    // MARK: Rooms

    /// The rooms the socket is in (its own id among them), read on the socket's event loop.
    public var rooms: Set<String> {
        get async {
            if eventLoop.inEventLoop { return namespace.localSockets.rooms(of: self) }
            return (try? await eventLoop.submit { [self] in namespace.localSockets.rooms(of: self) }.get()) ?? []
        }
    }

    /// Joins rooms.
    public func join(_ rooms: String...) { join(rooms) }

    /// Joins rooms. Called from a middleware, the rooms are joined when the socket is admitted,
    /// before the client learns it is connected: a broadcast to them right after the client's
    /// `connect` reaches it. The join is applied on the socket's event loop, in call order, so a
    /// broadcast made next by the same task (which reaches that loop after it) reaches the socket.
    /// On a socket that left, it does nothing.
    public func join(_ rooms: some Sequence<String>) {
        let rooms = Set(rooms)
        onLoop { [self] in perform(machine.value.join(rooms)) }
    }

    /// Leaves a room.
    public func leave(_ room: String) {
        onLoop { [self] in perform(machine.value.leave(room)) }
    }

    /// Leaves every room but the socket's own.
    public func leaveAll() {
        onLoop { [self] in
            for room in namespace.localSockets.rooms(of: self) where room != id { perform(machine.value.leave(room)) }
        }
    }

    // MARK: Emitting

    /// Emits an event to this client.
    public func emit(_ event: String, _ arguments: SocketIOValue...) {
        emit(event, arguments: arguments)
    }

    /// Emits an event to this client.
    public func emit(_ event: String, arguments: [SocketIOValue]) {
        guard Self.checkEventName(event, logger: namespace.logger) else { return }
        let (name, parser) = (namespace.name, namespace.localSockets.parser)
        sendEvent { offset in SocketIOOutboundPacket(event: event, arguments: arguments, namespace: name, parser: parser, offset: offset) }
    }

    /// Emits an event whose arguments are the given JSON array, written without being parsed.
    public func emit(_ event: String, jsonArguments: ByteBuffer) {
        guard Self.checkEventName(event, logger: namespace.logger) else { return }
        let (name, parser) = (namespace.name, namespace.localSockets.parser)
        sendEvent { offset in
            SocketIOOutboundPacket(event: event, jsonArguments: jsonArguments, namespace: name, parser: parser, offset: offset)
        }
    }

    /// Writes an event to this client. With recovery on it goes through the namespace's recovery
    /// log, as a broadcast to the socket's own room on its loop, and carries its offset (as in the
    /// reference), so that it is replayed if the client misses it.
    private func sendEvent(_ packet: @escaping @Sendable (String?) -> SocketIOOutboundPacket) {
        guard namespace.recoveryLog != nil else {
            connection.send(packet(nil).frames)
            return
        }
        var options = SocketIOBroadcastOptions()
        options.rooms = [id]
        SocketIOBroadcastOperator.send(namespace: namespace, options: options, only: eventLoop, delivered: nil, packet)
    }

    /// Emits an event and waits for the client's acknowledgement, returning its arguments.
    /// Throws ``SocketIOAckError/timeout`` after `timeout`, ``SocketIOAckError/disconnected`` if the socket leaves.
    public func emitWithAck(_ event: String, _ arguments: SocketIOValue..., timeout: Duration? = nil) async throws -> [SocketIOValue] {
        try await emitWithAck(event, arguments: arguments, timeout: timeout)
    }

    /// Emits an event and waits for the client's acknowledgement, returning its arguments.
    public func emitWithAck(_ event: String, arguments: [SocketIOValue], timeout: Duration? = nil) async throws -> [SocketIOValue] {
        guard Self.checkEventName(event, logger: namespace.logger) else { throw SocketIOAckError.disconnected }
        let id = namespace.nextAckID()
        let packet = SocketIOOutboundPacket(
            SocketIOPacket(type: .event, namespace: namespace.name, id: id, data: .array([.string(event)] + arguments)),
            parser: namespace.localSockets.parser)
        return try await withCheckedThrowingContinuation { continuation in
            // Registered on the loop before the packet leaves: the answer cannot come first.
            registerAck(id: id, timeout: timeout, sending: packet) { continuation.resume(with: $0) }
        }
    }

    /// Targets every other socket of the namespace.
    public var broadcast: SocketIOBroadcastOperator { SocketIOBroadcastOperator(namespace: namespace).except(id) }

    /// Targets the sockets in these rooms, leaving out this socket.
    public func to(_ rooms: String...) -> SocketIOBroadcastOperator { broadcast.to(rooms) }

    /// Leaves out the sockets in these rooms, and this socket.
    public func except(_ rooms: String...) -> SocketIOBroadcastOperator { broadcast.except(rooms) }

    func sendPacket(_ packet: SocketIOPacket) {
        connection.send(SocketIOOutboundPacket(packet, parser: namespace.localSockets.parser).frames)
    }

    static let reservedEvents: Set<String> = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]

    static func checkEventName(_ event: String, logger: Logger) -> Bool {
        guard reservedEvents.contains(event) else { return true }
        logger.error("'\(event)' is a reserved event name and was not emitted")
        return false
    }

    // MARK: Acknowledgements

    /// Waits for the answer to ack `id` (failing at once on a socket that is not connected), then
    /// writes `packet` when given. A broadcast passes `ownTimer: false` and ends the wait with
    /// ``expireAck(id:)`` from its one timer.
    func registerAck(
        id: Int,
        timeout: Duration?,
        sending packet: SocketIOOutboundPacket? = nil,
        ownTimer: Bool = true,
        _ callback: @escaping SocketIOAckCallback
    ) {
        onLoop { [self] in
            var actions = machine.value.registerAck(id: id, timeout: timeout.map(TimeAmount.init), now: .now(), callback)
            if !ownTimer {
                actions.removeAll { if case .scheduleAckTimer = $0 { true } else { false } }
            }
            perform(actions)
            if let packet { connection.send(packet.frames) }
        }
    }

    /// Stops waiting for ack `id` (on the loop): the broadcast that asked for it timed out.
    func expireAck(id: Int) {
        perform(machine.value.ackExpired(id: id))
    }

    // MARK: Lifecycle, driven by the client (on the loop)

    /// Admits the socket: it joins its own room and those its middlewares chose (or its session's),
    /// becomes one of the namespace's sockets, CONNECT is written, then the events it missed
    /// (`replay`, for a recovered socket), then its connection handlers run. `offset` is the
    /// recovery log's offset the socket has seen everything up to.
    func admit(replay: [[EngineIOFrame]] = [], offset: UInt64? = nil) {
        admittedAtOffset.value = offset ?? namespace.recoveryLog?.lastOffset ?? 0
        let actions = machine.value.admit(hasConnectionHandlers: !namespace.connectionHandlers.isEmpty)
        if let work = perform(actions, continuing: false, replay: replay) { start(work) }
    }

    /// A packet of the socket's namespace arrived.
    func receive(_ packet: SocketIOPacket) {
        perform(machine.value.receive(packet, now: .now()))
    }

    /// Disconnects the socket. With `close`, the client's whole connection is closed too.
    public func disconnect(close: Bool = false) {
        if close {
            client.closeByServer()
        } else {
            onLoop { [self] in
                guard machine.value.isConnected else { return }
                sendPacket(SocketIOPacket(type: .disconnect, namespace: namespace.name))
                perform(machine.value.close(reason: .serverNamespaceDisconnect))
            }
        }
    }

    /// Leaves the namespace: handlers see `disconnecting`, the socket leaves its rooms, then `disconnect`.
    func close(reason: SocketIODisconnectReason) {
        onLoop { [self] in perform(machine.value.close(reason: reason)) }
    }

    // MARK: Performing actions (on the loop)

    private func perform(_ actions: [SocketIOSocketStateMachine.Action]) {
        if let work = perform(actions, continuing: false) { start(work) }
    }

    /// Performs the actions; work to run is started on a new task, or returned when `continuing`
    /// (the task that finished the previous work runs it).
    private func perform(
        _ actions: [SocketIOSocketStateMachine.Action],
        continuing: Bool,
        replay: [[EngineIOFrame]] = []
    ) -> SocketIOSocketStateMachine.Work? {
        var next: SocketIOSocketStateMachine.Work?
        for action in actions {
            switch action {
            case .admitted(let rooms):
                namespace.localSockets.insert(self, rooms: rooms)
                shared.withLockedValue { $0.isConnected = true }
                if connection.protocolVersion == .v3 {
                    // Socket.IO v4-protocol clients take their id from the Engine.IO session.
                    sendPacket(SocketIOPacket(type: .connect, namespace: namespace.name))
                } else {
                    var reply: SocketIOObject = ["sid": .string(id)]
                    if let pid { reply["pid"] = .string(pid) }
                    sendPacket(SocketIOPacket(type: .connect, namespace: namespace.name, data: .object(reply)))
                }
                for frames in replay { connection.send(frames) }
                storeSession()
            case .addRooms(let rooms):
                namespace.localSockets.join(self, rooms)
                storeSession()
            case .removeRoom(let room):
                namespace.localSockets.leave(self, room)
                storeSession()
            case .run(let work):
                if continuing {
                    next = work
                } else if case .connectionHandlers = work {
                    // The CONNECT packet written just before may still be queued in the engine
                    // (this runs inside one of its delegate calls): the handlers start once it
                    // has been written, as the reference emits `connection` after sending it.
                    eventLoop.execute { self.start(work) }
                } else {
                    start(work)
                }
            case .resolveAck(let callback, let result):
                callback(result)
            case .scheduleAckTimer(let ackID, let deadline):
                eventLoop.scheduleTask(deadline: deadline) { [self] in
                    perform(machine.value.ackTimerFired(id: ackID, now: .now()))
                }
            case .tooManyEvents:
                namespace.logger.warning(
                    "disconnecting a socket whose events arrive faster than its handlers run",
                    metadata: ["socket.id": .string(id), "waiting": .stringConvertible(machine.value.maxPendingEvents)]
                )
                client.server.statistics.eventBacklogDisconnected()
                disconnect()
            case .eventRateExceeded:
                namespace.logger.warning(
                    "disconnecting a socket whose events arrive faster than its rate limit",
                    metadata: ["socket.id": .string(id)]
                )
                client.server.statistics.eventRateLimited()
                disconnect()
            case .unroute:
                shared.withLockedValue { $0.isConnected = false }
                client.socketLeft(self)
            case .leave:
                keepSessionForRecovery()
                namespace.localSockets.remove(self)
                client.server.removeIfEmpty(namespace)
            }
        }
        return next
    }

    /// Keeps what a recovering client needs, when recovery is on and the socket did not leave on
    /// purpose: its id, rooms (read before it leaves them) and data; in the store too, when there
    /// is one (a socket that left on purpose is forgotten there).
    private func keepSessionForRecovery() {
        guard let sessions = client.server.sessions, let pid else { return }
        let writer = client.server.recoveryWriter
        guard let reason = machine.value.closeReason, SocketIOConnectionStateRecovery.recoverableReasons.contains(reason) else {
            writer?.forget(pid: pid)
            return
        }
        let session = self.session(pid: pid, disconnectedAt: .now)
        sessions.keep(session)
        writer?.keep(session.stored(disconnectedAt: Date()))
    }

    /// Writes the connected socket's session to the recovery store, when there is one: at
    /// admission and at every change of its rooms, so that a crash loses none of it.
    private func storeSession() {
        guard let writer = client.server.recoveryWriter, let pid else { return }
        writer.keep(session(pid: pid, disconnectedAt: .now).stored(disconnectedAt: nil))
    }

    /// The socket's session as it is now (on the loop: its rooms are read from its shard).
    private func session(pid: String, disconnectedAt: ContinuousClock.Instant) -> SocketIORecoverySession {
        SocketIORecoverySession(
            id: id, pid: pid, namespace: namespace.name, rooms: namespace.localSockets.rooms(of: self), data: data,
            admittedAtOffset: admittedAtOffset.value, disconnectedAt: disconnectedAt)
    }

    /// Runs handler work on a task, then the work that became ready meanwhile, until none is left.
    private func start(_ work: SocketIOSocketStateMachine.Work) {
        Task { [self] in
            var work = work
            while true {
                await run(work)
                let next = try? await eventLoop.submit { [self] in
                    perform(machine.value.workFinished(), continuing: true)
                }.get()
                guard let next else { return }
                work = next
            }
        }
    }

    private func run(_ work: SocketIOSocketStateMachine.Work) async {
        switch work {
        case .connectionHandlers:
            for handler in namespace.connectionHandlers { await handler(self) }
        case .event(let packet, let handlers):
            let arguments = Array((packet.data?.arrayValue ?? []).dropFirst())
            let name = SocketIOEventName.of(packet)
            let event = SocketIOEvent(name: name, arguments: arguments, socket: self, ack: packet.id.map { SocketIOAck(socket: self, id: $0) })
            for handler in handlers {
                do {
                    try await handler(event)
                } catch {
                    namespace.logger.error("handler of '\(name)' failed: \(error)", metadata: ["socket.id": .string(id)])
                }
            }
        case .disconnectHandlers(let handlers, let reason):
            for handler in handlers { await handler(self, reason) }
        }
    }
}

/// How JavaScript prints a number used as an event name.
enum JSONNumber {
    static func text(_ number: Double) -> String {
        var buffer = ByteBuffer()
        JSON.writeNumber(number, into: &buffer)
        return String(buffer: buffer)
    }
}
