import EngineIO
import Foundation
import NIOCore
import Testing

@testable import SocketIO

@Suite("Connection state recovery: the log, the sessions, the offsets")
struct SocketIORecoveryTests {
    let start = ContinuousClock.now

    func log(window: Duration = .seconds(120), maxBytes: Int = 1 << 20) -> SocketIORecoveryLog {
        SocketIORecoveryLog(namespace: "/", window: window, maxBytes: maxBytes, lastOffset: 100)
    }

    /// Appends an event named `name` to the log, broadcast to `rooms` except `except`.
    func append(
        _ log: SocketIORecoveryLog, _ name: String, to rooms: Set<String> = [], except: Set<String> = [], at time: ContinuousClock.Instant? = nil
    ) {
        var options = SocketIOBroadcastOptions()
        options.rooms = rooms
        options.except = except
        log.append(
            options,
            packet: { offset in
                SocketIOOutboundPacket(
                    SocketIOPacket(type: .event, data: .array([.string(name)] + (offset.map { [.string($0)] } ?? []))), parser: .json)
            }, now: time ?? start, deliver: { _ in })
    }

    func names(_ replay: SocketIORecoveryLog.Replay) -> [String]? {
        guard case .events(let events) = replay else { return nil }
        return events.map { String(buffer: $0[0].webSocketFrame).split(separator: "\"")[1].description }
    }

    struct SelectionCase: CustomTestStringConvertible, Sendable {
        let rooms: Set<String>
        let except: Set<String>
        let socketRooms: Set<String>
        let selected: Bool
        var testDescription: String { "to \(rooms.sorted()) except \(except.sorted()), socket in \(socketRooms.sorted()): \(selected)" }
    }

    @Test(
        "a logged broadcast is replayed to a session exactly when the broadcast reached its rooms",
        arguments: [
            SelectionCase(rooms: [], except: [], socketRooms: ["s1"], selected: true),
            SelectionCase(rooms: ["a"], except: [], socketRooms: ["s1", "a"], selected: true),
            SelectionCase(rooms: ["a", "b"], except: [], socketRooms: ["s1", "b"], selected: true),
            SelectionCase(rooms: ["a"], except: [], socketRooms: ["s1", "b"], selected: false),
            SelectionCase(rooms: [], except: ["a"], socketRooms: ["s1", "a"], selected: false),
            SelectionCase(rooms: ["b"], except: ["a"], socketRooms: ["s1", "a", "b"], selected: false),
            SelectionCase(rooms: ["s1"], except: [], socketRooms: ["s1"], selected: true),
            SelectionCase(rooms: ["s2"], except: [], socketRooms: ["s1"], selected: false),
        ])
    func selection(_ test: SelectionCase) {
        let log = log()
        append(log, "e", to: test.rooms, except: test.except)
        #expect(names(log.replay(after: 100, through: 101, rooms: test.socketRooms, limit: 10, now: start)) == (test.selected ? ["e"] : []))
    }

    @Test("replay starts after the offset, stops at the bound, and keeps the order")
    func replayBounds() {
        let log = log()
        for name in ["a", "b", "c", "d"] { append(log, name) }
        #expect(log.lastOffset == 104)
        #expect(names(log.replay(after: 100, through: 104, rooms: ["s"], limit: 10, now: start)) == ["a", "b", "c", "d"])
        #expect(names(log.replay(after: 102, through: 104, rooms: ["s"], limit: 10, now: start)) == ["c", "d"])
        #expect(names(log.replay(after: 101, through: 103, rooms: ["s"], limit: 10, now: start)) == ["b", "c"])
        #expect(names(log.replay(after: 104, through: 104, rooms: ["s"], limit: 10, now: start)) == [])
    }

