import NIOCore
import Testing

@testable import EngineIO

/// Each scenario drives one session's state machine with an explicit clock (milliseconds after
/// the session opened) and checks the exact actions of every step. The session is started first,
/// which arms the first heartbeat (generation 1); later timers take the next generations.
@Suite("Engine.IO session state machine")
struct EngineIOSessionStateMachineTests {
    typealias Machine = EngineIOSessionStateMachine
    typealias Action = Machine.Action

    enum Event: Sendable {
        case poll(at: Int64)
        /// A POST body; `nil` for one over the size limit.
        case post(String?, at: Int64)
        case send([EngineIOFrame])
        case attach(Machine.WebSocketID, at: Int64)
        case webSocket(String, from: Machine.WebSocketID, at: Int64)
        case socketClosed(Machine.WebSocketID, EngineIOCloseReason, at: Int64)
        case fire(Machine.TimerKind, generation: UInt64)
        case close(EngineIOCloseReason, at: Int64)
    }

    struct Step: Sendable {
        let event: Event
        let expected: [Action]
    }

    struct Scenario: CustomTestStringConvertible, Sendable {
        let name: String
        var webSocket: Machine.WebSocketID? = nil
        let steps: [Step]
        var testDescription: String { name }
    }

    // MARK: Vocabulary

    static let ws1 = Machine.WebSocketID(rawValue: 1)
    static let ws2 = Machine.WebSocketID(rawValue: 2)
    static let origin = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static var settings: Machine.Settings {
        var configuration = EngineIOConfiguration()
        configuration.pingInterval = .seconds(25)
        configuration.pingTimeout = .seconds(20)
        configuration.upgradeTimeout = .seconds(10)
        configuration.closeTimeout = .seconds(30)
        configuration.maxBufferedPollingBytes = 100
        return Machine.Settings(configuration)
    }

    static func at(_ milliseconds: Int64) -> NIODeadline { origin + .milliseconds(milliseconds) }
    static func timer(_ kind: Machine.TimerKind, _ generation: UInt64) -> Machine.Timer { .init(kind: kind, generation: generation) }
    static func message(_ text: String, isVolatile: Bool = false) -> EngineIOFrame {
        .message(ByteBuffer(string: text), isVolatile: isVolatile)
    }
    static func text(_ text: String) -> EngineIOPayload { .text(ByteBuffer(string: text)) }
    /// A polling payload; `|` stands for the record separator.
    static func payload(_ text: String) -> Machine.Answer {
        .payload(ByteBuffer(string: String(text.map { $0 == "|" ? "\u{1e}" : $0 })))
    }
    static func step(_ event: Event, _ expected: Action...) -> Step { Step(event: event, expected: expected) }

    static let unknownSession = Action.answerRequest(.error(.unknownSessionID))
    static let badRequest = Action.answerRequest(.error(.badRequest))

    /// Steps that open a probe on `ws1` at 200 ms and answer its `2probe`.
    static let probed: [Step] = [
        step(.attach(ws1, at: 200), .schedule(timer(.upgrade, 2), at: at(10_200))),
        step(.webSocket("2probe", from: ws1, at: 250), .writeWebSocket(ws1, [Machine.probePongFrame])),
    ]

    // MARK: Scenarios

