/// Settings of an Engine.IO server; the defaults are those of the Node reference server.
public struct EngineIOConfiguration: Sendable {
    /// How often the server pings each client.
    public var pingInterval: Duration = .seconds(25)
    /// How long the server waits for a pong before closing the session.
    public var pingTimeout: Duration = .seconds(20)
    /// How long a client may take to complete an upgrade once its WebSocket is open.
    public var upgradeTimeout: Duration = .seconds(10)
    /// How long a session closed by the server over polling waits for the client's next GET
    /// to hand it the close packet.
    public var closeTimeout: Duration = .seconds(30)
    /// The largest message or polling body, in bytes, a client may send; larger input closes its session.
    public var maxHTTPBufferSize: Int = 1_000_000
    /// Which transports clients may use.
    public var transports: EngineIOTransports = .all
    /// Whether polling sessions may upgrade to WebSocket.
    public var allowUpgrades: Bool = true
    /// Whether Engine.IO v3 clients (socket.io-client 2.x, python-socketio 4.x) may connect, as
    /// the reference's `allowEIO3` (off by default: they get "Unsupported protocol version").
    public var allowEIO3 = false
    /// How many sessions one client address may open (off by default, as in the reference): a
    /// burst, then a rate; past it handshakes get 429 and ``EngineIOStatistics/refusedHandshakes``
    /// counts them.
    public var maxHandshakesPerAddress: EngineIORateLimit?
    /// Cross-origin settings for polling requests; `nil` sends no CORS headers.
    public var cors: CORSConfiguration? = nil
    /// Which browser origins may open and use sessions, over polling and WebSocket alike;
    /// others are refused with the reference's "Forbidden" error (403 over HTTP, 400 for a
    /// WebSocket handshake). The reference allows any.
    public var allowedOrigins: EngineIOAllowedOrigins = .any
    /// The most bytes of packets a polling session buffers for its next GET; past it the
    /// session is closed as too slow (as a WebSocket is past ``webSocketMaxQueuedBytes``).
    public var maxBufferedPollingBytes: Int = 4 << 20
    /// Bytes queued on a WebSocket above which the client counts as slow (volatile packets are
    /// dropped until it drains).
    public var webSocketHighWaterMark: Int = 1 << 20
    /// Bytes queued on a WebSocket above which a slow client is disconnected.
    public var webSocketMaxQueuedBytes: Int = 4 << 20
    /// How long a WebSocket being closed may take to write its close frame before the
    /// connection is dropped (a client that stopped reading never takes it).
    public var webSocketCloseTimeout: Duration = .seconds(1)

    /// Creates a configuration with the reference server's defaults.
    public init() {}
}

/// A set of Engine.IO transports.
public struct EngineIOTransports: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// HTTP long-polling.
    public static let polling = Self(rawValue: 1)
    /// WebSocket.
    public static let websocket = Self(rawValue: 2)
    /// Both transports.
    public static let all: Self = [.polling, .websocket]

    init?(name: String) {
        switch name {
        case "polling": self = .polling
        case "websocket": self = .websocket
        default: return nil
        }
    }
}

/// Cross-origin resource sharing for the polling transport.
public struct CORSConfiguration: Sendable {
    /// Which origins are allowed.
    public struct Origin: Sendable {
        enum Kind: Sendable {
            case any
            case mirror
            case list([String])
        }

        let kind: Kind

        /// `Access-Control-Allow-Origin: *`.
        public static let any = Origin(kind: .any)
        /// Echo the request's `Origin` back (needed with credentials).
        public static let mirrorRequest = Origin(kind: .mirror)
        /// Only the listed origins.
        public static func list(_ origins: [String]) -> Origin { Origin(kind: .list(origins)) }
    }

    /// Which origins are allowed.
    public var origin: Origin
    /// Whether to send `Access-Control-Allow-Credentials: true`.
    public var credentials: Bool
    /// Methods announced in preflight answers.
    public var methods: [String]
    /// Request headers allowed in preflight answers; empty means those the request asked for.
    public var allowedHeaders: [String]

    /// Creates a CORS configuration.
    public init(origin: Origin, credentials: Bool = false, methods: [String] = ["GET", "POST"], allowedHeaders: [String] = []) {
        self.origin = origin
        self.credentials = credentials
        self.methods = methods
        self.allowedHeaders = allowedHeaders
    }
}
