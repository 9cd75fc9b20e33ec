public import EngineIO
import Logging
import NIOConcurrencyHelpers
public import NIOCore

/// A client's membership of one namespace: what handlers receive and what the server emits to.
///
/// Handlers of one socket run one at a time, in the order their packets arrived; the connection
/// handlers run first.
public final class SocketIOSocket: Sendable {
    /// The socket id, distinct from the Engine.IO session id.
    public let id: String
    /// The namespace the socket belongs to.
    public let namespace: SocketIONamespace
    /// What the client sent when it connected.
    public let handshake: SocketIOHandshake
    let client: SocketIOClient
    let queue: SerialTaskQueue

    private struct State {
        var phase = Phase.connecting
        /// Rooms joined while connecting (by a middleware): added to the adapter on admission,
        /// before the client hears it is connected.
        var pendingRooms: Set<String> = []
        /// Why the socket left, once it was connected and left.
        var closeReason: SocketIODisconnectReason?
        var handlers: [String: [SocketIOEventHandler]] = [:]
        var anyHandlers: [SocketIOEventHandler] = []
        var disconnecting: [SocketIODisconnectHandler] = []
        var disconnect: [SocketIODisconnectHandler] = []
        var acks: [Int: PendingAck] = [:]
        var data: SocketIOValue = .null
    }

    private struct PendingAck {
        let callback: @Sendable (Result<[SocketIOValue], SocketIOAckError>) -> Void
        let timer: Scheduled<Void>?
    }

    private let state = NIOLockedValueBox(State())

    init(namespace: SocketIONamespace, client: SocketIOClient, auth: SocketIOValue?) {
        self.id = RandomID.make()
        self.namespace = namespace
        self.client = client
        self.queue = SerialTaskQueue(limit: client.server.configuration.maxPendingEventsPerSocket)
        self.handshake = SocketIOHandshake(connection: client.connection, auth: auth)
    }

    /// The Engine.IO session under this socket.
    public var connection: EngineIOConnection { client.connection }

    /// Whether the socket is connected to its namespace.
    public var isConnected: Bool { state.withLockedValue { $0.phase == .connected } }

    /// Where a socket is in its life: admission (middlewares), connected, or gone.
    enum Phase { case connecting, connected, closed }

    /// Application data attached to the socket (visible to ``SocketIONamespace/fetchSockets()``).
    public var data: SocketIOValue {
        get { state.withLockedValue { $0.data } }
        set { state.withLockedValue { $0.data = newValue } }
    }

    // MARK: Handlers

    /// Adds a handler for an event.
    public func on(_ event: String, _ handler: @escaping SocketIOEventHandler) {
        state.withLockedValue { $0.handlers[event, default: []].append(handler) }
    }

    /// Adds a handler that receives every event, before the event's own handlers.
    public func onAny(_ handler: @escaping SocketIOEventHandler) {
        state.withLockedValue { $0.anyHandlers.append(handler) }
    }

    /// Adds a handler run when the socket is about to leave, while it is still in its rooms.
    /// Added to a socket that already left (its client went away while a connection handler
    /// ran), it runs at once, after the handler that added it.
    public func onDisconnecting(_ handler: @escaping SocketIODisconnectHandler) {
        addLifecycleHandler(handler, to: \.disconnecting)
    }

    /// Adds a handler run once the socket has left. Added to a socket that already left, it runs
    /// at once, after the handler that added it: what a connection handler counts or claims on
    /// connect, its disconnect handler always gives back.
    public func onDisconnect(_ handler: @escaping SocketIODisconnectHandler) {
        addLifecycleHandler(handler, to: \.disconnect)
    }

    private func addLifecycleHandler(_ handler: @escaping SocketIODisconnectHandler, to list: WritableKeyPath<State, [SocketIODisconnectHandler]>) {
        let leftWith = state.withLockedValue { state -> SocketIODisconnectReason? in
            guard let reason = state.closeReason else {
                state[keyPath: list].append(handler)
                return nil
            }
            return reason
        }
        if let leftWith { queue.enqueue(bounded: false) { [self] in await handler(self, leftWith) } }
    }

    // MARK: Rooms

    /// The rooms the socket is in (its own id among them).
    public var rooms: Set<String> { namespace.adapter.rooms(of: id) }

    /// Joins rooms.
    public func join(_ rooms: String...) { join(rooms) }

    /// Joins rooms. Called from a middleware, the rooms are joined when the socket is admitted,
    /// before the client learns it is connected: a broadcast to them right after the client's
    /// `connect` reaches it. On a socket that left, it does nothing.
    public func join(_ rooms: some Sequence<String>) {
        state.withLockedValue { state in
            switch state.phase {
            case .connecting: state.pendingRooms.formUnion(rooms)
            // Under the socket's lock, so that a close cannot slip between the check and the join.
            case .connected: namespace.adapter.addAll(id, rooms: Set(rooms))
            case .closed: break
            }
        }
    }

