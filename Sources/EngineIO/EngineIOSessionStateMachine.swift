import NIOCore

/// The life of one Engine.IO session as a value: polling, the upgrade to a WebSocket, the
/// heartbeat and the close, driven by events and answering each with the actions to perform.
///
/// It holds no channel, promise, task, lock or clock: transports are opaque ``WebSocketID``s, the
/// pending poll is a flag (its promise lives in the handler), time arrives with the events as
/// `now`, and timers are ``Action/schedule(_:at:)`` actions whose ``Timer/generation`` lets a
/// late fire of a replaced or cancelled timer be ignored. ``EngineIOConnection`` feeds it on the
/// session's event loop and performs the actions in order.
struct EngineIOSessionStateMachine {
    /// A WebSocket of the session, as the handler knows it.
    struct WebSocketID: Hashable, Sendable, CustomStringConvertible {
        let rawValue: UInt64
        var description: String { "ws#\(rawValue)" }
    }

    /// The session's timers; at most one of each kind is armed.
    enum TimerKind: Hashable, Sendable, CaseIterable {
        /// The next ping, then the deadline of its pong.
        case heartbeat
        /// How long a probe may take to complete its upgrade.
        case upgrade
        /// Releases, with a noop, a poll that arrived while the upgrade was being probed.
        case probePoll
        /// How long a gracefully closing polling session waits for its client's last poll.
        case close
    }

    /// One arming of a timer: a fire whose generation is no longer the armed one is ignored.
    struct Timer: Hashable, Sendable {
        var kind: TimerKind
        var generation: UInt64
    }

    /// The answer to an HTTP request of the polling transport.
    enum Answer: Hashable, Sendable {
        /// A polling payload (the packets joined by the record separator; in v3, length-prefixed).
        case payload(ByteBuffer)
        /// An Engine.IO v3 payload in the binary framing.
        case binaryPayload(ByteBuffer)
        /// A single noop packet, which releases a poll without data.
        case noop
        /// The reference's answer to an accepted POST.
        case ok
        /// An Engine.IO error answer.
        case error(EngineIORequestError)
        /// A bare status (the reference's transport errors: 400, 413).
        case status(Int)
    }

    /// What the handler does, in order.
    enum Action: Equatable, Sendable {
        /// Answers the HTTP request whose event produced this action.
        case answerRequest(Answer)
        /// Keeps the HTTP request whose event produced this action as the pending poll.
        case holdRequest
        /// Answers the pending poll.
        case answerPendingPoll(Answer)
        /// Hands a message to the delegate.
        case deliver(EngineIOPayload)
        /// Writes frames to a WebSocket.
        case writeWebSocket(WebSocketID, [EngineIOFrame])
        /// Sends a close frame on a WebSocket and closes it; the session forgets it.
        case closeWebSocket(WebSocketID, code: UInt16)
        /// Arms a timer at a deadline, replacing the armed timer of the same kind.
        case schedule(Timer, at: NIODeadline)
        /// Disarms the timer of a kind.
        case cancel(TimerKind)
        /// Counts volatile packets dropped because the client was not ready for them.
        case countDroppedPackets(Int)
        /// Counts a client closed because it could not keep up.
        case countSlowClient
        /// Tells the delegate the session closed.
        case notifyClosed(EngineIOCloseReason)
        /// The session is over: the server forgets it.
        case finish
    }

    /// What to do with frames handed to ``send(_:)``: a value without an array for the common
    /// cases, because a broadcast sends to every recipient.
    enum SendAction: Equatable, Sendable {
        /// Nothing (buffered for the next poll, dropped, or the session is closed).
        case none
        /// Write the frames to this WebSocket.
        case write(WebSocketID)
        /// Perform these actions.
        case perform([Action])
    }

    /// Whether a POST's packets are to be handed, one at a time, to ``receivePolled(_:)``.
    enum PostAdmission: Equatable, Sendable {
        /// Feed these packets, then answer ``Answer/ok``.
        case accept([EngineIOPacket])
        /// Perform these actions, which answer the request.
        case refuse([Action])
    }

    enum ReadyState: Equatable, Sendable {
        case open
        /// Closed over polling, waiting for the client's last poll to hand it the close packet.
        case closing
        case closed
    }

    enum Transport: Equatable, Sendable {
        case polling
        case webSocket(WebSocketID)
    }

