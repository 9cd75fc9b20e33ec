import HeraldQueue
import Logging
import PostgresNIO
import ServiceLifecycle
import SocketIOPostgres

/// What this node keeps in PostgreSQL while herald runs: the database client (running from
/// ``ServePlan/openPostgres(logger:)`` to ``close()``), the cluster, the outbox and recovery's
/// store (with the task that holds its lock), each when configured.
struct PostgresNode {
    let cluster: PostgresCluster?
    let outbox: PostgresOutbox?
    let recovery: PostgresRecoveryStore?
    private let tasks: [Task<Void, Never>]

    init(cluster: PostgresCluster?, outbox: PostgresOutbox?, recovery: PostgresRecoveryStore?, tasks: [Task<Void, Never>]) {
        self.cluster = cluster
        self.outbox = outbox
        self.recovery = recovery
        self.tasks = tasks
    }

    /// Lets go of recovery's tables and closes the database client, once the cluster said
    /// goodbye and recovery's last sessions were written.
    func close() async {
        for task in tasks.reversed() {
            task.cancel()
            await task.value
        }
    }
}

extension ServePlan {
    /// Where recovery keeps its events and sessions with recovery-store = postgres.
    static var recoveryTables: PostgresRecoveryStore.Configuration {
        var tables = PostgresRecoveryStore.Configuration()
        tables.tablePrefix = "herald_recovery"
        return tables
    }

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
            // In a cluster the nodes share recovery's tables, each writing as itself.
            var tables = Self.recoveryTables
            if let cluster {
                tables.node = PostgresCluster.makeUID()
                tables.scope = cluster.transport.channelPrefix + "#"
            }
            let recovery =
                try recoveryStore == .postgres ? PostgresRecoveryStore(client: client, configuration: tables, logger: logger) : nil
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await transport?.prepare()
                    try await outbox?.prepare()
                    try await recovery?.prepare()
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    throw PostgresUnreachable()
                }
                try await group.next()
                group.cancelAll()
            }
            var tasks = [running]
            if let recovery {
                tasks.append(Task { await recovery.run() })
                guard await recovery.waitForLock() else {
                    for task in tasks.reversed() {
                        task.cancel()
                        await task.value
                    }
                    throw settings.problem(
                        HeraldSettings.recoveryStore,
                        "another herald keeps its recovery in this database (tables \(Self.recoveryTables.tablePrefix)_*); one herald per database, or use recovery-store = sqlite"
                    )
                }
            }
            let node = PostgresNode(
                cluster: transport.map { PostgresCluster(transport: $0, configuration: cluster!.heartbeats, recovery: recovery, logger: logger) },
                outbox: outbox,
                recovery: recovery, tasks: tasks)
            if let cluster = node.cluster {
                logger.info(
                    "Joined the cluster",
                    metadata: ["node": "\(cluster.uid)", "postgres": "\(configuration.host ?? "?"):\(configuration.port ?? 5432)"])
            }
            return node
        } catch let problem as HeraldSettings.Problem {
            throw problem
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
