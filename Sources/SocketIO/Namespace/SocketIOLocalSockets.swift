import EngineIO
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The sockets of one namespace on this server: one ``SocketIORoomShard`` per event loop, owned
/// by that loop, holding the loop's sockets by id and by room.
///
/// A socket's shard is its connection's loop, and only that loop changes it (joins and leaves hop
/// there, in call order). A broadcast is one hop per loop carrying the once-encoded frames and the
/// selection; each loop selects and writes its own sockets with no lock per recipient. Because a
/// join and a broadcast made one after the other by the same task reach a loop in that order, the
/// broadcast reaches the socket that joined. Readers from other threads (rooms, sockets, room
/// sizes) hop to the loops and gather.
///
/// This is local delivery; a cluster adapter (``SocketIOAdapter``) carries the same operations to
/// the other servers and applies theirs here.
public final class SocketIOLocalSockets: Sendable {
    typealias Shard = SocketIORoomShard<SocketIOSocket>

    private struct LoopShard: Sendable {
        let loop: any EventLoop
        let box: NIOLoopBoundBox<Shard>
    }

    /// The namespace's name.
    public let namespace: String
    let backlog: EngineIOBroadcastBacklog
    /// The shards by loop: looked up once per loop per operation, never per recipient.
    private let shards = NIOLockedValueBox<[ObjectIdentifier: LoopShard]>([:])
    private let socketCount = Atomic<Int>(0)
    private let ackIDs = Atomic<Int>(0)
    /// What this server does with the events other servers of the cluster emit to it.
    public let serverSideEvents = SocketIOServerSideEvents()
    /// Told of each broadcast of another server once it was written here (``broadcastFromPeer(_:options:delivered:)``).
    private let peerBroadcastObservers = Mutex<[@Sendable (SocketIOPeerBroadcast) -> Void]>([])
    private let roomObservers = Mutex<[@Sendable (SocketIORoomChange) -> Void]>([])
    private let hasRoomObservers = Atomic<Bool>(false)

    /// The namespace's events a recovering socket may have missed, when recovery is on.
    let recoveryLog: SocketIORecoveryLog?

    /// The packet format of the server's clients, in which broadcasts are encoded.
    public let parser: SocketIOParser

    init(namespace: String, backlog: EngineIOBroadcastBacklog, parser: SocketIOParser = .json, recoveryLog: SocketIORecoveryLog? = nil) {
        self.namespace = namespace
        self.parser = parser
        self.backlog = backlog
        self.recoveryLog = recoveryLog
    }

    /// How many sockets are connected here.
    public var count: Int { socketCount.load(ordering: .relaxed) }

    /// A new acknowledgement id, unique within the namespace on this server.
    func nextAckID() -> Int { ackIDs.wrappingAdd(1, ordering: .relaxed).oldValue }

    private func shard(on loop: any EventLoop) -> NIOLoopBoundBox<Shard> {
        shards.withLockedValue { shards in
            if let shard = shards[ObjectIdentifier(loop)] { return shard.box }
            let box = NIOLoopBoundBox.makeBoxSendingValue(Shard(), eventLoop: loop)
            shards[ObjectIdentifier(loop)] = LoopShard(loop: loop, box: box)
            return box
        }
    }

    /// Makes `loop`'s shard now (from any thread), so that every broadcast from now on visits
    /// `loop`: a socket about to be admitted there is then reached by each broadcast queued
    /// behind its admission, even when it is the loop's first socket.
    func prepare(_ loop: any EventLoop) {
        _ = shard(on: loop)
    }

    private var allShards: [LoopShard] { shards.withLockedValue { Array($0.values) } }

    // MARK: Changes, on the socket's loop

    func insert(_ socket: SocketIOSocket, rooms: Set<String>) {
        shard(on: socket.eventLoop).value.insert(socket, id: socket.id, rooms: rooms)
        socketCount.add(1, ordering: .relaxed)
    }

    func join(_ socket: SocketIOSocket, _ rooms: Set<String>) {
        let joined = shard(on: socket.eventLoop).value.join(socket.id, rooms)
        if hasRoomObservers.load(ordering: .relaxed), !joined.isEmpty {
            for observer in roomObservers.withLock({ $0 }) {
                for room in joined { observer(SocketIORoomChange(socket: socket, room: room, joined: true)) }
            }
        }
    }