    /// The durations the session runs by.
    struct Settings: Sendable {
        var pingInterval: TimeAmount
        var pingTimeout: TimeAmount
        var upgradeTimeout: TimeAmount
        var closeTimeout: TimeAmount
        /// How long a poll that arrived during a probe waits before it is released with a noop.
        var probePollDelay: TimeAmount = .milliseconds(100)
        var maxBufferedPollingBytes: Int
        /// v3: the client pings and the server answers; payloads are length-prefixed.
        var protocolVersion = EngineIOProtocol.v4
        /// v3: whether the client takes polling payloads in the binary framing (no `b64`).
        var binaryPolling = true

        init(_ configuration: EngineIOConfiguration) {
            pingInterval = TimeAmount(configuration.pingInterval)
            pingTimeout = TimeAmount(configuration.pingTimeout)
            upgradeTimeout = TimeAmount(configuration.upgradeTimeout)
            closeTimeout = TimeAmount(configuration.closeTimeout)
            maxBufferedPollingBytes = configuration.maxBufferedPollingBytes
        }
    }

    static let pingFrame = EngineIOFrame(EngineIOPacket(.ping))
    static let pongFrame = EngineIOFrame(EngineIOPacket(.pong))
    static let probePongFrame = EngineIOFrame(EngineIOPacket(.pong, text: "probe"))

    let settings: Settings
    private(set) var readyState = ReadyState.open
    private(set) var transport: Transport
    private var probe: WebSocketID?
    /// The probe answered `2probe`: the client is pausing its polling.
    private var probing = false
    private var pollArrivedDuringProbe = false
    private(set) var hasPendingPoll = false
    /// Frames waiting for the next poll.
    private var pollBuffer: [EngineIOFrame] = []
    /// The bytes ``pollBuffer`` takes in a polling payload.
    private(set) var bufferedPollingBytes = 0
    /// When the current heartbeat cycle began: the ping is due one interval later, its pong one
    /// timeout after that.
    private var heartbeatAnchor: NIODeadline
    private var awaitingPong = false
    private var armed = ArmedTimers()
    private var nextGeneration: UInt64 = 0

    init(transport: Transport, settings: Settings, now: NIODeadline) {
        self.transport = transport
        self.settings = settings
        self.heartbeatAnchor = now
    }

    var isOpen: Bool { readyState == .open }

    var usesWebSocket: Bool {
        if case .webSocket = transport { true } else { false }
    }

    /// Whether frames sent now would wait in the poll buffer (and so need their polling encoding).
    var buffersForPolling: Bool { readyState == .open && transport == .polling }

    // MARK: Heartbeat

    /// Starts the heartbeat: the first ping is due one interval after the session opened. In v3
    /// the client pings: its first ping is due within an interval and a timeout.
    mutating func start() -> [Action] {
        guard readyState == .open else { return [] }
        if settings.protocolVersion == .v3 { return [arm(.heartbeat, at: pongDeadline)] }
        return [arm(.heartbeat, at: heartbeatAnchor + settings.pingInterval)]
    }

    /// A v3 client's ping: answered with a pong, and the next one is due within an interval and
    /// a timeout.
    private mutating func receivedPing(_ now: NIODeadline) -> [Action] {
        heartbeatAnchor = now
        return [arm(.heartbeat, at: pongDeadline)] + sendActions(CollectionOfOne(Self.pongFrame))
    }

    private var pongDeadline: NIODeadline { heartbeatAnchor + settings.pingInterval + settings.pingTimeout }

    /// Whether the client missed its pong: a request arriving after the deadline finds the
    /// session closed even if the timer has not fired yet.
    private func pongOverdue(_ now: NIODeadline) -> Bool {
        readyState == .open && now > pongDeadline
    }

    private mutating func receivedPong(_ now: NIODeadline) -> [Action] {
        heartbeatAnchor = now
        awaitingPong = false
        return [arm(.heartbeat, at: now + settings.pingInterval)]
    }

    // MARK: Timers

