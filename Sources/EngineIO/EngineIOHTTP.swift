public import NIOCore

/// An HTTP request to the Engine.IO endpoint, independent of the HTTP framework that received it.
public struct EngineIOHTTPRequest: Sendable {
    /// The request method, upper-case (`GET`, `POST`, `OPTIONS`…).
    public var method: String
    /// The path and query as received.
    public var uri: String
    /// The decoded query parameters.
    public var query: [String: String]
    /// The request headers, names lower-cased.
    public var headers: [(name: String, value: String)]
    /// The request body of a POST, already limited to `maxHTTPBufferSize`.
    public var body: ByteBuffer?
    /// Set when the body was larger than `maxHTTPBufferSize` and was not read.
    public var bodyTooLarge: Bool
    /// The peer's address, when known.
    public var remoteAddress: SocketAddress?
    /// The event loop of the connection that carried the request.
    public var eventLoop: any EventLoop

    /// Creates a request.
    public init(
        method: String,
        uri: String,
        query: [String: String],
        headers: [(name: String, value: String)],
        body: ByteBuffer? = nil,
        bodyTooLarge: Bool = false,
        remoteAddress: SocketAddress? = nil,
        eventLoop: any EventLoop
    ) {
        self.method = method
        self.uri = uri
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyTooLarge = bodyTooLarge
        self.remoteAddress = remoteAddress
        self.eventLoop = eventLoop
    }

    /// The first value of a header, by lower-case name.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// The same request with ``query`` decoded from ``uri``.
    public func withParsedQuery() -> Self {
        var copy = self
        copy.query = EngineIOQuery.parse(uri: uri).query
        return copy
    }
}

/// The answer to an ``EngineIOHTTPRequest``.
public struct EngineIOHTTPResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// Response headers.
    public var headers: [(name: String, value: String)]
    /// Response body.
    public var body: ByteBuffer

    /// Creates a response.
    public init(status: Int, headers: [(name: String, value: String)] = [], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    static func error(_ error: EngineIORequestError) -> Self {
        Self(status: error.status, headers: [("content-type", "application/json")], body: ByteBuffer(string: error.jsonBody))
    }

    static func payload(_ body: ByteBuffer) -> Self {
        Self(status: 200, headers: [("content-type", "text/plain; charset=UTF-8")], body: body)
    }

    static let ok = Self(status: 200, headers: [("content-type", "text/html")], body: ByteBuffer(string: "ok"))
}

/// What a connection knew about its client when the session opened: the handshake request.
public struct EngineIOHandshakeRequest: Sendable {
    /// The path and query of the handshake request.
    public let uri: String
    /// The query parameters of the handshake request.
    public let query: [String: String]
    /// The headers of the handshake request, names lower-cased.
    public let headers: [(name: String, value: String)]
    /// The client's address, when known.
    public let remoteAddress: SocketAddress?

    /// The first value of a header, by lower-case name.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }
}

extension EngineIOHTTPResponse {
    static let noop = Self.payload(ByteBuffer(integer: EngineIOPacketType.noop.rawValue))
}
