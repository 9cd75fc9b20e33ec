import Logging
import PostgresNIO
import ServiceLifecycle
import SocketIOPostgres

/// This node's membership of a cluster over PostgreSQL, open while herald runs: the database
/// client (running from ``ServePlan/openCluster(logger:)`` to ``close()``) and the cluster.
struct ClusterNode {
    let cluster: PostgresCluster
    private let client: Task<Void, Never>

    init(cluster: PostgresCluster, client: Task<Void, Never>) {
        self.cluster = cluster
        self.client = client
    }

    /// Closes the database client, once the cluster said goodbye.
    func close() async {
        client.cancel()
        await client.value
    }
}

extension ServePlan {
    /// Connects to the cluster's PostgreSQL server, when there is a cluster, and makes the table
    /// of large messages; PostgreSQL that cannot be reached in 10 seconds stops herald before it
    /// listens, with the reason.
    func openCluster(logger: Logger) async throws(HeraldSettings.Problem) -> ClusterNode? {
        guard let plan = cluster else { return nil }
        // The client's own reports of each failed connection attempt stay below warnings: the
        // transport says when the cluster's connection is lost, and start-up says why it failed.
        var clientLogger = logger
        clientLogger.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: plan.client, backgroundLogger: clientLogger)
        let running = Task { await client.run() }
        do {
            let transport = try PostgresClusterTransport(client: client, configuration: plan.transport, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await transport.prepare() }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    throw PostgresUnreachable()
                }
                try await group.next()
                group.cancelAll()
            }
            let cluster = PostgresCluster(transport: transport, configuration: plan.heartbeats, logger: logger)
            logger.info(
                "Joined the cluster", metadata: ["node": "\(cluster.uid)", "postgres": "\(plan.client.host ?? "?"):\(plan.client.port ?? 5432)"])
            return ClusterNode(cluster: cluster, client: running)
        } catch {
            running.cancel()
            await running.value
            let reason =
                error is PostgresUnreachable ? "no connection within 10 seconds (is it running, and is the URL right?)" : String(reflecting: error)
            throw settings.problem(
                HeraldSettings.postgresURL,
                "cannot use PostgreSQL at \(plan.client.host ?? "?"):\(plan.client.port ?? 5432) as user \(plan.client.username): \(reason)")
        }
    }
}

private struct PostgresUnreachable: Error {}

/// Carries the cluster's messages while herald runs; at shutdown, once the clients are closed,
/// tells the other nodes this one leaves.
struct ClusterService: Service {
    let cluster: PostgresCluster
    let namespaces: [String]

    func run() async {
        await cancelWhenGracefulShutdown { await cluster.run(namespaces: namespaces) }
    }
}
