import Foundation
import Herald
import HeraldQueue
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Metrics
import NIOCore
import OTel
import Prometheus
import ServiceLifecycle
import SocketIO
import SocketIOAdminUI
import SocketIOHummingbird
import SocketIOPostgres
import Synchronization
import Tracing
import UnixSignals

extension ServePlan {
    /// Runs the gateway until SIGTERM or SIGINT. Every start-up failure becomes one
    /// ``HeraldSettings/Problem`` naming its cause, after what was opened is closed.
    func run() async throws(HeraldSettings.Problem) {
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
        if !gateway.auth.isEnabled {
            logger.warning(
                "auth = none: client authentication is off, any client may connect (set jwt-secret, jwt-public-keys or jwks to require tokens)")
        }
        var socketIO = self.socketIO
        socketIO.logger = logger
        let embedded = try await openEmbeddedQueue(logger: logger)
        let recoveryFile: EmbeddedQueue?
        do {
            recoveryFile = try await openRecoveryStore(embedded: embedded, into: &socketIO, logger: logger)
        } catch {
            try? await embedded?.close()
            throw error
        }
        let opened = [embedded, recoveryFile].compactMap { $0 }
        let gateway: HeraldGateway
        var node: PostgresNode?
        do {
            node = try await openPostgres(logger: logger)
            if let store = node?.recovery { socketIO.connectionStateRecovery?.store = store }
            gateway = try await makeGateway(socketIO: socketIO, cluster: node?.cluster, logger: logger)
            try await run(gateway: gateway, embedded: embedded, outbox: node?.outbox, registry: registry, logger: logger)
        } catch {
            await node?.close()
            for file in opened { try? await file.close() }
            throw error
        }
        // The sessions of the clients just closed are written before the files and the database
        // close; a store that is gone (PostgreSQL down) gets 10 s, not a herald that never exits.
        let io = gateway.io
        if !(await FinishedInTime.wait(.seconds(10), for: { await io.flushRecoveryState() })) {
            logger.warning("The recovery store did not take the last sessions within 10 s; their clients may not be recovered")
        }
        if let node, !(await FinishedInTime.wait(.seconds(10), for: { await node.close() })) {
            logger.warning("The PostgreSQL connections did not close within 10 s; stopping without them")
        }
        for file in opened {
            do {
                try await file.close()
            } catch {
                throw HeraldSettings.Problem(description: "closing \(file.path): \(error)", status: 1)
            }
        }
        logger.info("herald stopped", metadata: ["messages": "\(gateway.stats.messagesBroadcast)", "deliveries": "\(gateway.stats.deliveries)"])
    }

    /// The gateway, with what the recovery store kept from the herald that ran before.
    private func makeGateway(
        socketIO: SocketIOConfiguration, cluster: PostgresCluster?, logger: Logger
    ) async throws(HeraldSettings.Problem) -> HeraldGateway {
        let gateway: HeraldGateway
        do {
            gateway = try await HeraldGateway(configuration: self.gateway, socketIO: socketIO, cluster: cluster, logger: logger)
        } catch {
            let key = [HeraldSettings.jwtPublicKeys, HeraldSettings.jwks].first(where: settings.isGiven) ?? HeraldSettings.auth
            throw settings.problem(key, "cannot load the keys that verify client tokens: \(error)")
        }
        do {
            try await gateway.io.restoreRecoveryState()
        } catch {
            throw settings.problem(HeraldSettings.recoveryStore, "cannot read what recovery kept: \(error)")
        }
        return gateway
    }

    /// Gives recovery its SQLite store when configured: in the embedded queue's file, or in a
    /// file of its own (returned, to be closed at the end), locked like the queue's.
    private func openRecoveryStore(
        embedded: EmbeddedQueue?, into socketIO: inout SocketIOConfiguration, logger: Logger
    ) async throws(HeraldSettings.Problem) -> EmbeddedQueue? {
        let file: EmbeddedQueue
        let own: Bool
        switch recoveryStore {
        case .none, .postgres:
            return nil
        case .queueFile:
            guard let embedded else { preconditionFailure("the embedded queue is opened before recovery's store") }
            (file, own) = (embedded, false)
        case .file(let path):
            file = try await openQueueFile(path: path, setting: HeraldSettings.recoveryPath, logger: logger)
            own = true
        }
        do {
            socketIO.connectionStateRecovery?.store = try await SQLiteRecoveryStore.open(in: file)
        } catch {
            if own { try? await file.close() }
            throw settings.problem(own ? HeraldSettings.recoveryPath : HeraldSettings.queuePath, "cannot keep recovery in \(file.path): \(error)")
        }
        return own ? file : nil
    }

