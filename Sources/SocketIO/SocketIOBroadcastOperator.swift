import NIOConcurrencyHelpers
public import NIOCore

/// Selects sockets of a namespace (rooms, exceptions, flags) and sends to all of them. The packet
/// is encoded once and the same bytes are written to every recipient.
public struct SocketIOBroadcastOperator: Sendable {
    /// The namespace broadcast to.
    public let namespace: SocketIONamespace
    /// The selection and flags.
    public var options: SocketIOBroadcastOptions

    init(namespace: SocketIONamespace, options: SocketIOBroadcastOptions = .init()) {
        self.namespace = namespace
        self.options = options
    }

    /// Adds rooms to target.
    public func to(_ rooms: String...) -> Self { to(rooms) }

    /// Adds rooms to target.
    public func to(_ rooms: some Sequence<String>) -> Self {
        var copy = self
        copy.options.rooms.formUnion(rooms)
        return copy
    }

    /// Adds rooms to target (same as ``to(_:)-(String...)``).
    public func `in`(_ rooms: String...) -> Self { to(rooms) }

    /// Leaves out sockets in these rooms.
    public func except(_ rooms: String...) -> Self { except(rooms) }

    /// Leaves out sockets in these rooms.
    public func except(_ rooms: some Sequence<String>) -> Self {
        var copy = self
        copy.options.except.formUnion(rooms)
        return copy
    }

    /// Allows the packet to be dropped for clients that are not ready for it.
    public var volatile: Self {
        var copy = self
        copy.options.isVolatile = true
        return copy
    }

    /// Reaches this server's sockets only, not those of the other servers of a cluster.
    public var local: Self {
        var copy = self
        copy.options.isLocal = true
        return copy
    }

    /// The adapter that carries the operation to the other servers; `nil` for ``local``.
    private var remote: (any SocketIOAdapter)? { options.isLocal ? nil : namespace.adapter }

    /// Sets how long ``emitWithAck(_:_:)`` waits for the answers.
    public func timeout(_ timeout: Duration) -> Self {
        var copy = self
        copy.options.timeout = timeout
        return copy
    }

    /// Emits an event to the selected sockets.
    public func emit(_ event: String, _ arguments: SocketIOValue...) {
        emit(event, arguments: arguments)
    }

    /// Emits an event to the selected sockets; `delivered` is called once every event loop wrote
    /// it and the adapter handed it to the other servers.
    public func emit(_ event: String, arguments: [SocketIOValue], delivered: (@Sendable (SocketIODelivery) -> Void)? = nil) {
        guard SocketIOSocket.checkEventName(event, logger: namespace.logger) else {
            delivered?(SocketIODelivery(localRecipients: 0, reachedCluster: true))
            return
        }
        let (name, parser, isVolatile) = (namespace.name, namespace.localSockets.parser, options.isVolatile)
        send(delivered: delivered) { offset in
            SocketIOOutboundPacket(event: event, arguments: arguments, namespace: name, parser: parser, isVolatile: isVolatile, offset: offset)
        }
    }

    /// Emits an event whose arguments are the given JSON array, spliced into the packet without
    /// being parsed: what a gateway forwarding queue messages wants. `delivered` is called once
    /// every event loop wrote it (with a recovery store, once the store kept it first) and the
    /// adapter handed it to the other servers.
    ///
    /// With recovery on, `messageID` names the queue message the event comes from: a message
    /// whose event is still in the recovery log (delivered again after a crash, say) is not
    /// broadcast a second time, and the call returns `false` without calling `delivered`.
    @discardableResult
    public func emit(
        _ event: String, jsonArguments: ByteBuffer, messageID: String? = nil, delivered: (@Sendable (SocketIODelivery) -> Void)? = nil
    ) -> Bool {
        guard SocketIOSocket.checkEventName(event, logger: namespace.logger) else {
            delivered?(SocketIODelivery(localRecipients: 0, reachedCluster: true))
            return true
        }
        let (name, parser, isVolatile) = (namespace.name, namespace.localSockets.parser, options.isVolatile)
        return Self.send(namespace: namespace, options: options, only: nil, messageID: messageID, delivered: delivered) { offset in
            SocketIOOutboundPacket(
                event: event, jsonArguments: jsonArguments, namespace: name, parser: parser, isVolatile: isVolatile, offset: offset)
        }
    }

    /// Local sockets first (one hop per event loop), then the other servers through the adapter.
    /// With recovery on, a packet that can be replayed (not volatile) is logged first, and gets
    /// its offset from the log: `packet` builds it with the offset, or without (`nil`).
    private func send(delivered: (@Sendable (SocketIODelivery) -> Void)?, _ packet: @escaping @Sendable (String?) -> SocketIOOutboundPacket) {
        Self.send(namespace: namespace, options: options, only: nil, delivered: delivered, packet)
    }