    /// A timer fired; one that was replaced or cancelled since it was armed is ignored.
    mutating func timerFired(_ timer: Timer) -> [Action] {
        guard armed[timer.kind] == timer.generation else { return [] }
        armed[timer.kind] = nil
        switch timer.kind {
        case .heartbeat:
            guard readyState == .open else { return [] }
            if awaitingPong || settings.protocolVersion == .v3 { return beginClose(reason: .pingTimeout, now: nil) }
            awaitingPong = true
            var actions = [arm(.heartbeat, at: pongDeadline)]
            actions.append(contentsOf: sendActions(CollectionOfOne(Self.pingFrame)))
            return actions
        case .upgrade:
            guard let probe else { return [] }
            return abandonProbe(probe, closeIt: true)
        case .probePoll:
            guard probing, pollArrivedDuringProbe, hasPendingPoll else { return [] }
            hasPendingPoll = false
            return [.answerPendingPoll(.noop)]
        case .close:
            guard readyState == .closing else { return [] }
            return finish()
        }
    }

    private mutating func arm(_ kind: TimerKind, at deadline: NIODeadline) -> Action {
        nextGeneration += 1
        armed[kind] = nextGeneration
        return .schedule(Timer(kind: kind, generation: nextGeneration), at: deadline)
    }

    private mutating func disarm(_ kind: TimerKind, into actions: inout [Action]) {
        guard armed[kind] != nil else { return }
        armed[kind] = nil
        actions.append(.cancel(kind))
    }

    private mutating func disarmAll(into actions: inout [Action]) {
        for kind in TimerKind.allCases { disarm(kind, into: &actions) }
    }

    // MARK: Sending

    /// Frames for the client: written to the WebSocket, or buffered for the next poll (which
    /// is answered at once when it is pending). Volatile frames are dropped when no poll waits.
    mutating func send(_ frames: some Collection<EngineIOFrame>) -> SendAction {
        guard readyState == .open else { return .none }
        switch transport {
        case .webSocket(let socket):
            return .write(socket)
        case .polling:
            var dropped = 0
            for frame in frames {
                if frame.isVolatile && !hasPendingPoll {
                    dropped += 1
                } else {
                    pollBuffer.append(frame)
                    bufferedPollingBytes += frame.pollingByteCount
                }
            }
            var actions: [Action] = dropped > 0 ? [.countDroppedPackets(dropped)] : []
            if bufferedPollingBytes > settings.maxBufferedPollingBytes {
                actions.append(.countSlowClient)
                actions.append(contentsOf: beginClose(reason: .slowClient, now: nil))
            } else if hasPendingPoll, !pollBuffer.isEmpty {
                hasPendingPoll = false
                actions.append(.answerPendingPoll(drainPollBuffer()))
            }
            return actions.isEmpty ? .none : .perform(actions)
        }
    }

    private mutating func sendActions(_ frames: some Collection<EngineIOFrame>) -> [Action] {
        switch send(frames) {
        case .none: []
        case .write(let socket): [.writeWebSocket(socket, Array(frames))]
        case .perform(let actions): actions
        }
    }

    /// The buffered frames (and the close packet when closing) as a poll's answer; empties the buffer.
    private mutating func drainPollBuffer() -> Answer {
        let closePacket = readyState == .closing
        if settings.protocolVersion == .v3 {
            let packets = pollBuffer.map(\.packet) + (closePacket ? [EngineIOPacket(.close)] : [])
            clearPollBuffer()
            let (body, isBinary) = EngineIOCodecV3.encodePayload(packets, binary: settings.binaryPolling)
            return isBinary ? .binaryPayload(body) : .payload(body)
        }
        var size = bufferedPollingBytes + pollBuffer.count + (closePacket ? 1 : 0)
        if size > 0 { size -= 1 }
        var body = ByteBuffer()
        body.reserveCapacity(size)
        for (index, frame) in pollBuffer.enumerated() {
            if index > 0 { body.writeInteger(EngineIOCodec.recordSeparator) }
            frame.writePollingEncoding(into: &body)
        }
        if closePacket {
            if !pollBuffer.isEmpty { body.writeInteger(EngineIOCodec.recordSeparator) }
            body.writeInteger(EngineIOPacketType.close.rawValue)
        }
        clearPollBuffer()
        return .payload(body)
    }

    private mutating func clearPollBuffer() {
        pollBuffer.removeAll(keepingCapacity: false)
        bufferedPollingBytes = 0
    }

    // MARK: Polling

