import EngineIO
import NIOConcurrencyHelpers
import NIOCore

/// The adapter of a single server: rooms are kept in memory and broadcasts reach local sockets.
public final class InMemoryAdapter: SocketIOAdapter {
    private struct State {
        var rooms: [String: Set<String>] = [:]
        var socketRooms: [String: Set<String>] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let sockets: SocketIOLocalSockets

    /// Creates the adapter of the namespace whose sockets are `sockets`.
    public init(sockets: SocketIOLocalSockets) {
        self.sockets = sockets
    }

    public func addAll(_ socketID: String, rooms: Set<String>) {
        state.withLockedValue { state in
            state.socketRooms[socketID, default: []].formUnion(rooms)
            for room in rooms { state.rooms[room, default: []].insert(socketID) }
        }
    }

    public func del(_ socketID: String, room: String) {
        state.withLockedValue { state in
            state.socketRooms[socketID]?.remove(room)
            state.rooms[room]?.remove(socketID)
            if state.rooms[room]?.isEmpty == true { state.rooms[room] = nil }
        }
    }

    public func delAll(_ socketID: String) {
        state.withLockedValue { state in
            guard let rooms = state.socketRooms.removeValue(forKey: socketID) else { return }
            for room in rooms {
                state.rooms[room]?.remove(socketID)
                if state.rooms[room]?.isEmpty == true { state.rooms[room] = nil }
            }
        }
    }

    public func rooms(of socketID: String) -> Set<String> {
        state.withLockedValue { $0.socketRooms[socketID] ?? [] }
    }

    public func roomSizes() -> [(name: String, size: Int)] {
        state.withLockedValue { $0.rooms.map { ($0.key, $0.value.count) } }
    }

    public func socketIDs(_ options: SocketIOBroadcastOptions) -> Set<String> {
        state.withLockedValue { state in
            var selected: Set<String>
            if options.rooms.isEmpty {
                selected = Set(state.socketRooms.keys)
            } else {
                selected = []
                for room in options.rooms { selected.formUnion(state.rooms[room] ?? []) }
            }
            for room in options.except {
                selected.subtract(state.rooms[room] ?? [])
            }
            return selected
        }
    }

    private func selectedSockets(_ options: SocketIOBroadcastOptions) -> [SocketIOSocket] {
        // A broadcast to everyone needs no room lookups.
        if options.rooms.isEmpty, options.except.isEmpty { return sockets.all }
        return sockets.sockets(ids: socketIDs(options))
    }

    @discardableResult
    public func broadcast(_ packet: SocketIOOutboundPacket, options: SocketIOBroadcastOptions) -> Int {
        let recipients = selectedSockets(options)
        EngineIOConnection.broadcast(packet.frames, to: recipients.lazy.map(\.connection))
        return recipients.count
    }

    public func broadcastWithAck(
        _ packet: SocketIOOutboundPacket,
        ackID: Int,
        options: SocketIOBroadcastOptions,
        expect: @escaping @Sendable (Int) -> Void,
        respond: @escaping @Sendable ([SocketIOValue]) -> Void
    ) {
        let sockets = selectedSockets(options)
        expect(sockets.count)
        for socket in sockets {
            socket.registerAck(id: ackID, timeout: options.timeout, ownTimer: false) { result in
                if case .success(let arguments) = result { respond(arguments) }
            }
        }
        EngineIOConnection.broadcast(packet.frames, to: sockets.lazy.map(\.connection))
        if let timeout = options.timeout, let first = sockets.first {
            Self.expireAcks(ackID, of: sockets, after: timeout, timerLoop: first.eventLoop)
        }
    }

    /// One timer for a whole broadcast: at its deadline, each event loop forgets the acks its
    /// sockets did not send, in one hop per loop.
    private static func expireAcks(_ ackID: Int, of sockets: [SocketIOSocket], after timeout: Duration, timerLoop: any EventLoop) {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, sockets: [SocketIOSocket])] = [:]
        for socket in sockets {
            byLoop[ObjectIdentifier(socket.eventLoop), default: (socket.eventLoop, [])].sockets.append(socket)
        }
        let groups = Array(byLoop.values)
        timerLoop.scheduleTask(in: TimeAmount(timeout)) {
            for group in groups {
                group.loop.execute {
                    for socket in group.sockets { socket.expireAck(id: ackID) }
                }
            }
        }
    }

    public func fetchSockets(_ options: SocketIOBroadcastOptions) async throws -> [SocketIORemoteSocket] {
        selectedSockets(options).map { socket in
            SocketIORemoteSocket(id: socket.id, handshake: socket.handshake, rooms: rooms(of: socket.id), data: socket.data, local: socket)
        }
    }

    public func addSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>) {
        for id in socketIDs(options) { addAll(id, rooms: rooms) }
    }

    public func delSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>) {
        for id in socketIDs(options) {
            for room in rooms { del(id, room: room) }
        }
    }

    public func disconnectSockets(_ options: SocketIOBroadcastOptions, close: Bool) {
        for socket in selectedSockets(options) { socket.disconnect(close: close) }
    }
}
