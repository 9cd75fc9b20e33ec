public import NIOCore
import NIOConcurrencyHelpers

/// Receives what happens on one Engine.IO session. Calls come from whichever thread carried the
/// input, one at a time per session and in order.
public protocol EngineIOConnectionDelegate: AnyObject, Sendable {
    /// A message arrived from the client.
    func connection(_ connection: EngineIOConnection, didReceive payload: EngineIOPayload)
    /// The session closed; nothing more will be received or sent.
    func connection(_ connection: EngineIOConnection, didCloseWith reason: EngineIOCloseReason)
}

/// One Engine.IO session: a client identified by its `sid`, over polling or WebSocket, that may
/// upgrade from the first to the second.
///
/// All methods are thread-safe. Packets sent from one thread leave in the order they were sent.
public final class EngineIOConnection: Sendable {
    /// The session id (`sid`) given to the client in the handshake.
    public let id: String
    /// The request that opened the session.
    public let handshake: EngineIOHandshakeRequest
    /// The event loop that runs the session's timers.
    public let eventLoop: any EventLoop

    let configuration: EngineIOConfiguration
    let statistics: EngineIOStatistics
    private let state: NIOLockedValueBox<State>
    private let onFinalClose: @Sendable (EngineIOConnection) -> Void

    init(
        id: String,
        handshake: EngineIOHandshakeRequest,
        transport: State.Transport,
        eventLoop: any EventLoop,
        configuration: EngineIOConfiguration,
        statistics: EngineIOStatistics,
        onFinalClose: @escaping @Sendable (EngineIOConnection) -> Void
    ) {
        self.statistics = statistics
        self.id = id
        self.handshake = handshake
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.onFinalClose = onFinalClose
        self.state = NIOLockedValueBox(State(transport: transport))
    }

    /// The name of the current transport: `polling` or `websocket`.
    public var transportName: String {
        state.withLockedValue { $0.transport.isWebSocket ? "websocket" : "polling" }
    }

    /// Whether the session is still open.
    public var isOpen: Bool {
        state.withLockedValue { $0.readyState == .open }
    }

    func setDelegate(_ delegate: any EngineIOConnectionDelegate) {
        state.withLockedValue { $0.delegate = delegate }
    }

    // MARK: Sending

    /// Sends one packet.
    public func send(_ frame: EngineIOFrame) {
        send(CollectionOfOne(frame))
    }

    /// Sends packets that must leave together and in order (a Socket.IO packet and its attachments).
    public func send(_ frames: some Collection<EngineIOFrame>) {
        let outcome: SendOutcome = state.withLockedValue { state in
            guard state.readyState == .open else { return .done }
            switch state.transport {
            case .webSocket(let socket):
                socket.write(frames)
                return .done
            case .polling:
                for frame in frames {
                    if frame.isVolatile && state.pendingPoll == nil {
                        statistics.packetDropped()
                    } else {
                        state.buffer(frame.packet)
                    }
                }
                if state.pollBufferBytes > configuration.maxBufferedPollingBytes { return .tooSlow }
                guard let promise = state.pendingPoll else { return .done }
                state.pendingPoll = nil
                return .completePoll(promise, state.drainPollBuffer())
            }
        }
        switch outcome {
        case .done: break
        case .completePoll(let promise, let response): promise.succeed(response)
        case .tooSlow:
            statistics.slowClientDisconnected()
            close(reason: .slowClient)
        }
    }

    private enum SendOutcome {
        case done
        case completePoll(EventLoopPromise<EngineIOHTTPResponse>, EngineIOHTTPResponse)
        case tooSlow
    }

    // MARK: Closing

    /// Closes the session. Over polling the client receives a close packet on its next poll.
    public func close(reason: EngineIOCloseReason = .forcedClose) {
        let effects = state.withLockedValue { state in
            state.beginClose(reason: reason, closeTimeout: configuration.closeTimeout, connection: self)
        }
        perform(effects)
    }

    private func perform(_ effects: State.CloseEffects) {
        if let (promise, response) = effects.completePoll { promise.succeed(response) }
        effects.closeSockets.forEach { $0.close() }
        if let delegate = effects.notify { delegate.connection(self, didCloseWith: effects.reason) }
        if effects.finished { onFinalClose(self) }
    }

    /// Ends a session that was waiting for its client to collect the close packet.
    func finishClose() {
        let finished = state.withLockedValue { state -> Bool in
            guard state.readyState == .closing else { return false }
            state.readyState = .closed
            state.cancelTimers()
            return true
        }
        if finished { onFinalClose(self) }
    }

    // MARK: Heartbeat

    func startHeartbeat() {
        state.withLockedValue { state in
            state.heartbeatAnchor = .now()
            state.heartbeat = scheduleHeartbeat(in: configuration.pingInterval) { $0.sendPing() }
        }
    }