    static let polling: [Scenario] = [
        Scenario(
            name: "a poll with nothing buffered is held and answered by the next send",
            steps: [
                step(.poll(at: 10), .holdRequest),
                step(.send([message("a")]), .answerPendingPoll(payload("4a"))),
            ]),
        Scenario(
            name: "a poll collects every buffered packet, joined by the record separator",
            steps: [
                step(.send([message("a")])),
                step(.send([message("b"), message("c")])),
                step(.poll(at: 10), .answerRequest(payload("4a|4b|4c"))),
                step(.poll(at: 20), .holdRequest),
            ]),
        Scenario(
            name: "a binary packet is polled as b and its base64",
            steps: [
                step(.send([.binary(ByteBuffer(bytes: [1, 2, 3]))])),
                step(.poll(at: 10), .answerRequest(payload("bAQID"))),
            ]),
        Scenario(
            name: "a second GET while one is pending is a transport error: the first gets the close packet, the second 400",
            steps: [
                step(.poll(at: 10), .holdRequest),
                step(
                    .poll(at: 20), .cancel(.heartbeat), .answerPendingPoll(payload("1")), .notifyClosed(.transportError), .finish,
                    .answerRequest(.status(400))
                ),
                step(.poll(at: 30), unknownSession),
            ]),
        Scenario(
            name: "a POST body over the size limit is answered 413 and closes the session",
            steps: [
                step(.post(nil, at: 10), .cancel(.heartbeat), .notifyClosed(.transportError), .finish, .answerRequest(.status(413)))
            ]),
        Scenario(
            name: "a malformed POST body closes the session with a parse error and is answered ok",
            steps: [
                step(.post("4a\u{1e}\u{1e}4b", at: 10), .cancel(.heartbeat), .notifyClosed(.parseError), .finish, .answerRequest(.ok)),
                step(.poll(at: 20), unknownSession),
            ]),
        Scenario(
            name: "the messages of a POST are delivered in order",
            steps: [
                step(
                    .post("4a\u{1e}4b\u{1e}bAQID", at: 10), .deliver(text("a")), .deliver(text("b")),
                    .deliver(.binary(ByteBuffer(bytes: [1, 2, 3]))),
                    .answerRequest(.ok)
                )
            ]),
        Scenario(
            name: "the client's close packet releases the pending poll with a noop and ends the session",
            steps: [
                step(.poll(at: 10), .holdRequest),
                step(
                    .post("1", at: 20), .cancel(.heartbeat), .answerPendingPoll(.noop), .notifyClosed(.transportClose), .finish, .answerRequest(.ok)),
                step(.poll(at: 30), unknownSession),
            ]),
        Scenario(
            name: "a volatile packet is dropped when no poll is pending",
            steps: [
                step(.send([message("v", isVolatile: true), message("kept")]), .countDroppedPackets(1)),
                step(.poll(at: 10), .answerRequest(payload("4kept"))),
            ]),
        Scenario(
            name: "a volatile packet reaches a pending poll",
            steps: [
                step(.poll(at: 10), .holdRequest),
                step(.send([message("v", isVolatile: true)]), .answerPendingPoll(payload("4v"))),
            ]),
        Scenario(
            name: "a polling client that lets more than maxBufferedPollingBytes pile up is closed as slow",
            steps: [
                step(.send([message(String(repeating: "x", count: 59))])),
                step(.send([message(String(repeating: "y", count: 59))]), .countSlowClient, .cancel(.heartbeat), .notifyClosed(.slowClient), .finish),
                step(.poll(at: 10), unknownSession),
            ]),
        Scenario(
            name: "a send too large for a slow client's pending poll hands it the close packet",
            steps: [
                step(.poll(at: 10), .holdRequest),
                step(
                    .send([message(String(repeating: "x", count: 120))]), .countSlowClient, .cancel(.heartbeat), .answerPendingPoll(payload("1")),
                    .notifyClosed(.slowClient), .finish
                ),
            ]),
        Scenario(
            name: "GET and POST are refused on a WebSocket session", webSocket: ws1,
            steps: [
                step(.poll(at: 10), badRequest),
                step(.post("4a", at: 20), badRequest),
            ]),
    ]

