import NIOConcurrencyHelpers
public import NIOCore
import NIOWebSocket

/// An Engine.IO v4 server: it accepts handshakes, keeps the sessions, answers polling requests and
/// takes over upgraded WebSocket connections.
///
/// It is independent of any HTTP framework: a framework hands it ``EngineIOHTTPRequest``s and
/// WebSocket upgrades (see `SocketIOHummingbird` for Hummingbird).
public final class EngineIOServer: Sendable {
    /// The server's settings.
    public let configuration: EngineIOConfiguration
    /// What the server had to give up on: dropped volatile packets, slow clients.
    public let statistics: EngineIOStatistics
    private let handshakeLimiter: EngineIOHandshakeLimiter?
    private let sessions = NIOLockedValueBox<[String: EngineIOConnection]>([:])
    private let onConnection: @Sendable (EngineIOConnection) -> any EngineIOConnectionDelegate

    /// Creates a server; `onConnection` is called for each new session and returns the object
    /// that receives its messages.
    public convenience init(
        configuration: EngineIOConfiguration = .init(),
        onConnection: @escaping @Sendable (EngineIOConnection) -> any EngineIOConnectionDelegate
    ) {
        self.init(configuration: configuration, statistics: EngineIOStatistics(), onConnection: onConnection)
    }

    /// Creates a server counting into `statistics`, which a layer above may share (its broadcasts
    /// count in the same backlog).
    package init(
        configuration: EngineIOConfiguration,
        statistics: EngineIOStatistics,
        onConnection: @escaping @Sendable (EngineIOConnection) -> any EngineIOConnectionDelegate
    ) {
        self.configuration = configuration
        self.statistics = statistics
        self.handshakeLimiter = configuration.maxHandshakesPerAddress.map(EngineIOHandshakeLimiter.init)
        self.onConnection = onConnection
    }

    /// The number of open sessions.
    public var connectionCount: Int { sessions.withLockedValue { $0.count } }

    /// The number of open sessions still on polling (not upgraded to WebSocket).
    public var pollingConnectionCount: Int {
        sessions.withLockedValue { $0.values.reduce(0) { $0 + ($1.transportName == "polling" ? 1 : 0) } }
    }

    /// Looks up an open session by id.
    public func connection(id: String) -> EngineIOConnection? {
        sessions.withLockedValue { $0[id] }
    }

    /// Closes every session, for example on shutdown.
    public func closeAll(reason: EngineIOCloseReason = .serverShuttingDown) {
        for connection in sessions.withLockedValue({ Array($0.values) }) {
            connection.close(reason: reason)
        }
    }

    // MARK: HTTP

    /// Answers a polling request (handshake, GET, POST) or a CORS preflight.
    public func handle(_ request: EngineIOHTTPRequest) async -> EngineIOHTTPResponse {
        var response: EngineIOHTTPResponse
        if !configuration.allowedOrigins.allows(origin: request.header("origin"), host: request.header("host")) {
            return .error(.forbidden)
        }
        if request.method == "OPTIONS", configuration.cors != nil {
            response = EngineIOHTTPResponse(status: 204)
            addPreflightHeaders(to: &response, request: request)
        } else {
            response = await route(request)
        }
        addCORSHeaders(to: &response, request: request)
        return response
    }

    private func route(_ request: EngineIOHTTPRequest) async -> EngineIOHTTPResponse {
        switch verify(query: request.query, method: request.method, isUpgrade: false) {
        case .failure(let error):
            return .error(error)
        case .success(nil):
            guard admitHandshake(from: request.remoteAddress) else { return .error(.tooManyHandshakes) }
            let connection = open(webSocket: nil, request: request, eventLoop: request.eventLoop)
            let open = handshakePacket(connection, upgrades: allowedUpgrades)
            if connection.protocolVersion == .v3 { return .payload(EngineIOCodecV3.encodePayload([open], binary: false).body) }
            return .payload(EngineIOCodec.encodePayload([open]))
        case .success(let connection?):
            switch request.method {
            case "GET": return await connection.handlePoll(request)
            case "POST": return await connection.handlePost(request)
            default: return .error(.badRequest)
            }
        }
    }