    /// `only` limits the delivery to one loop's sockets, and to this server: a socket's emit to
    /// itself. Returns `false` when the log already holds an event of `messageID` (nothing sent).
    @discardableResult
    static func send(
        namespace: SocketIONamespace,
        options: SocketIOBroadcastOptions,
        only loop: (any EventLoop)?,
        messageID: String? = nil,
        delivered: (@Sendable (SocketIODelivery) -> Void)?,
        _ packet: @escaping @Sendable (String?) -> SocketIOOutboundPacket
    ) -> Bool {
        let toCluster = loop == nil && !options.isLocal
        // A queue message whose event the cluster did not get comes again: it is then no
        // duplicate, and is broadcast again.
        let delivered = delivered.map { delivered in
            { @Sendable (delivery: SocketIODelivery) in
                if !delivery.reachedCluster, let messageID { namespace.recoveryLog?.forget(messageID: messageID) }
                delivered(delivery)
            }
        }
        @Sendable func deliver(_ outbound: SocketIOOutboundPacket, queued: Bool) {
            let join = delivered.map { SocketIODeliveryJoin(toCluster: toCluster, $0) }
            var local: (@Sendable (Int) -> Void)?
            var published: (@Sendable (Bool) -> Void)?
            if let join {
                local = { join.local($0) }
                published = { join.cluster($0) }
            }
            namespace.localSockets.broadcast(outbound, options: options, queued: queued, only: loop, delivered: local)
            if toCluster { namespace.adapter.broadcast(outbound, options: options, published: published) }
        }
        guard let log = namespace.recoveryLog, !options.isVolatile else {
            deliver(packet(nil), queued: false)
            return true
        }
        if let sequencer = namespace.adapter as? any SocketIOSequencingAdapter, sequencer.isSequencing {
            // The cluster's order has no place for what only this server writes: no offset.
            guard toCluster else {
                deliver(packet(nil), queued: false)
                return true
            }
            let broadcast = SocketIOSequencedBroadcast(
                options: options, messageID: messageID, packet: { packet(SocketIORecoveryOffset.text($0)) }, plainPacket: packet(nil))
            sequencer.broadcastSequenced(broadcast) { outcome in
                switch outcome {
                case .delivered(let recipients): delivered?(SocketIODelivery(localRecipients: recipients, reachedCluster: true))
                case .duplicate: delivered?(SocketIODelivery(localRecipients: 0, reachedCluster: true, wasDuplicate: true))
                case .failed: delivered?(SocketIODelivery(localRecipients: 0, reachedCluster: false))
                }
            }
            return true
        }
        return log.append(options, messageID: messageID, packet: packet) { deliver($0, queued: true) }
    }

    /// Emits an event and waits for every selected client's acknowledgement, up to the timeout
    /// (5 seconds when none was set). Returns each client's answer arguments; on timeout throws a
    /// ``SocketIOAckError`` carrying the answers that did arrive.
    public func emitWithAck(_ event: String, _ arguments: SocketIOValue...) async throws -> [[SocketIOValue]] {
        try await emitWithAck(event, arguments: arguments)
    }

    /// Emits an event and waits for every selected client's acknowledgement.
    public func emitWithAck(_ event: String, arguments: [SocketIOValue]) async throws -> [[SocketIOValue]] {
        guard SocketIOSocket.checkEventName(event, logger: namespace.logger) else { return [] }
        let id = namespace.nextAckID()
        let packet = SocketIOPacket(type: .event, namespace: namespace.name, id: id, data: .array([.string(event)] + arguments))
        let collector = AckCollector()
        var options = self.options
        options.timeout = options.timeout ?? .seconds(5)
        let timeout = options.timeout!
        let outbound = SocketIOOutboundPacket(packet, parser: namespace.localSockets.parser, isVolatile: options.isVolatile)
        let (local, remote) = (namespace.localSockets, remote)
        return try await withCheckedThrowingContinuation { continuation in
            collector.start(continuation)
            Task { [options] in
                let recipients = await local.broadcastWithAck(outbound, ackID: id, options: options) { collector.respond($0) }
                collector.expect(recipients.reduce(0) { $0 + $1.sockets.count })
                let servers =
                    remote?.broadcastWithAck(
                        outbound, ackID: id, options: options, expect: { collector.expectServer($0) }, respond: { collector.respond($0) }) ?? 0
                collector.serversAsked(servers)
                // The broadcast's one timer: at its end, the loops forget the acks still pending.
                collector.armTimeout(
                    Task {
                        try? await Task.sleep(for: timeout)
                        collector.timeOut()
                        local.expireAcks(id, of: recipients)
                    })
            }
        }
    }

