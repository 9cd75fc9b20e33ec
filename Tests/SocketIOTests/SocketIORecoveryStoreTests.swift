import EngineIO
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

@testable import SocketIO

@Suite("Connection state recovery with a store: events reach clients once kept, and come back after a restart")
struct SocketIORecoveryStoreTests {
    let start = ContinuousClock.now

    /// A store whose writes wait until the test lets them through, counting what it was given.
    final class GatedStore: SocketIORecoveryStore {
        let inner = SocketIOMemoryRecoveryStore()
        let gate = Mutex<[CheckedContinuation<Void, Never>]>([])
        let open = Atomic<Bool>(false)
        let batches = Mutex<[SocketIORecoveryBatch]>([])

        func load(since: Date) async throws -> SocketIORecoverySnapshot { try await inner.load(since: since) }

        func write(_ batch: SocketIORecoveryBatch) async throws {
            if !open.load(ordering: .relaxed) {
                await withCheckedContinuation { continuation in gate.withLock { $0.append(continuation) } }
            }
            batches.withLock { $0.append(batch) }
            try await inner.write(batch)
        }

        func release() {
            open.store(true, ordering: .relaxed)
            for continuation in gate.withLock({ state in
                defer { state = [] }
                return state
            }) { continuation.resume() }
        }
    }

    /// Names delivered, in order.
    final class Deliveries: Sendable {
        let names = Mutex<[String]>([])
        func record(_ packet: SocketIOOutboundPacket) {
            let text = String(buffer: packet.frames[0].webSocketFrame)
            names.withLock { $0.append(text.split(separator: "\"")[1].description) }
        }
    }

    func append(_ log: SocketIORecoveryLog, _ name: String, messageID: String? = nil, to deliveries: Deliveries) -> Bool {
        log.append(
            SocketIOBroadcastOptions(), messageID: messageID,
            packet: { offset in
                SocketIOOutboundPacket(
                    SocketIOPacket(type: .event, data: .array([.string(name)] + (offset.map { [.string($0)] } ?? []))), parser: .json)
            }, now: start, deliver: { deliveries.record($0) })
    }

    /// A log of `/` whose first offset is 101, written to `store`.
    func storedLog(_ store: any SocketIORecoveryStore) -> (SocketIORecoveryLog, SocketIORecoveryWriter) {
        let writer = SocketIORecoveryWriter(store: store, window: .seconds(120), logger: Logger(label: "test"))
        return (SocketIORecoveryLog(namespace: "/", window: .seconds(120), maxBytes: 1 << 20, writer: writer, lastOffset: 100), writer)
    }

    func names(_ replay: SocketIORecoveryLog.Replay) -> [String]? {
        guard case .events(let events) = replay else { return nil }
        return events.map { String(buffer: $0[0].webSocketFrame).split(separator: "\"")[1].description }
    }

