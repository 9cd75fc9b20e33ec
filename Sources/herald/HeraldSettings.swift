import Foundation

/// Every setting of `herald serve`, declared once, and their values resolved from flags, then
/// `HERALD_*` environment variables, then the configuration file, then the defaults.
struct HeraldSettings: Sendable {
    static let config = Setting<String>(
        "config", .text("<file>"), help: "Configuration file: TOML, the settings below as its top-level keys.")
    static let host = Setting("host", .text("<address>"), default: "127.0.0.1", help: "Address to bind; a non-loopback address requires api-key.")
    static let port = Setting("port", .whole(0...65535), default: 8080, help: "Port to listen on.")
    static let listenBacklog = Setting(
        "listen-backlog", .whole(1...65_535), default: 4096,
        help:
            "Connections waiting to be accepted (the kernel caps it at net.core.somaxconn); room for the clients that all reconnect at once after a restart."
    )
    static let tlsCert = Setting<String>(
        "tls-cert", .text("<file>"),
        help: "PEM certificate chain: herald serves https and wss (with tls-key); SIGHUP reads it again for new connections.")
    static let tlsKey = Setting<String>("tls-key", .text("<file>"), help: "PEM private key of tls-cert.")
    static let apiKey = Setting<String>(
        "api-key", .text("<key>"), help: "Bearer key the publish API requires; required when binding a non-loopback address.")
    static let operationsKey = Setting<String>(
        "operations-key", .text("<key>"), shownDefault: "api-key",
        help: "Bearer key the operations endpoints (/, /api/stats, /metrics) require; /healthz and /readyz stay open."
    )
    static let namespaces = Setting("namespaces", .list("<list>"), default: ["/"], help: "Namespaces served, comma-separated.")
    static let defaultEvent = Setting<String>("default-event", .text("<event>"), help: "Event of raw message bodies that name none.")
    static let auth = Setting(
        "auth", .choice(["jwt", "none"]), default: "jwt",
        help: "Client authentication: 'jwt' (needs jwt-secret, jwt-public-keys or jwks) or 'none' (any client may connect)."
    )
    static let jwtSecret = Setting<String>("jwt-secret", .text("<secret>"), help: "HS256 secret (at least 32 bytes) clients' tokens are signed with.")
    static let jwtPublicKeys = Setting<String>("jwt-public-keys", .text("<file>"), help: "PEM file of RS256/ES256 public keys for clients' tokens.")
    static let jwks = Setting<String>(
        "jwks", .text("<file|https-url>"),
        help:
            "JWKS of public keys for clients' tokens: a file, or an https URL of an identity provider (fetched at start, again every 10 minutes and on an unknown kid, at most every 30 s)."
    )
    static let jwksCAFile = Setting<String>(
        "jwks-ca-file", .text("<file>"), shownDefault: "the system's roots",
        help: "PEM certificates trusted for the https server of jwks (a private identity provider).")
    static let jwtRequireExp = Setting("jwt-require-exp", .bool, default: false, help: "Refuse client tokens without an exp claim.")
    static let allowedOrigins = Setting(
        "allowed-origins", .list("<list>"), default: [], shownDefault: "none: the gateway's own origin only",
        help: "Browser origins allowed to connect (comma-separated, '*' for any), over polling and WebSocket."
    )
    static let allowCredentials = Setting("allow-credentials", .bool, default: false, help: "Let cross-origin requests carry credentials (cookies).")
    static let queue = Setting(
        "queue", .choice(["embedded", "sqs", "postgres", "none"]), default: "embedded",
        help:
            "Message source: 'embedded' (a durable SQLite queue), 'sqs', 'postgres' (an outbox table producers insert into), or 'none' (the publish API delivers directly)."
    )
    static let queuePath = Setting(
        "queue-path", .text("<file>"), default: "herald-queue.sqlite", help: "The embedded queue's SQLite file; one herald process at a time.")
    static let sqsQueueURL = Setting<String>("sqs-queue-url", .url, help: "The SQS queue to consume (with queue = sqs).")
    static let sqsRegion = Setting<String>("sqs-region", .text("<region>"), shownDefault: "AWS_REGION, else us-east-1", help: "AWS region.")
    static let sqsEndpoint = Setting<String>("sqs-endpoint", .url, help: "SQS endpoint override (moto, LocalStack, ElasticMQ).")
    static let outboxTable = Setting(
        "outbox-table", .text("<name>"), default: "herald_outbox",
        help: "The outbox table of queue = postgres (created when missing, with <name>_dead_letters).")
    static let outboxMaxReceives = Setting(
        "outbox-max-receives", .whole(1...1000), default: 10,
        help: "Receives after which an outbox row moves to the dead-letter table (with queue = postgres).")
    static let pollers = Setting("pollers", .whole(1...64), default: 2, help: "Concurrent long-polls of the queue (SQS or outbox).")
    static let maxInFlight = Setting("max-in-flight", .whole(1...100_000), default: 100, help: "Queue messages handled at once.")
    static let upstreamEvents = Setting<[String]>(
        "upstream-events", .list("<list>"), help: "Client events forwarded upstream, comma-separated ('*' for all).")
    static let webhookURL = Setting<String>(
        "webhook-url", .url, help: "Webhook receiving forwarded client events; its JSON answer is the client's ack.")
    static let upstreamQueueURL = Setting<String>("upstream-queue-url", .url, help: "SQS queue receiving forwarded client events.")
    static let upstreamMaxInFlight = Setting(
        "upstream-max-in-flight", .whole(1...100_000), default: 64,
        help: "Client events forwarded upstream at once; past it an event is refused (its ack carries the error)."
    )
    static let upstreamAttempts = Setting(
        "upstream-attempts", .whole(1...20), default: 3, help: "Tries of a forward that failed on a connection error or a 5xx answer."
    )
    static let maxBroadcastBacklogMB = Setting(
        "max-broadcast-backlog-mb", .whole(1...65536, unit: "MiB"), default: 64,
        help: "MiB of broadcasts waiting for the event loops; past it the publish API answers 503 and the consumer waits."
    )
    static let parser = Setting(
        "parser", .choice(["json", "msgpack"]), default: "json",
        help:
            "Packet format of every client: 'json' (socket.io's default) or 'msgpack' (socket.io-msgpack-parser; python-socketio's serializer='msgpack')."
    )
    static let allowEIO3 = Setting(
        "allow-eio3", .bool, default: false,
        help:
            "Let Engine.IO v3 clients connect (socket.io-client 2.x, python-socketio 4.x), during a migration; their token is the query parameter 'token'."
    )
    static let maxHandshakesPerAddress = Setting<Int>(
        "max-handshakes-per-address", .whole(1...1_000_000), shownDefault: "off",
        help:
            "Sessions one client address may open per 10 seconds (a burst of that many, refilled evenly); past it handshakes get 429. Mind clients behind one NAT."
    )
    static let maxEventsPerSecond = Setting<Int>(
        "max-events-per-second", .whole(1...1_000_000), shownDefault: "off",
        help:
            "Events one client may send on a namespace per second (a burst of that many, refilled evenly); past it the client is disconnected from it."
    )
    static let maxAttachments = Setting(
        "max-attachments", .whole(0...10_000), default: 10, help: "Binary attachments a client's packet may announce.")
    static let maxPendingEvents = Setting(
        "max-pending-events", .whole(1...1_000_000), default: 1000,
        help: "Events of one client waiting for their handlers; past it the client is disconnected."
    )
    static let recovery = Setting(
        "recovery", .bool, default: false,
        help:
            "Connection state recovery (socket.io 4.6+): a client that lost its connection, or whose herald restarted, comes back with its id, rooms and the events it missed; every event then carries an offset as its last argument."
    )
    static let recoveryWindow = Setting(
        "recovery-window", .whole(1...86_400, unit: "seconds"), default: 120,
        help: "Seconds a disconnected client's session and the events it may miss are kept (with recovery)."
    )
    static let recoveryMaxReplay = Setting(
        "recovery-max-replay", .whole(1...1_000_000), default: 1000,
        help: "Most events replayed to one returning client; one that missed more gets a new session (recovered false) and should resynchronise."
    )
    static let recoveryMaxLogMB = Setting(
        "recovery-max-log-mb", .whole(1...65536, unit: "MiB"), default: 64,
        help: "MiB of events kept for replay per namespace, in memory; past it the oldest go first."
    )
    static let recoveryStore = Setting(
        "recovery-store", .choice(["sqlite", "postgres", "memory"]), default: "sqlite",
        help:
            "Where recovery keeps events and sessions: 'sqlite' (durable across restarts and crashes: in the embedded queue's file, else in recovery-path), 'postgres' (durable, in postgres-url's database, for a herald without a disk of its own, and shared by a cluster's nodes: the default with cluster = postgres) or 'memory' (lost when herald stops)."
    )
    static let recoveryPath = Setting(
        "recovery-path", .text("<file>"), default: "herald-recovery.sqlite",
        help: "The SQLite file of recovery-store = sqlite when the queue is not the embedded one (whose file it shares otherwise)."
    )
    static let cluster = Setting(
        "cluster", .choice(["none", "postgres"]), default: "none",
        help: "'postgres': this node joins the other herald (and Node socket.io) servers on one PostgreSQL database."
    )
    static let postgresURL = Setting<String>(
        "postgres-url", .text("<url>"),
        help:
            "The PostgreSQL database of cluster = postgres, queue = postgres and recovery-store = postgres: postgres://user[:password]@host[:port]/database."
    )
    static let postgresPoolSize = Setting(
        "postgres-pool-size", .whole(1...100), default: 4,
        help:
            "PostgreSQL connections of this node for queries (the cluster's and the outbox's listeners and the recovery store's lock each hold one more)."
    )
    static let clusterChannelPrefix = Setting(
        "cluster-channel-prefix", .text("<prefix>"), default: "socket.io",
        help: "Prefix of the cluster's channels (<prefix>#<namespace>); the same on every node, at most 40 bytes."
    )
    static let clusterHeartbeatInterval = Setting(
        "cluster-heartbeat-interval", .whole(1...3600, unit: "seconds"), default: 5, help: "Seconds between this node's heartbeats to the cluster.")
    static let clusterHeartbeatTimeout = Setting(
        "cluster-heartbeat-timeout", .whole(2...3600, unit: "seconds"), default: 10,
        help: "Seconds after which a silent node counts as gone (requests stop waiting for it)."
    )
    static let adminUI = Setting(
        "admin-ui", .bool, default: false,
        help: "Serve the official Socket.IO Admin UI (admin.socket.io) on /admin: statistics, sockets, rooms; join, leave and disconnect clients.")
    static let adminUIAuth = Setting(
        "admin-ui-auth", .choice(["basic", "none"]), default: "basic",
        help: "The Admin UI's login: 'basic' (admin-ui-username and admin-ui-password-hash) or 'none' (anyone reaching /admin).")
    static let adminUIUsername = Setting("admin-ui-username", .text("<name>"), default: "admin", help: "The Admin UI's user name.")
    static let adminUIPasswordHash = Setting<String>(
        "admin-ui-password-hash", .text("<bcrypt>"),
        help: "bcrypt hash of the Admin UI's password ($2a$/$2b$/$2y$; htpasswd -nbBC 10 admin PASSWORD makes one).")
    static let adminUIReadOnly = Setting("admin-ui-read-only", .bool, default: false, help: "The Admin UI may watch, not act.")
    static let adminUIMode = Setting(
        "admin-ui-mode", .choice(["production", "development"]), default: "production",
        help: "'development' also sends the UI every socket and its room changes; 'production' statistics only.")
    static let adminUIServerID = Setting<String>(
        "admin-ui-server-id", .text("<id>"), shownDefault: "hostname#pid", help: "This node's name in the Admin UI; distinct per node.")
    static let otelEndpoint = Setting<String>(
        "otel-endpoint", .url,
        help:
            "OTLP/HTTP collector that receives herald's traces (http://127.0.0.1:4318): queue receive, hand-off, broadcast, delete, upstream forwarding. Off when unset."
    )
    static let otelProtocol = Setting(
        "otel-protocol", .choice(["http/protobuf", "http/json"]), default: "http/protobuf", help: "OTLP encoding of the traces.")
    static let otelServiceName = Setting("otel-service-name", .text("<name>"), default: "herald", help: "service.name of herald's traces.")
    static let logFormat = Setting("log-format", .choice(["text", "json"]), default: "text", help: "Log format.")
    static let logLevel = Setting(
        "log-level", .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]), default: "info", help: "Log level."
    )
    static let drainPeriod = Setting(
        "drain-period", .whole(0...3600, unit: "seconds"), default: 5,
        help: "Seconds /readyz answers 503 after SIGTERM/SIGINT while clients stay connected, before they are closed."
    )
    static let shutdownDeadline = Setting(
        "shutdown-deadline", .whole(1...3600, unit: "seconds"), default: 30,
        help: "Seconds a graceful shutdown (SIGTERM/SIGINT) may take in all, drain-period included."
    )

    /// Every setting, in the order `--help` lists them.
    static let all: [any SettingDeclaration] = [
        config, host, port, listenBacklog, tlsCert, tlsKey, apiKey, operationsKey, namespaces, defaultEvent,
        auth, jwtSecret, jwtPublicKeys, jwks, jwksCAFile, jwtRequireExp, allowedOrigins, allowCredentials,
        queue, queuePath, sqsQueueURL, sqsRegion, sqsEndpoint, outboxTable, outboxMaxReceives, pollers, maxInFlight,
        upstreamEvents, webhookURL, upstreamQueueURL, upstreamMaxInFlight, upstreamAttempts,
        maxBroadcastBacklogMB, parser, allowEIO3, maxHandshakesPerAddress, maxEventsPerSecond, maxAttachments, maxPendingEvents, recovery,
        recoveryWindow,
        recoveryMaxReplay, recoveryMaxLogMB, recoveryStore, recoveryPath,
        cluster, postgresURL, postgresPoolSize, clusterChannelPrefix, clusterHeartbeatInterval, clusterHeartbeatTimeout,
        adminUI, adminUIAuth, adminUIUsername, adminUIPasswordHash, adminUIReadOnly, adminUIMode, adminUIServerID,
        otelEndpoint, otelProtocol, otelServiceName,
        logFormat, logLevel, drainPeriod, shutdownDeadline,
    ]

    /// The setting with key `name`.
    static func declaration(named name: String) -> (any SettingDeclaration)? {
        all.first { $0.name == name }
    }

    /// A setting that could not be used, or a start-up step that failed; the message names the key.
    struct Problem: Error, CustomStringConvertible {
        let description: String
        /// The exit status: 2 for a setting or a start-up step, 1 for a failure once running.
        var status: Int32 = 2
    }

    private var values: [String: (input: SettingInput, source: String)] = [:]

    /// Resolves the settings from `flags` (by key), the environment and the configuration file it
    /// names; every value given is checked against its setting's kind.
    init(flags: [String: String], environment: [String: String]) throws(Problem) {
        for key in Self.all {
            if let value = environment[key.environment] { values[key.name] = (.text(value), key.environment) }
            if let value = flags[key.name] { values[key.name] = (.text(value), key.flag) }
        }
        if case .text(let path) = values[Self.config.name]?.input {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw Problem(description: "config (from \(source(Self.config))): cannot read \(path): \(error.localizedDescription)")
            }
            for entry in try ConfigFile.read(text, path: path) where values[entry.key] == nil {
                values[entry.key] = (entry.input, "\(path):\(entry.line)")
            }
        }
        for key in Self.all {
            guard let (input, source) = values[key.name], let reason = key.problem(with: input) else { continue }
            let shown =
                switch input {
                case .text(let text): "'\(text)'"
                case .list(let items): "[\(items.map { "'\($0)'" }.joined(separator: ", "))]"
                }
            throw Problem(description: "\(key.name) (from \(source)): \(shown) \(reason)")
        }
    }

    /// The setting's value: the one given (already checked), else its default, else `nil`.
    func optional<Value>(_ setting: Setting<Value>) -> Value? {
        guard let input = values[setting.name]?.input, case .success(let value) = setting.kind.value(of: input) else {
            return setting.defaultValue
        }
        return value
    }

    /// The value of a setting that has a default.
    func value<Value>(_ setting: Setting<Value>) -> Value {
        guard let value = optional(setting) else { preconditionFailure("\(setting.name) is declared without a default") }
        return value
    }

    /// Whether a flag, the environment or the file gives the setting.
    func isGiven(_ setting: any SettingDeclaration) -> Bool { values[setting.name] != nil }

    /// Where the setting's value comes from: `--key`, `HERALD_KEY`, the file, or `default`.
    func source(_ setting: any SettingDeclaration) -> String { values[setting.name]?.source ?? "default" }

    /// A problem with the value of `setting`, naming the key and where the value came from.
    func problem(_ setting: any SettingDeclaration, _ message: String) -> Problem {
        Problem(description: "\(setting.name) (from \(source(setting))): \(message)")
    }
}