    func leave(_ socket: SocketIOSocket, _ room: String) {
        let left = shard(on: socket.eventLoop).value.leave(socket.id, room)
        if hasRoomObservers.load(ordering: .relaxed), left {
            for observer in roomObservers.withLock({ $0 }) { observer(SocketIORoomChange(socket: socket, room: room, joined: false)) }
        }
    }

    /// Calls `observer` each time a socket of this server joins or leaves a room (its own room on
    /// connect included), on the socket's event loop: for monitors, which must be quick.
    public func onRoomChange(_ observer: @escaping @Sendable (SocketIORoomChange) -> Void) {
        roomObservers.withLock { $0.append(observer) }
        hasRoomObservers.store(true, ordering: .relaxed)
    }

    func remove(_ socket: SocketIOSocket) {
        if shard(on: socket.eventLoop).value.remove(socket.id) != nil { socketCount.subtract(1, ordering: .relaxed) }
    }

    func rooms(of socket: SocketIOSocket) -> Set<String> {
        shard(on: socket.eventLoop).value.rooms(of: socket.id)
    }

    // MARK: Per-loop operations

    /// Runs `body` on every loop (or only on `only`) with (a copy of) its shard, which `body` may
    /// change through the sockets it selects; the bytes count in the backlog until each loop ran
    /// it. Returns what each loop returned. `queued` runs it behind what is already queued on the
    /// loop even when called there (logged broadcasts keep their order on every loop that way).
    private func onEveryLoop<Result: Sendable>(
        backlogBytes bytes: Int = 0,
        queued: Bool = false,
        only: (any EventLoop)? = nil,
        _ body: @escaping @Sendable (Shard) -> Result
    ) -> [EventLoopFuture<Result>] {
        let shards = only.map { loop in allShards.filter { $0.loop === loop } } ?? allShards
        return shards.map { shard in
            if !queued, shard.loop.inEventLoop { return shard.loop.makeSucceededFuture(body(shard.box.value)) }
            backlog.add(bytes)
            return shard.loop.submit { [backlog] in
                defer { backlog.remove(bytes) }
                return body(shard.box.value)
            }
        }
    }

    private func gather<Result: Sendable>(_ futures: [EventLoopFuture<Result>]) async -> [Result] {
        var results: [Result] = []
        for future in futures {
            if let result = try? await future.get() { results.append(result) }
        }
        return results
    }

    /// Writes the frames to every selected socket, one hop per loop; `delivered` is called once
    /// with how many sockets they were written to, when every loop did.
    public func broadcast(_ packet: SocketIOOutboundPacket, options: SocketIOBroadcastOptions, delivered: (@Sendable (Int) -> Void)? = nil) {
        broadcast(packet, options: options, queued: false, only: nil, delivered: delivered)
    }

    /// Writes a broadcast another server of the cluster sent, as ``broadcast(_:options:delivered:)``,
    /// and tells the ``onPeerBroadcast(_:)`` observers once every loop wrote it.
    public func broadcastFromPeer(_ packet: SocketIOOutboundPacket, options: SocketIOBroadcastOptions, delivered: (@Sendable (Int) -> Void)? = nil) {
        let observers = peerBroadcastObservers.withLock { $0 }
        guard !observers.isEmpty else { return broadcast(packet, options: options, delivered: delivered) }
        broadcast(packet, options: options) { recipients in
            let broadcast = SocketIOPeerBroadcast(data: packet.packet?.data, rooms: options.rooms, recipients: recipients)
            for observer in observers { observer(broadcast) }
            delivered?(recipients)
        }
    }

    /// Logs and writes an event that a sequencing cluster gave its offset
    /// (``SocketIOSequencingAdapter``), when it is the namespace's next one; `fromPeer` when another
    /// server emitted it (the ``onPeerBroadcast(_:)`` observers are then told, with `data`, the
    /// event name and arguments, when given). `delivered` is
    /// called with the recipients once every loop wrote it. Without recovery the event is written
    /// as it comes.
    public func deliverSequenced(
        _ event: SocketIOStoredEvent, fromPeer: Bool, data: SocketIOValue? = nil, delivered: (@Sendable (Int) -> Void)? = nil
    ) -> SocketIOSequencedDelivery {
        var selection = SocketIOBroadcastOptions()
        (selection.rooms, selection.except) = (event.rooms, event.except)
        let options = selection
        let observers = fromPeer ? peerBroadcastObservers.withLock { $0 } : []
        @Sendable func write(_ packet: SocketIOOutboundPacket) {
            broadcast(packet, options: options, queued: true, only: nil) { recipients in
                if !observers.isEmpty {
                    let broadcast = SocketIOPeerBroadcast(data: data, rooms: options.rooms, recipients: recipients)
                    for observer in observers { observer(broadcast) }
                }
                delivered?(recipients)
            }
        }
        guard let recoveryLog else {
            write(SocketIOOutboundPacket(frames: event.payloads.map { EngineIOFrame(EngineIOPacket(.message, $0)) }))
            return .delivered
        }
        return recoveryLog.appendSequenced(event) { write($0) }
    }