    /// Whether the client missed its pong: the deadline counts from when the ping was due, so a
    /// request arriving after it finds the session closed even if the timer has not fired yet.
    private func pongOverdue(_ state: State) -> Bool {
        state.readyState == .open && NIODeadline.now() > state.heartbeatAnchor + TimeAmount(configuration.pingInterval + configuration.pingTimeout)
    }

    /// Closes the session if its pong is overdue; `true` when it did.
    private func closeIfPongOverdue() -> Bool {
        guard state.withLockedValue({ pongOverdue($0) }) else { return false }
        close(reason: .pingTimeout)
        return true
    }

    private func scheduleHeartbeat(in delay: Duration, _ body: @escaping @Sendable (EngineIOConnection) -> Void) -> Scheduled<Void> {
        eventLoop.scheduleTask(in: TimeAmount(delay)) { [self] in body(self) }
    }

    private func sendPing() {
        let isOpen = state.withLockedValue { state in
            guard state.readyState == .open else { return false }
            state.heartbeat = scheduleHeartbeat(in: configuration.pingTimeout) { $0.close(reason: .pingTimeout) }
            return true
        }
        if isOpen { send(EngineIOFrame(EngineIOPacket(.ping))) }
    }

    private func receivedPong() {
        state.withLockedValue { state in
            guard state.readyState == .open else { return }
            state.heartbeat?.cancel()
            state.heartbeatAnchor = .now()
            state.heartbeat = scheduleHeartbeat(in: configuration.pingInterval) { $0.sendPing() }
        }
    }

    // MARK: Receiving

    /// Handles a packet from the client over the session's current transport.
    func receive(_ packet: EngineIOPacket) {
        switch packet.type {
        case .message:
            guard let payload = packet.payload, let delegate = state.withLockedValue({ $0.readyState == .open ? $0.delegate : nil })
            else { return }
            delegate.connection(self, didReceive: payload)
        case .pong:
            receivedPong()
        case .close:
            close(reason: .transportClose)
        case .open, .ping, .upgrade, .noop:
            break
        }
    }

    // MARK: Polling

    func handlePoll(_ request: EngineIOHTTPRequest) async -> EngineIOHTTPResponse {
        enum Outcome {
            case respond(EngineIOHTTPResponse, finished: Bool)
            case wait(EventLoopFuture<EngineIOHTTPResponse>)
            case overlap
        }
        if closeIfPongOverdue() { return .error(.unknownSessionID) }
        let outcome: Outcome = state.withLockedValue { state in
            if state.transport.isWebSocket { return .respond(.error(.badRequest), finished: false) }
            if state.pendingPoll != nil { return .overlap }
            switch state.readyState {
            case .closed:
                return .respond(.error(.unknownSessionID), finished: false)
            case .closing:
                let response = state.drainPollBuffer()
                state.readyState = .closed
                state.cancelTimers()
                return .respond(response, finished: true)
            case .open:
                if !state.pollBuffer.isEmpty { return .respond(state.drainPollBuffer(), finished: false) }
                let promise = request.eventLoop.makePromise(of: EngineIOHTTPResponse.self)
                state.pendingPoll = promise
                if state.probing {
                    // A poll during an upgrade: released with a noop shortly, as the reference
                    // does, or refused if the upgrade completes first (the session is then WebSocket).
                    state.pollArrivedDuringProbe = true
                    eventLoop.scheduleTask(in: .milliseconds(100)) { [self] in self.releaseProbePoll() }
                }
                return .wait(promise.futureResult)
            }
        }
        switch outcome {
        case .respond(let response, let finished):
            if finished { onFinalClose(self) }
            return response
        case .wait(let future):
            return (try? await future.get()) ?? .error(.unknownSessionID)
        case .overlap:
            close(reason: .transportError)
            return EngineIOHTTPResponse(status: 400)
        }
    }

    private func releaseProbePoll() {
        let promise = state.withLockedValue { state -> EventLoopPromise<EngineIOHTTPResponse>? in
            guard state.probing, state.pollArrivedDuringProbe else { return nil }
            defer { state.pendingPoll = nil }
            return state.pendingPoll
        }
        promise?.succeed(.noop)
    }

    func handlePost(_ request: EngineIOHTTPRequest) -> EngineIOHTTPResponse {
        if closeIfPongOverdue() { return .error(.unknownSessionID) }
        enum Admission { case accept, overlap, mismatch }
        let admission: Admission = state.withLockedValue { state in
            if state.transport.isWebSocket { return .mismatch }
            if state.postInFlight { return .overlap }
            state.postInFlight = true
            return .accept
        }
        switch admission {
        case .mismatch: return .error(.badRequest)
        case .overlap:
            close(reason: .transportError)
            return EngineIOHTTPResponse(status: 400)
        case .accept: break
        }
        defer { state.withLockedValue { $0.postInFlight = false } }
        if request.bodyTooLarge {
            close(reason: .transportError)
            return EngineIOHTTPResponse(status: 413)
        }
        do {
            for packet in try EngineIOCodec.decodePayload(request.body ?? ByteBuffer()) {
                receive(packet)
            }
        } catch {
            close(reason: .parseError)
        }
        return .ok
    }

