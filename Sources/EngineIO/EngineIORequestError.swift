/// A request the Engine.IO server refuses, answered as the reference server does:
/// an HTTP status and a JSON body `{"code":N,"message":"..."}`.
public struct EngineIORequestError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The Engine.IO error code (0…5).
    public let code: Int
    /// The reference server's message for that code.
    public let message: String
    /// The HTTP status of the answer.
    public let status: Int

    /// The `transport` query parameter names no enabled transport.
    public static let unknownTransport = Self(code: 0, message: "Transport unknown", status: 400)
    /// The `sid` query parameter names no open session.
    public static let unknownSessionID = Self(code: 1, message: "Session ID unknown", status: 400)
    /// A handshake must be a GET.
    public static let badHandshakeMethod = Self(code: 2, message: "Bad handshake method", status: 400)
    /// The request does not fit the session or the protocol.
    public static let badRequest = Self(code: 3, message: "Bad request", status: 400)
    /// The request was refused by the server's policy (for example its origin).
    public static let forbidden = Self(code: 4, message: "Forbidden", status: 403)
    /// The `EIO` query parameter is not 4.
    public static let unsupportedProtocolVersion = Self(code: 5, message: "Unsupported protocol version", status: 400)
    /// The address opened more sessions than ``EngineIOConfiguration/maxHandshakesPerAddress``
    /// allows (not in the reference, which has no such limit).
    public static let tooManyHandshakes = Self(code: 3, message: "Too many connections from this address", status: 429)

    /// The JSON body of the answer.
    public var jsonBody: String { #"{"code":\#(code),"message":"\#(message)"}"# }

    public var description: String { "Engine.IO request refused: \(message) (code \(code))" }
}

/// Why an Engine.IO session closed, in the reference server's words.
public struct EngineIOCloseReason: Hashable, Sendable, CustomStringConvertible {
    /// The reason as the reference server spells it.
    public let description: String

    /// Creates a reason with the given text.
    public init(_ description: String) { self.description = description }

    /// The client closed the transport or sent a close packet.
    public static let transportClose = Self("transport close")
    /// The transport failed (overlapping requests, a broken connection, too much input).
    public static let transportError = Self("transport error")
    /// The client did not answer a ping in time.
    public static let pingTimeout = Self("ping timeout")
    /// The client sent bytes that are not Engine.IO.
    public static let parseError = Self("parse error")
    /// The server closed the session.
    public static let forcedClose = Self("forced close")
    /// The server is shutting down.
    public static let serverShuttingDown = Self("server shutting down")
    /// The client could not keep up with what it was sent.
    public static let slowClient = Self("slow client")

    /// Every reason a session closes with.
    public static let all: [Self] = [.transportClose, .transportError, .pingTimeout, .parseError, .forcedClose, .serverShuttingDown, .slowClient]
}
