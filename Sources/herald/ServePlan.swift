import EngineIO
import Foundation
import Herald
import HeraldQueue
import Logging
import OTel
import PostgresNIO
import SQS
import SocketIO
import SocketIOAdminUI
import SocketIOPostgres

/// A validated `serve` configuration, ready to run: every setting checked, and the ones that
/// depend on each other checked together.
struct ServePlan {
    /// Where messages come from.
    enum Source: CustomStringConvertible {
        case none
        case embedded(path: String)
        case sqs(client: SQSClient, queueURL: String)
        case postgres(outbox: PostgresOutbox.Configuration)

        var description: String {
            switch self {
            case .none: "none"
            case .embedded(let path): "embedded (\(path))"
            case .sqs(_, let queueURL): "sqs (\(queueURL))"
            case .postgres(let outbox): "postgres (\(outbox.tableName))"
            }
        }
    }

    /// Where connection state recovery keeps its events and sessions.
    enum RecoveryStore: Equatable {
        /// Off, or in memory only.
        case none
        /// In the embedded queue's file.
        case queueFile
        /// In a SQLite file of its own.
        case file(path: String)
        /// In PostgreSQL (postgres-url).
        case postgres
    }

    /// A node of a cluster over PostgreSQL.
    struct ClusterPlan {
        let transport: PostgresClusterTransport.Configuration
        let heartbeats: PostgresCluster.Configuration
    }

    let settings: HeraldSettings
    let host: String
    let port: Int
    let listenBacklog: Int
    /// The certificate and key of https/wss; `nil` serves plain http.
    let tls: TLSCertificates?
    /// The Admin UI, when served.
    let adminUI: SocketIOAdminUIConfiguration?
    /// Where traces go, when they are exported.
    let tracing: OTel.Configuration?
    let gateway: HeraldConfiguration
    /// The Socket.IO limits; the logger is set when the plan runs.
    let socketIO: SocketIOConfiguration
    let source: Source
    let recoveryStore: RecoveryStore
    let consumer: QueueConsumerConfiguration
    /// The database of the cluster and of the outbox; `nil` when neither is configured.
    let postgres: PostgresClient.Configuration?
    /// `nil` for a single node.
    let cluster: ClusterPlan?
    let logFormat: String
    let logLevel: Logger.Level
    let drainPeriod: Duration
    let shutdownDeadline: Duration

