import Metrics
import SocketIO

/// The cluster's figures, reported through swift-metrics (so to whatever backend the process
/// bootstrapped, Prometheus for herald), all named `socketio_cluster_…`.
struct PostgresClusterMetrics: Sendable {
    /// Messages published, by type.
    private let sent: [SocketIOClusterMessageType: Counter]
    /// Messages of the other nodes received, by type.
    private let received: [SocketIOClusterMessageType: Counter]
    /// Messages that could not be published.
    let publishFailures = Counter(label: "socketio_cluster_publish_failures_total")
    /// Barriers (``PostgresCluster/barrier(namespace:timeout:)``), by how they ended.
    let barriers = (
        passed: Counter(label: "socketio_cluster_barriers_total", dimensions: [("outcome", "passed")]),
        timedOut: Counter(label: "socketio_cluster_barriers_total", dimensions: [("outcome", "timed_out")])
    )
    /// From a message queued for publishing to PostgreSQL's answer.
    let publishLatency = Metrics.Timer(label: "socketio_cluster_publish_seconds")

    init() {
        func counters(_ direction: String) -> [SocketIOClusterMessageType: Counter] {
            Dictionary(
                uniqueKeysWithValues: SocketIOClusterMessageType.allCases.map { type in
                    (type, Counter(label: "socketio_cluster_messages_total", dimensions: [("direction", direction), ("type", type.label)]))
                })
        }
        sent = counters("out")
        received = counters("in")
    }

    func sent(_ type: SocketIOClusterMessageType) { sent[type]?.increment() }
    func received(_ type: SocketIOClusterMessageType) { received[type]?.increment() }

    /// The gauge of a namespace's live peers.
    static func peers(namespace: String) -> Gauge { Gauge(label: "socketio_cluster_peers", dimensions: [("namespace", namespace)]) }
}

extension SocketIOClusterMessageType {
    /// The type's name in metrics: `broadcast`, `fetch_sockets_response`…
    var label: String {
        switch self {
        case .initialHeartbeat: "initial_heartbeat"
        case .heartbeat: "heartbeat"
        case .broadcast: "broadcast"
        case .socketsJoin: "sockets_join"
        case .socketsLeave: "sockets_leave"
        case .disconnectSockets: "disconnect_sockets"
        case .fetchSockets: "fetch_sockets"
        case .fetchSocketsResponse: "fetch_sockets_response"
        case .serverSideEmit: "server_side_emit"
        case .serverSideEmitResponse: "server_side_emit_response"
        case .broadcastClientCount: "broadcast_client_count"
        case .broadcastAck: "broadcast_ack"
        case .adapterClose: "adapter_close"
        }
    }
}
