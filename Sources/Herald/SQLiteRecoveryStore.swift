import EngineIO
public import Foundation
public import HeraldQueue
import NIOCore
import SQLiteNIO
public import SocketIO

/// Connection state recovery kept in the embedded queue's SQLite file: the events and sessions
/// are written in the queue's group commits, so an event and the deletes of the queue messages
/// handed off after it commit together or in that order, and a restarted herald on the same file
/// recovers its clients.
///
/// Tables: `recovery_events`, one row per logged broadcast (never per recipient) keyed by
/// (namespace, offset), with its rooms, exceptions, packet and the queue message id; and
/// `recovery_sessions`, one row per session by pid, `disconnected_at` NULL while connected.
/// Rows past the window are deleted by every write.
public struct SQLiteRecoveryStore: SocketIORecoveryStore {
    let queue: EmbeddedQueue

    /// A store in `queue`'s database; creates its tables.
    public static func open(in queue: EmbeddedQueue) async throws -> SQLiteRecoveryStore {
        try await queue.write { connection in
            for statement in schema { _ = try await connection.query(statement) }
        }
        return SQLiteRecoveryStore(queue: queue)
    }

    private static let schema = [
        """
        CREATE TABLE IF NOT EXISTS recovery_events (
            namespace TEXT NOT NULL,
            "offset" INTEGER NOT NULL,
            rooms TEXT NOT NULL,
            except_rooms TEXT NOT NULL,
            payloads BLOB NOT NULL,
            emitted_at INTEGER NOT NULL,
            message_id TEXT,
            PRIMARY KEY (namespace, "offset")
        ) WITHOUT ROWID
        """,
        "CREATE INDEX IF NOT EXISTS recovery_events_emitted ON recovery_events (emitted_at)",
        """
        CREATE TABLE IF NOT EXISTS recovery_sessions (
            pid TEXT PRIMARY KEY,
            id TEXT NOT NULL,
            namespace TEXT NOT NULL,
            rooms TEXT NOT NULL,
            data TEXT NOT NULL,
            admitted_offset INTEGER NOT NULL,
            disconnected_at INTEGER
        )
        """,
        "CREATE INDEX IF NOT EXISTS recovery_sessions_gone ON recovery_sessions (disconnected_at)",
    ]

    public func load(since: Date) async throws -> SocketIORecoverySnapshot {
        let cutoff = Self.milliseconds(since)
        return try await queue.read { connection in
            let eventRows = try await connection.query(
                """
                SELECT namespace, "offset", rooms, except_rooms, payloads, emitted_at, message_id FROM recovery_events
                WHERE emitted_at >= ? ORDER BY namespace, "offset"
                """, [.integer(cutoff)])
            let events = eventRows.compactMap { row -> SocketIOStoredEvent? in
                guard let namespace = row.column("namespace")?.string, let offset = row.column("offset")?.integer,
                    let blob = row.column("payloads")?.blob, let payloads = SocketIOStoredEvent.unpack(blob)
                else { return nil }
                return SocketIOStoredEvent(
                    namespace: namespace, offset: UInt64(bitPattern: Int64(offset)), rooms: Self.rooms(row.column("rooms")),
                    except: Self.rooms(row.column("except_rooms")), payloads: payloads,
                    emittedAt: Self.date(row.column("emitted_at")?.integer ?? 0), messageID: row.column("message_id")?.string)
            }
            let sessionRows = try await connection.query(
                """
                SELECT pid, id, namespace, rooms, data, admitted_offset, disconnected_at FROM recovery_sessions
                WHERE disconnected_at IS NULL OR disconnected_at >= ?
                """, [.integer(cutoff)])
            let sessions = sessionRows.compactMap { row -> SocketIOStoredSession? in
                guard let pid = row.column("pid")?.string, let id = row.column("id")?.string,
                    let namespace = row.column("namespace")?.string, let data = row.column("data")?.string
                else { return nil }
                return SocketIOStoredSession(
                    pid: pid, id: id, namespace: namespace, rooms: Self.rooms(row.column("rooms")), data: data,
                    admittedAtOffset: UInt64(bitPattern: Int64(row.column("admitted_offset")?.integer ?? 0)),
                    disconnectedAt: row.column("disconnected_at")?.integer.map(Self.date))
            }
            return SocketIORecoverySnapshot(events: events, sessions: sessions)
        }
    }

    public func write(_ batch: SocketIORecoveryBatch) async throws {
        try await queue.write { connection in
            let cutoff = Self.milliseconds(batch.pruneBefore)
            _ = try await connection.query("DELETE FROM recovery_events WHERE emitted_at < ?", [.integer(cutoff)])
            _ = try await connection.query("DELETE FROM recovery_sessions WHERE disconnected_at < ?", [.integer(cutoff)])
            for chunk in Self.chunks(batch.events) {
                let values = Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
                let binds = chunk.flatMap { event -> [SQLiteData] in
                    [
                        .text(event.namespace), .integer(Int(Int64(bitPattern: event.offset))), .text(Self.text(event.rooms)),
                        .text(Self.text(event.except)), .blob(SocketIOStoredEvent.pack(event.payloads)),
                        .integer(Self.milliseconds(event.emittedAt)), event.messageID.map { .text($0) } ?? .null,
                    ]
                }
                _ = try await connection.query(
                    """
                    INSERT OR REPLACE INTO recovery_events (namespace, "offset", rooms, except_rooms, payloads, emitted_at, message_id)
                    VALUES \(values)
                    """, binds)
            }
            for chunk in Self.chunks(Array(batch.removedSessions)) {
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ", ")
                _ = try await connection.query("DELETE FROM recovery_sessions WHERE pid IN (\(marks))", chunk.map { .text($0) })
            }
            for chunk in Self.chunks(batch.sessions) {
                let values = Array(repeating: "(?, ?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
                let binds = chunk.flatMap { session -> [SQLiteData] in
                    [
                        .text(session.pid), .text(session.id), .text(session.namespace), .text(Self.text(session.rooms)),
                        .text(session.data), .integer(Int(Int64(bitPattern: session.admittedAtOffset))),
                        session.disconnectedAt.map { .integer(Self.milliseconds($0)) } ?? .null,
                    ]
                }
                _ = try await connection.query(
                    """
                    INSERT OR REPLACE INTO recovery_sessions (pid, id, namespace, rooms, data, admitted_offset, disconnected_at)
                    VALUES \(values)
                    """, binds)
            }
        }
    }

    /// Rows per statement: 100 rows of 7 values keep under SQLite's limit on bound parameters.
    private static func chunks<Element>(_ elements: [Element]) -> [ArraySlice<Element>] {
        stride(from: 0, to: elements.count, by: 100).map { elements[$0..<min($0 + 100, elements.count)] }
    }

    private static func text(_ rooms: Set<String>) -> String {
        String(decoding: (try? JSONEncoder().encode(rooms.sorted())) ?? Data("[]".utf8), as: UTF8.self)
    }

    private static func rooms(_ data: SQLiteData?) -> Set<String> {
        guard let text = data?.string, let rooms = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else { return [] }
        return Set(rooms)
    }

    private static func milliseconds(_ date: Date) -> Int { Int((date.timeIntervalSince1970 * 1000).rounded()) }

    private static func date(_ milliseconds: Int) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }
}
