import SocketIO
import SocketIOPostgres

/// The publish API could not hand its messages to the other nodes of the cluster (PostgreSQL
/// unreachable): it answers 503, and the publisher retries.
public struct HeraldClusterUnreachable: Error, CustomStringConvertible {
    public var description: String {
        "the cluster's PostgreSQL could not be reached, so the other nodes did not get the messages; retry"
    }
}

extension HeraldGateway {
    /// The readiness check of the cluster, when there is one: ready while this node listens to
    /// the other nodes (a node that lost PostgreSQL misses their broadcasts).
    public var clusterReadiness: HeraldReadinessCheck? {
        guard let cluster else { return nil }
        return {
            let nodes = cluster.serverCount(namespace: "/")
            return cluster.transport.isListening
                ? (true, "postgres: listening, \(nodes) node\(nodes == 1 ? "" : "s")")
                : (false, "postgres: not connected, reconnecting (\(cluster.transport.reconnects) reconnects)")
        }
    }

    /// The cluster as the live page shows it: this node's id, the others', and whether it listens.
    var clusterSnapshot: SocketIOValue? {
        guard let cluster else { return nil }
        return [
            "node": .string(cluster.uid),
            "peers": .array(cluster.peers(namespace: "/").sorted().map { .string($0) }),
            "listening": .bool(cluster.transport.isListening),
            "reconnects": .number(Double(cluster.transport.reconnects)),
        ]
    }
}