    /// Opens the embedded queue, when it is the source, with the lock that keeps a second herald
    /// process out of it.
    private func openEmbeddedQueue(logger: Logger) async throws(HeraldSettings.Problem) -> EmbeddedQueue? {
        guard case .embedded(let path) = source else { return nil }
        return try await openQueueFile(path: path, setting: HeraldSettings.queuePath, logger: logger)
    }

    /// Opens an embedded-queue SQLite file with its lock; `setting` is the one named when it fails.
    private func openQueueFile(
        path: String, setting: any SettingDeclaration, logger: Logger
    ) async throws(HeraldSettings.Problem)
        -> EmbeddedQueue
    {
        var configuration = EmbeddedQueue.Configuration()
        configuration.exclusive = true
        do {
            return try await EmbeddedQueue.open(path: path, configuration: configuration, logger: logger)
        } catch let error as EmbeddedQueueLockError {
            if case .held = error {
                throw settings.problem(setting, "\(path) is used by another herald process; give each instance its own --\(setting.name)")
            }
            throw settings.problem(setting, "\(error); give a --\(setting.name) in a directory herald may write to")
        } catch {
            throw settings.problem(setting, "cannot open \(path): \(error); give a --\(setting.name) in a directory herald may write to")
        }
    }

    private func run(
        gateway: HeraldGateway, embedded: EmbeddedQueue?, outbox: PostgresOutbox?, registry: PrometheusCollectorRegistry, logger: Logger
    ) async throws(HeraldSettings.Problem) {
        let listening = ListenGate()
        var consumers: [any Service] = []
        var publisher: any HeraldPublisher = DirectPublisher(gateway: gateway)
        var readiness: [String: HeraldReadinessCheck] = [:]
        switch source {
        case .none:
            break
        case .embedded:
            guard let queue = embedded else { preconditionFailure("the embedded queue is opened before the services are made") }
            publisher = EmbeddedQueuePublisher(queue: queue)
            // Published messages are delivered in the order they were published: one ordered
            // group, read by one poller.
            var ordered = consumer
            ordered.pollers = 1
            let source = EmbeddedMessageSource(queue: queue, ordered: true)
            consumers.append(QueueConsumer(source: source, configuration: ordered, logger: logger) { await gateway.handOff($0) })
            readiness["queue"] = {
                do {
                    let counts = try await queue.counts()
                    return (true, "embedded: \(counts.visible) waiting, \(counts.invisible) in flight")
                } catch {
                    return (false, "embedded queue unreadable: \(error)")
                }
            }
        case .postgres:
            guard let outbox else { preconditionFailure("the outbox is opened before the services are made") }
            publisher = OutboxPublisher(outbox: outbox)
            consumers.append(
                QueueConsumer(source: PostgresMessageSource(outbox: outbox), configuration: consumer, logger: logger) { await gateway.handOff($0) })
            readiness["queue"] = {
                do {
                    let counts = try await outbox.counts()
                    return (
                        true, "postgres: \(counts.visible) waiting, \(counts.invisible) in flight, \(counts.deadLettered) dead letters"
                    )
                } catch {
                    return (false, "postgres outbox unreadable: \(error)")
                }
            }
        case .sqs(let client, let queueURL):
            consumers.append(
                QueueConsumer(source: SQSMessageSource(client: client, queueURL: queueURL), configuration: consumer, logger: logger) {
                    await gateway.handOff($0)
                }
            )
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
        let startedMetadata: Logger.Metadata = [
            "address": "\(tls == nil ? "http" : "https")://\(host):\(port)", "namespaces": "\(self.gateway.namespaces)",
            "auth": "\(self.gateway.auth)",
            "api-key": "\(self.gateway.apiKey == nil ? "none" : "set")", "queue": "\(source)",
            "cluster": "\(gateway.cluster.map { "postgres, node \($0.uid)" } ?? "none")",
        ]
        let server: HTTPServerBuilder
        do {
            server = try tls.map { try .tls(.socketIO(gateway.io), tlsConfiguration: $0.serverConfiguration) } ?? .socketIO(gateway.io)
        } catch {
            throw settings.problem(HeraldSettings.tlsCert, "cannot serve TLS: \(error)")
        }
        let app = Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(host, port: port), backlog: listenBacklog),
            onServerRunning: { _ in
                listening.open()
                logger.info("herald started", metadata: startedMetadata)
            },
            logger: logger
        )
        // Shut down in reverse order: /readyz answers 503 for the drain period while everything
        // runs; then the consumers stop and flush their deletes; then the clients are closed;
        // then the HTTP server stops. The consumers start only once the port is bound, so that a
        // busy port stops herald before it takes any message.
        // The cluster stops last: broadcasts reach the other nodes until the clients are closed.
        // The outbox's wake-ups stop after the consumers.
        let cluster: [any Service] = gateway.cluster.map { [ClusterService(cluster: $0, namespaces: self.gateway.namespaces)] } ?? []
        let wakeUps: [any Service] = outbox.map { [OutboxListenerService(outbox: $0)] } ?? []
        let reloads: [any Service] = tls.map { [CertificateReloadService(certificates: $0, logger: logger)] } ?? []
        var tracing: [any Service] = []
        if var configuration = self.tracing {
            configuration.diagnosticLogger = .custom(logger)
            do {
                let (tracer, exporter) = try OTel.makeTracingBackend(configuration: configuration)
                InstrumentationSystem.bootstrap(tracer)
                tracing = [exporter]
            } catch {
                throw settings.problem(HeraldSettings.otelEndpoint, "cannot export traces: \(error)")
            }
        }
        let admin: [any Service]
        do {
            admin = try adminUI.map { [AdminUIService(ui: try SocketIOAdminUI(server: gateway.io, configuration: $0))] } ?? []
        } catch {
            throw settings.problem(HeraldSettings.adminUIPasswordHash, "\(error)")
        }
        let services: [any Service] =
            tracing + cluster + wakeUps + reloads + admin + [app, SocketIODrainService(gateway: gateway, logger: logger)]
            + consumers.map { AfterListening(gate: listening, service: $0) }
            + [ReadinessDrainService(gateway: gateway, period: drainPeriod, logger: logger)]
        var groupConfiguration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        groupConfiguration.maximumGracefulShutdownDuration = shutdownDeadline
        groupConfiguration.maximumCancellationDuration = .seconds(5)
        do {
            try await ServiceGroup(configuration: groupConfiguration).run()
        } catch {
            guard listening.isOpen else { throw StartupFailure.listen(host: host, port: port, error: error) }
            throw HeraldSettings.Problem(description: "stopped on an error: \(error)", status: 1)
        }
    }
}