    /// The cluster's sequence of this namespace stands at `last`: the next sequenced event is
    /// `last + 1` (call it once the events up to `last` were delivered).
    public func startSequence(after last: UInt64) {
        recoveryLog?.startSequence(after: last)
    }

    /// The offset of the last sequenced event logged, or of the newest event kept while the
    /// cluster's sequence is not known yet (0 without recovery or events).
    public var sequencePosition: UInt64 { recoveryLog?.sequencePosition ?? 0 }

    /// Calls `observer` for each broadcast of another server of the cluster, once it was written
    /// to this server's sockets (for statistics: it runs on an event loop, and must be quick).
    public func onPeerBroadcast(_ observer: @escaping @Sendable (SocketIOPeerBroadcast) -> Void) {
        peerBroadcastObservers.withLock { $0.append(observer) }
    }

    /// ``broadcast(_:options:delivered:)`` behind what is already queued on each loop (or on
    /// `only`): a broadcast of the recovery log, handed to the loops in offset order.
    func broadcast(
        _ packet: SocketIOOutboundPacket,
        options: SocketIOBroadcastOptions,
        queued: Bool,
        only: (any EventLoop)?,
        delivered: (@Sendable (Int) -> Void)?
    ) {
        let bytes = packet.frames.reduce(0) { $0 + $1.webSocketFrame.readableBytes }
        let frames = packet.frames
        let futures = onEveryLoop(backlogBytes: bytes, queued: queued, only: only) { shard in
            let recipients = shard.select(options)
            EngineIOConnection.broadcast(frames, to: recipients.lazy.map(\.connection))
            return recipients.count
        }
        guard let delivered else { return }
        guard let first = futures.first else { return delivered(0) }
        EventLoopFuture.whenAllComplete(futures, on: first.eventLoop).whenSuccess { results in
            delivered(results.reduce(0) { $0 + ((try? $1.get()) ?? 0) })
        }
    }

    /// Writes an event that asks for acknowledgements to the selected sockets, each waiting for
    /// its answer (`respond`) without a timer of its own. Returns the recipients by loop, for
    /// ``expireAcks(_:of:)`` when the broadcast's one timer fires.
    func broadcastWithAck(
        _ packet: SocketIOOutboundPacket,
        ackID: Int,
        options: SocketIOBroadcastOptions,
        respond: @escaping @Sendable ([SocketIOValue]) -> Void
    ) async -> [AckRecipients] {
        let frames = packet.frames
        return await gather(
            onEveryLoop { shard in
                let recipients = shard.select(options)
                for socket in recipients {
                    socket.registerAck(id: ackID, timeout: options.timeout, ownTimer: false) { result in
                        if case .success(let arguments) = result { respond(arguments) }
                    }
                }
                EngineIOConnection.broadcast(frames, to: recipients.lazy.map(\.connection))
                return AckRecipients(loop: recipients.first?.eventLoop, sockets: recipients)
            })
    }

    /// Asks the selected sockets to acknowledge an event another server broadcast (`data`: the
    /// event name and its arguments): `clientCount` is called once with how many were asked,
    /// `respond` with each answer; at the options' timeout (5 s when none) the answers still
    /// missing are forgotten.
    public func broadcastWithAck(
        _ data: SocketIOValue,
        options: SocketIOBroadcastOptions,
        clientCount: @escaping @Sendable (Int) -> Void,
        respond: @escaping @Sendable ([SocketIOValue]) -> Void
    ) {
        let id = nextAckID()
        let packet = SocketIOOutboundPacket(
            SocketIOPacket(type: .event, namespace: namespace, id: id, data: data), parser: parser, isVolatile: options.isVolatile)
        let timeout = options.timeout ?? .seconds(5)
        Task {
            let recipients = await broadcastWithAck(packet, ackID: id, options: options, respond: respond)
            clientCount(recipients.reduce(0) { $0 + $1.sockets.count })
            try? await Task.sleep(for: timeout)
            expireAcks(id, of: recipients)
        }
    }