    @Test("an offset from the future, one older than what is kept, or too many missed events cannot be replayed")
    func replayRefusals() {
        let log = log(window: .seconds(10), maxBytes: 1 << 20)
        append(log, "old", at: start)
        append(log, "new", at: start + .seconds(8))
        let later = start + .seconds(12)
        // The first event is past the window now: only what follows it can be answered.
        guard case .unknownOffset = log.replay(after: 100, through: 102, rooms: ["s"], limit: 10, now: later) else {
            Issue.record("an offset before the kept events was answered")
            return
        }
        #expect(names(log.replay(after: 101, through: 102, rooms: ["s"], limit: 10, now: later)) == ["new"])
        guard case .unknownOffset = log.replay(after: 103, through: 103, rooms: ["s"], limit: 10, now: later) else {
            Issue.record("an offset past the last one was answered")
            return
        }
        append(log, "third", at: later)
        guard case .tooMany = log.replay(after: 101, through: 103, rooms: ["s"], limit: 1, now: later) else {
            Issue.record("more events than the limit were replayed")
            return
        }
        #expect(names(log.replay(after: 101, through: 103, rooms: ["elsewhere"], limit: 2, now: later)) == ["new", "third"])
    }

    @Test("the log keeps at most its byte budget, dropping the oldest events")
    func byteBudget() {
        let log = log(maxBytes: 100)
        for index in 0..<20 { append(log, "event-\(index)") }
        #expect(log.count < 20 && log.count > 0)
        let kept = log.count
        #expect(names(log.replay(after: UInt64(120 - kept), through: 120, rooms: ["s"], limit: 100, now: start))?.count == kept)
    }

    @Test("a logged event carries its offset as its last argument, spliced raw JSON included")
    func offsetOnTheWire() {
        #expect(
            String(buffer: SocketIOEncoder.encodeEvent("e", jsonArguments: ByteBuffer(string: "[1, 2] "), trailingString: "42"))
                == #"2["e",1, 2,"42"]"#)
        #expect(String(buffer: SocketIOEncoder.encodeEvent("e", jsonArguments: ByteBuffer(string: " [ ] "), trailingString: "7")) == #"2["e","7"]"#)
        #expect(
            String(buffer: SocketIOEncoder.encodeEvent("e", jsonArguments: ByteBuffer(string: "[{}]"), namespace: "/n", trailingString: "9"))
                == #"2/n,["e",{},"9"]"#)
    }

    @Test(
        "offsets are decimal strings of at most 20 digits",
        arguments: [
            ("0", UInt64(0)), ("1733140000000000", 1_733_140_000_000_000), ("18446744073709551615", UInt64.max),
            ("18446744073709551616", nil), ("", nil), ("-1", nil), ("1e3", nil), (" 1", nil), ("00000000000000000000001", nil),
        ] as [(String, UInt64?)])
    func offsetParsing(text: String, value: UInt64?) {
        #expect(SocketIORecoveryOffset.parse(text) == value)
    }

    func session(_ pid: String, namespace: String = "/", at time: ContinuousClock.Instant) -> SocketIORecoverySession {
        SocketIORecoverySession(
            id: "id-\(pid)", pid: pid, namespace: namespace, rooms: ["id-\(pid)"], data: .null, admittedAtOffset: 0, disconnectedAt: time)
    }