    /// Checks a request against the protocol: `.success(nil)` for a handshake, the session otherwise.
    func verify(query: [String: String], method: String, isUpgrade: Bool) -> Result<EngineIOConnection?, EngineIORequestError> {
        guard let name = query["transport"], let transport = EngineIOTransports(name: name),
            configuration.transports.contains(transport)
        else { return .failure(.unknownTransport) }
        if let sid = query["sid"] {
            guard let connection = connection(id: sid) else { return .failure(.unknownSessionID) }
            if isUpgrade {
                guard transport == .websocket, configuration.allowUpgrades else { return .failure(.badRequest) }
            } else if (connection.transportName == "websocket") != (transport == .websocket) {
                return .failure(.badRequest)
            }
            return .success(connection)
        }
        guard method == "GET" else { return .failure(.badHandshakeMethod) }
        guard protocolVersion(of: query) != nil else { return .failure(.unsupportedProtocolVersion) }
        if transport == .websocket, !isUpgrade { return .failure(.badRequest) }
        return .success(nil)
    }

    /// The revision a handshake asks for: `EIO=4`, else (as in the reference, a missing `EIO`
    /// too) v3, when ``EngineIOConfiguration/allowEIO3`` allows it.
    func protocolVersion(of query: [String: String]) -> EngineIOProtocol? {
        if query["EIO"] == "4" { return .v4 }
        return configuration.allowEIO3 ? .v3 : nil
    }

    private var allowedUpgrades: [String] {
        configuration.allowUpgrades && configuration.transports.contains(.websocket) ? ["websocket"] : []
    }

    // MARK: Sessions

    private func open(
        webSocket: WebSocketTransport?,
        request: EngineIOHTTPRequest,
        eventLoop: any EventLoop
    ) -> EngineIOConnection {
        let handshake = EngineIOHandshakeRequest(
            uri: request.uri, query: request.query, headers: request.headers, remoteAddress: request.remoteAddress)
        let connection = EngineIOConnection(
            id: RandomID.make(),
            handshake: handshake,
            webSocket: webSocket,
            eventLoop: eventLoop,
            configuration: configuration,
            statistics: statistics,
            protocolVersion: protocolVersion(of: request.query) ?? .v4,
            onFinalClose: { [weak self] connection in
                _ = self?.sessions.withLockedValue { $0.removeValue(forKey: connection.id) }
            }
        )
        sessions.withLockedValue { $0[connection.id] = connection }
        statistics.connectionOpened()
        connection.start(delegate: onConnection(connection))
        return connection
    }

    private func handshakePacket(_ connection: EngineIOConnection, upgrades: [String]) -> EngineIOPacket {
        let upgradeList = upgrades.map { "\"\($0)\"" }.joined(separator: ",")
        let json =
            #"{"sid":"\#(connection.id)","upgrades":[\#(upgradeList)],"pingInterval":\#(configuration.pingInterval.milliseconds),"pingTimeout":\#(configuration.pingTimeout.milliseconds),"maxPayload":\#(configuration.maxHTTPBufferSize)}"#
        return EngineIOPacket(.open, text: json)
    }

    // MARK: WebSocket

    /// Why a WebSocket upgrade request (path and query in `uri`, with its `Origin` and `Host`
    /// headers) is refused, or `nil` when it may proceed.
    public func upgradeRefusal(uri: String, origin: String?, host: String?, remoteAddress: SocketAddress? = nil) -> EngineIORequestError? {
        guard configuration.allowedOrigins.allows(origin: origin, host: host) else { return .forbidden }
        let (_, query) = EngineIOQuery.parse(uri: uri)
        switch verify(query: query, method: "GET", isUpgrade: true) {
        case .failure(let error): return error
        case .success(nil): return admitHandshake(from: remoteAddress) ? nil : .tooManyHandshakes
        case .success: return nil
        }
    }