    /// A GET of the polling transport: answered at once when there is something to say,
    /// otherwise held until there is.
    mutating func poll(now: NIODeadline) -> [Action] {
        if pongOverdue(now) { return beginClose(reason: .pingTimeout, now: now) + [.answerRequest(.error(.unknownSessionID))] }
        if usesWebSocket { return [.answerRequest(.error(.badRequest))] }
        if hasPendingPoll { return beginClose(reason: .transportError, now: now) + [.answerRequest(.status(400))] }
        switch readyState {
        case .closed:
            return [.answerRequest(.error(.unknownSessionID))]
        case .closing:
            let answer = drainPollBuffer()
            return [.answerRequest(answer)] + finish()
        case .open:
            if !pollBuffer.isEmpty { return [.answerRequest(drainPollBuffer())] }
            hasPendingPoll = true
            guard probing else { return [.holdRequest] }
            // A poll during an upgrade: released with a noop shortly, as the reference does,
            // or refused if the upgrade completes first (the session is then WebSocket).
            pollArrivedDuringProbe = true
            return [.holdRequest, arm(.probePoll, at: now + settings.probePollDelay)]
        }
    }

    /// A POST of the polling transport, its body decoded (`nil` when it was too large to read).
    mutating func post(_ packets: Result<[EngineIOPacket], EngineIOCodecError>?, now: NIODeadline) -> PostAdmission {
        if pongOverdue(now) { return .refuse(beginClose(reason: .pingTimeout, now: now) + [.answerRequest(.error(.unknownSessionID))]) }
        if usesWebSocket { return .refuse([.answerRequest(.error(.badRequest))]) }
        if readyState == .closed { return .refuse([.answerRequest(.error(.unknownSessionID))]) }
        switch packets {
        case nil:
            return .refuse(beginClose(reason: .transportError, now: now) + [.answerRequest(.status(413))])
        case .failure:
            return .refuse(beginClose(reason: .parseError, now: now) + [.answerRequest(.ok)])
        case .success(let packets):
            return .accept(packets)
        }
    }

    /// One packet of an accepted POST.
    mutating func receivePolled(_ packet: EngineIOPacket, now: NIODeadline) -> [Action] {
        guard transport == .polling else { return [] }
        return handle(packet, now: now)
    }

    private mutating func handle(_ packet: EngineIOPacket, now: NIODeadline) -> [Action] {
        guard readyState == .open else { return [] }
        switch packet.type {
        case .message:
            guard let payload = packet.payload else { return [] }
            return [.deliver(payload)]
        case .pong where settings.protocolVersion == .v4:
            return receivedPong(now)
        case .ping where settings.protocolVersion == .v3:
            return receivedPing(now)
        case .close:
            return beginClose(reason: .transportClose, now: now)
        case .open, .ping, .pong, .upgrade, .noop:
            return []
        }
    }

    // MARK: WebSocket

    /// A WebSocket asked to upgrade this session; it is refused (closed) unless the session is
    /// open over polling with no other probe.
    mutating func attachProbe(_ socket: WebSocketID, now: NIODeadline) -> [Action] {
        guard readyState == .open, transport == .polling, probe == nil else { return [.closeWebSocket(socket, code: 1000)] }
        probe = socket
        return [arm(.upgrade, at: now + settings.upgradeTimeout)]
    }

    /// A packet arrived on a WebSocket: the session's transport, its probe, or a stale socket
    /// (which is closed).
    mutating func receive(_ packet: EngineIOPacket, from socket: WebSocketID, now: NIODeadline) -> [Action] {
        if transport == .webSocket(socket) {
            if pongOverdue(now) { return beginClose(reason: .pingTimeout, now: now) }
            return handle(packet, now: now)
        }
        guard probe == socket else { return [.closeWebSocket(socket, code: 1000)] }
        switch packet.type {
        case .ping where packet.text == "probe":
            probing = true
            var actions: [Action] = [.writeWebSocket(socket, [Self.probePongFrame])]
            if hasPendingPoll {
                hasPendingPoll = false
                actions.append(.answerPendingPoll(.noop))
            }
            return actions
        case .upgrade:
            guard readyState == .open, probing else { return [] }
            return completeUpgrade(to: socket)
        default:
            return abandonProbe(socket, closeIt: true)
        }
    }