    init(_ settings: HeraldSettings) throws(HeraldSettings.Problem) {
        typealias S = HeraldSettings
        self.settings = settings
        host = settings.value(S.host)
        port = settings.value(S.port)
        listenBacklog = settings.value(S.listenBacklog)
        tls = try Self.tls(settings)
        var gateway = HeraldConfiguration()
        gateway.apiKey = settings.optional(S.apiKey)
        gateway.operationsKey = settings.optional(S.operationsKey)
        let namespaces = settings.value(S.namespaces)
        for namespace in namespaces where !namespace.hasPrefix("/") {
            throw settings.problem(S.namespaces, "'\(namespace)' must start with '/'")
        }
        gateway.namespaces = namespaces.isEmpty ? ["/"] : namespaces
        gateway.defaultEvent = settings.optional(S.defaultEvent)
        gateway.auth = try Self.auth(settings)
        gateway.requireTokenExpiration = settings.value(S.jwtRequireExp)
        let origins = settings.value(S.allowedOrigins)
        for origin in origins where origin != "*" && !Self.isOrigin(origin) {
            throw settings.problem(S.allowedOrigins, "'\(origin)' is not an origin (scheme://host[:port], no path) or '*'")
        }
        gateway.allowedOrigins = origins
        gateway.allowCredentials = settings.value(S.allowCredentials)
        gateway.maxBroadcastBacklogBytes = settings.value(S.maxBroadcastBacklogMB) << 20

        var socketIO = SocketIOConfiguration()
        socketIO.maxAttachments = settings.value(S.maxAttachments)
        socketIO.parser = SocketIOParser(rawValue: settings.value(S.parser)) ?? .json
        socketIO.engine.allowEIO3 = settings.value(S.allowEIO3)
        socketIO.engine.maxHandshakesPerAddress = settings.optional(S.maxHandshakesPerAddress).map {
            EngineIORateLimit(burst: $0, perSecond: Double($0) / 10)
        }
        socketIO.maxPendingEventsPerSocket = settings.value(S.maxPendingEvents)
        socketIO.eventRateLimit = settings.optional(S.maxEventsPerSecond).map { EngineIORateLimit(burst: $0, perSecond: Double($0)) }
        for key in [S.recoveryWindow, S.recoveryMaxReplay, S.recoveryMaxLogMB, S.recoveryStore, S.recoveryPath] as [any SettingDeclaration]
        where !settings.value(S.recovery) && settings.isGiven(key) {
            throw settings.problem(key, "is set, but recovery is off: turn recovery on (--recovery) or remove \(key.name)")
        }
        if settings.value(S.recovery) {
            var recovery = SocketIOConnectionStateRecovery()
            recovery.maxDisconnectionDuration = .seconds(settings.value(S.recoveryWindow))
            recovery.maxReplayedEvents = settings.value(S.recoveryMaxReplay)
            recovery.maxLogBytes = settings.value(S.recoveryMaxLogMB) << 20
            socketIO.connectionStateRecovery = recovery
        }
        self.socketIO = socketIO
        adminUI = try Self.adminUI(settings, namespaces: gateway.namespaces)
        tracing = try Self.tracing(settings)

        let region = settings.optional(S.sqsRegion) ?? ProcessInfo.processInfo.environment["AWS_REGION"] ?? "us-east-1"
        let endpoint = settings.optional(S.sqsEndpoint).flatMap(URL.init(string:))
        let sqs = SQSClient(configuration: SQSConfiguration(region: region, endpoint: endpoint))
        switch settings.value(S.queue) {
        case "sqs":
            guard let url = settings.optional(S.sqsQueueURL) else {
                throw HeraldSettings.Problem(description: "sqs-queue-url: required with queue = sqs (the SQS queue to consume)")
            }
            source = .sqs(client: sqs, queueURL: url)
        case "embedded":
            source = .embedded(path: settings.value(S.queuePath))
        case "postgres":
            var outbox = PostgresOutbox.Configuration()
            outbox.tableName = settings.value(S.outboxTable)
            do {
                try PostgresOutbox.checkTableName(outbox.tableName)
            } catch {
                throw settings.problem(S.outboxTable, error.description)
            }
            outbox.maxReceiveCount = settings.value(S.outboxMaxReceives)
            source = .postgres(outbox: outbox)
        default:
            source = .none
        }
        if case .postgres = source {
        } else if let key = [S.outboxTable, S.outboxMaxReceives].first(where: settings.isGiven) {
            throw settings.problem(key, "is set, but queue is \(settings.value(S.queue)): use --queue postgres or remove \(key.name)")
        }
        // In a cluster every node replays every client's events: they live in PostgreSQL.
        let inCluster = settings.value(S.cluster) == "postgres"
        if inCluster, settings.value(S.recovery), settings.isGiven(S.recoveryStore), settings.value(S.recoveryStore) != "postgres" {
            throw settings.problem(
                S.recoveryStore,
                "is \(settings.value(S.recoveryStore)), but in a cluster recovery keeps its events and sessions in PostgreSQL, so that any node recovers any client: use recovery-store = postgres (the default with cluster = postgres) or remove it"
            )
        }
        let storeName = inCluster && !settings.isGiven(S.recoveryStore) ? "postgres" : settings.value(S.recoveryStore)
        switch (settings.value(S.recovery), storeName, source) {
        case (false, _, _), (true, "memory", _):
            if settings.isGiven(S.recoveryPath) {
                throw settings.problem(S.recoveryPath, "is set, but recovery-store is memory: remove recovery-path or use recovery-store = sqlite")
            }
            recoveryStore = .none
        case (true, "postgres", _):
            if settings.isGiven(S.recoveryPath) {
                throw settings.problem(S.recoveryPath, "is set, but recovery-store is postgres: remove recovery-path or use recovery-store = sqlite")
            }
            recoveryStore = .postgres
        case (true, _, .embedded):
            if settings.isGiven(S.recoveryPath) {
                throw settings.problem(
                    S.recoveryPath,
                    "is set, but with the embedded queue recovery lives in the queue's file (queue-path), so that an event and its queue message commit together: remove recovery-path"
                )
            }
            recoveryStore = .queueFile
        case (true, _, _):
            recoveryStore = .file(path: settings.value(S.recoveryPath))
        }
        var consumer = QueueConsumerConfiguration()
        consumer.pollers = settings.value(S.pollers)
        consumer.maxInFlight = settings.value(S.maxInFlight)
        consumer.deduplicationKey = .attribute(HeraldMessage.idAttribute)
        self.consumer = consumer

        let webhook = settings.optional(S.webhookURL)
        let upstreamQueue = settings.optional(S.upstreamQueueURL)
        if let events = settings.optional(S.upstreamEvents), !events.isEmpty {
            guard webhook != nil || upstreamQueue != nil else {
                throw settings.problem(S.upstreamEvents, "set webhook-url or upstream-queue-url to say where the events go")
            }
            var upstream = HeraldUpstreamConfiguration(events: Set(events), webhookURL: webhook, queue: upstreamQueue.map { (sqs, $0) })
            upstream.maxInFlight = settings.value(S.upstreamMaxInFlight)
            upstream.maxAttempts = settings.value(S.upstreamAttempts)
            gateway.upstream = upstream
        } else if webhook != nil || upstreamQueue != nil {
            throw settings.problem(
                S.upstreamEvents, "name the client events to forward to \(webhook != nil ? "webhook-url" : "upstream-queue-url") ('*' for all)")
        }
        self.gateway = gateway
        postgres = try Self.postgres(settings)
        cluster = try Self.cluster(settings)
        logFormat = settings.value(S.logFormat)
        logLevel = Logger.Level(rawValue: settings.value(S.logLevel)) ?? .info
        let drain = settings.value(S.drainPeriod)
        let deadline = settings.value(S.shutdownDeadline)
        guard drain < deadline else {
            throw settings.problem(
                S.drainPeriod,
                "\(drain) s is not shorter than shutdown-deadline (\(deadline) s), which covers the drain and the close: lower drain-period or raise shutdown-deadline"
            )
        }
        drainPeriod = .seconds(drain)
        shutdownDeadline = .seconds(deadline)

        let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1"
        if !loopback, gateway.apiKey == nil {
            throw HeraldSettings.Problem(
                description: "api-key: binding \(host) (not loopback) requires a publish API key (--api-key or HERALD_API_KEY)")
        }
    }