    /// Leaves a room.
    public func leave(_ room: String) {
        state.withLockedValue { state in
            switch state.phase {
            case .connecting: state.pendingRooms.remove(room)
            case .connected: namespace.adapter.del(id, room: room)
            case .closed: break
            }
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
        sendPacket(SocketIOPacket(type: .event, namespace: namespace.name, data: .array([.string(event)] + arguments)))
    }

    /// Emits an event whose arguments are the given JSON array, written without being parsed.
    public func emit(_ event: String, jsonArguments: ByteBuffer) {
        guard Self.checkEventName(event, logger: namespace.logger) else { return }
        connection.send(SocketIOOutboundPacket(event: event, jsonArguments: jsonArguments, namespace: namespace.name).frames)
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
        return try await withCheckedThrowingContinuation { continuation in
            registerAck(id: id, timeout: timeout) { continuation.resume(with: $0) }
            sendPacket(SocketIOPacket(type: .event, namespace: namespace.name, id: id, data: .array([.string(event)] + arguments)))
        }
    }

    /// Targets every other socket of the namespace.
    public var broadcast: SocketIOBroadcastOperator { SocketIOBroadcastOperator(namespace: namespace).except(id) }

    /// Targets the sockets in these rooms, leaving out this socket.
    public func to(_ rooms: String...) -> SocketIOBroadcastOperator { broadcast.to(rooms) }

    /// Leaves out the sockets in these rooms, and this socket.
    public func except(_ rooms: String...) -> SocketIOBroadcastOperator { broadcast.except(rooms) }

    func sendPacket(_ packet: SocketIOPacket) {
        connection.send(SocketIOOutboundPacket(packet).frames)
    }

    static let reservedEvents: Set<String> = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]

    static func checkEventName(_ event: String, logger: Logger) -> Bool {
        guard reservedEvents.contains(event) else { return true }
        logger.error("'\(event)' is a reserved event name and was not emitted")
        return false
    }

    // MARK: Acknowledgements

    func registerAck(id: Int, timeout: Duration?, _ callback: @escaping @Sendable (Result<[SocketIOValue], SocketIOAckError>) -> Void) {
        let connected = state.withLockedValue { state -> Bool in
            guard state.phase == .connected else { return false }
            let timer = timeout.map { timeout in
                connection.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
                    [self] in self.resolveAck(id: id, with: .failure(.timeout))
                }
            }
            state.acks[id] = PendingAck(callback: callback, timer: timer)
            return true
        }
        if !connected { callback(.failure(.disconnected)) }
    }

    private func resolveAck(id: Int, with result: Result<[SocketIOValue], SocketIOAckError>) {
        let pending = state.withLockedValue { $0.acks.removeValue(forKey: id) }
        pending?.timer?.cancel()
        pending?.callback(result)
    }

    // MARK: Lifecycle, driven by the client

    /// Admits the socket: it joins its own room and those its middlewares chose, then becomes
    /// one of the namespace's sockets. Runs before CONNECT is written.
    func markConnected() {
        state.withLockedValue { state in
            state.phase = .connected
            namespace.adapter.addAll(id, rooms: state.pendingRooms.union([id]))
            state.pendingRooms = []
        }
        namespace.localSockets.insert(self)
    }

    func receive(_ packet: SocketIOPacket) {
        switch packet.type {
        case .event, .binaryEvent:
            guard var arguments = packet.data?.arrayValue, !arguments.isEmpty else { return }
            let nameValue = arguments.removeFirst()
            let name = nameValue.stringValue ?? nameValue.numberValue.map { JSONNumber.text($0) } ?? ""
            let event = SocketIOEvent(name: name, arguments: arguments, socket: self, ack: packet.id.map { SocketIOAck(socket: self, id: $0) })
            guard queue.enqueue({ [self] in await self.dispatch(event) }) else {
                namespace.logger.warning(
                    "disconnecting a socket whose events arrive faster than its handlers run",
                    metadata: ["socket.id": .string(id), "waiting": .stringConvertible(queue.limit)]
                )
                client.server.statistics.eventBacklogDisconnected()
                disconnect()
                return
            }
        case .ack, .binaryAck:
            guard let id = packet.id else { return }
            resolveAck(id: id, with: .success(packet.data?.arrayValue ?? []))
        case .disconnect:
            close(reason: .clientNamespaceDisconnect)
        case .connect, .connectError:
            break
        }
    }

    private func dispatch(_ event: SocketIOEvent) async {
        let handlers = state.withLockedValue { $0.anyHandlers + ($0.handlers[event.name] ?? []) }
        for handler in handlers {
            do {
                try await handler(event)
            } catch {
                namespace.logger.error("handler of '\(event.name)' failed: \(error)", metadata: ["socket.id": .string(id)])
            }
        }
    }

    /// Disconnects the socket. With `close`, the client's whole connection is closed too.
    public func disconnect(close: Bool = false) {
        if close {
            client.disconnectAll()
            client.connection.close(reason: .forcedClose)
        } else {
            guard isConnected else { return }
            sendPacket(SocketIOPacket(type: .disconnect, namespace: namespace.name))
            self.close(reason: .serverNamespaceDisconnect)
        }
    }

    /// Leaves the namespace: handlers see `disconnecting`, the socket leaves its rooms, then `disconnect`.
    func close(reason: SocketIODisconnectReason) {
        let (wasConnected, acks, disconnecting, disconnect) = state.withLockedValue { state in
            defer {
                state.phase = .closed
                state.pendingRooms = []
                state.acks.removeAll()
                state.handlers.removeAll()
                state.anyHandlers.removeAll()
                state.disconnecting.removeAll()
                state.disconnect.removeAll()
            }
            if state.phase == .connected { state.closeReason = reason }
            return (state.phase == .connected, Array(state.acks.values), state.disconnecting, state.disconnect)
        }
        guard wasConnected else { return }
        for ack in acks {
            ack.timer?.cancel()
            ack.callback(.failure(.disconnected))
        }
        client.remove(self)
        let finish: @Sendable () -> Void = { [self] in
            namespace.adapter.delAll(id)
            namespace.localSockets.remove(self)
            client.server.removeIfEmpty(namespace)
        }
        if disconnecting.isEmpty && disconnect.isEmpty {
            finish()
            return
        }
        queue.enqueue(bounded: false) { [self] in
            for handler in disconnecting { await handler(self, reason) }
            finish()
            for handler in disconnect { await handler(self, reason) }
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