    static let heartbeat: [Scenario] = [
        Scenario(
            name: "over polling the ping waits for the next poll and its pong arms the next ping an interval later",
            steps: [
                step(.fire(.heartbeat, generation: 1), .schedule(timer(.heartbeat, 2), at: at(45_000))),
                step(.poll(at: 25_010), .answerRequest(payload("2"))),
                step(.post("3", at: 25_020), .schedule(timer(.heartbeat, 3), at: at(50_020)), .answerRequest(.ok)),
                step(.fire(.heartbeat, generation: 2)),
            ]),
        Scenario(
            name: "a ping answers a pending poll",
            steps: [
                step(.poll(at: 10), .holdRequest),
                step(.fire(.heartbeat, generation: 1), .schedule(timer(.heartbeat, 2), at: at(45_000)), .answerPendingPoll(payload("2"))),
            ]),
        Scenario(
            name: "over WebSocket the ping is written at once", webSocket: ws1,
            steps: [
                step(.fire(.heartbeat, generation: 1), .schedule(timer(.heartbeat, 2), at: at(45_000)), .writeWebSocket(ws1, [Machine.pingFrame])),
                step(.webSocket("3", from: ws1, at: 25_100), .schedule(timer(.heartbeat, 3), at: at(50_100))),
            ]),
        Scenario(
            name: "no pong by the deadline closes a polling session with a ping timeout",
            steps: [
                step(.fire(.heartbeat, generation: 1), .schedule(timer(.heartbeat, 2), at: at(45_000))),
                step(.fire(.heartbeat, generation: 2), .notifyClosed(.pingTimeout), .finish),
            ]),
        Scenario(
            name: "no pong by the deadline closes a WebSocket session and its socket", webSocket: ws1,
            steps: [
                step(.fire(.heartbeat, generation: 1), .schedule(timer(.heartbeat, 2), at: at(45_000)), .writeWebSocket(ws1, [Machine.pingFrame])),
                step(.fire(.heartbeat, generation: 2), .closeWebSocket(ws1, code: 1000), .notifyClosed(.pingTimeout), .finish),
            ]),
        Scenario(
            name: "a pong POSTed after the deadline finds the session closed before the timer fires",
            steps: [
                step(.fire(.heartbeat, generation: 1), .schedule(timer(.heartbeat, 2), at: at(45_000))),
                step(.post("3", at: 45_001), .cancel(.heartbeat), .notifyClosed(.pingTimeout), .finish, unknownSession),
                step(.fire(.heartbeat, generation: 2)),
            ]),
        Scenario(
            name: "a poll after the deadline finds the session closed, even before any ping",
            steps: [
                step(.poll(at: 45_001), .cancel(.heartbeat), .notifyClosed(.pingTimeout), .finish, unknownSession)
            ]),
        Scenario(
            name: "a request exactly at the deadline is still in time",
            steps: [
                step(.fire(.heartbeat, generation: 1), .schedule(timer(.heartbeat, 2), at: at(45_000))),
                step(.post("3", at: 45_000), .schedule(timer(.heartbeat, 3), at: at(70_000)), .answerRequest(.ok)),
            ]),
        Scenario(
            name: "a pong over WebSocket after the deadline closes the session", webSocket: ws1,
            steps: [
                step(.fire(.heartbeat, generation: 1), .schedule(timer(.heartbeat, 2), at: at(45_000)), .writeWebSocket(ws1, [Machine.pingFrame])),
                step(
                    .webSocket("3", from: ws1, at: 45_001), .cancel(.heartbeat), .closeWebSocket(ws1, code: 1000), .notifyClosed(.pingTimeout),
                    .finish),
            ]),
        Scenario(
            name: "a heartbeat timer replaced by a pong is ignored when it fires",
            steps: [
                step(.post("3", at: 1_000), .schedule(timer(.heartbeat, 2), at: at(26_000)), .answerRequest(.ok)),
                step(.fire(.heartbeat, generation: 1)),
                step(.fire(.heartbeat, generation: 2), .schedule(timer(.heartbeat, 3), at: at(46_000))),
            ]),
    ]

