import ArgumentParser
import Foundation
import Herald
import HeraldQueue
import SQS
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
    @Option(help: ArgumentHelp(HeraldSettings.queue.help)) var queue: String?
    @Option(name: .customLong("queue-path"), help: ArgumentHelp(HeraldSettings.queuePath.help)) var queuePath: String?
    @Option(name: .customLong("sqs-queue-url"), help: ArgumentHelp(HeraldSettings.sqsQueueURL.help)) var sqsQueueURL: String?
    @Option(name: .customLong("sqs-region"), help: ArgumentHelp(HeraldSettings.sqsRegion.help)) var sqsRegion: String?
    @Option(name: .customLong("sqs-endpoint"), help: ArgumentHelp(HeraldSettings.sqsEndpoint.help)) var sqsEndpoint: String?
    @Option(help: ArgumentHelp(HeraldSettings.pollers.help)) var pollers: String?
    @Option(name: .customLong("max-in-flight"), help: ArgumentHelp(HeraldSettings.maxInFlight.help)) var maxInFlight: String?
    @Option(name: .customLong("upstream-events"), help: ArgumentHelp(HeraldSettings.upstreamEvents.help)) var upstreamEvents: String?
    @Option(name: .customLong("webhook-url"), help: ArgumentHelp(HeraldSettings.webhookURL.help)) var webhookURL: String?
    @Option(name: .customLong("upstream-queue-url"), help: ArgumentHelp(HeraldSettings.upstreamQueueURL.help)) var upstreamQueueURL: String?

    private var flags: [String: String] {
        var flags: [String: String] = [:]
        let given: [(HeraldSettings.Key, String?)] = [
            (HeraldSettings.host, host), (HeraldSettings.port, port), (HeraldSettings.apiKey, apiKey),
            (HeraldSettings.namespaces, namespaces), (HeraldSettings.defaultEvent, defaultEvent),
            (HeraldSettings.jwtSecret, jwtSecret), (HeraldSettings.jwtPublicKeys, jwtPublicKeys), (HeraldSettings.jwks, jwks),
            (HeraldSettings.auth, auth), (HeraldSettings.logFormat, logFormat), (HeraldSettings.logLevel, logLevel),
            (HeraldSettings.shutdownDeadline, shutdownDeadline), (HeraldSettings.queue, queue), (HeraldSettings.queuePath, queuePath),
            (HeraldSettings.sqsQueueURL, sqsQueueURL), (HeraldSettings.sqsRegion, sqsRegion), (HeraldSettings.sqsEndpoint, sqsEndpoint),
            (HeraldSettings.pollers, pollers), (HeraldSettings.maxInFlight, maxInFlight), (HeraldSettings.upstreamEvents, upstreamEvents),
            (HeraldSettings.webhookURL, webhookURL), (HeraldSettings.upstreamQueueURL, upstreamQueueURL),
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
    /// Where messages come from.
    enum Source {
        case none
        case embedded(path: String)
        case sqs(client: SQSClient, queueURL: String)
    }

    let host: String
    let port: Int
    let gateway: HeraldConfiguration
    let source: Source
    let consumer: QueueConsumerConfiguration
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
        let region = settings.string(HeraldSettings.sqsRegion) ?? ProcessInfo.processInfo.environment["AWS_REGION"] ?? "us-east-1"
        var endpoint: URL?
        if let text = settings.string(HeraldSettings.sqsEndpoint) {
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https" else {
                throw HeraldSettings.Problem(description: "sqs-endpoint (from \(settings.source(HeraldSettings.sqsEndpoint))): '\(text)' is not an http(s) URL")
            }
            endpoint = url
        }
        let sqs = SQSClient(configuration: SQSConfiguration(region: region, endpoint: endpoint))
        switch try settings.choice(HeraldSettings.queue, ["embedded", "sqs", "none"], default: "embedded") {
        case "sqs":
            guard let url = settings.string(HeraldSettings.sqsQueueURL) else {
                throw HeraldSettings.Problem(description: "sqs-queue-url: required with queue = sqs")
            }
            source = .sqs(client: sqs, queueURL: url)
        case "embedded":
            source = .embedded(path: settings.string(HeraldSettings.queuePath) ?? "herald-queue.sqlite")
        default:
            source = .none
        }
        var consumer = QueueConsumerConfiguration()
        consumer.pollers = try settings.int(HeraldSettings.pollers, default: 2, range: 1...64)
        consumer.maxInFlight = try settings.int(HeraldSettings.maxInFlight, default: 100, range: 1...100_000)
        consumer.deduplicationKey = .attribute(HeraldMessage.idAttribute)
        self.consumer = consumer

        if let events = settings.list(HeraldSettings.upstreamEvents), !events.isEmpty {
            let webhook = settings.string(HeraldSettings.webhookURL)
            let queueURL = settings.string(HeraldSettings.upstreamQueueURL)
            guard webhook != nil || queueURL != nil else {
                throw HeraldSettings.Problem(description: "upstream-events: set webhook-url or upstream-queue-url to say where the events go")
            }
            gateway.upstream = HeraldUpstreamConfiguration(events: Set(events), webhookURL: webhook, queue: queueURL.map { (sqs, $0) })
        } else if settings.string(HeraldSettings.webhookURL) != nil || settings.string(HeraldSettings.upstreamQueueURL) != nil {
            throw HeraldSettings.Problem(description: "upstream-events: name the client events to forward ('*' for all)")
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

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var publisher: any HeraldPublisher = DirectPublisher(gateway: gateway)
        var readiness: [String: HeraldReadinessCheck] = [:]
        var embedded: EmbeddedQueue?
        switch source {
        case .none:
            break
        case .embedded(let path):
            let queue = try await EmbeddedQueue.open(path: path, logger: logger)
            embedded = queue
            publisher = EmbeddedQueuePublisher(queue: queue)
            // Published messages are delivered in the order they were published: one ordered
            // group, read by one poller.
            var ordered = consumer
            ordered.pollers = 1
            let source = EmbeddedMessageSource(queue: queue, ordered: true)
            services.append(.init(service: QueueConsumer(source: source, configuration: ordered, logger: logger) { await gateway.handOff($0) }))
            readiness["queue"] = {
                do {
                    let counts = try await queue.counts()
                    return (true, "embedded: \(counts.visible) waiting, \(counts.invisible) in flight")
                } catch {
                    return (false, "embedded queue unreadable: \(error)")
                }
            }
        case .sqs(let client, let queueURL):
            services.append(.init(service: QueueConsumer(source: SQSMessageSource(client: client, queueURL: queueURL), configuration: consumer, logger: logger) { await gateway.handOff($0) }))
            readiness["queue"] = {
                do {
                    _ = try await client.getQueueAttributes(queueURL: queueURL, names: [.approximateNumberOfMessages])
                    return (true, "sqs: reachable")
                } catch {
                    return (false, "sqs: \(error)")
                }
            }
        }

        let router = Router()
        gateway.addPublishRoutes(to: router, publisher: publisher)
        gateway.addOperationsRoutes(to: router, registry: registry, readiness: readiness)

        let app = Application(
            router: router,
            server: .socketIO(gateway.io),
            configuration: .init(address: .hostname(host, port: port)),
            logger: logger
        )
        let drain = SocketIODrainService(gateway: gateway, logger: logger)
        // Shut down in reverse order: the consumer stops and flushes its deletes first, then the
        // clients are disconnected, then the HTTP server stops.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [.init(service: app), .init(service: drain)] + services,
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
                "publish-key": "\(self.gateway.apiKey == nil ? "none" : "set")", "queue": "\(source)",
            ]
        )
        if !self.gateway.auth.isEnabled {
            logger.warning("client authentication is off: any client may connect (set jwt-secret, jwt-public-keys or jwks to require tokens)")
        }
        try await group.run()
        try await embedded?.close()
        logger.info("herald stopped", metadata: ["delivered": "\(gateway.stats.eventsDelivered)"])
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
