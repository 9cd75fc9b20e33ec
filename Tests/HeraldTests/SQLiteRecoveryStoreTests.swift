import EngineIO
import Foundation
import HeraldQueue
import NIOCore
import SocketIO
import Testing

@testable import Herald

@Suite("The SQLite recovery store, in the embedded queue's file")
struct SQLiteRecoveryStoreTests {
    func withStore(_ body: (EmbeddedQueue, SQLiteRecoveryStore, String) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("recovery-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("queue.sqlite").path
        let queue = try await EmbeddedQueue.open(path: path)
        do {
            try await body(queue, try await SQLiteRecoveryStore.open(in: queue), path)
        } catch {
            try await queue.close()
            throw error
        }
        try await queue.close()
    }

    /// Now, to the millisecond the store keeps times in.
    static func now() -> Date { Date(timeIntervalSince1970: (Date().timeIntervalSince1970 * 1000).rounded() / 1000) }

    func event(_ namespace: String, _ offset: UInt64, at date: Date, id: String? = nil, binary: Bool = false) -> SocketIOStoredEvent {
        var payloads = [EngineIOPayload.text(ByteBuffer(string: #"2["e","\#(offset)"]"#))]
        if binary { payloads.append(.binary(ByteBuffer(bytes: [0, 255, 7]))) }
        return SocketIOStoredEvent(
            namespace: namespace, offset: offset, rooms: ["r", "s"], except: ["x"], payloads: payloads, emittedAt: date, messageID: id)
    }

    @Test("what is written comes back after the file is opened again, in offset order per namespace")
    func roundTrip() async throws {
        let now = Self.now()
        try await withStore { queue, store, path in
            var batch = SocketIORecoveryBatch(pruneBefore: now - 120)
            batch.events = [
                event("/", 1_733_140_000_000_001, at: now, id: "m-1"), event("/chat", 5, at: now, binary: true),
                event("/", 1_733_140_000_000_002, at: now),
            ]
            batch.sessions = [
                SocketIOStoredSession(
                    pid: "p1", id: "s1", namespace: "/", rooms: ["s1", "r"], data: #"{"user":"u"}"#, admittedAtOffset: 1_733_140_000_000_000,
                    disconnectedAt: nil)
            ]
            try await store.write(batch)
            try await queue.close()

            let reopened = try await EmbeddedQueue.open(path: path)
            let snapshot = try await SQLiteRecoveryStore.open(in: reopened).load(since: now - 120)
            try await reopened.close()
            #expect(snapshot.events.map(\.namespace) == ["/", "/", "/chat"])
            #expect(snapshot.events.map(\.offset) == [1_733_140_000_000_001, 1_733_140_000_000_002, 5])
            #expect(snapshot.events[0] == batch.events[0])
            #expect(snapshot.events[2] == batch.events[1], "binary attachments kept")
            #expect(snapshot.sessions == batch.sessions)
        }
    }

    @Test("sessions are replaced by pid and forgotten on request; what is past the window is pruned")
    func sessionsAndPruning() async throws {
        let now = Self.now()
        try await withStore { _, store, _ in
            func session(_ pid: String, gone: Date?) -> SocketIOStoredSession {
                SocketIOStoredSession(pid: pid, id: "id-\(pid)", namespace: "/", rooms: [], data: "null", admittedAtOffset: 1, disconnectedAt: gone)
            }
            var first = SocketIORecoveryBatch(pruneBefore: now - 120)
            first.events = [event("/", 1, at: now - 200), event("/", 2, at: now - 10)]
            first.sessions = [session("a", gone: nil), session("b", gone: now - 200), session("c", gone: nil)]
            try await store.write(first)
            var second = SocketIORecoveryBatch(pruneBefore: now - 120)
            second.sessions = [session("a", gone: now - 5)]
            second.removedSessions = ["c"]
            try await store.write(second)

            let snapshot = try await store.load(since: .distantPast)
            #expect(snapshot.events.map(\.offset) == [2])
            #expect(snapshot.sessions == [session("a", gone: now - 5)])
        }
    }

    @Test("a recovery write is one of the queue's group-committed transactions, and keeps the queue message's id")
    func sharesTheQueuesTransactions() async throws {
        let now = Self.now()
        try await withStore { queue, store, _ in
            try await queue.enqueue(body: [1])
            let message = try #require(try await queue.receive(maxMessages: 1).first)
            var batch = SocketIORecoveryBatch(pruneBefore: now - 120)
            batch.events = [event("/", 9, at: now, id: message.id)]
            let before = queue.transactionCount
            try await store.write(batch)
            #expect(queue.transactionCount == before + 1)
            #expect(try await queue.delete([message.receipt]).isEmpty)
            #expect(try await store.load(since: .distantPast).events.map(\.messageID) == [message.id])
        }
    }
}
