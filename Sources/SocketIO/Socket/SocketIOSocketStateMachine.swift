import EngineIO
import NIOCore

/// A socket's life in its namespace, as a value: connecting (its middlewares run), connected,
/// disconnecting (its `disconnecting` handlers run while it is still in its rooms), closed.
///
/// It also orders the socket's handler work: the connection handlers first, then each event in
/// arrival order, then the disconnect handlers, one piece of work at a time. It holds the pending
/// acknowledgements with their deadlines. It takes events (with the time, `now`, where it
/// matters) and returns actions; a loop-confined ``SocketIOSocket`` performs them.
struct SocketIOSocketStateMachine: Sendable {
    enum Phase: Equatable, Sendable { case connecting, connected, disconnecting, closed }

    /// Handler work to run on a task; the handler reports ``workFinished()`` when it is done.
    enum Work: Sendable {
        /// The namespace's connection handlers.
        case connectionHandlers
        /// An event for these handlers (the `onAny` ones first).
        case event(SocketIOPacket, handlers: [SocketIOEventHandler])
        /// Disconnect handlers (`disconnecting` or `disconnect` ones) with the reason.
        case disconnectHandlers([SocketIODisconnectHandler], reason: SocketIODisconnectReason)
    }

    /// What the handler does after an event.
    enum Action: Sendable {
        /// The socket is admitted: it joins these rooms (its own id among them), becomes one of its
        /// namespace's sockets, and then CONNECT is written.
        case admitted(rooms: Set<String>)
        /// Join rooms now.
        case addRooms(Set<String>)
        /// Leave a room now.
        case removeRoom(String)
        /// Start the work on a task.
        case run(Work)
        /// Call an acknowledgement callback.
        case resolveAck(SocketIOAckCallback, Result<[SocketIOValue], SocketIOAckError>)
        /// Call ``ackTimerFired(id:now:)`` at `deadline`.
        case scheduleAckTimer(id: Int, deadline: NIODeadline)
        /// The client sends events faster than the handlers run: disconnect it.
        case tooManyEvents
        /// The client sends events faster than its rate limit: disconnect it.
        case eventRateExceeded
        /// The socket closed: its namespace's packets no longer reach it.
        case unroute
        /// The socket leaves every room and its namespace's sockets.
        case leave
    }

    private enum Job {
        case connectionHandlers
        case event(SocketIOPacket)
        case disconnecting(SocketIODisconnectReason)
        case disconnected([SocketIODisconnectHandler], SocketIODisconnectReason)
    }

    private struct PendingAck {
        let callback: SocketIOAckCallback
        let deadline: NIODeadline?
    }

    /// The socket's id, which is also its own room.
    let id: String
    /// The most jobs that may wait behind the running one.
    let maxPendingEvents: Int
    /// How many events the client may send, when limited.
    private let eventRateLimit: EngineIORateLimit?
    private var eventBucket: EngineIOTokenBucket?
    private(set) var phase = Phase.connecting
    /// Why the socket left, once it was connected and left.
    private(set) var closeReason: SocketIODisconnectReason?
    /// Rooms joined while connecting (by a middleware): joined on admission, before CONNECT.
    private var pendingRooms: Set<String> = []
    private var handlers: [String: [SocketIOEventHandler]] = [:]
    private var anyHandlers: [SocketIOEventHandler] = []
    private var disconnectingHandlers: [SocketIODisconnectHandler] = []
    private var disconnectHandlers: [SocketIODisconnectHandler] = []
    private var acks: [Int: PendingAck] = [:]
    private var jobs = CircularBuffer<Job>()
    private var running: Job?

    /// A socket that will join `rooms` on admission (a recovered socket's rooms), whose client
    /// may send `eventRateLimit` events (unlimited when `nil`).
    init(id: String, rooms: Set<String> = [], maxPendingEvents: Int, eventRateLimit: EngineIORateLimit? = nil, now: NIODeadline = .now()) {
        self.id = id
        self.pendingRooms = rooms
        self.maxPendingEvents = maxPendingEvents
        self.eventRateLimit = eventRateLimit
        self.eventBucket = eventRateLimit.map { EngineIOTokenBucket($0, now: now) }
    }