    /// The sockets of one loop that were asked for an acknowledgement.
    struct AckRecipients: Sendable {
        let loop: (any EventLoop)?
        let sockets: [SocketIOSocket]
    }

    /// The broadcast that asked for ack `ackID` stopped waiting: each loop forgets the acks its
    /// sockets did not send, in one hop.
    func expireAcks(_ ackID: Int, of groups: [AckRecipients]) {
        for group in groups {
            guard let loop = group.loop else { continue }
            loop.execute {
                for socket in group.sockets { socket.expireAck(id: ackID) }
            }
        }
    }

    /// The ids of the selected sockets.
    public func socketIDs(_ options: SocketIOBroadcastOptions) async -> Set<String> {
        Set(await gather(onEveryLoop { $0.selectIDs(options) }).joined())
    }

    /// The selected sockets.
    public func sockets(_ options: SocketIOBroadcastOptions = .init()) async -> [SocketIOSocket] {
        Array(await gather(onEveryLoop { $0.select(options) }).joined())
    }

    /// The selected sockets with their rooms, as a bulk operation sees them.
    public func fetchSockets(_ options: SocketIOBroadcastOptions) async -> [SocketIORemoteSocket] {
        Array(
            await gather(
                onEveryLoop { shard in
                    shard.select(options).map { socket in
                        SocketIORemoteSocket(
                            id: socket.id, handshake: socket.handshake, rooms: shard.rooms(of: socket.id), data: socket.data, local: socket)
                    }
                }
            ).joined())
    }

    /// The socket with the given id, if it is connected here.
    public func socket(id: String) async -> SocketIOSocket? {
        await gather(onEveryLoop { $0.member(id: id) }).lazy.compactMap { $0 }.first
    }

    /// Each room of this server and how many local sockets are in it; the rooms named after a
    /// socket's own id are left out.
    public func roomSizes() async -> [(name: String, size: Int)] {
        let perLoop = await gather(
            onEveryLoop { shard in
                shard.roomSizes.filter { shard.member(id: $0.key) == nil }
            })
        return perLoop.reduce(into: [String: Int]()) { total, sizes in total.merge(sizes, uniquingKeysWith: +) }.map { ($0.key, $0.value) }
    }

    /// Makes the selected sockets join rooms.
    public func addSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>) {
        _ = onEveryLoop { shard in for socket in shard.select(options) { socket.join(rooms) } }
    }

    /// Makes the selected sockets leave rooms.
    public func delSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>) {
        _ = onEveryLoop { shard in
            for socket in shard.select(options) {
                for room in rooms { socket.leave(room) }
            }
        }
    }

    /// Disconnects the selected sockets; `close` also closes their connections.
    public func disconnectSockets(_ options: SocketIOBroadcastOptions, close: Bool) {
        _ = onEveryLoop { shard in for socket in shard.select(options) { socket.disconnect(close: close) } }
    }

    /// Closes every socket with `reason` (the server is shutting down).
    func closeAll(reason: SocketIODisconnectReason) {
        _ = onEveryLoop { shard in for socket in shard.all { socket.close(reason: reason) } }
    }
}

/// Makes the adapter of a namespace from the namespace's local sockets.
public typealias SocketIOAdapterFactory = @Sendable (SocketIOLocalSockets) -> any SocketIOAdapter

/// A broadcast another server of the cluster sent, as this server wrote it.
public struct SocketIOPeerBroadcast: Sendable {
    /// The packet's data: the event name, then its arguments.
    public let data: SocketIOValue?
    /// The rooms it went to (empty: every socket).
    public let rooms: Set<String>
    /// How many of this server's sockets it was written to.
    public let recipients: Int

    /// The event name.
    public var event: String { data?.arrayValue?.first?.stringValue ?? "" }
}

/// A socket that joined or left a room.
public struct SocketIORoomChange: Sendable {
    /// The socket.
    public let socket: SocketIOSocket
    /// The room.
    public let room: String
    /// Whether it joined (`false`: it left).
    public let joined: Bool
}