    static let upgrade: [Scenario] = [
        Scenario(
            name: "an upgrade probes, releases the pending poll with a noop, then flushes the buffer to the WebSocket",
            steps: [
                step(.poll(at: 100), .holdRequest),
                step(.attach(ws1, at: 200), .schedule(timer(.upgrade, 2), at: at(10_200))),
                step(.webSocket("2probe", from: ws1, at: 250), .writeWebSocket(ws1, [Machine.probePongFrame]), .answerPendingPoll(.noop)),
                step(.send([message("queued")])),
                step(.webSocket("5", from: ws1, at: 300), .cancel(.upgrade), .writeWebSocket(ws1, [message("queued")])),
                step(.send([message("after")]), .writeWebSocket(ws1, [message("after")])),
                step(.poll(at: 400), badRequest),
                step(.webSocket("4hi", from: ws1, at: 500), .deliver(text("hi"))),
            ]),
        Scenario(
            name: "a poll during the probe is released with a noop after 100 ms",
            steps: probed + [
                step(.poll(at: 300), .holdRequest, .schedule(timer(.probePoll, 3), at: at(400))),
                step(.fire(.probePoll, generation: 3), .answerPendingPoll(.noop)),
                step(.webSocket("5", from: ws1, at: 500), .cancel(.upgrade)),
            ]),
        Scenario(
            name: "a poll during the probe is answered 400 when the upgrade completes first",
            steps: probed + [
                step(.poll(at: 300), .holdRequest, .schedule(timer(.probePoll, 3), at: at(400))),
                step(.webSocket("5", from: ws1, at: 350), .cancel(.upgrade), .cancel(.probePoll), .answerPendingPoll(.error(.badRequest))),
                step(.fire(.probePoll, generation: 3)),
            ]),
        Scenario(
            name: "an upgrade that times out closes the probe and polling carries on",
            steps: [
                step(.attach(ws1, at: 200), .schedule(timer(.upgrade, 2), at: at(10_200))),
                step(.fire(.upgrade, generation: 2), .closeWebSocket(ws1, code: 1000)),
                step(.send([message("a")])),
                step(.poll(at: 10_300), .answerRequest(payload("4a"))),
                step(.webSocket("5", from: ws1, at: 10_400), .closeWebSocket(ws1, code: 1000)),
            ]),
        Scenario(
            name: "a probe that sends anything but 2probe or 5 is closed",
            steps: [
                step(.attach(ws1, at: 200), .schedule(timer(.upgrade, 2), at: at(10_200))),
                step(.webSocket("4not a probe", from: ws1, at: 300), .cancel(.upgrade), .closeWebSocket(ws1, code: 1000)),
                step(.poll(at: 400), .holdRequest),
            ]),
        Scenario(
            name: "an upgrade packet before the probe is ignored",
            steps: [
                step(.attach(ws1, at: 200), .schedule(timer(.upgrade, 2), at: at(10_200))),
                step(.webSocket("5", from: ws1, at: 300)),
                step(.send([message("a")])),
                step(.poll(at: 400), .answerRequest(payload("4a"))),
            ]),
        Scenario(
            name: "a probe that closes is forgotten and a poll held during it keeps waiting",
            steps: probed + [
                step(.poll(at: 300), .holdRequest, .schedule(timer(.probePoll, 3), at: at(400))),
                step(.socketClosed(ws1, .transportClose, at: 350), .cancel(.upgrade), .cancel(.probePoll)),
                step(.fire(.probePoll, generation: 3)),
                step(.send([message("a")]), .answerPendingPoll(payload("4a"))),
            ]),
        Scenario(
            name: "closing during the probe closes the probe too",
            steps: probed + [
                step(
                    .close(.forcedClose, at: 300), .cancel(.heartbeat), .cancel(.upgrade), .closeWebSocket(ws1, code: 1000),
                    .schedule(timer(.close, 3), at: at(30_300)), .notifyClosed(.forcedClose)
                ),
                step(.webSocket("5", from: ws1, at: 350), .closeWebSocket(ws1, code: 1000)),
            ]),
        Scenario(
            name: "a second probe is refused",
            steps: [
                step(.attach(ws1, at: 200), .schedule(timer(.upgrade, 2), at: at(10_200))),
                step(.attach(ws2, at: 300), .closeWebSocket(ws2, code: 1000)),
            ]),
        Scenario(
            name: "a WebSocket for a session already upgraded is refused, and its packets close it",
            steps: probed + [
                step(.webSocket("5", from: ws1, at: 300), .cancel(.upgrade)),
                step(.attach(ws2, at: 400), .closeWebSocket(ws2, code: 1000)),
                step(.webSocket("2probe", from: ws2, at: 500), .closeWebSocket(ws2, code: 1000)),
                step(.webSocket("4still here", from: ws1, at: 600), .deliver(text("still here"))),
            ]),
        Scenario(
            name: "a WebSocket session cannot be probed", webSocket: ws1,
            steps: [
                step(.attach(ws2, at: 100), .closeWebSocket(ws2, code: 1000))
            ]),
        Scenario(
            name: "a socket that is neither transport nor probe closing changes nothing", webSocket: ws1,
            steps: [
                step(.socketClosed(ws2, .transportError, at: 100)),
                step(.send([message("a")]), .writeWebSocket(ws1, [message("a")])),
            ]),
    ]