    var isConnected: Bool { phase == .connected }

    /// Whether handler work is running or waiting.
    var isBusy: Bool { running != nil }

    /// Jobs waiting behind the running one.
    var waiting: Int { jobs.count }

    /// Pending acknowledgements.
    var pendingAcks: Int { acks.count }

    // MARK: Admission

    /// The middlewares accepted the socket.
    mutating func admit(hasConnectionHandlers: Bool) -> [Action] {
        guard phase == .connecting else { return [] }
        phase = .connected
        var rooms = pendingRooms
        rooms.insert(id)
        pendingRooms = []
        var actions: [Action] = [.admitted(rooms: rooms)]
        if hasConnectionHandlers { enqueue(.connectionHandlers, into: &actions) }
        return actions
    }

    // MARK: Rooms

    /// Joins rooms: kept for admission while connecting, at once when connected, not at all after.
    mutating func join(_ rooms: Set<String>) -> [Action] {
        switch phase {
        case .connecting:
            pendingRooms.formUnion(rooms)
            return []
        case .connected: return [.addRooms(rooms)]
        case .disconnecting, .closed: return []
        }
    }

    /// Leaves a room (one joined while connecting is simply forgotten).
    mutating func leave(_ room: String) -> [Action] {
        switch phase {
        case .connecting:
            pendingRooms.remove(room)
            return []
        case .connected: return [.removeRoom(room)]
        case .disconnecting, .closed: return []
        }
    }

    // MARK: Handlers

    /// Adds an event handler (ignored once the socket is leaving).
    mutating func on(_ event: String, _ handler: @escaping SocketIOEventHandler) {
        guard phase == .connecting || phase == .connected else { return }
        handlers[event, default: []].append(handler)
    }

    /// Adds a handler for every event (ignored once the socket is leaving).
    mutating func onAny(_ handler: @escaping SocketIOEventHandler) {
        guard phase == .connecting || phase == .connected else { return }
        anyHandlers.append(handler)
    }

    /// Adds a `disconnecting` handler; on a socket that already left, it runs at once (after the
    /// work running now) with the stored reason.
    mutating func onDisconnecting(_ handler: @escaping SocketIODisconnectHandler) -> [Action] {
        guard let closeReason else {
            disconnectingHandlers.append(handler)
            return []
        }
        var actions: [Action] = []
        enqueue(.disconnected([handler], closeReason), into: &actions)
        return actions
    }

    /// Adds a `disconnect` handler; on a socket that already left, it runs at once (after the
    /// work running now) with the stored reason.
    mutating func onDisconnect(_ handler: @escaping SocketIODisconnectHandler) -> [Action] {
        guard let closeReason else {
            disconnectHandlers.append(handler)
            return []
        }
        var actions: [Action] = []
        enqueue(.disconnected([handler], closeReason), into: &actions)
        return actions
    }

    // MARK: Packets

    /// A packet of the socket's namespace arrived from the client.
    mutating func receive(_ packet: SocketIOPacket, now: NIODeadline) -> [Action] {
        guard phase == .connected else { return [] }
        switch packet.type {
        case .event, .binaryEvent:
            guard let arguments = packet.data?.arrayValue, !arguments.isEmpty else { return [] }
            if let eventRateLimit, eventBucket?.take(eventRateLimit, now: now) == false { return [.eventRateExceeded] }
            if running != nil, jobs.count >= maxPendingEvents { return [.tooManyEvents] }
            var actions: [Action] = []
            enqueue(.event(packet), into: &actions)
            return actions
        case .ack, .binaryAck:
            guard let id = packet.id, let pending = acks.removeValue(forKey: id) else { return [] }
            return [.resolveAck(pending.callback, .success(packet.data?.arrayValue ?? []))]
        case .disconnect:
            return close(reason: .clientNamespaceDisconnect)
        case .connect, .connectError:
            return []
        }
    }

    // MARK: Acknowledgements

