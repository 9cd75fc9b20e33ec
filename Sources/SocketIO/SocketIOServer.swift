public import EngineIO
import Logging
import NIOConcurrencyHelpers
import NIOCore

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
    let core: Core

    /// Creates a server. `adapter` makes each namespace's adapter (in memory by default).
    public init(
        configuration: SocketIOConfiguration = .init(),
        adapter: @escaping SocketIOAdapterFactory = { InMemoryAdapter(sockets: $0) }
    ) {
        let core = Core(configuration: configuration, adapter: adapter)
        self.core = core
        self.engine = EngineIOServer(configuration: configuration.engine) { connection in
            SocketIOClient(connection: connection, server: core)
        }
    }

    /// The main namespace, `/`.
    public var sockets: SocketIONamespace { of("/") }

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

    /// Disconnects every socket (reason "server shutting down") and closes every connection, so
    /// that clients reconnect elsewhere.
    public func close() {
        for namespace in core.allNamespaces {
            for socket in namespace.sockets { socket.close(reason: .serverShuttingDown) }
        }
        engine.closeAll(reason: .serverShuttingDown)
    }
}

extension SocketIOServer {
    /// The namespace registry shared by the server and its clients.
    final class Core: Sendable {
        let configuration: SocketIOConfiguration
        let adapter: SocketIOAdapterFactory
        private let namespaces = NIOLockedValueBox<[String: SocketIONamespace]>([:])
        private let parents = NIOLockedValueBox<[SocketIOParentNamespace]>([])

        init(configuration: SocketIOConfiguration, adapter: @escaping SocketIOAdapterFactory) {
            self.configuration = configuration
            self.adapter = adapter
        }

        var logger: Logger { configuration.logger }

        func namespace(named name: String) -> SocketIONamespace {
            namespaces.withLockedValue { namespaces in
                if let namespace = namespaces[name] { return namespace }
                let namespace = SocketIONamespace(name: name, adapter: adapter, logger: logger)
                namespaces[name] = namespace
                return namespace
            }
        }

        /// The namespace a client may connect to: an existing one, or a new child of a matching parent.
        func namespace(named name: String, auth: SocketIOValue?) -> SocketIONamespace? {
            if let namespace = namespaces.withLockedValue({ $0[name] }) { return namespace }
            for parent in parents.withLockedValue({ $0 }) where parent.matches(name, auth) {
                return namespaces.withLockedValue { namespaces in
                    if let namespace = namespaces[name] { return namespace }
                    let namespace = SocketIONamespace(name: name, adapter: adapter, logger: logger, parent: parent.template)
                    namespaces[name] = namespace
                    parent.addChild(namespace)
                    return namespace
                }
            }
            return nil
        }

        func addParent(_ parent: SocketIOParentNamespace) {
            parents.withLockedValue { $0.append(parent) }
        }

        var allNamespaces: [SocketIONamespace] {
            namespaces.withLockedValue { Array($0.values) }
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
        self.template = SocketIONamespace(name: "<dynamic>", adapter: server.adapter, logger: server.logger)
    }

    func addChild(_ namespace: SocketIONamespace) {
        children.withLockedValue { $0.append(namespace) }
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