    /// Whether `address` may open another session under ``EngineIOConfiguration/maxHandshakesPerAddress``.
    private func admitHandshake(from address: SocketAddress?) -> Bool {
        guard let limiter = handshakeLimiter, !limiter.admit(address) else { return true }
        statistics.handshakeRefused()
        return false
    }

    /// Installs the Engine.IO WebSocket handlers on a channel whose upgrade was accepted, and
    /// opens a session or starts upgrading the session named by `sid`. Must run on the channel's event loop.
    public func attachWebSocket(
        to channel: any Channel,
        uri: String,
        headers: [(name: String, value: String)]
    ) throws {
        let (_, query) = EngineIOQuery.parse(uri: uri)
        let version = query["sid"].flatMap(connection(id:))?.protocolVersion ?? protocolVersion(of: query) ?? .v4
        let handler = EngineIOWebSocketHandler(configuration: configuration, statistics: statistics, protocolVersion: version)
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: configuration.maxHTTPBufferSize + 16)))
        try pipeline.addHandler(WebSocketClientFrameRules())
        try pipeline.addHandler(
            NIOWebSocketFrameAggregator(
                minNonFinalFragmentSize: 0,
                maxAccumulatedFrameCount: 1024,
                maxAccumulatedFrameSize: configuration.maxHTTPBufferSize + 16
            )
        )
        try pipeline.addHandler(handler)
        let transport = WebSocketTransport(channel: channel, handler: handler)
        handler.transport = transport

        switch verify(query: query, method: "GET", isUpgrade: true) {
        case .success(let existing?):
            handler.connection = existing
            existing.attachProbe(transport)
        case .success(nil):
            let request = EngineIOHTTPRequest(
                method: "GET", uri: uri, query: query, headers: headers, remoteAddress: channel.remoteAddress, eventLoop: channel.eventLoop
            )
            let connection = open(webSocket: transport, request: request, eventLoop: channel.eventLoop)
            handler.connection = connection
            transport.write(CollectionOfOne(EngineIOFrame(handshakePacket(connection, upgrades: []))))
        case .failure:
            transport.close(code: 1008)
        }
    }

    // MARK: CORS

    private func allowedOrigin(for request: EngineIOHTTPRequest) -> String? {
        guard let cors = configuration.cors else { return nil }
        switch cors.origin.kind {
        case .any: return "*"
        case .mirror: return request.header("origin") ?? "*"
        case .list(let origins):
            guard let origin = request.header("origin"), origins.contains(origin) else { return nil }
            return origin
        }
    }

    private func addCORSHeaders(to response: inout EngineIOHTTPResponse, request: EngineIOHTTPRequest) {
        guard let cors = configuration.cors, let origin = allowedOrigin(for: request) else { return }
        response.headers.append(("access-control-allow-origin", origin))
        if origin != "*" { response.headers.append(("vary", "Origin")) }
        if cors.credentials { response.headers.append(("access-control-allow-credentials", "true")) }
    }

    private func addPreflightHeaders(to response: inout EngineIOHTTPResponse, request: EngineIOHTTPRequest) {
        guard let cors = configuration.cors else { return }
        response.headers.append(("access-control-allow-methods", cors.methods.joined(separator: ",")))
        let headers = cors.allowedHeaders.isEmpty ? request.header("access-control-request-headers") : cors.allowedHeaders.joined(separator: ",")
        if let headers { response.headers.append(("access-control-allow-headers", headers)) }
        response.headers.append(("content-length", "0"))
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// Random identifiers of 20 URL-safe characters (120 bits), like the reference server's session ids.
public enum RandomID {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// A new random identifier: 20 characters of 6 random bits each, from two 64-bit draws.
    public static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next()
        let low = generator.next()
        return String(unsafeUninitializedCapacity: 20) { characters in
            for index in 0..<10 {
                characters[index] = alphabet[Int(truncatingIfNeeded: high >> (UInt64(index) * 6)) & 63]
                characters[10 + index] = alphabet[Int(truncatingIfNeeded: low >> (UInt64(index) * 6)) & 63]
            }
            return 20
        }
    }
}