    /// Waits for the client's answer to the event with ack `id`, until `now + timeout` when given.
    mutating func registerAck(id: Int, timeout: TimeAmount?, now: NIODeadline, _ callback: @escaping SocketIOAckCallback) -> [Action] {
        guard phase == .connected else { return [.resolveAck(callback, .failure(.disconnected))] }
        let deadline = timeout.map { now + $0 }
        acks[id] = PendingAck(callback: callback, deadline: deadline)
        return deadline.map { [.scheduleAckTimer(id: id, deadline: $0)] } ?? []
    }

    /// The timer of ack `id` fired at `now`.
    mutating func ackTimerFired(id: Int, now: NIODeadline) -> [Action] {
        guard let pending = acks[id], let deadline = pending.deadline, now >= deadline else { return [] }
        acks[id] = nil
        return [.resolveAck(pending.callback, .failure(.timeout))]
    }

    /// The broadcast that asked for ack `id` gave up waiting (its one timer covers every
    /// recipient): the ack times out whatever its own deadline.
    mutating func ackExpired(id: Int) -> [Action] {
        guard let pending = acks.removeValue(forKey: id) else { return [] }
        return [.resolveAck(pending.callback, .failure(.timeout))]
    }

    // MARK: Work

    private mutating func enqueue(_ job: Job, into actions: inout [Action]) {
        guard running == nil else {
            jobs.append(job)
            return
        }
        start(job, into: &actions)
    }

    private mutating func start(_ job: Job, into actions: inout [Action]) {
        running = job
        switch job {
        case .connectionHandlers:
            actions.append(.run(.connectionHandlers))
        case .event(let packet):
            let name = SocketIOEventName.of(packet)
            actions.append(.run(.event(packet, handlers: anyHandlers + (handlers[name] ?? []))))
        case .disconnecting(let reason):
            actions.append(.run(.disconnectHandlers(disconnectingHandlers, reason: reason)))
            disconnectingHandlers = []
        case .disconnected(let handlers, let reason):
            actions.append(.run(.disconnectHandlers(handlers, reason: reason)))
        }
    }

    /// The running work finished.
    mutating func workFinished() -> [Action] {
        guard let finished = running else { return [] }
        running = nil
        var actions: [Action] = []
        if case .disconnecting = finished {
            phase = .closed
            actions.append(.leave)
        }
        if let next = jobs.popFirst() { start(next, into: &actions) }
        if jobs.isEmpty, jobs.capacity > 16 { jobs = CircularBuffer() }
        return actions
    }

    // MARK: Closing

    /// Leaves the namespace: pending acks fail, events not yet dispatched are dropped, the
    /// `disconnecting` handlers run while the socket is still in its rooms, then it leaves them,
    /// then the `disconnect` handlers run. A socket that was still connecting just ends.
    mutating func close(reason: SocketIODisconnectReason) -> [Action] {
        switch phase {
        case .connecting:
            phase = .closed
            pendingRooms = []
            return []
        case .disconnecting, .closed:
            return []
        case .connected:
            break
        }
        closeReason = reason
        var actions: [Action] = [.unroute]
        for id in acks.keys.sorted() {
            actions.append(.resolveAck(acks[id]!.callback, .failure(.disconnected)))
        }
        acks = [:]
        handlers = [:]
        anyHandlers = []
        jobs = CircularBuffer(jobs.filter { if case .event = $0 { false } else { true } })
        let disconnect = disconnectHandlers
        disconnectHandlers = []
        if disconnectingHandlers.isEmpty {
            phase = .closed
            actions.append(.leave)
        } else {
            phase = .disconnecting
            enqueue(.disconnecting(reason), into: &actions)
        }
        if !disconnect.isEmpty { enqueue(.disconnected(disconnect, reason), into: &actions) }
        return actions
    }
}

/// Called with a client's answer to an event, or why none came.
typealias SocketIOAckCallback = @Sendable (Result<[SocketIOValue], SocketIOAckError>) -> Void

/// How an event packet names its event.
enum SocketIOEventName {
    /// The event name: a string, or a number written as JavaScript prints it.
    static func of(_ packet: SocketIOPacket) -> String {
        guard let first = packet.data?.arrayValue?.first else { return "" }
        return first.stringValue ?? first.numberValue.map { JSONNumber.text($0) } ?? ""
    }
}
