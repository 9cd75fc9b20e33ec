import EngineIO
import NIOCore
import Synchronization
import Testing

@testable import SocketIO

@Suite("Socket.IO socket state machine")
struct SocketIOSocketStateMachineTests {
    /// One event given to the machine, and the actions it must answer, written as text.
    enum Step: Sendable {
        case admit(connectionHandlers: Bool)
        case join(Set<String>)
        case leave(String)
        case on(String)
        case onDisconnecting
        case onDisconnect
        case event(String)
        /// An event `at` milliseconds after the start.
        case eventAt(String, milliseconds: Int64)
        case packet(SocketIOPacket)
        case workFinished
        case close(SocketIODisconnectReason)
        /// Waits for ack `id` from `at` seconds, for `timeout` seconds when given.
        case registerAck(id: Int, timeout: Int64?, at: Int64)
        case ackTimer(id: Int, at: Int64)
        /// The broadcast that asked for ack `id` timed out.
        case ackExpired(id: Int)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        var maxPendingEvents = 1000
        var eventRateLimit: EngineIORateLimit?
        let steps: [(Step, [String])]
        var testDescription: String { name }
    }

    static let id = "sid"

    static func ack(_ id: Int, _ arguments: [SocketIOValue]) -> SocketIOPacket {
        SocketIOPacket(type: .ack, id: id, data: .array(arguments))
    }

