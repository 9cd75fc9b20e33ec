import NIOConcurrencyHelpers

/// The sockets of one namespace on this server, by id: what an adapter resolves ids against.
public final class SocketIOLocalSockets: Sendable {
    /// The namespace's name.
    public let namespace: String
    private let sockets = NIOLockedValueBox<[String: SocketIOSocket]>([:])

    init(namespace: String) {
        self.namespace = namespace
    }

    /// The sockets with the given ids that are connected here.
    public func sockets(ids: some Collection<String>) -> [SocketIOSocket] {
        sockets.withLockedValue { sockets in
            var found: [SocketIOSocket] = []
            found.reserveCapacity(ids.count)
            for id in ids {
                if let socket = sockets[id] { found.append(socket) }
            }
            return found
        }
    }

    /// The socket with the given id, if it is connected here.
    public func socket(id: String) -> SocketIOSocket? {
        sockets.withLockedValue { $0[id] }
    }

    /// Whether a socket with this id is connected here.
    public func contains(id: String) -> Bool {
        sockets.withLockedValue { $0[id] != nil }
    }

    /// Every socket connected here.
    public var all: [SocketIOSocket] {
        sockets.withLockedValue { Array($0.values) }
    }

    /// How many sockets are connected here.
    public var count: Int {
        sockets.withLockedValue { $0.count }
    }

    func insert(_ socket: SocketIOSocket) {
        sockets.withLockedValue { $0[socket.id] = socket }
    }

    func remove(_ socket: SocketIOSocket) {
        sockets.withLockedValue { _ = $0.removeValue(forKey: socket.id) }
    }
}

/// Makes the adapter of a namespace from the namespace's local sockets.
public typealias SocketIOAdapterFactory = @Sendable (SocketIOLocalSockets) -> any SocketIOAdapter