    static let closing: [Scenario] = [
        Scenario(
            name: "a forced close without a pending poll lets the next poll collect the buffer and the close packet",
            steps: [
                step(.send([message("a")])),
                step(.close(.forcedClose, at: 1_000), .cancel(.heartbeat), .schedule(timer(.close, 2), at: at(31_000)), .notifyClosed(.forcedClose)),
                step(.send([message("late")])),
                step(.poll(at: 2_000), .answerRequest(payload("4a|1")), .cancel(.close), .finish),
                step(.fire(.close, generation: 2)),
                step(.poll(at: 3_000), unknownSession),
            ]),
        Scenario(
            name: "a shutdown close hands a pending poll the close packet at once",
            steps: [
                step(.poll(at: 10), .holdRequest),
                step(
                    .close(.serverShuttingDown, at: 20), .cancel(.heartbeat), .answerPendingPoll(payload("1")), .notifyClosed(.serverShuttingDown),
                    .finish
                ),
            ]),
        Scenario(
            name: "a graceful close whose client never polls again ends at the close timeout",
            steps: [
                step(.close(.forcedClose, at: 1_000), .cancel(.heartbeat), .schedule(timer(.close, 2), at: at(31_000)), .notifyClosed(.forcedClose)),
                step(.fire(.close, generation: 2), .finish),
                step(.poll(at: 31_001), unknownSession),
            ]),
        Scenario(
            name: "a closing session accepts a POST but ignores its messages",
            steps: [
                step(.close(.forcedClose, at: 1_000), .cancel(.heartbeat), .schedule(timer(.close, 2), at: at(31_000)), .notifyClosed(.forcedClose)),
                step(.post("4ignored\u{1e}1", at: 1_100), .answerRequest(.ok)),
                step(.poll(at: 1_200), .answerRequest(payload("1")), .cancel(.close), .finish),
            ]),
        Scenario(
            name: "any other close over polling drops the buffer",
            steps: [
                step(.send([message("a")])),
                step(.close(.transportError, at: 1_000), .cancel(.heartbeat), .notifyClosed(.transportError), .finish),
                step(.poll(at: 1_100), unknownSession),
                step(.post("4a", at: 1_200), unknownSession),
            ]),
        Scenario(
            name: "closing a WebSocket session closes its socket", webSocket: ws1,
            steps: [
                step(.close(.forcedClose, at: 1_000), .cancel(.heartbeat), .closeWebSocket(ws1, code: 1000), .notifyClosed(.forcedClose), .finish),
                step(.webSocket("4after", from: ws1, at: 1_100)),
                step(.send([message("after")])),
                step(.close(.forcedClose, at: 1_200)),
            ]),
        Scenario(
            name: "the client's close packet over WebSocket closes the socket and the session", webSocket: ws1,
            steps: [
                step(
                    .webSocket("1", from: ws1, at: 100), .cancel(.heartbeat), .closeWebSocket(ws1, code: 1000), .notifyClosed(.transportClose),
                    .finish)
            ]),
        Scenario(
            name: "the WebSocket going away closes the session without closing the socket again", webSocket: ws1,
            steps: [
                step(.socketClosed(ws1, .transportClose, at: 100), .cancel(.heartbeat), .notifyClosed(.transportClose), .finish),
                step(.socketClosed(ws1, .transportError, at: 200)),
            ]),
        Scenario(
            name: "messages and timers after the close are ignored",
            steps: [
                step(.close(.parseError, at: 100), .cancel(.heartbeat), .notifyClosed(.parseError), .finish),
                step(.send([message("a")])),
                step(.fire(.heartbeat, generation: 1)),
                step(.attach(ws1, at: 200), .closeWebSocket(ws1, code: 1000)),
                step(.close(.forcedClose, at: 300)),
            ]),
    ]