    /// The PostgreSQL connection settings, needed by `cluster = postgres` and `queue = postgres`
    /// and refused without either.
    private static func postgres(_ settings: HeraldSettings) throws(HeraldSettings.Problem) -> PostgresClient.Configuration? {
        typealias S = HeraldSettings
        let recoveryStore = settings.value(S.recovery) ? settings.value(S.recoveryStore) : "memory"
        let users = [("cluster", settings.value(S.cluster)), ("queue", settings.value(S.queue)), ("recovery-store", recoveryStore)]
            .filter { $0.1 == "postgres" }
        guard let user = users.first else {
            if let key = [S.postgresURL, S.postgresPoolSize].first(where: settings.isGiven) {
                throw settings.problem(
                    key,
                    "is set, but none of cluster, queue and recovery-store is postgres: add --cluster postgres, --queue postgres or --recovery-store postgres, or remove \(key.name)"
                )
            }
            return nil
        }
        guard let url = settings.optional(S.postgresURL) else {
            throw HeraldSettings.Problem(
                description: "postgres-url: required with \(user.0) = postgres (postgres://user[:password]@host[:port]/database)")
        }
        var client: PostgresClient.Configuration
        do {
            client = try PostgresClusterTransport.clientConfiguration(url: url)
        } catch {
            throw settings.problem(S.postgresURL, error.description)
        }
        // Each listener (the cluster's, the outbox's) and the recovery store's lock hold a connection of their own.
        client.options.maximumConnections = settings.value(S.postgresPoolSize) + users.count
        return client
    }