    @Test("an event is handed to the loops only once the store kept it, in offset order")
    func deliveredOnceStored() async throws {
        let store = GatedStore()
        let (log, writer) = storedLog(store)
        let deliveries = Deliveries()
        for name in ["a", "b", "c"] { #expect(append(log, name, to: deliveries)) }
        #expect(deliveries.names.withLock { $0 } == [])
        #expect(log.lastOffset == 100, "nothing was handed to the loops yet")
        store.release()
        await writer.flush()
        #expect(deliveries.names.withLock { $0 } == ["a", "b", "c"])
        #expect(log.lastOffset == 103)
        let kept = try await store.load(since: .distantPast)
        #expect(kept.events.map(\.offset) == [101, 102, 103])
        #expect(kept.events.map(\.namespace) == ["/", "/", "/"])
        // Writes are group-committed: the three went in at most two batches (the first write may
        // have started with one event), never one per event.
        #expect(store.batches.withLock { $0.count } <= 2)
    }

    @Test("a queue message whose event is in the log is not broadcast again")
    func duplicateMessage() async throws {
        let store = SocketIOMemoryRecoveryStore()
        let (log, writer) = storedLog(store)
        let deliveries = Deliveries()
        #expect(append(log, "first", messageID: "m-1", to: deliveries))
        #expect(!append(log, "again", messageID: "m-1", to: deliveries), "pending in the store")
        await writer.flush()
        #expect(!append(log, "again", messageID: "m-1", to: deliveries), "kept in the log")
        #expect(append(log, "other", messageID: "m-2", to: deliveries))
        await writer.flush()
        #expect(deliveries.names.withLock { $0 } == ["first", "other"])

        // After a restart the ids come back with the events.
        let restarted = SocketIORecoveryLog(namespace: "/", window: .seconds(120), maxBytes: 1 << 20)
        restarted.restore(try await store.load(since: .distantPast).events, now: start)
        #expect(!append(restarted, "again", messageID: "m-1", to: deliveries))
        #expect(append(restarted, "new", messageID: "m-3", to: deliveries))
    }

    @Test("a restored log replays what the store kept, and goes on after it without reusing an offset")
    func restore() async throws {
        let store = SocketIOMemoryRecoveryStore()
        let (before, writer) = storedLog(store)
        let deliveries = Deliveries()
        for name in ["a", "b", "c"] { _ = append(before, name, to: deliveries) }
        await writer.flush()

        // The new run's offsets start from the wall clock, far past the stored ones.
        let after = SocketIORecoveryLog(namespace: "/", window: .seconds(120), maxBytes: 1 << 20, lastOffset: 5000)
        after.restore(try await store.load(since: .distantPast).events, now: start)
        #expect(after.count == 3)
        _ = append(after, "d", to: deliveries)
        #expect(after.lastOffset == 5001)
        #expect(names(after.replay(after: 101, through: 5001, rooms: ["s"], limit: 10, now: start)) == ["b", "c", "d"])
        #expect(names(after.replay(after: 103, through: 5001, rooms: ["s"], limit: 10, now: start)) == ["d"])
        #expect(names(after.replay(after: 100, through: 5001, rooms: ["s"], limit: 10, now: start)) == ["a", "b", "c", "d"])
        // An offset between the runs (none was handed out there) has missed only the new events.
        #expect(names(after.replay(after: 4000, through: 5001, rooms: ["s"], limit: 10, now: start)) == ["d"])
    }

    @Test("a restored log drops what is past its window, and keeps the original emission times")
    func restoreWindow() {
        let log = SocketIORecoveryLog(namespace: "/", window: .seconds(60), maxBytes: 1 << 20, lastOffset: 5000)
        let now = Date()
        let payload = EngineIOPayload.text(ByteBuffer(string: #"2["e","1"]"#))
        log.restore(
            [
                SocketIOStoredEvent(
                    namespace: "/", offset: 1, rooms: [], except: [], payloads: [payload], emittedAt: now - 90, messageID: nil),
                SocketIOStoredEvent(
                    namespace: "/", offset: 2, rooms: [], except: [], payloads: [payload], emittedAt: now - 30, messageID: nil),
            ], now: start, wallClock: now)
        #expect(log.count == 1)
        guard case .unknownOffset = log.replay(after: 0, through: 5000, rooms: ["s"], limit: 10, now: start) else {
            Issue.record("an offset before the dropped event was answered")
            return
        }
        #expect(names(log.replay(after: 1, through: 5000, rooms: ["s"], limit: 10, now: start + .seconds(20))) == ["e"])
        guard case .unknownOffset = log.replay(after: 1, through: 5000, rooms: ["s"], limit: 10, now: start + .seconds(31)) else {
            Issue.record("the restored event outlived its window")
            return
        }
    }

    @Test("sessions come back from the store; one still connected at the crash counts as gone at load time")
    func restoreSessions() {
        let table = SocketIOSessionTable(window: .seconds(60), capacity: 10)
        let now = Date()
        func stored(_ pid: String, gone: Date?) -> SocketIOStoredSession {
            SocketIOStoredSession(
                pid: pid, id: "id-\(pid)", namespace: "/", rooms: ["id-\(pid)", "r"], data: #"{"user":"u-\#(pid)"}"#, admittedAtOffset: 7,
                disconnectedAt: gone)
        }
        table.restore([stored("old", gone: now - 90), stored("left", gone: now - 30), stored("crashed", gone: nil)], now: start, wallClock: now)
        #expect(table.take(pid: "old", namespace: "/", now: start) == nil)
        let left = table.take(pid: "left", namespace: "/", now: start)
        #expect(left?.rooms == ["id-left", "r"])
        #expect(left?.data == ["user": "u-left"])
        #expect(left?.admittedAtOffset == 7)
        #expect(table.take(pid: "crashed", namespace: "/", now: start + .seconds(59))?.id == "id-crashed")
    }

    @Test("the writer keeps the last change of each session, and forgets those that may not come back")
    func sessionChanges() async throws {
        let store = SocketIOMemoryRecoveryStore()
        let writer = SocketIORecoveryWriter(store: store, window: .seconds(120), logger: Logger(label: "test"))
        func session(_ pid: String, rooms: Set<String>, gone: Date? = nil) -> SocketIOStoredSession {
            SocketIOStoredSession(pid: pid, id: "id", namespace: "/", rooms: rooms, data: "null", admittedAtOffset: 1, disconnectedAt: gone)
        }
        writer.keep(session("a", rooms: ["x"]))
        writer.keep(session("a", rooms: ["x", "y"]))
        writer.keep(session("b", rooms: ["x"]))
        writer.forget(pid: "b")
        await writer.flush()
        var kept = try await store.load(since: .distantPast)
        #expect(kept.sessions.map(\.pid) == ["a"])
        #expect(kept.sessions.first?.rooms == ["x", "y"])
        writer.keep(session("a", rooms: ["x", "y"], gone: Date() - 200))
        await writer.flush()
        kept = try await store.load(since: Date() - 120)
        #expect(kept.sessions.isEmpty, "a session gone longer than the window is pruned")
    }

    @Test(
        "event payloads pack into one column and back; anything else is refused",
        arguments: [
            [EngineIOPayload.text(ByteBuffer(string: #"51-["e",{"_placeholder":true,"num":0}]"#)), .binary(ByteBuffer(bytes: [0, 1, 255]))],
            [EngineIOPayload.text(ByteBuffer(string: "2[\"e\"]"))],
            [EngineIOPayload.binary(ByteBuffer())],
        ])
    func packing(_ payloads: [EngineIOPayload]) {
        #expect(SocketIOStoredEvent.unpack(SocketIOStoredEvent.pack(payloads)) == payloads)
    }

    @Test("unpacking refuses truncated or foreign bytes", arguments: [[UInt8](), [0x74, 0, 0, 0, 9, 0x32], [0x78, 0, 0, 0, 0], [0x74, 0, 0]])
    func unpackingRefuses(_ bytes: [UInt8]) {
        #expect(SocketIOStoredEvent.unpack(ByteBuffer(bytes: bytes)) == nil)
    }
}