    /// Makes the selected sockets join rooms.
    public func socketsJoin(_ rooms: String...) { socketsJoin(rooms) }
    /// Makes the selected sockets join rooms.
    public func socketsJoin(_ rooms: [String]) {
        namespace.localSockets.addSockets(options, rooms: Set(rooms))
        remote?.addSockets(options, rooms: Set(rooms))
    }
    /// Makes the selected sockets leave rooms.
    public func socketsLeave(_ rooms: String...) { socketsLeave(rooms) }
    /// Makes the selected sockets leave rooms.
    public func socketsLeave(_ rooms: [String]) {
        namespace.localSockets.delSockets(options, rooms: Set(rooms))
        remote?.delSockets(options, rooms: Set(rooms))
    }
    /// Disconnects the selected sockets; `close` also closes their underlying connections.
    public func disconnectSockets(close: Bool = false) {
        namespace.localSockets.disconnectSockets(options, close: close)
        remote?.disconnectSockets(options, close: close)
    }
    /// The selected sockets, across the cluster: this server's first.
    public func fetchSockets() async throws -> [SocketIORemoteSocket] {
        try await namespace.localSockets.fetchSockets(options) + (remote?.fetchSockets(options) ?? [])
    }
}

/// Gathers the answers to a broadcast with acknowledgement and resumes its caller once.
private final class AckCollector: Sendable {
    private struct State {
        var continuation: CheckedContinuation<[[SocketIOValue]], any Error>?
        var expected = 0
        /// How many other servers were asked (`nil` until known), and how many told their count.
        var serversAsked: Int?
        var serversCounted = 0
        var responses: [[SocketIOValue]] = []
        var timeout: Task<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())

    func start(_ continuation: CheckedContinuation<[[SocketIOValue]], any Error>) {
        state.withLockedValue { $0.continuation = continuation }
    }

    /// Keeps the timeout task, cancelled as soon as the answers are complete.
    func armTimeout(_ task: Task<Void, Never>) {
        let done = state.withLockedValue { state in
            state.timeout = task
            return state.continuation == nil
        }
        if done { task.cancel() }
    }

    func expect(_ count: Int) {
        state.withLockedValue { $0.expected += count }
    }

    /// `servers` other servers were asked; each reports its count with ``expectServer(_:)``.
    func serversAsked(_ servers: Int) {
        finish { state in
            state.serversAsked = servers
            return Self.complete(state)
        }
    }

    /// Another server asked `count` of its clients.
    func expectServer(_ count: Int) {
        finish { state in
            state.expected += count
            state.serversCounted += 1
            return Self.complete(state)
        }
    }

    func respond(_ arguments: [SocketIOValue]) {
        finish { state in
            state.responses.append(arguments)
            return Self.complete(state)
        }
    }

    private static func complete(_ state: State) -> Result<[[SocketIOValue]], any Error>? {
        guard state.serversAsked == state.serversCounted, state.responses.count >= state.expected else { return nil }
        return .success(state.responses)
    }

    func timeOut() {
        finish { state in .failure(SocketIOAckError.timeout(partial: state.responses)) }
    }

    private func finish(_ update: (inout State) -> Result<[[SocketIOValue]], any Error>?) {
        let resume = state.withLockedValue { state -> (CheckedContinuation<[[SocketIOValue]], any Error>, Result<[[SocketIOValue]], any Error>)? in
            guard let continuation = state.continuation, let result = update(&state) else { return nil }
            state.continuation = nil
            state.timeout?.cancel()
            return (continuation, result)
        }
        if let (continuation, result) = resume { continuation.resume(with: result) }
    }
}

/// What became of a broadcast, once every event loop wrote it and the adapter published it.
public struct SocketIODelivery: Sendable, Hashable {
    /// How many of this server's sockets it was written to.
    public var localRecipients: Int
    /// Whether the adapter handed it to the other servers of the cluster: `true` without a
    /// cluster and for ``SocketIOBroadcastOperator/local`` broadcasts, `false` when the cluster
    /// could not be reached (then the other servers' clients did not get it).
    public var reachedCluster: Bool
    /// Whether the cluster already held an event of the broadcast's queue message (a sequencing
    /// cluster with recovery on): nothing was sent.
    public var wasDuplicate: Bool

    public init(localRecipients: Int, reachedCluster: Bool, wasDuplicate: Bool = false) {
        self.localRecipients = localRecipients
        self.reachedCluster = reachedCluster
        self.wasDuplicate = wasDuplicate
    }
}

/// Calls a broadcast's `delivered` once both its halves are done: the event loops' writes and,
/// when it goes to the cluster, the adapter's publish.
private final class SocketIODeliveryJoin: Sendable {
    private struct State {
        var recipients: Int?
        var published: Bool?
    }

    private let state: NIOLockedValueBox<State>
    private let delivered: @Sendable (SocketIODelivery) -> Void

    init(toCluster: Bool, _ delivered: @escaping @Sendable (SocketIODelivery) -> Void) {
        self.state = NIOLockedValueBox(State(published: toCluster ? nil : true))
        self.delivered = delivered
    }

    func local(_ recipients: Int) { update { $0.recipients = recipients } }

    func cluster(_ published: Bool) { update { $0.published = published } }

    private func update(_ change: (inout State) -> Void) {
        let done = state.withLockedValue { state -> SocketIODelivery? in
            change(&state)
            guard let recipients = state.recipients, let published = state.published else { return nil }
            return SocketIODelivery(localRecipients: recipients, reachedCluster: published)
        }
        if let done { delivered(done) }
    }
}
