import Foundation
public import Hummingbird
import NIOCore
public import Prometheus
import SocketIO

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
    public func addOperationsRoutes<Context: RequestContext>(
        to router: Router<Context>,
        registry: PrometheusCollectorRegistry,
        readiness: [String: HeraldReadinessCheck] = [:]
    ) {
        let gauges = GatewayGauges(registry: registry, namespaces: configuration.namespaces)
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
        router.get("/metrics") { [self] _, _ in
            gauges.update(from: self)
            var bytes: [UInt8] = []
            registry.emit(into: &bytes)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("/api/stats") { [self] _, _ in
            Response.json(status: .ok, snapshot())
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: LivePage.html)))
        }
    }

    /// The live figures, as the live page reads them.
    func snapshot() -> SocketIOObject {
        var rooms: SocketIOObject = [:]
        var namespaces: SocketIOObject = [:]
        for name in configuration.namespaces {
            let namespace = io.of(name)
            namespaces[name] = .number(Double(namespace.localSockets.count))
            for room in namespace.adapter.roomSizes() where !namespace.localSockets.contains(id: room.name) {
                rooms["\(name == "/" ? "" : name + " ")\(room.name)"] = .number(Double(room.size))
            }
        }
        let recent: [SocketIOValue] = stats.recentEvents.suffix(20).reversed().map { event in
            [
                "time": .number(event.time), "event": .string(event.event), "namespace": .string(event.namespace),
                "rooms": .array(event.rooms.map { .string($0) }), "preview": .string(event.preview),
            ]
        }
        var snapshot: SocketIOObject = [
            "clients": .number(Double(stats.connectedClients)),
            "connectionsTotal": .number(Double(stats.totalConnections)),
            "eventsDelivered": .number(Double(stats.eventsDelivered)),
            "eventsReceived": .number(Double(stats.eventsReceived)),
            "namespaces": .object(namespaces),
            "rooms": .object(rooms),
            "recent": .array(recent),
            "time": .number(Date().timeIntervalSince1970),
        ]
        if let lag = stats.queueLag { snapshot["queueLagSeconds"] = .number(lag) }
        return snapshot
    }
}

/// The gateway's own Prometheus series, refreshed at each scrape.
private struct GatewayGauges: Sendable {
    let clients: Gauge
    let eventsDelivered: Gauge
    let eventsReceived: Gauge
    let connectionsTotal: Gauge
    let droppedPackets: Gauge
    let slowClients: Gauge
    let perNamespace: [(String, Gauge)]

    init(registry: PrometheusCollectorRegistry, namespaces: [String]) {
        clients = registry.makeGauge(name: "herald_connected_clients", help: "Socket.IO clients connected now")
        connectionsTotal = registry.makeGauge(name: "herald_connections_total", help: "Socket.IO connections since start")
        eventsDelivered = registry.makeGauge(name: "herald_events_out_total", help: "Messages handed to the broadcast path")
        eventsReceived = registry.makeGauge(name: "herald_events_in_total", help: "Events received from clients")
        droppedPackets = registry.makeGauge(name: "herald_dropped_packets_total", help: "Volatile packets dropped for clients that were not ready")
        slowClients = registry.makeGauge(name: "herald_slow_client_disconnects_total", help: "Clients disconnected because they could not keep up")
        perNamespace = namespaces.map { name in
            (name, registry.makeGauge(name: "herald_namespace_clients", labels: [("namespace", name)], help: "Clients connected per namespace"))
        }
    }

    func update(from gateway: HeraldGateway) {
        clients.set(Double(gateway.stats.connectedClients))
        connectionsTotal.set(Double(gateway.stats.totalConnections))
        eventsDelivered.set(Double(gateway.stats.eventsDelivered))
        eventsReceived.set(Double(gateway.stats.eventsReceived))
        droppedPackets.set(Double(gateway.io.engine.statistics.droppedPackets))
        slowClients.set(Double(gateway.io.engine.statistics.slowClientDisconnects))
        for (name, gauge) in perNamespace { gauge.set(Double(gateway.io.of(name).localSockets.count)) }
    }
}