    @Test("polling", arguments: polling)
    func pollingScenario(_ scenario: Scenario) { run(scenario) }

    @Test("heartbeat", arguments: heartbeat)
    func heartbeatScenario(_ scenario: Scenario) { run(scenario) }

    @Test("upgrade", arguments: upgrade)
    func upgradeScenario(_ scenario: Scenario) { run(scenario) }

    @Test("closing", arguments: closing)
    func closingScenario(_ scenario: Scenario) { run(scenario) }

    private func run(_ scenario: Scenario) {
        var machine = Machine(transport: scenario.webSocket.map { .webSocket($0) } ?? .polling, settings: Self.settings, now: Self.at(0))
        #expect(machine.start() == [.schedule(Self.timer(.heartbeat, 1), at: Self.at(25_000))])
        for (index, step) in scenario.steps.enumerated() {
            let actions = Self.perform(step.event, on: &machine)
            #expect(actions == step.expected, "step \(index + 1): \(step.event)")
        }
    }

    /// Feeds an event as ``EngineIOConnection`` does and collects every action it leads to.
    private static func perform(_ event: Event, on machine: inout Machine) -> [Action] {
        switch event {
        case .poll(let time):
            return machine.poll(now: at(time))
        case .post(let body, let time):
            let packets = body.map { body in
                Result { () throws(EngineIOCodecError) in try EngineIOCodec.decodePayload(ByteBuffer(string: body)) }
            }
            switch machine.post(packets, now: at(time)) {
            case .refuse(let actions):
                return actions
            case .accept(let packets):
                return packets.flatMap { machine.receivePolled($0, now: at(time)) } + [.answerRequest(.ok)]
            }
        case .send(let frames):
            switch machine.send(frames) {
            case .none: return []
            case .write(let socket): return [.writeWebSocket(socket, frames)]
            case .perform(let actions): return actions
            }
        case .attach(let socket, let time):
            return machine.attachProbe(socket, now: at(time))
        case .webSocket(let text, let socket, let time):
            let packet = try! EngineIOCodec.decodePacket(text: ByteBuffer(string: text))
            return machine.receive(packet, from: socket, now: at(time))
        case .socketClosed(let socket, let reason, let time):
            return machine.socketClosed(socket, reason: reason, now: at(time))
        case .fire(let kind, let generation):
            return machine.timerFired(timer(kind, generation))
        case .close(let reason, let time):
            return machine.close(reason: reason, now: at(time))
        }
    }

    // MARK: Engine.IO v3

    static var settingsV3: Machine.Settings {
        var settings = settings
        settings.protocolVersion = .v3
        return settings
    }