    /// An event a sequencing cluster numbered `offset`.
    func sequenced(_ offset: UInt64) -> SocketIOStoredEvent {
        SocketIOStoredEvent(
            namespace: "/", offset: offset, rooms: [], except: [], payloads: [.text(ByteBuffer(string: #"2["e","\#(offset)"]"#))],
            emittedAt: Date(), messageID: nil)
    }

    @Test(
        "sequenced events are delivered in the cluster's order: the next one goes, a seen one does not, a gap asks for what is missing",
        arguments: [
            // (where the cluster's sequence was said to stand, offsets appended, outcomes, offsets delivered)
            (nil, [500, 501, 502], [SocketIOSequencedDelivery.delivered, .delivered, .delivered], [500, 501, 502]),
            (nil, [500, 500, 499], [.delivered, .seen, .seen], [500]),
            (nil, [500, 503, 501], [.delivered, .missing(after: 500), .delivered], [500, 501]),
            (UInt64(41), [42, 43], [.delivered, .delivered], [42, 43]),
            (UInt64(41), [44], [.missing(after: 41)], []),
            (UInt64(41), [41, 40], [.seen, .seen], []),
        ] as [(UInt64?, [UInt64], [SocketIOSequencedDelivery], [UInt64])])
    func sequencedAppends(start: UInt64?, offsets: [UInt64], outcomes: [SocketIOSequencedDelivery], delivered: [UInt64]) {
        // The log's own start (100, as after a restart on the wall clock) is not the cluster's.
        let log = log()
        if let start { log.startSequence(after: start) }
        var handed: [UInt64] = []
        let results = offsets.map { offset in log.appendSequenced(sequenced(offset)) { _ in handed.append(offset) } }
        #expect(results == outcomes)
        #expect(handed == delivered)
        #expect(log.sequencePosition == delivered.last ?? start ?? 0)
        // What was delivered replays to a client that saw the first of it.
        if delivered.count > 1 {
            guard case .events(let events) = log.replay(after: delivered[0], through: log.lastOffset, rooms: [], limit: 100) else {
                Issue.record("no replay")
                return
            }
            #expect(events.count == delivered.count - 1)
        }
    }

    @Test("the cluster's sequence never goes back behind a kept event, and a log restored from a store goes on from its newest")
    func sequenceStart() {
        // The log's own start (the wall clock when it was made) is past the cluster's offsets.
        let log = SocketIORecoveryLog(namespace: "/", window: .seconds(120), maxBytes: 1 << 20, lastOffset: 1000)
        log.restore([sequenced(300), sequenced(301)])
        #expect(log.sequencePosition == 301)
        log.startSequence(after: 200)
        #expect(log.appendSequenced(sequenced(302)) { _ in } == .delivered)
        log.startSequence(after: 310)
        #expect(log.appendSequenced(sequenced(311)) { _ in } == .delivered)
        #expect(log.sequencePosition == 311)
    }

    @Test("a kept session comes back once, in its own namespace, within its window")
    func sessions() {
        let table = SocketIOSessionTable(window: .seconds(120), capacity: 10)
        table.keep(session("a", at: start))
        table.keep(session("b", namespace: "/chat", at: start))
        #expect(table.take(pid: "b", namespace: "/", now: start) == nil)
        #expect(table.take(pid: "b", namespace: "/chat", now: start)?.id == "id-b")
        #expect(table.take(pid: "b", namespace: "/chat", now: start) == nil)
        #expect(table.take(pid: "a", namespace: "/", now: start + .seconds(121)) == nil)
        #expect(table.count(now: start + .seconds(121)) == 0)
    }

    @Test("a quiet table lets its expired sessions go when it is counted")
    func quietExpiry() {
        let table = SocketIOSessionTable(window: .seconds(120), capacity: 10)
        table.keep(session("a", at: start))
        table.keep(session("b", at: start + .seconds(60)))
        #expect(table.count(now: start + .seconds(120)) == 2)
        #expect(table.count(now: start + .seconds(121)) == 1)
        #expect(table.count(now: start + .seconds(181)) == 0)
    }

    @Test("past its capacity the table forgets the oldest sessions first")
    func sessionCapacity() {
        let table = SocketIOSessionTable(window: .seconds(120), capacity: 3)
        for (index, pid) in ["a", "b", "c", "d", "e"].enumerated() { table.keep(session(pid, at: start + .seconds(index))) }
        #expect(table.count(now: start + .seconds(4)) == 3)
        #expect(table.take(pid: "b", namespace: "/", now: start + .seconds(5)) == nil)
        #expect(table.take(pid: "c", namespace: "/", now: start + .seconds(5)) != nil)
        #expect(table.take(pid: "e", namespace: "/", now: start + .seconds(5)) != nil)
    }
}
