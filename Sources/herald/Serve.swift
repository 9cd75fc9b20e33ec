import ArgumentParser
import Foundation
import Herald
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import SocketIO
import SocketIOHummingbird

/// `herald serve`: the gateway in one process.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway: Socket.IO server, publish API, health endpoints.",
        discussion: """
            Every setting can be given as a flag, as an environment variable (HERALD_ and the key in \
            upper case with underscores, e.g. HERALD_API_KEY), or in the configuration file \
            (--config FILE: 'key = value' lines, TOML's flat form). Flags win over the environment, \
            which wins over the file.
            """
    )

    @Option(help: "Configuration file (TOML: key = value lines).") var config: String?
    @Option(help: ArgumentHelp(HeraldSettings.host.help)) var host: String?
    @Option(help: ArgumentHelp(HeraldSettings.port.help)) var port: String?
    @Option(name: .customLong("api-key"), help: ArgumentHelp(HeraldSettings.apiKey.help)) var apiKey: String?
    @Option(help: ArgumentHelp(HeraldSettings.namespaces.help)) var namespaces: String?
    @Option(name: .customLong("default-event"), help: ArgumentHelp(HeraldSettings.defaultEvent.help)) var defaultEvent: String?
    @Option(name: .customLong("jwt-secret"), help: ArgumentHelp(HeraldSettings.jwtSecret.help)) var jwtSecret: String?
    @Option(name: .customLong("jwt-public-keys"), help: ArgumentHelp(HeraldSettings.jwtPublicKeys.help)) var jwtPublicKeys: String?
    @Option(help: ArgumentHelp(HeraldSettings.jwks.help)) var jwks: String?
    @Option(help: ArgumentHelp(HeraldSettings.auth.help)) var auth: String?
    @Option(name: .customLong("log-format"), help: ArgumentHelp(HeraldSettings.logFormat.help)) var logFormat: String?
    @Option(name: .customLong("log-level"), help: ArgumentHelp(HeraldSettings.logLevel.help)) var logLevel: String?
    @Option(name: .customLong("shutdown-deadline"), help: ArgumentHelp(HeraldSettings.shutdownDeadline.help)) var shutdownDeadline: String?

    private var flags: [String: String] {
        var flags: [String: String] = [:]
        let given: [(HeraldSettings.Key, String?)] = [
            (HeraldSettings.host, host), (HeraldSettings.port, port), (HeraldSettings.apiKey, apiKey),
            (HeraldSettings.namespaces, namespaces), (HeraldSettings.defaultEvent, defaultEvent),
            (HeraldSettings.jwtSecret, jwtSecret), (HeraldSettings.jwtPublicKeys, jwtPublicKeys), (HeraldSettings.jwks, jwks),
            (HeraldSettings.auth, auth), (HeraldSettings.logFormat, logFormat), (HeraldSettings.logLevel, logLevel),
            (HeraldSettings.shutdownDeadline, shutdownDeadline),
        ]
        for (key, value) in given { if let value { flags[key.name] = value } }
        return flags
    }

    func run() async throws {
        let settings: HeraldSettings
        let plan: ServePlan
        do {
            settings = try HeraldSettings(flags: flags, environment: ProcessInfo.processInfo.environment, file: config)
            plan = try ServePlan(settings)
        } catch {
            FileHandle.standardError.write(Data("herald: \(error.description)\n".utf8))
            throw ExitCode(2)
        }
        try await plan.run()
    }
}

/// A validated `serve` configuration, ready to run.
struct ServePlan {
    let host: String
    let port: Int
    let gateway: HeraldConfiguration
    let logFormat: String
    let logLevel: Logger.Level
    let shutdownDeadline: Duration

