/// Which browser origins may use an Engine.IO server, over either transport.
///
/// Browsers send an `Origin` header with cross-site requests and with every WebSocket
/// handshake; a page of another site could otherwise open a session carrying the user's
/// cookies (cross-site WebSocket hijacking). Requests without an `Origin` header come from
/// non-browser clients and are always allowed: the header is what a browser adds, not proof of
/// identity.
public struct EngineIOAllowedOrigins: Sendable {
    enum Kind: Sendable {
        case any
        case sameOrigin
        case list(Set<String>)
    }

    let kind: Kind

    /// Every origin, as the reference server allows by default.
    public static let any = Self(kind: .any)
    /// Only pages served from the same host and port as the request (`Origin` matches `Host`).
    public static let sameOrigin = Self(kind: .sameOrigin)
    /// Pages of the listed origins (`https://app.example.com`, compared case-insensitively),
    /// and of the server's own origin.
    public static func list(_ origins: some Sequence<String>) -> Self {
        Self(kind: .list(Set(origins.map { Self.normalized($0) })))
    }

    /// Whether a request with these `Origin` and `Host` headers may proceed.
    public func allows(origin: String?, host: String?) -> Bool {
        guard let origin else { return true }
        let normalized = Self.normalized(origin)
        switch kind {
        case .any:
            return true
        case .sameOrigin:
            return Self.isSameOrigin(normalized, host: host)
        case .list(let origins):
            return origins.contains(normalized) || Self.isSameOrigin(normalized, host: host)
        }
    }

    private static func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host = host?.lowercased() else { return false }
        return origin == "http://" + host || origin == "https://" + host
    }

    private static func normalized(_ origin: String) -> String {
        var origin = origin.lowercased()
        while origin.hasSuffix("/") { origin.removeLast() }
        return origin
    }
}
