import EngineIO
import Foundation

/// What the server knew of a client when it joined a namespace.
public struct SocketIOHandshake: Sendable {
    /// The `auth` payload of the client's CONNECT packet (an empty object when absent).
    public let auth: SocketIOValue
    /// The headers of the Engine.IO handshake request, names lower-cased.
    public let headers: [(name: String, value: String)]
    /// The query parameters of the Engine.IO handshake request.
    public let query: [String: String]
    /// The client's address.
    public let address: String
    /// The URL (path and query) of the handshake request.
    public let url: String
    /// When the client joined the namespace, in milliseconds since 1970.
    public let issued: Int64

    init(connection: EngineIOConnection, auth: SocketIOValue?) {
        let handshake = connection.handshake
        self.auth = auth ?? .object([:])
        self.headers = handshake.headers
        self.query = handshake.query
        self.address = handshake.remoteAddress?.ipAddress ?? ""
        self.url = handshake.uri
        self.issued = Int64(Date().timeIntervalSince1970 * 1000)
    }

    /// The first value of a header, by lower-case name.
    public func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }
}
