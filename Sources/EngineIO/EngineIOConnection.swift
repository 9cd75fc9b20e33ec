public import NIOCore
import Synchronization

/// Receives what happens on one Engine.IO session.
///
/// Every call is made on the session's `connection.eventLoop`, one at a time and in order. A
/// delegate may call back into the connection (send, close) from these calls: what that causes
/// happens after the call returns, in order.
public protocol EngineIOConnectionDelegate: AnyObject, Sendable {
    /// A message arrived from the client.
    func connection(_ connection: EngineIOConnection, didReceive payload: EngineIOPayload)
    /// The session closed; nothing more will be received or sent.
    func connection(_ connection: EngineIOConnection, didCloseWith reason: EngineIOCloseReason)
}

/// One Engine.IO session: a client identified by its `sid`, over polling or WebSocket, that may
/// upgrade from the first to the second.
///
/// The session's life is an ``EngineIOSessionStateMachine`` confined to ``eventLoop``, like
/// everything else that changes in it (the pending poll, the timers, the WebSockets): calls made
/// on that loop take effect at once, calls made elsewhere hop onto it. All methods may be called
/// from any thread; packets sent from one thread leave in the order they were sent.
public final class EngineIOConnection: Sendable {
    typealias StateMachine = EngineIOSessionStateMachine

    /// The session id (`sid`) given to the client in the handshake.
    public let id: String
    /// The request that opened the session.
    public let handshake: EngineIOHandshakeRequest
    /// The event loop the session runs on: its state, timers and delegate calls. A session that
    /// upgraded to a WebSocket accepted on another loop keeps this one.
    public let eventLoop: any EventLoop

    let configuration: EngineIOConfiguration
    let statistics: EngineIOStatistics
    private let core: NIOLoopBoundBox<Core>
    /// ``Status`` bits, for the readers on other threads.
    private let status: Atomic<UInt8>
    private let onFinalClose: @Sendable (EngineIOConnection) -> Void

    /// The Engine.IO revision the client speaks.
    public let protocolVersion: EngineIOProtocol

    init(
        id: String,
        handshake: EngineIOHandshakeRequest,
        webSocket: WebSocketTransport?,
        eventLoop: any EventLoop,
        configuration: EngineIOConfiguration,
        statistics: EngineIOStatistics,
        protocolVersion: EngineIOProtocol = .v4,
        onFinalClose: @escaping @Sendable (EngineIOConnection) -> Void
    ) {
        self.statistics = statistics
        self.protocolVersion = protocolVersion
        self.id = id
        self.handshake = handshake
        self.eventLoop = eventLoop
        self.configuration = configuration
        self.onFinalClose = onFinalClose
        var settings = StateMachine.Settings(configuration)
        settings.protocolVersion = protocolVersion
        settings.binaryPolling = handshake.query["b64"] == nil
        let machine = StateMachine(transport: webSocket.map { .webSocket($0.id) } ?? .polling, settings: settings, now: .now())
        let status = Status(machine)
        self.status = Atomic(status.rawValue)
        self.core = .makeBoxSendingValue(Core(machine: machine, sockets: webSocket.map { [$0] } ?? [], status: status), eventLoop: eventLoop)
    }

    /// The name of the current transport: `polling` or `websocket`.
    public var transportName: String {
        Status(rawValue: status.load(ordering: .relaxed)).contains(.webSocket) ? "websocket" : "polling"
    }

    /// Whether the session is still open.
    public var isOpen: Bool {
        Status(rawValue: status.load(ordering: .relaxed)).contains(.open)
    }

    /// Sets the delegate and starts the heartbeat.
    func start(delegate: any EngineIOConnectionDelegate) {
        onLoop { core in
            core.delegate = delegate
            self.process(core.machine.start(), core)
        }
    }

    // MARK: Sending

    /// Sends one packet.
    public func send(_ frame: EngineIOFrame) {
        send(CollectionOfOne(frame))
    }

    /// Sends packets that must leave together and in order (a Socket.IO packet and its attachments).
    public func send(_ frames: some Collection<EngineIOFrame>) {
        statistics.sent(packets: frames.count, bytes: frames.reduce(0) { $0 + $1.webSocketFrame.readableBytes })
        if eventLoop.inEventLoop {
            let core = self.core.value
            perform(core.machine.send(frames), frames: frames, core)
        } else {
            let frames = Array(frames)
            eventLoop.execute {
                let core = self.core.value
                self.perform(core.machine.send(frames), frames: frames, core)
            }
        }
    }

