import EngineIO
import Logging
import NIOConcurrencyHelpers
public import NIOCore

/// A Socket.IO namespace (`/`, `/chat`…): its middlewares, connection handlers, sockets and rooms.
public final class SocketIONamespace: Sendable {
    /// The namespace's name, starting with `/`.
    public let name: String
    /// The adapter that carries the namespace's broadcasts and bulk operations to other servers.
    public let adapter: any SocketIOAdapter
    /// The namespace's sockets connected to this server, by event loop and room.
    public let localSockets: SocketIOLocalSockets
    let parent: SocketIONamespace?
    let logger: Logger
    /// The events a recovering socket may have missed, when recovery is on.
    var recoveryLog: SocketIORecoveryLog? { localSockets.recoveryLog }

    private struct Handlers {
        var middlewares: [SocketIOMiddleware] = []
        var connection: [SocketIOConnectionHandler] = []
    }

    private let handlers = NIOLockedValueBox(Handlers())

    init(
        name: String,
        adapter factory: SocketIOAdapterFactory,
        logger: Logger,
        backlog: EngineIOBroadcastBacklog,
        parser: SocketIOParser = .json,
        recoveryLog: SocketIORecoveryLog? = nil,
        parent: SocketIONamespace? = nil
    ) {
        self.name = name
        self.logger = logger
        self.parent = parent
        let sockets = SocketIOLocalSockets(namespace: name, backlog: backlog, parser: parser, recoveryLog: recoveryLog)
        self.localSockets = sockets
        self.adapter = factory(sockets)
    }

    /// Adds a middleware, run for every socket before it joins the namespace, in the order added.
    /// Throw a ``SocketIOConnectError`` to refuse the socket with a message and data.
    public func use(_ middleware: @escaping SocketIOMiddleware) {
        handlers.withLockedValue { $0.middlewares.append(middleware) }
    }

    /// Adds a handler run when a socket has joined the namespace.
    public func onConnection(_ handler: @escaping SocketIOConnectionHandler) {
        handlers.withLockedValue { $0.connection.append(handler) }
    }

    /// The connected sockets of this server, gathered from the event loops.
    public var sockets: [SocketIOSocket] {
        get async { await localSockets.sockets() }
    }

    /// The connected socket with the given id, on this server.
    public func socket(id: String) async -> SocketIOSocket? { await localSockets.socket(id: id) }

    var middlewares: [SocketIOMiddleware] {
        (parent?.middlewares ?? []) + handlers.withLockedValue { $0.middlewares }
    }

    var connectionHandlers: [SocketIOConnectionHandler] {
        (parent?.connectionHandlers ?? []) + handlers.withLockedValue { $0.connection }
    }

    /// A new acknowledgement id, unique within the namespace.
    func nextAckID() -> Int { localSockets.nextAckID() }

    // MARK: Broadcasting

    /// An operator reaching every socket of the namespace.
    public var all: SocketIOBroadcastOperator { SocketIOBroadcastOperator(namespace: self) }

    /// Targets the sockets in these rooms.
    public func to(_ rooms: String...) -> SocketIOBroadcastOperator { all.to(rooms) }
    /// Targets the sockets in these rooms (same as ``to(_:)``).
    public func `in`(_ rooms: String...) -> SocketIOBroadcastOperator { all.to(rooms) }
    /// Leaves out the sockets in these rooms.
    public func except(_ rooms: String...) -> SocketIOBroadcastOperator { all.except(rooms) }
    /// Allows the packet to be dropped for clients that are not ready.
    public var volatile: SocketIOBroadcastOperator { all.volatile }
    /// Reaches this server's sockets only, not the other servers' of a cluster.
    public var local: SocketIOBroadcastOperator { all.local }
    /// Sets how long ``SocketIOBroadcastOperator/emitWithAck(_:_:)`` waits.
    public func timeout(_ timeout: Duration) -> SocketIOBroadcastOperator { all.timeout(timeout) }

    /// Emits an event to every socket of the namespace.
    public func emit(_ event: String, _ arguments: SocketIOValue...) { all.emit(event, arguments: arguments) }

    /// Emits an event to every socket of the namespace.
    public func emit(_ event: String, arguments: [SocketIOValue]) { all.emit(event, arguments: arguments) }

    /// Emits an event whose arguments are a JSON array, written as is.
    public func emit(_ event: String, jsonArguments: ByteBuffer) { all.emit(event, jsonArguments: jsonArguments) }

    /// Makes every socket join rooms.
    public func socketsJoin(_ rooms: String...) { all.socketsJoin(rooms) }
    /// Makes every socket leave rooms.
    public func socketsLeave(_ rooms: String...) { all.socketsLeave(rooms) }
    /// Disconnects every socket.
    public func disconnectSockets(close: Bool = false) { all.disconnectSockets(close: close) }
    /// Every socket, across the cluster.
    public func fetchSockets() async throws -> [SocketIORemoteSocket] { try await all.fetchSockets() }

    // MARK: Between the servers of a cluster

    /// How many servers the namespace's cluster has: 1 for a single server.
    public func serverCount() -> Int { adapter.serverCount() }

    /// Handles an event the other servers of the cluster emit with ``serverSideEmit(_:_:)``;
    /// the handler's result answers an emit that asks for acknowledgements.
    public func onServerSideEmit(_ event: String, _ handler: @escaping SocketIOServerSideHandler) {
        localSockets.serverSideEvents.on(event, handler)
    }

    /// Emits an event to the other servers of the cluster (not to clients, not to this server).
    public func serverSideEmit(_ event: String, _ arguments: SocketIOValue...) { serverSideEmit(event, arguments: arguments) }

    /// Emits an event to the other servers of the cluster.
    public func serverSideEmit(_ event: String, arguments: [SocketIOValue]) {
        guard SocketIOSocket.checkEventName(event, logger: logger) else { return }
        adapter.serverSideEmit([.string(event)] + arguments)
    }

    /// Emits an event to the other servers of the cluster and waits for each one's answer, up to
    /// 5 seconds; on timeout throws a ``SocketIOClusterTimeoutError`` with the answers that came.
    public func serverSideEmitWithAck(_ event: String, _ arguments: SocketIOValue...) async throws -> [SocketIOValue] {
        guard SocketIOSocket.checkEventName(event, logger: logger) else { return [] }
        return try await adapter.serverSideEmitWithAck([.string(event)] + arguments)
    }
}