    init(_ settings: HeraldSettings) throws(HeraldSettings.Problem) {
        host = settings.string(HeraldSettings.host) ?? "127.0.0.1"
        port = try settings.int(HeraldSettings.port, default: 8080, range: 0...65535)
        var gateway = HeraldConfiguration()
        gateway.apiKey = settings.string(HeraldSettings.apiKey)
        if let namespaces = settings.list(HeraldSettings.namespaces) {
            for namespace in namespaces where !namespace.hasPrefix("/") {
                throw HeraldSettings.Problem(description: "namespaces (from \(settings.source(HeraldSettings.namespaces))): '\(namespace)' must start with '/'")
            }
            gateway.namespaces = namespaces.isEmpty ? ["/"] : namespaces
        }
        gateway.defaultEvent = settings.string(HeraldSettings.defaultEvent)
        let authMode = try settings.choice(HeraldSettings.auth, ["jwt", "none"], default: "jwt")
        let keySources = [HeraldSettings.jwtSecret, HeraldSettings.jwtPublicKeys, HeraldSettings.jwks].filter { settings.string($0) != nil }
        if keySources.count > 1 {
            throw HeraldSettings.Problem(description: "\(keySources.map(\.name).joined(separator: " and ")): give only one way to verify tokens")
        }
        if authMode == "jwt" {
            if let secret = settings.string(HeraldSettings.jwtSecret) {
                guard secret.utf8.count >= 32 else {
                    throw HeraldSettings.Problem(description: "jwt-secret (from \(settings.source(HeraldSettings.jwtSecret))): an HS256 secret must be at least 32 bytes")
                }
                gateway.auth = .hs256(secret: secret)
            } else if let path = settings.string(HeraldSettings.jwtPublicKeys) {
                gateway.auth = .publicKeys(pemFile: path)
            } else if let path = settings.string(HeraldSettings.jwks) {
                gateway.auth = .jwks(file: path)
            }
        }
        self.gateway = gateway
        logFormat = try settings.choice(HeraldSettings.logFormat, ["text", "json"], default: "text")
        let level = try settings.choice(HeraldSettings.logLevel, Logger.Level.allCases.map(\.rawValue), default: "info")
        logLevel = Logger.Level(rawValue: level) ?? .info
        shutdownDeadline = .seconds(try settings.int(HeraldSettings.shutdownDeadline, default: 30, range: 1...3600))

        let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1"
        if !loopback, gateway.apiKey == nil {
            throw HeraldSettings.Problem(description: "api-key: binding \(host) (not loopback) requires a publish API key (--api-key or HERALD_API_KEY)")
        }
    }

    func run() async throws {
        let logFormat = self.logFormat
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = logFormat == "json" ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "herald")
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var socketIO = SocketIOConfiguration()
        socketIO.logger = logger
        let gateway = try await HeraldGateway(configuration: self.gateway, socketIO: socketIO, logger: logger)

        let router = Router()
        gateway.addPublishRoutes(to: router, publisher: DirectPublisher(gateway: gateway))
        gateway.addOperationsRoutes(to: router, registry: registry)

        let app = Application(
            router: router,
            server: .socketIO(gateway.io),
            configuration: .init(address: .hostname(host, port: port)),
            logger: logger
        )
        let drain = SocketIODrainService(gateway: gateway, logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: app), .init(service: drain)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = shutdownDeadline
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        let group = ServiceGroup(configuration: groupConfiguration)
        logger.info(
            "herald starting",
            metadata: [
                "address": "\(host):\(port)", "namespaces": "\(self.gateway.namespaces)", "auth": "\(self.gateway.auth)",
                "publish-key": "\(self.gateway.apiKey == nil ? "none" : "set")",
            ]
        )
        if !self.gateway.auth.isEnabled {
            logger.warning("client authentication is off: any client may connect (set jwt-secret, jwt-public-keys or jwks to require tokens)")
        }
        try await group.run()
        logger.info("herald stopped")
    }
}

/// On graceful shutdown, disconnects every Socket.IO client with "server shutting down" so that
/// clients reconnect (elsewhere) at once.
struct SocketIODrainService: Service {
    let gateway: HeraldGateway
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        gateway.stats.beginShutdown()
        logger.info("closing client connections", metadata: ["clients": "\(gateway.io.engine.connectionCount)"])
        gateway.io.close()
    }
}
