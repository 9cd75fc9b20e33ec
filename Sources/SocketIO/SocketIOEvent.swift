import NIOConcurrencyHelpers

/// An event received from a client.
public struct SocketIOEvent: Sendable {
    /// The event name (a numeric name is given as its decimal text).
    public let name: String
    /// The arguments after the name.
    public let arguments: [SocketIOValue]
    /// The socket that sent the event.
    public let socket: SocketIOSocket
    /// The acknowledgement the client asked for, or `nil`.
    public let ack: SocketIOAck?
}

/// The answer to an event whose sender asked for an acknowledgement. Only the first call sends.
public final class SocketIOAck: Sendable {
    private let socket: SocketIOSocket
    private let id: Int
    private let sent = NIOLockedValueBox(false)

    init(socket: SocketIOSocket, id: Int) {
        self.socket = socket
        self.id = id
    }

    /// Sends the acknowledgement with the given arguments.
    public func callAsFunction(_ arguments: SocketIOValue...) {
        send(arguments)
    }

    /// Sends the acknowledgement with the given arguments.
    public func send(_ arguments: [SocketIOValue]) {
        let first = sent.withLockedValue { sent in
            defer { sent = true }
            return !sent
        }
        guard first else { return }
        socket.sendPacket(SocketIOPacket(type: .ack, namespace: socket.namespace.name, id: id, data: .array(arguments)))
    }
}

/// Runs when a socket has joined a namespace; register the socket's handlers here.
public typealias SocketIOConnectionHandler = @Sendable (SocketIOSocket) async -> Void
/// Runs for each received event.
public typealias SocketIOEventHandler = @Sendable (SocketIOEvent) async throws -> Void
/// Runs before a socket joins a namespace; throw (ideally a ``SocketIOConnectError``) to refuse it.
public typealias SocketIOMiddleware = @Sendable (SocketIOSocket) async throws -> Void
/// Runs when a socket disconnects.
public typealias SocketIODisconnectHandler = @Sendable (SocketIOSocket, SocketIODisconnectReason) async -> Void