    // MARK: WebSocket

    /// Attaches a WebSocket that asked to upgrade this polling session. `false` when the session
    /// cannot upgrade now.
    func attachProbe(_ socket: WebSocketTransport) -> Bool {
        state.withLockedValue { state in
            guard state.readyState == .open, !state.transport.isWebSocket, state.probe == nil else { return false }
            state.probe = socket
            state.upgradeTimeout = eventLoop.scheduleTask(in: TimeAmount(configuration.upgradeTimeout)) { [self] in
                self.abandonProbe(socket, closeIt: true)
            }
            return true
        }
    }

    /// Handles a packet that arrived on `socket`, which is either the session's transport or a probe.
    func receive(_ packet: EngineIOPacket, from socket: WebSocketTransport) {
        enum Role { case transport, probe, stale }
        let role: Role = state.withLockedValue { state in
            if case .webSocket(let current) = state.transport, current === socket { return .transport }
            if state.probe === socket { return .probe }
            return .stale
        }
        switch role {
        case .transport: receive(packet)
        case .probe: receiveOnProbe(packet, from: socket)
        case .stale: socket.close()
        }
    }

    private func receiveOnProbe(_ packet: EngineIOPacket, from socket: WebSocketTransport) {
        if packet.type == .ping, packet.text == "probe" {
            let release = state.withLockedValue { state -> EventLoopPromise<EngineIOHTTPResponse>? in
                state.probing = true
                socket.write(CollectionOfOne(EngineIOFrame(EngineIOPacket(.pong, text: "probe"))))
                defer { state.pendingPoll = nil }
                return state.pendingPoll
            }
            release?.succeed(.noop)
        } else if packet.type == .upgrade {
            let release = state.withLockedValue { state -> (EventLoopPromise<EngineIOHTTPResponse>, EngineIOHTTPResponse)? in
                guard state.readyState == .open, state.probing else { return nil }
                state.upgradeTimeout?.cancel()
                state.upgradeTimeout = nil
                state.probe = nil
                state.probing = false
                state.transport = .webSocket(socket)
                socket.write(state.pollBuffer.map { EngineIOFrame($0) })
                state.clearPollBuffer()
                defer {
                    state.pendingPoll = nil
                    state.pollArrivedDuringProbe = false
                }
                return state.pendingPoll.map { ($0, state.pollArrivedDuringProbe ? .error(.badRequest) : .noop) }
            }
            if let (promise, response) = release { promise.succeed(response) }
        } else {
            abandonProbe(socket, closeIt: true)
        }
    }

    /// The WebSocket `socket` closed or failed.
    func socketClosed(_ socket: WebSocketTransport, reason: EngineIOCloseReason) {
        let isTransport = state.withLockedValue { state in
            if case .webSocket(let current) = state.transport, current === socket { return true }
            return false
        }
        if isTransport {
            close(reason: reason)
        } else {
            abandonProbe(socket, closeIt: false)
        }
    }

    private func abandonProbe(_ socket: WebSocketTransport, closeIt: Bool) {
        let wasProbe = state.withLockedValue { state -> Bool in
            guard state.probe === socket else { return false }
            state.probe = nil
            state.probing = false
            state.pollArrivedDuringProbe = false
            state.upgradeTimeout?.cancel()
            state.upgradeTimeout = nil
            return true
        }
        if wasProbe, closeIt { socket.close() }
    }
}

extension EngineIOConnection {
    struct State {
        enum ReadyState { case open, closing, closed }

        enum Transport {
            case polling
            case webSocket(WebSocketTransport)

            var isWebSocket: Bool {
                if case .webSocket = self { true } else { false }
            }
        }

        struct CloseEffects {
            var reason: EngineIOCloseReason
            var notify: (any EngineIOConnectionDelegate)?
            var completePoll: (EventLoopPromise<EngineIOHTTPResponse>, EngineIOHTTPResponse)?
            var closeSockets: [WebSocketTransport] = []
            var finished = false
        }

        var readyState = ReadyState.open
        var transport: Transport
        var delegate: (any EngineIOConnectionDelegate)?
        var probe: WebSocketTransport?
        var probing = false
        var pollArrivedDuringProbe = false
        var heartbeatAnchor = NIODeadline.now()
        var pollBuffer: [EngineIOPacket] = []
        /// The payload bytes in ``pollBuffer`` (before base64 for binary packets).
        var pollBufferBytes = 0
        var pendingPoll: EventLoopPromise<EngineIOHTTPResponse>?
        var postInFlight = false
        var heartbeat: Scheduled<Void>?
        var upgradeTimeout: Scheduled<Void>?
        var closeTimeout: Scheduled<Void>?