/// Runs a service once the HTTP server listens; a shutdown or a failure before then ends it
/// without running it.
struct AfterListening: Service {
    let gate: ListenGate
    let service: any Service

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { try await gate.wait() }
        } catch is CancellationError {
            return
        }
        try await service.run()
    }
}

/// First to hear a graceful shutdown: `/readyz` answers 503 at once, and for `period` clients
/// stay connected and messages keep flowing, so that a load balancer stops sending new clients
/// before the others are closed.
struct ReadinessDrainService: Service {
    let gateway: HeraldGateway
    let period: Duration
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        guard !Task.isCancelled else { return }
        gateway.stats.beginShutdown()
        logger.info("shutting down: /readyz answers 503", metadata: ["drain-period": "\(period)", "clients": "\(gateway.io.engine.connectionCount)"])
        try? await Task.sleep(for: period)
    }
}

/// After the consumers stopped: closes every client's connection the way the reference server
/// does at shutdown (each socket leaves with "server shutting down" and no DISCONNECT packet,
/// then the transport closes), so that clients see a transport close and reconnect elsewhere.
struct SocketIODrainService: Service {
    let gateway: HeraldGateway
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        guard !Task.isCancelled else { return }
        gateway.stats.beginShutdown()
        logger.info("closing client connections", metadata: ["clients": "\(gateway.io.engine.connectionCount)"])
        gateway.io.close()
    }
}

/// Waits for work up to a limit, without waiting for the work itself when the limit comes first.
private final class FinishedInTime: Sendable {
    private let continuation = Mutex<CheckedContinuation<Bool, Never>?>(nil)

    /// Whether `work` finished within `limit`.
    static func wait(_ limit: Duration, for work: @escaping @Sendable () async -> Void) async -> Bool {
        let waiting = FinishedInTime()
        return await withCheckedContinuation { continuation in
            waiting.continuation.withLock { $0 = continuation }
            Task {
                await work()
                waiting.finish(true)
            }
            Task {
                try? await Task.sleep(for: limit)
                waiting.finish(false)
            }
        }
    }

    private func finish(_ inTime: Bool) {
        continuation.withLock { continuation in
            continuation?.resume(returning: inTime)
            continuation = nil
        }
    }
}

/// Reads the TLS certificate and key again on each SIGHUP, for the connections opened after it;
/// a pair that cannot be read is logged and the one in use stays.
struct CertificateReloadService: Service {
    let certificates: TLSCertificates
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in hangups {
                do {
                    try certificates.reload()
                    logger.notice("TLS certificate reloaded", metadata: ["certificate": "\(certificates.subject)"])
                } catch {
                    logger.error("TLS certificate not reloaded; the one in use stays", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

/// Sends the Admin UI its statistics until the graceful shutdown.
struct AdminUIService: Service {
    let ui: SocketIOAdminUI

    func run() async throws {
        await cancelWhenGracefulShutdown { await ui.run() }
    }
}
