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

    /// Emits an event to the selected sockets; `delivered` is called with how many local sockets
    /// it was written to, once every event loop wrote it.
    public func emit(_ event: String, arguments: [SocketIOValue], delivered: (@Sendable (Int) -> Void)? = nil) {
        guard SocketIOSocket.checkEventName(event, logger: namespace.logger) else {
            delivered?(0)
            return
        }
        let (name, isVolatile) = (namespace.name, options.isVolatile)
        send(delivered: delivered) { offset in
            SocketIOOutboundPacket(event: event, arguments: arguments, namespace: name, isVolatile: isVolatile, offset: offset)
        }
    }

    /// Emits an event whose arguments are the given JSON array, spliced into the packet without
    /// being parsed: what a gateway forwarding queue messages wants. `delivered` is called with
    /// how many local sockets it was written to, once every event loop wrote it (with a recovery
    /// store, once the store kept it first).
    ///
    /// With recovery on, `messageID` names the queue message the event comes from: a message
    /// whose event is still in the recovery log (delivered again after a crash, say) is not
    /// broadcast a second time, and the call returns `false` without calling `delivered`.
    @discardableResult
    public func emit(
        _ event: String, jsonArguments: ByteBuffer, messageID: String? = nil, delivered: (@Sendable (Int) -> Void)? = nil
    ) -> Bool {
        guard SocketIOSocket.checkEventName(event, logger: namespace.logger) else {
            delivered?(0)
            return true
        }
        let (name, isVolatile) = (namespace.name, options.isVolatile)
        return Self.send(namespace: namespace, options: options, only: nil, messageID: messageID, delivered: delivered) { offset in
            SocketIOOutboundPacket(event: event, jsonArguments: jsonArguments, namespace: name, isVolatile: isVolatile, offset: offset)
        }
    }

    /// Local sockets first (one hop per event loop), then the other servers through the adapter.
    /// With recovery on, a packet that can be replayed (not volatile) is logged first, and gets
    /// its offset from the log: `packet` builds it with the offset, or without (`nil`).
    private func send(delivered: (@Sendable (Int) -> Void)?, _ packet: (String?) -> SocketIOOutboundPacket) {
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
        delivered: (@Sendable (Int) -> Void)?,
        _ packet: (String?) -> SocketIOOutboundPacket
    ) -> Bool {
        @Sendable func deliver(_ outbound: SocketIOOutboundPacket, queued: Bool) {
            namespace.localSockets.broadcast(outbound, options: options, queued: queued, only: loop, delivered: delivered)
            if loop == nil { namespace.adapter.broadcast(outbound, options: options) }
        }
        guard let log = namespace.recoveryLog, !options.isVolatile else {
            deliver(packet(nil), queued: false)
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
        let outbound = SocketIOOutboundPacket(packet, isVolatile: options.isVolatile)
        let (local, adapter) = (namespace.localSockets, namespace.adapter)
        return try await withCheckedThrowingContinuation { continuation in
            collector.start(continuation)
            Task { [options] in
                let recipients = await local.broadcastWithAck(outbound, ackID: id, options: options) { collector.respond($0) }
                collector.expect(recipients.reduce(0) { $0 + $1.sockets.count })
                adapter.broadcastWithAck(outbound, ackID: id, options: options, expect: { collector.expect($0) }, respond: { collector.respond($0) })
                collector.serverCountKnown()
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
        namespace.adapter.addSockets(options, rooms: Set(rooms))
    }
    /// Makes the selected sockets leave rooms.
    public func socketsLeave(_ rooms: String...) { socketsLeave(rooms) }
    /// Makes the selected sockets leave rooms.
    public func socketsLeave(_ rooms: [String]) {
        namespace.localSockets.delSockets(options, rooms: Set(rooms))
        namespace.adapter.delSockets(options, rooms: Set(rooms))
    }
    /// Disconnects the selected sockets; `close` also closes their underlying connections.
    public func disconnectSockets(close: Bool = false) {
        namespace.localSockets.disconnectSockets(options, close: close)
        namespace.adapter.disconnectSockets(options, close: close)
    }
    /// The selected sockets, across the cluster: this server's first.
    public func fetchSockets() async throws -> [SocketIORemoteSocket] {
        try await namespace.localSockets.fetchSockets(options) + namespace.adapter.fetchSockets(options)
    }
}

/// Gathers the answers to a broadcast with acknowledgement and resumes its caller once.
private final class AckCollector: Sendable {
    private struct State {
        var continuation: CheckedContinuation<[[SocketIOValue]], any Error>?
        var expected = 0
        var countsKnown = false
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

    func serverCountKnown() {
        finish { state in
            state.countsKnown = true
            return state.responses.count >= state.expected ? .success(state.responses) : nil
        }
    }

    func respond(_ arguments: [SocketIOValue]) {
        finish { state in
            state.responses.append(arguments)
            return state.countsKnown && state.responses.count >= state.expected ? .success(state.responses) : nil
        }
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
