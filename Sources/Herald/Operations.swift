import EngineIO
import Foundation
public import Hummingbird
import NIOCore
public import Prometheus
import SocketIO
import Synchronization

/// Whether a dependency of the gateway (the queue, say) is ready, with a reason when it is not.
public typealias HeraldReadinessCheck = @Sendable () async -> (ready: Bool, detail: String)

extension HeraldGateway {
    /// Adds the operations endpoints to a router:
    /// - `GET /healthz`: 200 while the process runs;
    /// - `GET /readyz`: 200 when the server accepts clients and every check passes, 503 otherwise;
    /// - `GET /metrics`: Prometheus text — the gateway's figures and everything in `registry`
    ///   (where swift-metrics reports, e.g. the queue consumer's);
    /// - `GET /api/stats`: the figures as JSON, for the live page;
    /// - `GET /`: the live page.
    ///
    /// `/`, `/api/stats` and `/metrics` show room names (`user:42`) and previews of message data:
    /// with ``HeraldConfiguration/operationsKey`` or, failing that, ``HeraldConfiguration/apiKey``
    /// set they require that key, as `Authorization: Bearer <key>` (what Prometheus sends with
    /// `authorization: {credentials: …}`) or as the password of HTTP Basic credentials with any
    /// user name (what a browser sends once its user typed the key into the login prompt; the
    /// live page's own requests to `/api/stats` then carry it too). Without the key they answer
    /// 401 with `WWW-Authenticate: Basic realm="herald"`. With neither key set they are open: the
    /// `herald` command allows that only on a loopback address (it refuses to bind any other
    /// without `api-key`). `/healthz` and `/readyz` are always open, for load balancers and
    /// orchestrators.
    public func addOperationsRoutes<Context: RequestContext>(
        to router: Router<Context>,
        registry: PrometheusCollectorRegistry,
        readiness: [String: HeraldReadinessCheck] = [:]
    ) {
        var checks = readiness
        if let cluster = clusterReadiness { checks["cluster"] = cluster }
        let readiness = checks
        let series = GatewaySeries(registry: registry, namespaces: configuration.namespaces)
        let key = (configuration.operationsKey ?? configuration.apiKey).map(AccessKey.init)
        let protected: (@escaping @Sendable (Request) async throws -> Response) -> @Sendable (Request, Context) async throws -> Response = {
            handler in
            { request, _ in
                if let key, !key.authorizes(authorization: request.headers[.authorization], allowBasic: true) {
                    return Self.unauthorized()
                }
                return try await handler(request)
            }
        }
        router.get("/healthz") { _, _ in Response.json(status: .ok, ["status": "up"]) }
        router.get("/readyz") { [self] _, _ in
            var checks: SocketIOObject = ["server": "accepting"]
            var ready = !stats.isShuttingDown
            if stats.isShuttingDown { checks["server"] = "shutting down" }
            for (name, check) in readiness {
                let (ok, detail) = await check()
                checks[name] = .string(detail)
                ready = ready && ok
            }
            return Response.json(status: ready ? .ok : .serviceUnavailable, ["ready": .bool(ready), "checks": .object(checks)])
        }
        router.get(
            "/metrics",
            use: protected { [self] _ in
                series.update(from: self)
                var bytes: [UInt8] = []
                registry.emit(into: &bytes)
                return Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            })
        router.get(
            "/api/stats",
            use: protected { [self] _ in
                Response.json(status: .ok, await snapshot())
            })
        router.get(
            "/",
            use: protected { _ in
                Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: LivePage.html)))
            })
    }

    /// The answer to an operations request without the key: browsers show their login prompt.
    private static func unauthorized() -> Response {
        var response = Response.json(
            status: .unauthorized,
            [
                "error":
                    "this endpoint requires the operations key (operations-key, or api-key when that is unset): send 'Authorization: Bearer <key>', or log in with any user name and the key as password"
            ]
        )
        response.headers[.wwwAuthenticate] = #"Basic realm="herald""#
        return response
    }

    /// The live figures, as the live page reads them.
    func snapshot() async -> SocketIOObject {
        var rooms: SocketIOObject = [:]
        var namespaces: SocketIOObject = [:]
        for name in configuration.namespaces {
            let namespace = io.of(name)
            namespaces[name] = .number(Double(namespace.localSockets.count))
            for room in await namespace.localSockets.roomSizes() {
                rooms["\(name == "/" ? "" : name + " ")\(room.name)"] = .number(Double(room.size))
            }
        }
        let recent: [SocketIOValue] = stats.recentEvents.suffix(20).reversed().map { event in
            [
                "time": .number(event.time), "event": .string(event.event), "namespace": .string(event.namespace),
                "rooms": .array(event.rooms.map { .string($0) }), "preview": .string(event.preview),
                "recipients": .number(Double(event.recipients)),
            ]
        }
        var snapshot: SocketIOObject = [
            "clients": .number(Double(stats.connectedClients)),
            "connectionsTotal": .number(Double(stats.totalConnections)),
            "messages": .number(Double(stats.messagesBroadcast)),
            "deliveries": .number(Double(stats.deliveries)),
            "messagesWithoutRecipients": .number(Double(stats.messagesWithoutRecipients)),
            "eventsReceived": .number(Double(stats.eventsReceived)),
            "namespaces": .object(namespaces),
            "rooms": .object(rooms),
            "recent": .array(recent),
            "time": .number(Date().timeIntervalSince1970),
        ]
        if let lag = stats.queueLag { snapshot["queueLagSeconds"] = .number(lag) }
        if let cluster = clusterSnapshot { snapshot["cluster"] = cluster }
        return snapshot
    }
}