    private mutating func completeUpgrade(to socket: WebSocketID) -> [Action] {
        var actions: [Action] = []
        disarm(.upgrade, into: &actions)
        disarm(.probePoll, into: &actions)
        probe = nil
        probing = false
        transport = .webSocket(socket)
        if !pollBuffer.isEmpty { actions.append(.writeWebSocket(socket, pollBuffer)) }
        clearPollBuffer()
        if hasPendingPoll {
            hasPendingPoll = false
            actions.append(.answerPendingPoll(pollArrivedDuringProbe ? .error(.badRequest) : .noop))
        }
        pollArrivedDuringProbe = false
        return actions
    }

    private mutating func abandonProbe(_ socket: WebSocketID, closeIt: Bool) -> [Action] {
        guard probe == socket else { return [] }
        probe = nil
        probing = false
        pollArrivedDuringProbe = false
        var actions: [Action] = []
        disarm(.upgrade, into: &actions)
        disarm(.probePoll, into: &actions)
        if closeIt { actions.append(.closeWebSocket(socket, code: 1000)) }
        return actions
    }

    /// A WebSocket closed or failed (it is already closing: it is not closed again).
    mutating func socketClosed(_ socket: WebSocketID, reason: EngineIOCloseReason, now: NIODeadline) -> [Action] {
        if transport == .webSocket(socket) { return beginClose(reason: reason, closedSocket: socket, now: now) }
        return abandonProbe(socket, closeIt: false)
    }

    // MARK: Closing

    /// Closes the session. Over polling, a close the server asked for (forced, shutting down)
    /// lets the client collect what was queued, then a close packet, within the close timeout;
    /// any other close drops the buffer. Over WebSocket the socket is closed.
    mutating func close(reason: EngineIOCloseReason, now: NIODeadline) -> [Action] {
        beginClose(reason: reason, now: now)
    }

    /// `now` may be left out by the events that never close gracefully (only a graceful close
    /// arms a timer).
    private mutating func beginClose(reason: EngineIOCloseReason, closedSocket: WebSocketID? = nil, now: NIODeadline?) -> [Action] {
        guard readyState == .open else { return [] }
        var actions: [Action] = []
        disarmAll(into: &actions)
        if let probe {
            actions.append(.closeWebSocket(probe, code: 1000))
            self.probe = nil
            probing = false
            pollArrivedDuringProbe = false
        }
        switch transport {
        case .webSocket(let socket):
            if socket != closedSocket { actions.append(.closeWebSocket(socket, code: 1000)) }
            readyState = .closed
            actions.append(.notifyClosed(reason))
            actions.append(.finish)
        case .polling:
            let graceful = reason == .forcedClose || reason == .serverShuttingDown
            if !graceful { clearPollBuffer() }
            readyState = .closing
            if hasPendingPoll {
                hasPendingPoll = false
                // The client's own close packet releases its pending poll with a noop, as the
                // reference does; any other close hands it the close packet.
                actions.append(.answerPendingPoll(reason == .transportClose ? .noop : drainPollBuffer()))
                readyState = .closed
                actions.append(.notifyClosed(reason))
                actions.append(.finish)
            } else if graceful {
                actions.append(arm(.close, at: (now ?? heartbeatAnchor) + settings.closeTimeout))
                actions.append(.notifyClosed(reason))
            } else {
                readyState = .closed
                actions.append(.notifyClosed(reason))
                actions.append(.finish)
            }
        }
        return actions
    }

    private mutating func finish() -> [Action] {
        var actions: [Action] = []
        disarmAll(into: &actions)
        readyState = .closed
        clearPollBuffer()
        actions.append(.finish)
        return actions
    }
}

/// The generation of the armed timer of each kind, without a dictionary.
private struct ArmedTimers {
    private var heartbeat: UInt64?
    private var upgrade: UInt64?
    private var probePoll: UInt64?
    private var close: UInt64?

    subscript(kind: EngineIOSessionStateMachine.TimerKind) -> UInt64? {
        get {
            switch kind {
            case .heartbeat: heartbeat
            case .upgrade: upgrade
            case .probePoll: probePoll
            case .close: close
            }
        }
        set {
            switch kind {
            case .heartbeat: heartbeat = newValue
            case .upgrade: upgrade = newValue
            case .probePoll: probePoll = newValue
            case .close: close = newValue
            }
        }
    }
}