    // MARK: Closing

    /// Closes the session. Over polling the client receives a close packet on its next poll.
    public func close(reason: EngineIOCloseReason = .forcedClose) {
        onLoop { core in self.process(core.machine.close(reason: reason, now: .now()), core) }
    }

    // MARK: Polling

    func handlePoll(_ request: EngineIOHTTPRequest) async -> EngineIOHTTPResponse {
        let promise = eventLoop.makePromise(of: EngineIOHTTPResponse.self)
        onLoop { core in self.process(core.machine.poll(now: .now()), core, request: promise) }
        return (try? await promise.futureResult.get()) ?? .error(.unknownSessionID)
    }

    func handlePost(_ request: EngineIOHTTPRequest) async -> EngineIOHTTPResponse {
        // Decoded where the request is handled, so that a large body does not hold the loop.
        let packets: Result<[EngineIOPacket], EngineIOCodecError>? =
            request.bodyTooLarge
            ? nil
            : Result { () throws(EngineIOCodecError) in
                let body = request.body ?? ByteBuffer()
                return try protocolVersion == .v3 ? EngineIOCodecV3.decodePayload(body) : EngineIOCodec.decodePayload(body)
            }
        let promise = eventLoop.makePromise(of: EngineIOHTTPResponse.self)
        onLoop { core in
            let now = NIODeadline.now()
            switch core.machine.post(packets, now: now) {
            case .refuse(let actions):
                self.process(actions, core, request: promise)
            case .accept(let packets):
                // One packet at a time: a message whose delegate closes the session stops the rest.
                for packet in packets { self.process(core.machine.receivePolled(packet, now: now), core) }
                promise.succeed(.ok)
            }
        }
        return (try? await promise.futureResult.get()) ?? .error(.unknownSessionID)
    }

    // MARK: WebSocket

    /// Attaches a WebSocket that asked to upgrade this polling session; it is closed when the
    /// session cannot upgrade now.
    func attachProbe(_ socket: WebSocketTransport) {
        onLoop { core in
            core.sockets.append(socket)
            self.process(core.machine.attachProbe(socket.id, now: .now()), core)
        }
    }

    /// Handles a packet that arrived on `socket`: the session's transport, its probe, or a stale socket.
    func receive(_ packet: EngineIOPacket, from socket: WebSocketTransport) {
        onLoop { core in self.process(core.machine.receive(packet, from: socket.id, now: .now()), core, socket: socket) }
    }

    /// The WebSocket `socket` closed or failed.
    func socketClosed(_ socket: WebSocketTransport, reason: EngineIOCloseReason) {
        onLoop { core in
            core.removeSocket(socket.id)
            self.process(core.machine.socketClosed(socket.id, reason: reason, now: .now()), core)
        }
    }

    // MARK: Performing actions

    private func onLoop(_ body: @escaping @Sendable (Core) -> Void) {
        if eventLoop.inEventLoop {
            body(core.value)
        } else {
            eventLoop.execute { body(self.core.value) }
        }
    }

    private func perform(_ action: StateMachine.SendAction, frames: some Collection<EngineIOFrame>, _ core: Core) {
        switch action {
        case .none:
            break
        case .write(let socket):
            if core.performing {
                process([.writeWebSocket(socket, Array(frames))], core)
            } else {
                write(frames, to: socket, core)
            }
        case .perform(let actions):
            process(actions, core)
        }
    }

    /// Performs actions in order. Actions that a delegate call causes (it sent or closed) are
    /// performed after the current ones, so actions always run in the order of the transitions
    /// that produced them.
    private func process(
        _ actions: [StateMachine.Action],
        _ core: Core,
        request: EventLoopPromise<EngineIOHTTPResponse>? = nil,
        socket: WebSocketTransport? = nil
    ) {
        publishStatus(core)
        guard !actions.isEmpty else { return }
        let batch = Batch(actions: actions, request: request, socket: socket)
        guard !core.performing else {
            core.queue.append(batch)
            return
        }
        core.performing = true
        perform(batch, core)
        var index = 0
        while index < core.queue.count {
            let next = core.queue[index]
            index += 1
            perform(next, core)
        }
        core.queue.removeAll()
        core.performing = false
        publishStatus(core)
    }