    @Test("v3: the client pings; the server answers pong and expects the next ping within interval and timeout")
    func v3Heartbeat() {
        var machine = Machine(transport: .webSocket(Self.ws1), settings: Self.settingsV3, now: Self.at(0))
        #expect(machine.start() == [.schedule(Self.timer(.heartbeat, 1), at: Self.at(45_000))])
        #expect(
            machine.receive(EngineIOPacket(.ping), from: Self.ws1, now: Self.at(10_000))
                == [.schedule(Self.timer(.heartbeat, 2), at: Self.at(55_000)), .writeWebSocket(Self.ws1, [Machine.pongFrame])])
        // A pong from a v3 client is not a heartbeat; the server never pings it.
        #expect(machine.receive(EngineIOPacket(.pong), from: Self.ws1, now: Self.at(11_000)) == [])
        #expect(machine.timerFired(Self.timer(.heartbeat, 1)) == [])
        #expect(machine.timerFired(Self.timer(.heartbeat, 2)) == [.closeWebSocket(Self.ws1, code: 1000), .notifyClosed(.pingTimeout), .finish])
    }

    @Test("v3 over polling: polls are answered in the length-prefixed framing, a ping's pong among them")
    func v3Polling() {
        var machine = Machine(transport: .polling, settings: Self.settingsV3, now: Self.at(0))
        _ = machine.start()
        _ = machine.send([Self.message("é")])
        #expect(machine.receivePolled(EngineIOPacket(.ping), now: Self.at(100)) == [.schedule(Self.timer(.heartbeat, 2), at: Self.at(45_100))])
        #expect(machine.poll(now: Self.at(200)) == [.answerRequest(.payload(ByteBuffer(string: "2:4é1:3")))])
        _ = machine.send([.binary(ByteBuffer(bytes: [7]))])
        #expect(machine.poll(now: Self.at(300)) == [.answerRequest(.binaryPayload(ByteBuffer(bytes: [1, 2, 0xFF, 4, 7])))])
    }

    // MARK: Beyond the scenarios

    @Test("a send over WebSocket asks for a write of the caller's frames, without an action list")
    func webSocketSendIsAWrite() {
        var machine = Machine(transport: .webSocket(Self.ws1), settings: Self.settings, now: Self.at(0))
        #expect(machine.send([Self.message("a")]) == .write(Self.ws1))
        #expect(machine.send([Self.message("a", isVolatile: true)]) == .write(Self.ws1))
    }

    @Test("the state other threads read follows the transport and the close")
    func observableState() {
        var machine = Machine(transport: .polling, settings: Self.settings, now: Self.at(0))
        #expect(machine.isOpen && !machine.usesWebSocket && machine.buffersForPolling)
        _ = machine.attachProbe(Self.ws1, now: Self.at(1))
        _ = machine.receive(EngineIOPacket(.ping, text: "probe"), from: Self.ws1, now: Self.at(2))
        #expect(machine.buffersForPolling)
        _ = machine.receive(EngineIOPacket(.upgrade), from: Self.ws1, now: Self.at(3))
        #expect(machine.isOpen && machine.usesWebSocket && !machine.buffersForPolling)
        _ = machine.close(reason: .forcedClose, now: Self.at(4))
        #expect(!machine.isOpen && machine.readyState == .closed)
    }

    @Test("a frame's polling encoding is a slice of its WebSocket frame for text, and base64 once prepared for binary")
    func pollingEncoding() {
        let text = Self.message(String(repeating: "x", count: 300))
        #expect(text.pollingEncoding.map { String(buffer: $0) } == "4" + String(repeating: "x", count: 300))
        #expect(text.pollingByteCount == 301)
        let binary = EngineIOFrame.binary(ByteBuffer(bytes: [1, 2, 3, 4]))
        #expect(binary.pollingEncoding == nil)
        #expect(binary.pollingByteCount == 9)
        let prepared = binary.preparedForPolling()
        #expect(prepared.pollingEncoding.map { String(buffer: $0) } == "bAQIDBA==")
        #expect(prepared == binary)
        var buffer = ByteBuffer()
        binary.writePollingEncoding(into: &buffer)
        #expect(String(buffer: buffer) == "bAQIDBA==")
    }
}
