public import EngineIO
public import Logging

/// Settings of a Socket.IO server; the defaults are those of the Node reference server.
public struct SocketIOConfiguration: Sendable {
    /// The Engine.IO settings (heartbeat, buffer limits, transports, CORS).
    public var engine: EngineIOConfiguration = .init()
    /// How long a client may stay connected without joining any namespace.
    public var connectTimeout: Duration = .seconds(45)
    /// The path the server is mounted at.
    public var path: String = "/socket.io/"
    /// The packet format every client of this server speaks: the default text format, or
    /// socket.io-msgpack-parser's (the clients must be configured with the same parser).
    public var parser: SocketIOParser = .json
    /// The most binary attachments a packet may announce (the reference's `maxAttachments`);
    /// a packet announcing more closes the client's connection with a parse error.
    public var maxAttachments = 10
    /// The most events of one socket waiting for their handlers; past it the socket is
    /// disconnected (its client is not keeping up with its own handlers).
    public var maxPendingEventsPerSocket = 1000
    /// How many events one socket's client may send (off by default, as in the reference): a
    /// burst, then a rate per second. A client past it is disconnected from the namespace
    /// (`io server disconnect`), and ``SocketIOStatistics/eventRateDisconnects`` counts it.
    public var eventRateLimit: EngineIORateLimit?
    /// Whether a dynamic (child) namespace is removed once its last socket left, as the
    /// reference's `cleanupEmptyChildNamespaces` (which defaults to off; here on, so that clients
    /// cannot grow the server's memory by naming new namespaces).
    public var cleanupEmptyChildNamespaces = true
    /// Connection state recovery (off by default, as in the reference): clients that lost their
    /// connection come back with their id, rooms, data and the events they missed.
    public var connectionStateRecovery: SocketIOConnectionStateRecovery?
    /// Where the server logs.
    public var logger: Logger = Logger(label: "socket.io")

    /// Creates a configuration with the reference server's defaults.
    public init() {}
}

/// Why a socket left its namespace, in the reference server's words.
public struct SocketIODisconnectReason: Hashable, Sendable, CustomStringConvertible {
    /// The reason as the reference server spells it.
    public let description: String

    /// Creates a reason with the given text.
    public init(_ description: String) { self.description = description }

    /// The server called ``SocketIOSocket/disconnect(close:)``.
    public static let serverNamespaceDisconnect = Self("server namespace disconnect")
    /// The client left the namespace.
    public static let clientNamespaceDisconnect = Self("client namespace disconnect")
    /// The server is shutting down.
    public static let serverShuttingDown = Self("server shutting down")
    /// The client stopped answering pings.
    public static let pingTimeout = Self("ping timeout")
    /// The client closed its connection.
    public static let transportClose = Self("transport close")
    /// The connection failed.
    public static let transportError = Self("transport error")
    /// The client sent something that is not Socket.IO.
    public static let parseError = Self("parse error")
    /// The server closed the underlying connection.
    public static let forcedClose = Self("forced close")
    /// The server closed the client's whole connection.
    public static let forcedServerClose = Self("forced server close")

    init(_ reason: EngineIOCloseReason) {
        self.init(reason.description)
    }
}

/// Thrown by a namespace middleware to refuse a connection: the client receives a
/// `CONNECT_ERROR` carrying `message` and, when given, `data`.
public struct SocketIOConnectError: Error, Sendable, CustomStringConvertible {
    /// The message the client sees.
    public var message: String
    /// Extra data for the client.
    public var data: SocketIOValue?

    /// Creates a refusal.
    public init(_ message: String, data: SocketIOValue? = nil) {
        self.message = message
        self.data = data
    }

    public var description: String { message }
}

/// Why an acknowledgement did not arrive.
public struct SocketIOAckError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Kind: Hashable { case timeout, disconnected }
    private let kind: Kind
    /// Answers that did arrive before a broadcast timed out, one entry per answering client.
    public let partialResponses: [[SocketIOValue]]

    /// No answer came within the timeout.
    public static let timeout = Self(kind: .timeout, partialResponses: [])
    /// The socket disconnected before answering.
    public static let disconnected = Self(kind: .disconnected, partialResponses: [])

    static func timeout(partial: [[SocketIOValue]]) -> Self { Self(kind: .timeout, partialResponses: partial) }

    public var description: String {
        switch kind {
        case .timeout: "operation has timed out"
        case .disconnected: "socket has been disconnected"
        }
    }

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.kind == rhs.kind }
    public func hash(into hasher: inout Hasher) { hasher.combine(kind) }
}