        init(transport: Transport) {
            self.transport = transport
        }

        mutating func buffer(_ packet: EngineIOPacket) {
            pollBuffer.append(packet)
            pollBufferBytes += 1 + (packet.payload?.bytes.readableBytes ?? 0)
        }

        mutating func clearPollBuffer() {
            pollBuffer.removeAll(keepingCapacity: true)
            pollBufferBytes = 0
        }

        /// Encodes the buffered packets (and the close packet when closing) as a poll's answer.
        mutating func drainPollBuffer() -> EngineIOHTTPResponse {
            if readyState == .closing { pollBuffer.append(EngineIOPacket(.close)) }
            let body = EngineIOCodec.encodePayload(pollBuffer)
            clearPollBuffer()
            return .payload(body)
        }

        mutating func cancelTimers() {
            heartbeat?.cancel()
            upgradeTimeout?.cancel()
            closeTimeout?.cancel()
            heartbeat = nil
            upgradeTimeout = nil
            closeTimeout = nil
        }

        mutating func beginClose(reason: EngineIOCloseReason, closeTimeout delay: Duration, connection: EngineIOConnection) -> CloseEffects {
            var effects = CloseEffects(reason: reason)
            guard readyState == .open else { return effects }
            effects.notify = delegate
            delegate = nil
            cancelTimers()
            if let probe {
                effects.closeSockets.append(probe)
                self.probe = nil
            }
            switch transport {
            case .webSocket(let socket):
                effects.closeSockets.append(socket)
                readyState = .closed
                effects.finished = true
            case .polling:
                // A close the server asked for lets the client collect what was already queued;
                // any other close drops it. Either way the client's poll gets a close packet.
                let graceful = reason == .forcedClose || reason == .serverShuttingDown
                if !graceful { clearPollBuffer() }
                readyState = .closing
                if let promise = pendingPoll {
                    pendingPoll = nil
                    // The client's own close packet releases its pending poll with a noop, as
                    // the reference does; any other close hands it the close packet.
                    effects.completePoll = (promise, reason == .transportClose ? .noop : drainPollBuffer())
                } else if graceful {
                    closeTimeout = connection.eventLoop.scheduleTask(in: TimeAmount(delay)) { [connection] in
                        connection.finishClose()
                    }
                    return effects
                }
                readyState = .closed
                effects.finished = true
            }
            return effects
        }
    }
}

// MARK: - Fan-out

extension EngineIOConnection {
    /// The event loop that writes to this session's socket: the WebSocket channel's loop, or the
    /// session's own loop over polling.
    public var writeLoop: any EventLoop {
        state.withLockedValue { state in
            if case .webSocket(let socket) = state.transport { return socket.channel.eventLoop }
            return eventLoop
        }
    }

    /// Sends the same frames to many sessions: one task per event loop writes to each of its
    /// sockets, which are flushed once at the end of the loop's tick (see `FlushCoalescer`). The
    /// frames' bytes are shared, never copied.
    public static func broadcast(_ frames: [EngineIOFrame], to connections: some Sequence<EngineIOConnection>) {
        var groups: [ObjectIdentifier: (loop: any EventLoop, connections: [EngineIOConnection])] = [:]
        for connection in connections {
            let loop = connection.writeLoop
            groups[ObjectIdentifier(loop), default: (loop, [])].connections.append(connection)
        }
        let bytes = frames.reduce(0) { $0 + $1.webSocketFrame.readableBytes }
        for (_, group) in groups {
            if group.loop.inEventLoop {
                deliver(frames, to: group.connections)
            } else {
                // Counted until the loop runs it: what publishers outpacing the loops pile up.
                let backlog = group.connections[0].statistics.broadcastBacklog
                backlog.add(bytes)
                group.loop.execute {
                    deliver(frames, to: group.connections)
                    backlog.remove(bytes)
                }
            }
        }
    }

    private static func deliver(_ frames: [EngineIOFrame], to connections: [EngineIOConnection]) {
        for connection in connections where !connection.writeOnCurrentLoop(frames) {
            connection.send(frames)
        }
    }

    /// Writes to the WebSocket when the session uses one on the current loop; `false` otherwise.
    private func writeOnCurrentLoop(_ frames: [EngineIOFrame]) -> Bool {
        state.withLockedValue { state in
            guard state.readyState == .open, case .webSocket(let socket) = state.transport,
                socket.channel.eventLoop.inEventLoop
            else { return false }
            socket.writeOnLoop(frames)
            return true
        }
    }
}
