import EngineIO
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One Engine.IO connection seen by Socket.IO: it decodes packets, joins namespaces and routes
/// each packet to the socket of its namespace.
final class SocketIOClient: EngineIOConnectionDelegate {
    let connection: EngineIOConnection
    let server: SocketIOServer.Core

    private struct State {
        var decoder: SocketIODecoder
        var sockets: [String: SocketIOSocket] = [:]
        var connecting: Set<String> = []
        var connectTimer: Scheduled<Void>?
        var closed = false
    }

    private let state: NIOLockedValueBox<State>

    init(connection: EngineIOConnection, server: SocketIOServer.Core) {
        self.connection = connection
        self.server = server
        self.state = NIOLockedValueBox(State(decoder: SocketIODecoder(maxAttachments: server.configuration.maxAttachments)))
        let timeout = server.configuration.connectTimeout
        let timer = connection.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            [connection] in
            connection.close(reason: .forcedClose)
        }
        state.withLockedValue { $0.connectTimer = timer }
    }

    // MARK: EngineIOConnectionDelegate

    func connection(_ connection: EngineIOConnection, didReceive payload: EngineIOPayload) {
        let packet: SocketIOPacket?
        do {
            packet = try state.withLockedValue { state throws(SocketIOCodecError) in try state.decoder.decode(payload) }
        } catch {
            server.configuration.logger.debug("closing a client that sent an invalid packet: \(error)", metadata: ["sid": .string(connection.id)])
            disconnectAll(reason: .parseError)
            connection.close(reason: .parseError)
            return
        }
        if let packet { route(packet) }
    }

    func connection(_ connection: EngineIOConnection, didCloseWith reason: EngineIOCloseReason) {
        disconnectAll(reason: SocketIODisconnectReason(reason))
    }

    // MARK: Routing

    private func route(_ packet: SocketIOPacket) {
        enum Route { case connect, socket(SocketIOSocket), invalid }
        let route: Route = state.withLockedValue { state in
            let socket = state.sockets[packet.namespace]
            if packet.type == .connect {
                guard socket == nil, !state.connecting.contains(packet.namespace) else { return .invalid }
                state.connecting.insert(packet.namespace)
                return .connect
            }
            if let socket, packet.type != .connectError { return .socket(socket) }
            return .invalid
        }
        switch route {
        case .connect:
            connect(to: packet.namespace, auth: packet.data)
        case .socket(let socket):
            socket.receive(packet)
        case .invalid:
            server.configuration.logger.debug("closing a client whose packet fits no namespace state", metadata: ["sid": .string(connection.id)])
            disconnectAll(reason: .forcedServerClose)
            connection.close(reason: .forcedClose)
        }
    }

    private func connect(to name: String, auth: SocketIOValue?) {
        guard let namespace = server.beginConnect(to: name, auth: auth) else {
            state.withLockedValue { _ = $0.connecting.remove(name) }
            send(SocketIOPacket(type: .connectError, namespace: name, data: ["message": "Invalid namespace"]))
            return
        }
        let socket = SocketIOSocket(namespace: namespace, client: self, auth: auth)
        let middlewares = namespace.middlewares
        if middlewares.isEmpty {
            admit(socket)
            server.connectFinished(namespace)
        } else {
            Task {
                do {
                    for middleware in middlewares { try await middleware(socket) }
                } catch {
                    state.withLockedValue { _ = $0.connecting.remove(name) }
                    let refusal = error as? SocketIOConnectError ?? SocketIOConnectError(String(describing: error))
                    var data: SocketIOObject = ["message": .string(refusal.message)]
                    if let extra = refusal.data { data["data"] = extra }
                    send(SocketIOPacket(type: .connectError, namespace: name, data: .object(data)))
                    server.connectFinished(namespace)
                    return
                }
                admit(socket)
                server.connectFinished(namespace)
            }
        }
    }

    private func admit(_ socket: SocketIOSocket) {
        let name = socket.namespace.name
        let admitted = state.withLockedValue { state -> Bool in
            state.connecting.remove(name)
            guard !state.closed, connection.isOpen else { return false }
            state.sockets[name] = socket
            state.connectTimer?.cancel()
            state.connectTimer = nil
            return true
        }
        guard admitted else { return }
        socket.markConnected()
        send(SocketIOPacket(type: .connect, namespace: name, data: ["sid": .string(socket.id)]))
        let handlers = socket.namespace.connectionHandlers
        if !handlers.isEmpty {
            socket.queue.enqueue(bounded: false) {
                for handler in handlers { await handler(socket) }
            }
        }
    }

    func send(_ packet: SocketIOPacket) {
        connection.send(SocketIOOutboundPacket(packet).frames)
    }

    func remove(_ socket: SocketIOSocket) {
        state.withLockedValue { state in
            if state.sockets[socket.namespace.name] === socket { state.sockets[socket.namespace.name] = nil }
        }
    }

    /// Sends DISCONNECT to every namespace and closes its sockets (before the connection closes).
    func disconnectAll() {
        let sockets = state.withLockedValue { Array($0.sockets.values) }
        for socket in sockets { socket.disconnect() }
    }

    private func disconnectAll(reason: SocketIODisconnectReason) {
        let sockets = state.withLockedValue { state in
            state.closed = true
            state.connectTimer?.cancel()
            state.connectTimer = nil
            defer { state.sockets.removeAll() }
            return Array(state.sockets.values)
        }
        for socket in sockets { socket.close(reason: reason) }
    }
}
