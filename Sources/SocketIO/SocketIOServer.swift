public import EngineIO
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// A Socket.IO v5 server: namespaces, sockets, rooms, broadcasts and acknowledgements over an
/// Engine.IO v4 server.
///
/// ```swift
/// let io = SocketIOServer()
/// io.onConnection { socket in
///     socket.on("chat") { event in
///         socket.broadcast.emit("chat", arguments: event.arguments)
///     }
/// }
/// ```
/// Mount it on an HTTP server with `SocketIOHummingbird`.
public final class SocketIOServer: Sendable {
    /// The server's settings.
    public var configuration: SocketIOConfiguration { core.configuration }
    /// The Engine.IO server underneath.
    public let engine: EngineIOServer
    /// What the server refused to keep: sockets whose events piled up, namespaces removed.
    public var statistics: SocketIOStatistics { core.statistics }
    let core: Core

    /// Creates a server. `adapter` makes each namespace's adapter (in memory by default).
    public init(
        configuration: SocketIOConfiguration = .init(),
        adapter: @escaping SocketIOAdapterFactory = { InMemoryAdapter(sockets: $0) }
    ) {
        let engineStatistics = EngineIOStatistics()
        let core = Core(configuration: configuration, adapter: adapter, backlog: engineStatistics.broadcastBacklog)
        self.core = core
        self.engine = EngineIOServer(configuration: configuration.engine, statistics: engineStatistics) { connection in
            SocketIOClient(connection: connection, server: core)
        }
        // The main namespace exists from the start, as in the reference: its adapter takes part
        // in a cluster before any client comes.
        _ = core.namespace(named: "/")
    }

    /// The main namespace, `/`.
    public var sockets: SocketIONamespace { of("/") }

    /// Every namespace that exists now, the dynamic ones made so far included, by name.
    public var namespaces: [SocketIONamespace] { core.namespaces.sorted { $0.name < $1.name } }

    /// The namespace with the given name, created if needed.
    public func of(_ name: String) -> SocketIONamespace {
        core.namespace(named: name.hasPrefix("/") ? name : "/" + name)
    }

    /// A dynamic namespace: every name (and auth payload) that `matches` accepts becomes a
    /// namespace on first connection. Middlewares and connection handlers added to the returned
    /// parent apply to each of them; emitting on the parent reaches all of them.
    public func of(matching matches: @escaping @Sendable (String, SocketIOValue?) -> Bool) -> SocketIOParentNamespace {
        let parent = SocketIOParentNamespace(server: core, matches: matches)
        core.addParent(parent)
        return parent
    }

    /// Adds a middleware to the main namespace.
    public func use(_ middleware: @escaping SocketIOMiddleware) { sockets.use(middleware) }

    /// Adds a connection handler to the main namespace.
    public func onConnection(_ handler: @escaping SocketIOConnectionHandler) { sockets.onConnection(handler) }

    /// Targets rooms of the main namespace.
    public func to(_ rooms: String...) -> SocketIOBroadcastOperator { sockets.all.to(rooms) }

    /// Leaves out rooms of the main namespace.
    public func except(_ rooms: String...) -> SocketIOBroadcastOperator { sockets.all.except(rooms) }

    /// Emits to every socket of the main namespace.
    public func emit(_ event: String, _ arguments: SocketIOValue...) { sockets.emit(event, arguments: arguments) }

    /// Targets this server's sockets of the main namespace only, not the other servers' of a cluster.
    public var local: SocketIOBroadcastOperator { sockets.local }

    /// Emits an event of the main namespace to the other servers of the cluster.
    public func serverSideEmit(_ event: String, _ arguments: SocketIOValue...) { sockets.serverSideEmit(event, arguments: arguments) }

    /// How many servers the cluster has (1 for a single server).
    public func serverCount() -> Int { sockets.serverCount() }

    /// The sessions kept for clients that went away, and the events kept for replay in all
    /// namespaces (connection state recovery; zero when it is off).
    public var recoveryState: (sessions: Int, events: Int) {
        (core.sessions?.count() ?? 0, core.allNamespaces.reduce(0) { $0 + ($1.recoveryLog?.count ?? 0) })
    }

    /// Reads back what the configured ``SocketIOConnectionStateRecovery/store`` kept: the clients
    /// of the server that ran before on it can then come back, with the events they missed. Call
    /// it once, before the server takes connections; without a store it does nothing.
    public func restoreRecoveryState() async throws {
        try await core.restoreRecoveryState()
    }