    /// The cluster settings: none of them without `cluster = postgres`.
    private static func cluster(_ settings: HeraldSettings) throws(HeraldSettings.Problem) -> ClusterPlan? {
        typealias S = HeraldSettings
        let keys: [any SettingDeclaration] = [S.clusterChannelPrefix, S.clusterHeartbeatInterval, S.clusterHeartbeatTimeout]
        guard settings.value(S.cluster) == "postgres" else {
            if let key = keys.first(where: settings.isGiven) {
                throw settings.problem(key, "is set, but cluster is none: add --cluster postgres or remove \(key.name)")
            }
            return nil
        }
        var transport = PostgresClusterTransport.Configuration()
        let prefix = settings.value(S.clusterChannelPrefix)
        guard !prefix.isEmpty, prefix.utf8.count <= 40 else {
            throw settings.problem(S.clusterChannelPrefix, "must be 1 to 40 bytes (a channel name is at most 63 bytes with the namespace)")
        }
        transport.channelPrefix = prefix
        var heartbeats = PostgresCluster.Configuration()
        let (interval, timeout) = (settings.value(S.clusterHeartbeatInterval), settings.value(S.clusterHeartbeatTimeout))
        guard interval < timeout else {
            throw settings.problem(
                S.clusterHeartbeatTimeout,
                "\(timeout) s is not longer than cluster-heartbeat-interval (\(interval) s): a node would be forgotten between two of its heartbeats"
            )
        }
        heartbeats.heartbeatInterval = .seconds(interval)
        heartbeats.heartbeatTimeout = .seconds(timeout)
        return ClusterPlan(transport: transport, heartbeats: heartbeats)
    }

    /// The Admin UI: off unless admin-ui; on, it needs a password hash unless admin-ui-auth = none.
    private static func adminUI(_ settings: HeraldSettings, namespaces: [String]) throws(HeraldSettings.Problem) -> SocketIOAdminUIConfiguration? {
        typealias S = HeraldSettings
        let keys: [any SettingDeclaration] = [
            S.adminUIAuth, S.adminUIUsername, S.adminUIPasswordHash, S.adminUIReadOnly, S.adminUIMode, S.adminUIServerID,
        ]
        guard settings.value(S.adminUI) else {
            if let key = keys.first(where: settings.isGiven) {
                throw settings.problem(key, "is set, but admin-ui is off: turn it on (--admin-ui) or remove \(key.name)")
            }
            return nil
        }
        var configuration: SocketIOAdminUIConfiguration
        if settings.value(S.adminUIAuth) == "none" {
            if settings.isGiven(S.adminUIPasswordHash) {
                throw settings.problem(S.adminUIAuth, "'none' turns the Admin UI's login off, but admin-ui-password-hash is set: remove one of them")
            }
            configuration = SocketIOAdminUIConfiguration(authentication: .none)
        } else {
            guard let hash = settings.optional(S.adminUIPasswordHash) else {
                throw settings.problem(
                    S.adminUI,
                    "the Admin UI needs a login: set admin-ui-password-hash (htpasswd -nbBC 10 admin PASSWORD | cut -d: -f2), or --admin-ui-auth none"
                )
            }
            guard SocketIOAdminUI.isBcryptHash(hash) else {
                throw settings.problem(S.adminUIPasswordHash, "is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)")
            }
            configuration = SocketIOAdminUIConfiguration(authentication: .basic(username: settings.value(S.adminUIUsername), passwordHash: hash))
        }
        guard !namespaces.contains(configuration.namespace) else {
            throw settings.problem(S.namespaces, "'\(configuration.namespace)' is the Admin UI's namespace: serve your clients on another one")
        }
        configuration.isReadOnly = settings.value(S.adminUIReadOnly)
        configuration.mode = SocketIOAdminUIConfiguration.Mode(rawValue: settings.value(S.adminUIMode)) ?? .production
        if let id = settings.optional(S.adminUIServerID) { configuration.serverID = id }
        return configuration
    }

    /// Traces exported over OTLP/HTTP when otel-endpoint is set; the other OTLP settings need it.
    private static func tracing(_ settings: HeraldSettings) throws(HeraldSettings.Problem) -> OTel.Configuration? {
        typealias S = HeraldSettings
        guard let endpoint = settings.optional(S.otelEndpoint) else {
            if let key = [S.otelProtocol, S.otelServiceName].first(where: settings.isGiven) {
                throw settings.problem(key, "is set, but otel-endpoint is not: give the collector's URL or remove \(key.name)")
            }
            return nil
        }
        var configuration = OTel.Configuration.default
        configuration.serviceName = settings.value(S.otelServiceName)
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.endpoint = (endpoint.hasSuffix("/") ? endpoint : endpoint + "/") + "v1/traces"
        configuration.traces.otlpExporter.protocol = settings.value(S.otelProtocol) == "http/json" ? .httpJSON : .httpProtobuf
        return configuration
    }

