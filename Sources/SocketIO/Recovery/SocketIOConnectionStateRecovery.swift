import Foundation
import NIOCore

/// Connection state recovery (socket.io 4.6+ on the wire): a client that lost its connection and
/// comes back within ``maxDisconnectionDuration`` gets its socket id, rooms and data back, and
/// every event it missed, in order.
///
/// With it on, the CONNECT reply carries a private session id (`pid`), and every event that can be
/// replayed (no ack id, not volatile, single-socket emits included) carries an offset as its last
/// argument; a client reconnects with `{pid, offset}` in its CONNECT payload.
public struct SocketIOConnectionStateRecovery: Sendable {
    /// How long a session and the events it may miss are kept after its client went away.
    public var maxDisconnectionDuration: Duration = .seconds(120)
    /// Whether a recovered socket is admitted without running the namespace's middlewares again
    /// (the reference's `skipMiddlewares`).
    public var skipMiddlewares = true
    /// The most events replayed to one recovering socket; a client that missed more gets a new
    /// session (`recovered` false) and should resynchronise.
    public var maxReplayedEvents = 1000
    /// The most bytes of events kept for replay, per namespace; the oldest go first.
    public var maxLogBytes = 64 << 20
    /// The most sessions kept for clients that went away; the oldest go first.
    public var maxSessions = 100_000
    /// Where events and sessions are kept so that they outlive the process (`nil`: in this
    /// server's memory only). With a store, call ``SocketIOServer/restoreRecoveryState()`` before
    /// the server takes connections and ``SocketIOServer/flushRecoveryState()`` after closing it;
    /// each event then reaches its clients once the store kept it.
    public var store: (any SocketIORecoveryStore)?

    /// Recovery with the reference server's defaults (2 minutes, middlewares skipped).
    public init() {}

    /// The disconnect reasons after which a session is kept: those where the client did not
    /// leave on purpose (as the reference).
    static let recoverableReasons: Set<SocketIODisconnectReason> = [
        .transportError, .transportClose, .forcedClose, .pingTimeout, .serverShuttingDown, .forcedServerClose,
    ]
}

/// What a socket leaves behind when its client goes away without leaving: enough to restore it.
struct SocketIORecoverySession: Sendable, Equatable {
    /// The socket id, restored as it was.
    let id: String
    /// The private session id the client presents to come back.
    let pid: String
    let namespace: String
    /// The rooms the socket was in, its own id among them.
    let rooms: Set<String>
    let data: SocketIOValue
    /// The namespace's last offset when the socket was admitted: a client that received no event
    /// (and so has no offset to send) missed everything after it.
    let admittedAtOffset: UInt64
    let disconnectedAt: ContinuousClock.Instant
}

extension SocketIORecoverySession {
    /// The session a store kept (`nil` when its data is not JSON); one still connected belonged
    /// to a server that died, and counts as gone now.
    init?(stored: SocketIOStoredSession, now: ContinuousClock.Instant = .now, wallClock: Date = Date()) {
        guard let data = try? JSON.parse(ByteBuffer(string: stored.data).readableBytesView) else { return nil }
        let age = stored.disconnectedAt.map { max(0, wallClock.timeIntervalSince($0)) } ?? 0
        self.init(
            id: stored.id, pid: stored.pid, namespace: stored.namespace, rooms: stored.rooms, data: data,
            admittedAtOffset: stored.admittedAtOffset, disconnectedAt: now - .milliseconds(Int64(age * 1000)))
    }

    /// The session as a store keeps it; `disconnectedAt` `nil` for a socket still connected.
    func stored(disconnectedAt: Date?) -> SocketIOStoredSession {
        var json = ByteBuffer()
        JSON.write(data, into: &json, attachments: nil)
        return SocketIOStoredSession(
            pid: pid, id: id, namespace: namespace, rooms: rooms, data: String(buffer: json), admittedAtOffset: admittedAtOffset,
            disconnectedAt: disconnectedAt)
    }
}

/// Offsets on the wire: decimal strings of an increasing 64-bit counter.
enum SocketIORecoveryOffset {
    static func text(_ offset: UInt64) -> String { String(offset) }

    /// The offset a client sent, or `nil` for anything that is not one (at most 20 digits).
    static func parse(_ text: String) -> UInt64? {
        let utf8 = text.utf8
        guard !utf8.isEmpty, utf8.count <= 20, utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return UInt64(text)
    }
}