    /// Returns once every event and session change so far is in the recovery store: call it
    /// after ``close()`` at shutdown, so that the sessions of the clients just disconnected are
    /// kept. Without a store it returns at once.
    public func flushRecoveryState() async {
        guard let writer = core.recoveryWriter else { return }
        if core.isClosed.load(ordering: .relaxed) {
            // The sockets close() disconnected leave on their event loops (after their
            // disconnect handlers): their sessions are written as they leave.
            let deadline = ContinuousClock.now + .seconds(5)
            while core.allNamespaces.contains(where: { $0.localSockets.count > 0 }), ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        await writer.flush()
    }

    /// Disconnects every socket (reason "server shutting down") and closes every connection, so
    /// that clients reconnect elsewhere.
    public func close() {
        core.isClosed.store(true, ordering: .relaxed)
        for namespace in core.allNamespaces { namespace.localSockets.closeAll(reason: .serverShuttingDown) }
        engine.closeAll(reason: .serverShuttingDown)
    }
}

extension SocketIOServer {
    /// The namespace registry shared by the server and its clients.
    final class Core: Sendable {
        let configuration: SocketIOConfiguration
        let adapter: SocketIOAdapterFactory
        let statistics = SocketIOStatistics()
        /// The bytes of broadcasts waiting for event loops, shared with the engine's fan-out.
        let backlog: EngineIOBroadcastBacklog
        /// The sessions of clients that went away, kept for recovery when it is on.
        let sessions: SocketIOSessionTable?
        /// Writes events and sessions to the recovery store, when one is configured.
        let recoveryWriter: SocketIORecoveryWriter?
        /// Whether ``SocketIOServer/close()`` was called.
        let isClosed = Atomic<Bool>(false)
        /// Events read back from the store for namespaces not created yet (dynamic children).
        private let restoredEvents = NIOLockedValueBox<[String: [SocketIOStoredEvent]]>([:])
        private let registry = NIOLockedValueBox(Registry())
        private let parents = NIOLockedValueBox<[SocketIOParentNamespace]>([])

        /// The namespaces by name, and how many sockets are on their way into each (between
        /// the CONNECT packet and the end of the middlewares): a child namespace is removed only
        /// when it has neither sockets nor sockets on their way.
        private struct Registry {
            var namespaces: [String: SocketIONamespace] = [:]
            var connecting: [String: Int] = [:]
        }

        init(configuration: SocketIOConfiguration, adapter: @escaping SocketIOAdapterFactory, backlog: EngineIOBroadcastBacklog) {
            self.configuration = configuration
            self.adapter = adapter
            self.backlog = backlog
            self.sessions = configuration.connectionStateRecovery.map {
                SocketIOSessionTable(window: $0.maxDisconnectionDuration, capacity: $0.maxSessions)
            }
            self.recoveryWriter = configuration.connectionStateRecovery.flatMap { recovery in
                recovery.store.map { SocketIORecoveryWriter(store: $0, window: recovery.maxDisconnectionDuration, logger: configuration.logger) }
            }
        }

        /// The recovery log of a new namespace, with what the store kept for it.
        private func makeRecoveryLog(for name: String) -> SocketIORecoveryLog? {
            guard let recovery = configuration.connectionStateRecovery else { return nil }
            let log = SocketIORecoveryLog(
                namespace: name, window: recovery.maxDisconnectionDuration, maxBytes: recovery.maxLogBytes, writer: recoveryWriter)
            if let events = restoredEvents.withLockedValue({ $0.removeValue(forKey: name) }) { log.restore(events) }
            return log
        }

        /// Reads back what the store kept: sessions into the table, events into the logs of the
        /// namespaces that exist, and kept for those created later.
        func restoreRecoveryState() async throws {
            guard let recovery = configuration.connectionStateRecovery, let store = recovery.store, let sessions else { return }
            let since = Date() - TimeInterval(recovery.maxDisconnectionDuration.components.seconds)
            let snapshot = try await store.load(since: since)
            sessions.restore(snapshot.sessions)
            let byNamespace = Dictionary(grouping: snapshot.events, by: \.namespace)
            let existing = registry.withLockedValue { $0.namespaces }
            for (name, events) in byNamespace {
                if let log = existing[name]?.recoveryLog {
                    log.restore(events)
                } else {
                    restoredEvents.withLockedValue { $0[name] = events }
                }
            }
            logger.info(
                "Restored connection state recovery",
                metadata: ["sessions": "\(snapshot.sessions.count)", "events": "\(snapshot.events.count)"])
        }

        var logger: Logger { configuration.logger }