    private func perform(_ batch: Batch, _ core: Core) {
        for action in batch.actions {
            switch action {
            case .answerRequest(let answer):
                batch.request?.succeed(EngineIOHTTPResponse(answer, protocolVersion: protocolVersion))
            case .holdRequest:
                core.pendingPoll = batch.request
            case .answerPendingPoll(let answer):
                let promise = core.pendingPoll
                core.pendingPoll = nil
                promise?.succeed(EngineIOHTTPResponse(answer, protocolVersion: protocolVersion))
            case .deliver(let payload):
                statistics.received(bytes: payload.bytes.readableBytes)
                core.delegate?.connection(self, didReceive: payload)
            case .writeWebSocket(let socket, let frames):
                write(frames, to: socket, core)
            case .closeWebSocket(let id, let code):
                let socket = core.removeSocket(id) ?? (batch.socket?.id == id ? batch.socket : nil)
                socket?.close(code: code)
            case .schedule(let timer, let deadline):
                core.cancelTimer(timer.kind)
                let scheduled = eventLoop.scheduleTask(deadline: deadline) { self.timerFired(timer) }
                core.timers.append((timer, scheduled))
            case .cancel(let kind):
                core.cancelTimer(kind)
            case .countDroppedPackets(let count):
                statistics.packetDropped(count)
            case .countSlowClient:
                statistics.slowClientDisconnected()
            case .notifyClosed(let reason):
                statistics.connectionClosed(reason)
                let delegate = core.delegate
                core.delegate = nil
                delegate?.connection(self, didCloseWith: reason)
            case .finish:
                for kind in StateMachine.TimerKind.allCases { core.cancelTimer(kind) }
                let promise = core.pendingPoll
                core.pendingPoll = nil
                promise?.succeed(.error(.unknownSessionID))
                core.sockets.removeAll()
                onFinalClose(self)
            }
        }
    }

    private func write(_ frames: some Collection<EngineIOFrame>, to id: StateMachine.WebSocketID, _ core: Core) {
        guard let socket = core.socket(id) else { return }
        if socket.eventLoop === eventLoop {
            socket.writeOnLoop(frames)
        } else {
            socket.write(frames)
        }
    }

    private func timerFired(_ timer: StateMachine.Timer) {
        let core = self.core.value
        core.timers.removeAll { $0.timer == timer }
        process(core.machine.timerFired(timer), core)
    }

    private func publishStatus(_ core: Core) {
        let current = Status(core.machine)
        guard current != core.status else { return }
        core.status = current
        status.store(current.rawValue, ordering: .relaxed)
    }
}

extension EngineIOConnection {
    /// What other threads may read about the session.
    struct Status: OptionSet, Equatable {
        let rawValue: UInt8

        static let open = Status(rawValue: 1)
        static let webSocket = Status(rawValue: 2)

        init(rawValue: UInt8) { self.rawValue = rawValue }

        init(_ machine: StateMachine) {
            var status: Status = []
            if machine.isOpen { status.insert(.open) }
            if machine.usesWebSocket { status.insert(.webSocket) }
            self = status
        }
    }

    /// Actions of one transition and the context of the event that produced them.
    fileprivate struct Batch {
        var actions: [StateMachine.Action]
        /// The HTTP request the event came with.
        var request: EventLoopPromise<EngineIOHTTPResponse>?
        /// The WebSocket the event came from, which the session may not know (a stale socket).
        var socket: WebSocketTransport?
    }

    /// The session's loop-bound state: the state machine and what it stands for.
    fileprivate final class Core {
        var machine: StateMachine
        var delegate: (any EngineIOConnectionDelegate)?
        var pendingPoll: EventLoopPromise<EngineIOHTTPResponse>?
        var timers: [(timer: StateMachine.Timer, scheduled: Scheduled<Void>)] = []
        /// The session's WebSocket and its probe, when it has them.
        var sockets: [WebSocketTransport]
        var queue: [Batch] = []
        var performing = false
        var status: Status

        init(machine: StateMachine, sockets: [WebSocketTransport], status: Status) {
            self.machine = machine
            self.sockets = sockets
            self.status = status
        }

        func socket(_ id: StateMachine.WebSocketID) -> WebSocketTransport? {
            for socket in sockets where socket.id == id { return socket }
            return nil
        }

        @discardableResult
        func removeSocket(_ id: StateMachine.WebSocketID) -> WebSocketTransport? {
            guard let index = sockets.firstIndex(where: { $0.id == id }) else { return nil }
            return sockets.remove(at: index)
        }

        func cancelTimer(_ kind: StateMachine.TimerKind) {
            guard let index = timers.firstIndex(where: { $0.timer.kind == kind }) else { return }
            timers.remove(at: index).scheduled.cancel()
        }
    }
}