    /// The TLS pair, when both tls-cert and tls-key are given (one alone is a mistake).
    private static func tls(_ settings: HeraldSettings) throws(HeraldSettings.Problem) -> TLSCertificates? {
        typealias S = HeraldSettings
        switch (settings.optional(S.tlsCert), settings.optional(S.tlsKey)) {
        case (nil, nil):
            return nil
        case (nil, _):
            throw settings.problem(S.tlsKey, "is set, but tls-cert is not: give the certificate of the key too")
        case (_, nil):
            throw settings.problem(S.tlsCert, "is set, but tls-key is not: give the certificate's private key too")
        case (let certificate?, let key?):
            try readable(certificate, S.tlsCert, settings, what: "a PEM certificate chain")
            try readable(key, S.tlsKey, settings, what: "a PEM private key")
            do {
                return try TLSCertificates(certificatePath: certificate, keyPath: key)
            } catch {
                throw settings.problem(S.tlsCert, error.description)
            }
        }
    }

    /// How clients authenticate: `auth = jwt` (the default) needs exactly one key source;
    /// `auth = none` is the only way to run without client authentication.
    private static func auth(_ settings: HeraldSettings) throws(HeraldSettings.Problem) -> HeraldAuthConfiguration {
        typealias S = HeraldSettings
        let keySources: [any SettingDeclaration] = [S.jwtSecret, S.jwtPublicKeys, S.jwks].filter(settings.isGiven)
        if let caFile = settings.optional(S.jwksCAFile) {
            guard settings.optional(S.jwks)?.hasPrefix("https://") == true else {
                throw settings.problem(S.jwksCAFile, "is set, but jwks is not an https URL: the certificates would trust nothing")
            }
            try readable(caFile, S.jwksCAFile, settings, what: "a PEM file of CA certificates")
        }
        if keySources.count > 1 {
            throw HeraldSettings.Problem(description: "\(keySources.map(\.name).joined(separator: " and ")): give only one way to verify tokens")
        }
        if settings.value(S.auth) == "none" {
            if let key = keySources.first {
                throw settings.problem(
                    S.auth, "'none' turns client authentication off, but \(key.name) (from \(settings.source(key))) is set: remove one of them"
                )
            }
            return .disabled
        }
        if let secret = settings.optional(S.jwtSecret) {
            guard secret.utf8.count >= 32 else { throw settings.problem(S.jwtSecret, "an HS256 secret must be at least 32 bytes") }
            return .hs256(secret: secret)
        }
        if let path = settings.optional(S.jwtPublicKeys) {
            try readable(path, S.jwtPublicKeys, settings, what: "a PEM file of RS256/ES256 public keys")
            return .publicKeys(pemFile: path)
        }
        if let location = settings.optional(S.jwks) {
            if location.hasPrefix("https://") {
                guard let url = URL(string: location), url.host?.isEmpty == false else {
                    throw settings.problem(S.jwks, "'\(location)' is not a URL with a host")
                }
                return .jwks(url: location, trustRootsFile: settings.optional(S.jwksCAFile))
            }
            if location.hasPrefix("http://") {
                throw settings.problem(S.jwks, "'\(location)' is plain http: keys fetched without TLS could be anyone's; use https")
            }
            try readable(location, S.jwks, settings, what: "a JWKS file or an https URL")
            return .jwks(file: location)
        }
        throw settings.problem(
            S.auth,
            "'jwt' needs a key to verify client tokens: set jwt-secret, jwt-public-keys or jwks (--auth none runs without client authentication)"
        )
    }

    private static func readable(
        _ path: String, _ setting: any SettingDeclaration, _ settings: HeraldSettings, what: String
    ) throws(HeraldSettings.Problem) {
        guard FileManager.default.isReadableFile(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file"
            throw settings.problem(setting, "cannot read \(path) (\(reason)); give \(what)")
        }
    }

    /// Whether `text` is a browser origin: scheme, host and optional port, without a path.
    private static func isOrigin(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host?.isEmpty == false else {
            return false
        }
        return url.path.isEmpty && url.query == nil && url.fragment == nil && url.user == nil
    }
}
