import HeraldQueue
import Logging
import PostgresNIO
import ServiceLifecycle
import SocketIOPostgres

/// What this node keeps in PostgreSQL while herald runs: the database client (running from
/// ``ServePlan/openPostgres(logger:)`` to ``close()``), the cluster and the outbox, each when
/// configured.
struct PostgresNode {
    let cluster: PostgresCluster?
    let outbox: PostgresOutbox?
    private let client: Task<Void, Never>

    init(cluster: PostgresCluster?, outbox: PostgresOutbox?, client: Task<Void, Never>) {
        self.cluster = cluster
        self.outbox = outbox
        self.client = client
    }

    /// Closes the database client, once the cluster said goodbye.
    func close() async {
        client.cancel()
        await client.value
    }
}

extension ServePlan {
    /// Connects to PostgreSQL when the cluster or the queue lives there, and makes the tables they
    /// need; PostgreSQL that cannot be reached in 10 seconds stops herald before it listens, with
    /// the reason.
    func openPostgres(logger: Logger) async throws(HeraldSettings.Problem) -> PostgresNode? {
        guard let configuration = postgres else { return nil }
        // The client's own reports of each failed connection attempt stay below warnings: the
        // cluster and the outbox say when their connection is lost, and start-up says why it failed.
        var clientLogger = logger
        clientLogger.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: configuration, backgroundLogger: clientLogger)
        let running = Task { await client.run() }
        do {
            let transport = try cluster.map { try PostgresClusterTransport(client: client, configuration: $0.transport, logger: logger) }
            let outbox: PostgresOutbox?
            if case .postgres(let settings) = source {
                outbox = try PostgresOutbox(client: client, configuration: settings, logger: logger)
            } else {
                outbox = nil
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await transport?.prepare()
                    try await outbox?.prepare()
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    throw PostgresUnreachable()
                }
                try await group.next()
                group.cancelAll()
            }
            let node = PostgresNode(
                cluster: transport.map { PostgresCluster(transport: $0, configuration: cluster!.heartbeats, logger: logger) }, outbox: outbox,
                client: running)
            if let cluster = node.cluster {
                logger.info(
                    "Joined the cluster",
                    metadata: ["node": "\(cluster.uid)", "postgres": "\(configuration.host ?? "?"):\(configuration.port ?? 5432)"])
            }
            return node
        } catch {
            running.cancel()
            await running.value
            let reason =
                error is PostgresUnreachable ? "no connection within 10 seconds (is it running, and is the URL right?)" : String(reflecting: error)
            throw settings.problem(
                HeraldSettings.postgresURL,
                "cannot use PostgreSQL at \(configuration.host ?? "?"):\(configuration.port ?? 5432) as user \(configuration.username): \(reason)")
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

/// Listens for the outbox's wake-ups while herald runs, so that a waiting receive takes a row
/// as soon as it is committed; stops once the consumers stopped.
struct OutboxListenerService: Service {
    let outbox: PostgresOutbox

    func run() async {
        await cancelWhenGracefulShutdown { await outbox.listen() }
    }
}