extension EngineIOHTTPResponse {
    init(_ answer: EngineIOSessionStateMachine.Answer, protocolVersion: EngineIOProtocol) {
        switch answer {
        case .payload(let body): self = .payload(body)
        case .binaryPayload(let body):
            self = EngineIOHTTPResponse(status: 200, headers: [("content-type", "application/octet-stream")], body: body)
        case .noop where protocolVersion == .v3: self = .payload(ByteBuffer(string: "1:6"))
        case .noop: self = .noop
        case .ok: self = .ok
        case .error(let error): self = .error(error)
        case .status(let status): self = EngineIOHTTPResponse(status: status)
        }
    }
}

// MARK: - Fan-out

extension EngineIOConnection {
    /// Sends the same frames to many sessions: one task per event loop feeds them to the state
    /// machines of its sessions, and their sockets are flushed once at the end of the loop's tick
    /// (see `FlushCoalescer`). The frames' bytes are shared, never copied; polling sessions share
    /// the frames' polling encoding, computed at most once per loop. A session whose WebSocket
    /// lives on another loop takes one more hop there, one per loop and broadcast.
    public static func broadcast(_ frames: [EngineIOFrame], to connections: some Sequence<EngineIOConnection>) {
        guard !frames.isEmpty else { return }
        var groups: [(loop: any EventLoop, connections: [EngineIOConnection])] = []
        var last = 0
        for connection in connections {
            if last < groups.count, groups[last].loop === connection.eventLoop {
                groups[last].connections.append(connection)
            } else if let index = groups.firstIndex(where: { $0.loop === connection.eventLoop }) {
                groups[index].connections.append(connection)
                last = index
            } else {
                groups.append((connection.eventLoop, [connection]))
                last = groups.count - 1
            }
        }
        guard !groups.isEmpty else { return }
        let bytes = frames.reduce(0) { $0 + $1.webSocketFrame.readableBytes }
        let recipients = groups.reduce(0) { $0 + $1.connections.count }
        groups[0].connections[0].statistics.sent(packets: frames.count * recipients, bytes: bytes * recipients)
        for group in groups {
            if group.loop.inEventLoop {
                deliver(frames, to: group.connections)
            } else {
                // Counted until the loop runs it: what publishers outpacing the loops pile up.
                let backlog = group.connections[0].statistics.broadcastBacklog
                let connections = group.connections
                backlog.add(bytes)
                group.loop.execute {
                    deliver(frames, to: connections)
                    backlog.remove(bytes)
                }
            }
        }
    }

    /// Runs on the loop of `connections`.
    private static func deliver(_ frames: [EngineIOFrame], to connections: [EngineIOConnection]) {
        var polling: [EngineIOFrame]?
        var remote: [(loop: any EventLoop, sockets: [WebSocketTransport])] = []
        for connection in connections {
            connection.deliver(frames, polling: &polling, remote: &remote)
        }
        for group in remote {
            let sockets = group.sockets
            group.loop.execute {
                for socket in sockets { socket.writeOnLoop(frames) }
            }
        }
    }

    private func deliver(
        _ frames: [EngineIOFrame],
        polling: inout [EngineIOFrame]?,
        remote: inout [(loop: any EventLoop, sockets: [WebSocketTransport])]
    ) {
        let core = self.core.value
        var frames = frames
        if core.machine.buffersForPolling {
            let prepared = polling ?? frames.map { $0.preparedForPolling() }
            polling = prepared
            frames = prepared
        }
        let action = core.machine.send(frames)
        if case .write(let id) = action, !core.performing, let socket = core.socket(id), socket.eventLoop !== eventLoop {
            if let index = remote.firstIndex(where: { $0.loop === socket.eventLoop }) {
                remote[index].sockets.append(socket)
            } else {
                remote.append((socket.eventLoop, [socket]))
            }
            return
        }
        perform(action, frames: frames, core)
    }
}
