import EngineIO

/// What the gateway does with messages and clients (the network and queue settings live in
/// the `herald` command's configuration).
public struct HeraldConfiguration: Sendable {
    /// The namespaces clients may join and messages may target.
    public var namespaces: [String] = ["/"]
    /// The key publishers must present (`Authorization: Bearer <key>`); `nil` for none.
    public var apiKey: String?
    /// The event of raw message bodies that name none.
    public var defaultEvent: String?
    /// The largest publish request body, in bytes.
    public var maxPublishBodySize: Int = 1 << 20
    /// How clients authenticate.
    public var auth: HeraldAuthConfiguration = .disabled
    /// Where client events are forwarded; `nil` forwards nothing.
    public var upstream: HeraldUpstreamConfiguration?
    /// The key the operations endpoints (`/`, `/api/stats`, `/metrics`) require; `nil` uses
    /// ``apiKey``. `/healthz` and `/readyz` stay open.
    public var operationsKey: String?
    /// Whether client tokens must carry an `exp` claim.
    public var requireTokenExpiration = false
    /// Browser origins allowed to connect over either transport (`https://app.example.com`);
    /// empty allows only the gateway's own origin, `["*"]` allows any. Requests without an
    /// `Origin` header (non-browser clients) are always allowed.
    public var allowedOrigins: [String] = []
    /// Whether cross-origin requests may carry credentials (cookies): the allowed origin is then
    /// echoed with `Access-Control-Allow-Credentials: true`.
    public var allowCredentials = false
    /// The most bytes of broadcasts waiting for the event loops; past it the publish API answers
    /// 503 with `Retry-After` and the queue consumer waits.
    public var maxBroadcastBacklogBytes = 64 << 20

    /// Creates the default configuration: namespace `/`, no key, no client authentication.
    public init() {}
}

/// How clients prove who they are: a JWT in the handshake's `auth.token`.
public struct HeraldAuthConfiguration: Sendable, CustomStringConvertible {
    enum Kind: Sendable {
        case disabled
        case hmac(secret: String)
        case publicKeysPEM(path: String)
        case jwks(path: String)
        case remoteJWKS(url: String, trustRootsFile: String?)
    }

    let kind: Kind

    /// No authentication (development only).
    public static let disabled = Self(kind: .disabled)
    /// HS256 tokens signed with a shared secret.
    public static func hs256(secret: String) -> Self { Self(kind: .hmac(secret: secret)) }
    /// RS256 or ES256 tokens, verified with the public key(s) in a PEM file.
    public static func publicKeys(pemFile path: String) -> Self { Self(kind: .publicKeysPEM(path: path)) }
    /// Tokens verified with the keys of a JWKS file (RS256, ES256…, chosen by `kid`).
    public static func jwks(file path: String) -> Self { Self(kind: .jwks(path: path)) }
    /// Tokens verified with the keys of a JWKS an identity provider serves at `url` (https):
    /// fetched at start, again after ten minutes and when a token names an unknown `kid` (at
    /// most every 30 s). The server is trusted by the system's roots, or by the PEM
    /// certificates of `trustRootsFile`.
    public static func jwks(url: String, trustRootsFile: String? = nil) -> Self {
        Self(kind: .remoteJWKS(url: url, trustRootsFile: trustRootsFile))
    }

    /// Whether clients must present a token.
    public var isEnabled: Bool {
        if case .disabled = kind { false } else { true }
    }

    public var description: String {
        switch kind {
        case .disabled: "disabled"
        case .hmac: "HS256 shared secret"
        case .publicKeysPEM(let path): "public keys from \(path)"
        case .jwks(let path): "JWKS from \(path)"
        case .remoteJWKS(let url, _): "JWKS from \(url)"
        }
    }
}

extension HeraldConfiguration {
    /// The Engine.IO origin policy and CORS headers of ``allowedOrigins`` and ``allowCredentials``:
    /// no list allows only the gateway's own origin (and sends no CORS headers); `*` allows any
    /// origin, echoed back when credentials are allowed (browsers refuse `*` with credentials);
    /// a list allows those origins and echoes the one that matched.
    func applyOrigins(to engine: inout EngineIOConfiguration) {
        if allowedOrigins.isEmpty {
            engine.allowedOrigins = .sameOrigin
            engine.cors = nil
        } else if allowedOrigins.contains("*") {
            engine.allowedOrigins = .any
            engine.cors = CORSConfiguration(origin: allowCredentials ? .mirrorRequest : .any, credentials: allowCredentials)
        } else {
            engine.allowedOrigins = .list(allowedOrigins)
            engine.cors = CORSConfiguration(origin: .list(allowedOrigins), credentials: allowCredentials)
        }
    }
}