/// The gateway's own Prometheus series, refreshed at each scrape: gauges for current values,
/// counters (`_total`) for figures that only grow, advanced by what they grew since the last
/// scrape (the traffic path keeps plain atomics and never touches the registry).
private final class GatewaySeries: Sendable {
    private typealias Figure = @Sendable (HeraldGateway) -> Int
    private let clients: Gauge
    private let backlog: Gauge
    private let perNamespace: [(String, Gauge)]
    private let recoverySessions: Gauge
    private let recoveryEvents: Gauge
    private let counters: [(Counter, Figure)]
    private let reported: Mutex<[Int]>

    init(registry: PrometheusCollectorRegistry, namespaces: [String]) {
        func gauge(_ name: String, unit: String, labels: [(String, String)] = [], help: String) -> Gauge {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: "herald", metricName: name, unitName: unit, helpText: help), labels: labels)
        }
        func counter(_ name: String, labels: [(String, String)] = [], help: String, _ figure: @escaping Figure) -> (Counter, Figure) {
            (
                registry.makeCounter(
                    descriptor: MetricNameDescriptor(namespace: "herald", metricName: name, unitName: "total", helpText: help), labels: labels),
                figure
            )
        }
        clients = gauge("connected", unit: "clients", help: "Socket.IO clients connected now")
        backlog = gauge("broadcast_backlog", unit: "bytes", help: "Bytes of broadcasts waiting for the event loops")
        perNamespace = namespaces.map { name in
            (name, gauge("namespace", unit: "clients", labels: [("namespace", name)], help: "Clients connected now, per namespace"))
        }
        let disconnections = EngineIOCloseReason.all.map { reason in
            counter(
                "disconnections", labels: [("reason", reason.description)],
                help: "Engine.IO sessions closed, by reason (a client that closed, a transport error, a parse error, a ping timeout…)"
            ) { gateway in gateway.io.engine.statistics.traffic.disconnections[reason.description] ?? 0 }
        }
        counters =
            [
                counter("connections", help: "Socket.IO connections since start") { $0.stats.totalConnections },
                counter("messages_broadcast", help: "Messages handed to the broadcast path, whether or not any client got them") {
                    $0.stats.messagesBroadcast
                },
                counter("deliveries", help: "Messages written to clients: one per message and local recipient") { $0.stats.deliveries },
                counter("messages_without_recipients", help: "Messages no connected client was selected for: they reached nobody and are not kept") {
                    $0.stats.messagesWithoutRecipients
                },
                counter(
                    "recovery_duplicates_skipped",
                    help: "Queue messages that came again while their event was in the recovery log: not broadcast twice"
                ) {
                    $0.stats.duplicatesSkipped
                },
                counter("recovery_events_replayed", help: "Events replayed to clients that recovered their session") {
                    $0.io.statistics.eventsReplayed
                },
                counter("events_in", help: "Events received from clients") { $0.stats.eventsReceived },
                counter("dropped_packets", help: "Volatile packets dropped for clients that were not ready") {
                    $0.io.engine.statistics.droppedPackets
                },
                counter("handshakes_refused", help: "Handshakes refused because their address opened too many sessions") {
                    $0.io.engine.statistics.refusedHandshakes
                },
                counter("slow_client_disconnects", help: "Clients disconnected because they could not keep up") {
                    $0.io.engine.statistics.slowClientDisconnects
                },
                counter("event_backlog_disconnects", help: "Sockets disconnected because their events piled up behind their handlers") {
                    $0.io.statistics.eventBacklogDisconnects
                },
                counter("event_rate_disconnects", help: "Sockets disconnected because their client sent events faster than the rate limit") {
                    $0.io.statistics.eventRateDisconnects
                },
                counter("empty_namespaces_removed", help: "Dynamic namespaces removed once their last socket left") {
                    $0.io.statistics.emptyNamespacesRemoved
                },
                counter("publish_overloaded", help: "Publish requests answered 503 because the broadcast backlog was full") {
                    $0.backpressure.refusedPublishes
                },
                counter("consumer_backpressure_waits", help: "Queue messages whose hand-off waited for the broadcast backlog to go down") {
                    $0.backpressure.consumerWaits
                },
            ]
            + disconnections
            + SocketIORecoveryOutcome.allCases.map { outcome in
                counter(
                    "recoveries", labels: [("outcome", outcome.label)],
                    help: "Clients that asked to recover their session, by outcome (recovered, or a new session and why)"
                ) { $0.io.statistics.recoveries(outcome) }
            }
        recoverySessions = gauge("recovery_kept", unit: "sessions", help: "Sessions kept for clients that went away (connection state recovery)")
        recoveryEvents = gauge("recovery_log", unit: "events", help: "Events kept for replay (connection state recovery)")
        reported = Mutex(Array(repeating: 0, count: counters.count))
    }

    func update(from gateway: HeraldGateway) {
        clients.set(Double(gateway.stats.connectedClients))
        backlog.set(Double(gateway.broadcastBacklogBytes))
        let recovery = gateway.io.recoveryState
        recoverySessions.set(Double(recovery.sessions))
        recoveryEvents.set(Double(recovery.events))
        for (name, gauge) in perNamespace { gauge.set(Double(gateway.io.of(name).localSockets.count)) }
        reported.withLock { reported in
            for (index, (counter, figure)) in counters.enumerated() {
                let now = figure(gateway)
                if now > reported[index] {
                    counter.increment(by: Int64(now - reported[index]))
                    reported[index] = now
                }
            }
        }
    }
}