        var namespaces: [SocketIONamespace] { registry.withLockedValue { Array($0.namespaces.values) } }

        func namespace(named name: String) -> SocketIONamespace {
            registry.withLockedValue { registry in
                if let namespace = registry.namespaces[name] { return namespace }
                let namespace = SocketIONamespace(
                    name: name, adapter: adapter, logger: logger, backlog: backlog, parser: configuration.parser,
                    recoveryLog: makeRecoveryLog(for: name))
                registry.namespaces[name] = namespace
                return namespace
            }
        }

        /// The namespace a client is connecting to: an existing one, or a new child of a matching
        /// parent. Each namespace returned must be given back with ``connectFinished(_:)``.
        func beginConnect(to name: String, auth: SocketIOValue?) -> SocketIONamespace? {
            let existing = registry.withLockedValue { registry -> SocketIONamespace? in
                guard let namespace = registry.namespaces[name] else { return nil }
                registry.connecting[name, default: 0] += 1
                return namespace
            }
            if let existing { return existing }
            for parent in parents.withLockedValue({ $0 }) where parent.matches(name, auth) {
                return registry.withLockedValue { registry in
                    registry.connecting[name, default: 0] += 1
                    if let namespace = registry.namespaces[name] { return namespace }
                    let namespace = SocketIONamespace(
                        name: name, adapter: adapter, logger: logger, backlog: backlog, parser: configuration.parser,
                        recoveryLog: makeRecoveryLog(for: name), parent: parent.template)
                    registry.namespaces[name] = namespace
                    parent.addChild(namespace)
                    return namespace
                }
            }
            return nil
        }

        /// A socket connecting to `namespace` was admitted (it is in the namespace's sockets) or refused.
        func connectFinished(_ namespace: SocketIONamespace) {
            registry.withLockedValue { registry in
                let left = (registry.connecting[namespace.name] ?? 1) - 1
                registry.connecting[namespace.name] = left > 0 ? left : nil
            }
            removeIfEmpty(namespace)
        }

        /// Removes a child namespace that has no socket and none connecting, when configured to.
        func removeIfEmpty(_ namespace: SocketIONamespace) {
            guard configuration.cleanupEmptyChildNamespaces, let template = namespace.parent else { return }
            let removed = registry.withLockedValue { registry -> Bool in
                guard registry.namespaces[namespace.name] === namespace, registry.connecting[namespace.name] == nil,
                    namespace.localSockets.count == 0
                else { return false }
                registry.namespaces[namespace.name] = nil
                return true
            }
            guard removed else { return }
            for parent in parents.withLockedValue({ $0 }) where parent.template === template { parent.removeChild(namespace) }
            statistics.emptyNamespaceRemoved()
        }

        func addParent(_ parent: SocketIOParentNamespace) {
            parents.withLockedValue { $0.append(parent) }
        }

        var allNamespaces: [SocketIONamespace] {
            registry.withLockedValue { Array($0.namespaces.values) }
        }
    }
}

/// The parent of dynamic namespaces, made by ``SocketIOServer/of(matching:)``.
public final class SocketIOParentNamespace: Sendable {
    let matches: @Sendable (String, SocketIOValue?) -> Bool
    /// Holds the middlewares and connection handlers shared by the children.
    let template: SocketIONamespace
    private let children = NIOLockedValueBox<[SocketIONamespace]>([])

    init(server: SocketIOServer.Core, matches: @escaping @Sendable (String, SocketIOValue?) -> Bool) {
        self.matches = matches
        self.template = SocketIONamespace(
            name: "<dynamic>", adapter: server.adapter, logger: server.logger, backlog: server.backlog, parser: server.configuration.parser)
    }

    func addChild(_ namespace: SocketIONamespace) {
        children.withLockedValue { $0.append(namespace) }
    }

    func removeChild(_ namespace: SocketIONamespace) {
        children.withLockedValue { $0.removeAll { $0 === namespace } }
    }

    /// The namespaces created so far.
    public var namespaces: [SocketIONamespace] { children.withLockedValue { $0 } }

    /// Adds a middleware for every child namespace.
    public func use(_ middleware: @escaping SocketIOMiddleware) { template.use(middleware) }

    /// Adds a connection handler for every child namespace.
    public func onConnection(_ handler: @escaping SocketIOConnectionHandler) { template.onConnection(handler) }

    /// Emits to every socket of every child namespace.
    public func emit(_ event: String, _ arguments: SocketIOValue...) {
        for namespace in namespaces { namespace.emit(event, arguments: arguments) }
    }
}
