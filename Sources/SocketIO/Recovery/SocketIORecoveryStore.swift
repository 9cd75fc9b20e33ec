public import EngineIO
public import Foundation
public import NIOCore
import Synchronization

/// Where connection state recovery keeps its events and sessions, so that they outlive the
/// process: a server restarted on the same store recovers the clients that come back.
///
/// The server keeps the events of its window in memory and replays from there; the store is
/// written behind it and read once, when the server starts (``SocketIOServer/restoreRecoveryState()``).
/// An event is written to its clients only once the store kept it, so no client holds an event
/// that a crash could lose. Writes arrive from one writer at a time, in order, each a batch of
/// what happened while the previous one was written (a group commit).
public protocol SocketIORecoveryStore: Sendable {
    /// The events and sessions kept since `since` (older ones may be dropped).
    func load(since: Date) async throws -> SocketIORecoverySnapshot
    /// Keeps a batch; returns once it is durable. A batch that throws is written again.
    func write(_ batch: SocketIORecoveryBatch) async throws
}

/// A store that the servers of a cluster share: a client whose server died comes back on another
/// one, which takes its session over from the store.
public protocol SocketIOSharedRecoveryStore: SocketIORecoveryStore {
    /// Takes the session `pid` of `namespace` over from whichever server kept it (connected or
    /// gone since `since`), so that no other server recovers it as well; `nil` when there is none.
    func claimSession(pid: String, namespace: String, since: Date) async throws -> SocketIOStoredSession?
}

/// One logged event, as a store keeps it: written once per broadcast, never per recipient.
public struct SocketIOStoredEvent: Sendable, Hashable {
    public var namespace: String
    /// Its offset, increasing within the namespace.
    public var offset: UInt64
    /// The broadcast's rooms (empty: every socket) and exceptions.
    public var rooms: Set<String>
    public var except: Set<String>
    /// The Engine.IO message payloads of the packet: the text packet, then its binary attachments.
    public var payloads: [EngineIOPayload]
    public var emittedAt: Date
    /// The id of the queue message it came from, so that a message delivered again after a crash
    /// is recognised and not broadcast twice.
    public var messageID: String?

    public init(
        namespace: String, offset: UInt64, rooms: Set<String>, except: Set<String>, payloads: [EngineIOPayload], emittedAt: Date,
        messageID: String?
    ) {
        self.namespace = namespace
        self.offset = offset
        self.rooms = rooms
        self.except = except
        self.payloads = payloads
        self.emittedAt = emittedAt
        self.messageID = messageID
    }
}

/// A socket's session as a store keeps it: written when the socket is admitted, when its rooms
/// change and when it leaves.
public struct SocketIOStoredSession: Sendable, Hashable {
    /// The private session id the client presents to come back.
    public var pid: String
    /// The socket id.
    public var id: String
    public var namespace: String
    /// Its rooms, its own id among them.
    public var rooms: Set<String>
    /// The socket's data, as JSON text.
    public var data: String
    /// The namespace's last offset when the socket was admitted.
    public var admittedAtOffset: UInt64
    /// When its client went away; `nil` while it is connected (a session still connected when
    /// the store is loaded belonged to a server that died: it counts as gone at load time).
    public var disconnectedAt: Date?

    public init(
        pid: String, id: String, namespace: String, rooms: Set<String>, data: String, admittedAtOffset: UInt64, disconnectedAt: Date?
    ) {
        self.pid = pid
        self.id = id
        self.namespace = namespace
        self.rooms = rooms
        self.data = data
        self.admittedAtOffset = admittedAtOffset
        self.disconnectedAt = disconnectedAt
    }
}

/// What one write keeps and forgets.
public struct SocketIORecoveryBatch: Sendable {
    /// Events to append, in offset order within each namespace.
    public var events: [SocketIOStoredEvent] = []
    /// Sessions to keep (replacing those with the same pid).
    public var sessions: [SocketIOStoredSession] = []
    /// Sessions to forget, by pid: they came back, or their sockets left on purpose.
    public var removedSessions: Set<String> = []
    /// Events emitted and sessions gone before this instant are past the window: drop them.
    public var pruneBefore: Date

    public init(pruneBefore: Date) { self.pruneBefore = pruneBefore }

    var isEmpty: Bool { events.isEmpty && sessions.isEmpty && removedSessions.isEmpty }
}

/// What a store kept: every namespace's events in offset order, and the sessions.
public struct SocketIORecoverySnapshot: Sendable {
    public var events: [SocketIOStoredEvent]
    public var sessions: [SocketIOStoredSession]

    public init(events: [SocketIOStoredEvent] = [], sessions: [SocketIOStoredSession] = []) {
        self.events = events
        self.sessions = sessions
    }
}

/// A store in memory: it outlives a ``SocketIOServer`` (a new server in the same process
/// recovers the clients of the one before), not the process.
public final class SocketIOMemoryRecoveryStore: SocketIORecoveryStore {
    private struct State {
        var events: [SocketIOStoredEvent] = []
        var sessions: [String: SocketIOStoredSession] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public func load(since: Date) async throws -> SocketIORecoverySnapshot {
        state.withLock { state in
            SocketIORecoverySnapshot(
                events: state.events.filter { $0.emittedAt >= since },
                sessions: state.sessions.values.filter { ($0.disconnectedAt ?? since) >= since }.sorted { $0.pid < $1.pid })
        }
    }

    public func write(_ batch: SocketIORecoveryBatch) async throws {
        state.withLock { state in
            state.events.removeAll { $0.emittedAt < batch.pruneBefore }
            state.events += batch.events
            for pid in batch.removedSessions { state.sessions[pid] = nil }
            for session in batch.sessions { state.sessions[session.pid] = session }
            state.sessions = state.sessions.filter { ($0.value.disconnectedAt ?? batch.pruneBefore) >= batch.pruneBefore }
        }
    }
}

extension SocketIOStoredEvent {
    /// The payloads one after the other, each as a kind byte (`t` or `b`), a 32-bit big-endian
    /// length and the bytes: how the SQL stores keep an event's packet in one column.
    public static func pack(_ payloads: [EngineIOPayload]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payloads.reduce(0) { $0 + 5 + $1.bytes.readableBytes })
        for payload in payloads {
            buffer.writeInteger(payload.isBinary ? UInt8(ascii: "b") : UInt8(ascii: "t"))
            buffer.writeInteger(UInt32(payload.bytes.readableBytes))
            buffer.writeImmutableBuffer(payload.bytes)
        }
        return buffer
    }

    /// What ``pack(_:)`` packed, or `nil` when `buffer` is not such a packing.
    public static func unpack(_ buffer: ByteBuffer) -> [EngineIOPayload]? {
        var buffer = buffer
        var payloads: [EngineIOPayload] = []
        while buffer.readableBytes > 0 {
            guard let kind = buffer.readInteger(as: UInt8.self), kind == UInt8(ascii: "b") || kind == UInt8(ascii: "t"),
                let length = buffer.readInteger(as: UInt32.self), let bytes = buffer.readSlice(length: Int(length))
            else { return nil }
            payloads.append(kind == UInt8(ascii: "b") ? .binary(bytes) : .text(bytes))
        }
        return payloads.isEmpty ? nil : payloads
    }
}