    static let cases: [Case] = [
        Case(
            name: "admission joins the rooms chosen while connecting and the own room, then the connection handlers run",
            steps: [
                (.join(["user:1", "team"]), []),
                (.admit(connectionHandlers: true), ["admitted sid,team,user:1", "run connection handlers"]),
            ]),
        Case(
            name: "a room left while connecting is not joined",
            steps: [
                (.join(["a", "b"]), []),
                (.leave("a"), []),
                (.admit(connectionHandlers: false), ["admitted b,sid"]),
            ]),
        Case(
            name: "an event arriving before the connection handlers finished is dispatched after them, with the handlers they added",
            steps: [
                (.admit(connectionHandlers: true), ["admitted sid", "run connection handlers"]),
                (.event("chat"), []),
                (.on("chat"), []),
                (.workFinished, ["run event chat with 1 handlers"]),
                (.workFinished, []),
            ]),
        Case(
            name: "events run one at a time in arrival order",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.on("b"), []),
                (.event("a"), ["run event a with 0 handlers"]),
                (.event("b"), []),
                (.workFinished, ["run event b with 1 handlers"]),
                (.workFinished, []),
                (.event("a"), ["run event a with 0 handlers"]),
            ]),
        Case(
            name: "an event without a name or for a socket not connected is ignored",
            steps: [
                (.packet(SocketIOPacket(type: .event, data: [])), []),
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.packet(SocketIOPacket(type: .event, data: [])), []),
            ]),
        Case(
            name: "events past the backlog limit disconnect the socket", maxPendingEvents: 2,
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.event("a"), ["run event a with 0 handlers"]),
                (.event("a"), []),
                (.event("a"), []),
                (.event("a"), ["too many events"]),
            ]),
        Case(
            name: "events past the rate limit's burst disconnect the socket",
            eventRateLimit: EngineIORateLimit(burst: 2, perSecond: 1),
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.event("a"), ["run event a with 0 handlers"]),
                (.workFinished, []),
                (.event("a"), ["run event a with 0 handlers"]),
                (.workFinished, []),
                (.event("a"), ["event rate exceeded"]),
            ]),
        Case(
            name: "the rate limit refills with time, at its rate",
            eventRateLimit: EngineIORateLimit(burst: 1, perSecond: 2),
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.eventAt("a", milliseconds: 0), ["run event a with 0 handlers"]),
                (.workFinished, []),
                (.eventAt("a", milliseconds: 499), ["event rate exceeded"]),
                (.eventAt("a", milliseconds: 1_000), ["run event a with 0 handlers"]),
                (.workFinished, []),
                (.eventAt("a", milliseconds: 1_200), ["event rate exceeded"]),
            ]),
        Case(
            name: "acks and disconnects are not events: the rate limit leaves them alone",
            eventRateLimit: EngineIORateLimit(burst: 1, perSecond: 1),
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.packet(ack(1, [])), []),
                (.packet(ack(2, [])), []),
                (.event("a"), ["run event a with 0 handlers"]),
                (.workFinished, []),
                (.packet(SocketIOPacket(type: .disconnect)), ["unroute", "leave"]),
            ]),
        Case(
            name: "rooms change at once while connected and not at all once closed",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.join(["r"]), ["add r"]),
                (.leave("r"), ["remove r"]),
                (.close(.transportClose), ["unroute", "leave"]),
                (.join(["r"]), []),
                (.leave("r"), []),
            ]),
        Case(
            name: "a close during a connection handler leaves the rooms at once; disconnect handlers run after the handler",
            steps: [
                (.admit(connectionHandlers: true), ["admitted sid", "run connection handlers"]),
                (.onDisconnect, []),
                (.close(.transportClose), ["unroute", "leave"]),
                (.join(["late"]), []),
                (.onDisconnect, []),
                (.workFinished, ["run 1 disconnect handlers (transport close)"]),
                (.workFinished, ["run 1 disconnect handlers (transport close)"]),
                (.workFinished, []),
            ]),
        Case(
            name: "a disconnect handler added after the socket left runs at once with the stored reason",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.close(.pingTimeout), ["unroute", "leave"]),
                (.onDisconnect, ["run 1 disconnect handlers (ping timeout)"]),
                (.workFinished, []),
                (.onDisconnecting, ["run 1 disconnect handlers (ping timeout)"]),
            ]),
        Case(
            name: "a close during the middlewares ends the socket: no rooms, no handlers, no admission",
            steps: [
                (.join(["a"]), []),
                (.onDisconnect, []),
                (.close(.transportClose), []),
                (.admit(connectionHandlers: true), []),
                (.join(["b"]), []),
            ]),
        Case(
            name: "disconnecting handlers run while the socket is in its rooms, which it leaves before the disconnect handlers",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.onDisconnecting, []),
                (.onDisconnect, []),
                (.close(.serverNamespaceDisconnect), ["unroute", "run 1 disconnect handlers (server namespace disconnect)"]),
                (.join(["r"]), []),
                (.event("a"), []),
                (.workFinished, ["leave", "run 1 disconnect handlers (server namespace disconnect)"]),
                (.workFinished, []),
            ]),
        Case(
            name: "events not yet dispatched are dropped when the socket closes",
            steps: [
                (.admit(connectionHandlers: true), ["admitted sid", "run connection handlers"]),
                (.event("a"), []),
                (.close(.transportClose), ["unroute", "leave"]),
                (.workFinished, []),
            ]),
        Case(
            name: "a client DISCONNECT closes the socket with the client's reason",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.onDisconnect, []),
                (.packet(SocketIOPacket(type: .disconnect)), ["unroute", "leave", "run 1 disconnect handlers (client namespace disconnect)"]),
                (.close(.transportClose), []),
            ]),
        Case(
            name: "an ack answered before its deadline resolves once; its timer then does nothing",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.registerAck(id: 7, timeout: 5, at: 0), ["timer 7 at 5s"]),
                (.packet(ack(7, ["ok"])), ["ack [\"ok\"]"]),
                (.packet(ack(7, ["again"])), []),
                (.ackTimer(id: 7, at: 5), []),
            ]),
        Case(
            name: "an ack timer fires its timeout at the deadline, not before, and a late answer is ignored",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.registerAck(id: 1, timeout: 5, at: 10), ["timer 1 at 15s"]),
                (.ackTimer(id: 1, at: 14), []),
                (.ackTimer(id: 1, at: 15), ["ack operation has timed out"]),
                (.packet(ack(1, [])), []),
            ]),
        Case(
            name: "an ack without a timeout waits until the socket closes",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.registerAck(id: 1, timeout: nil, at: 0), []),
                (.registerAck(id: 2, timeout: 3, at: 0), ["timer 2 at 3s"]),
                (.close(.transportClose), ["unroute", "ack socket has been disconnected", "ack socket has been disconnected", "leave"]),
                (.ackTimer(id: 2, at: 3), []),
            ]),
        Case(
            name: "an ack asked of a socket that is not connected fails at once",
            steps: [
                (.registerAck(id: 1, timeout: 5, at: 0), ["ack socket has been disconnected"]),
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.close(.transportClose), ["unroute", "leave"]),
                (.registerAck(id: 2, timeout: 5, at: 0), ["ack socket has been disconnected"]),
            ]),
        Case(
            name: "a broadcast's timer ends the wait for its ack even before the socket's own deadline, once",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.registerAck(id: 4, timeout: 5, at: 1), ["timer 4 at 6s"]),
                (.ackExpired(id: 4), ["ack operation has timed out"]),
                (.ackExpired(id: 4), []),
                (.packet(ack(4, ["late"])), []),
            ]),
        Case(
            name: "an answer to an unknown ack is ignored",
            steps: [
                (.admit(connectionHandlers: false), ["admitted sid"]),
                (.packet(ack(3, [])), []),
            ]),
    ]

    @Test("each transition", arguments: cases)
    func transitions(_ testCase: Case) {
        let start = NIODeadline.uptimeNanoseconds(0)
        var machine = SocketIOSocketStateMachine(
            id: Self.id, maxPendingEvents: testCase.maxPendingEvents, eventRateLimit: testCase.eventRateLimit, now: start)
        let handler: SocketIOEventHandler = { _ in }
        let disconnectHandler: SocketIODisconnectHandler = { _, _ in }
        for (index, (step, expected)) in testCase.steps.enumerated() {
            let actions: [SocketIOSocketStateMachine.Action]
            switch step {
            case .admit(let hasHandlers): actions = machine.admit(hasConnectionHandlers: hasHandlers)
            case .join(let rooms): actions = machine.join(rooms)
            case .leave(let room): actions = machine.leave(room)
            case .on(let event):
                machine.on(event, handler)
                actions = []
            case .onDisconnecting: actions = machine.onDisconnecting(disconnectHandler)
            case .onDisconnect: actions = machine.onDisconnect(disconnectHandler)
            case .event(let name): actions = machine.receive(SocketIOPacket(type: .event, data: [.string(name)]), now: start)
            case .eventAt(let name, let milliseconds):
                actions = machine.receive(SocketIOPacket(type: .event, data: [.string(name)]), now: start + .milliseconds(milliseconds))
            case .packet(let packet): actions = machine.receive(packet, now: start)
            case .workFinished: actions = machine.workFinished()
            case .close(let reason): actions = machine.close(reason: reason)
            case .registerAck(let id, let timeout, let at):
                actions = machine.registerAck(id: id, timeout: timeout.map { .seconds($0) }, now: start + .seconds(at)) { _ in }
            case .ackTimer(let id, let at): actions = machine.ackTimerFired(id: id, now: start + .seconds(at))
            case .ackExpired(let id): actions = machine.ackExpired(id: id)
            }
            #expect(actions.map { Self.describe($0, start: start) } == expected, "step \(index)")
        }
    }

    @Test("the ack callback a resolution carries is the one registered for that id")
    func ackCallbacks() {
        var machine = SocketIOSocketStateMachine(id: Self.id, maxPendingEvents: 10)
        _ = machine.admit(hasConnectionHandlers: false)
        let answers = AnswerLog()
        _ = machine.registerAck(id: 1, timeout: nil, now: .now()) { answers.record(1, $0) }
        _ = machine.registerAck(id: 2, timeout: nil, now: .now()) { answers.record(2, $0) }
        for action in machine.receive(Self.ack(2, ["two"]), now: .now()) {
            if case .resolveAck(let callback, let result) = action { callback(result) }
        }
        #expect(answers.entries == ["2: [\"two\"]"])
        #expect(machine.pendingAcks == 1)
    }

    static func describe(_ action: SocketIOSocketStateMachine.Action, start: NIODeadline) -> String {
        switch action {
        case .admitted(let rooms): "admitted \(rooms.sorted().joined(separator: ","))"
        case .addRooms(let rooms): "add \(rooms.sorted().joined(separator: ","))"
        case .removeRoom(let room): "remove \(room)"
        case .run(.connectionHandlers): "run connection handlers"
        case .run(.event(let packet, let handlers)): "run event \(SocketIOEventName.of(packet)) with \(handlers.count) handlers"
        case .run(.disconnectHandlers(let handlers, let reason)): "run \(handlers.count) disconnect handlers (\(reason))"
        case .resolveAck(_, .success(let arguments)): "ack \(arguments.map(\.testText))"
        case .resolveAck(_, .failure(let error)): "ack \(error)"
        case .scheduleAckTimer(let id, let deadline): "timer \(id) at \((deadline - start).nanoseconds / 1_000_000_000)s"
        case .tooManyEvents: "too many events"
        case .eventRateExceeded: "event rate exceeded"
        case .unroute: "unroute"
        case .leave: "leave"
        }
    }
}

private final class AnswerLog: Sendable {
    private let log = Mutex<[String]>([])
    func record(_ id: Int, _ result: Result<[SocketIOValue], SocketIOAckError>) {
        let text = (try? result.get()).map { "\($0.map(\.testText))" } ?? "failed"
        log.withLock { $0.append("\(id): \(text)") }
    }
    var entries: [String] { log.withLock { $0 } }
}

extension SocketIOValue {
    fileprivate var testText: String { stringValue ?? "\(self)" }
}
