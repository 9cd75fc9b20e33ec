import Synchronization

/// What an Engine.IO server carried since it started: sessions opened and closed (by reason), and
/// the message packets and their bytes, in and out. A monitor (the Admin UI) reads two of these
/// and reports the difference.
public struct EngineIOTraffic: Sendable, Hashable {
    public var connections = 0
    public var disconnections: [String: Int] = [:]
    public var packetsIn = 0
    public var bytesIn = 0
    public var packetsOut = 0
    public var bytesOut = 0
}

/// Counters of an Engine.IO server: its traffic, and what it had to give up on, for metrics.
public final class EngineIOStatistics: Sendable {
    private let dropped = Atomic<Int>(0)
    private let slowClients = Atomic<Int>(0)
    private let opened = Atomic<Int>(0)
    private let refused = Atomic<Int>(0)
    private let closed = Mutex<[String: Int]>([:])
    private let packetsIn = Atomic<Int>(0)
    private let bytesIn = Atomic<Int>(0)
    private let packetsOut = Atomic<Int>(0)
    private let bytesOut = Atomic<Int>(0)
    /// Broadcasts handed to event loops and not yet written.
    public let broadcastBacklog = EngineIOBroadcastBacklog()

    package init() {}

    /// Volatile packets dropped because their client was not ready for them.
    public var droppedPackets: Int { dropped.load(ordering: .relaxed) }
    /// Sessions closed because their client could not keep up.
    public var slowClientDisconnects: Int { slowClients.load(ordering: .relaxed) }

    /// Everything carried so far.
    public var traffic: EngineIOTraffic {
        EngineIOTraffic(
            connections: opened.load(ordering: .relaxed), disconnections: closed.withLock { $0 },
            packetsIn: packetsIn.load(ordering: .relaxed), bytesIn: bytesIn.load(ordering: .relaxed),
            packetsOut: packetsOut.load(ordering: .relaxed), bytesOut: bytesOut.load(ordering: .relaxed))
    }

    /// Handshakes refused under the per-address limit.
    public var refusedHandshakes: Int { refused.load(ordering: .relaxed) }

    func handshakeRefused() { refused.add(1, ordering: .relaxed) }
    func connectionOpened() { opened.add(1, ordering: .relaxed) }
    func connectionClosed(_ reason: EngineIOCloseReason) { closed.withLock { $0[reason.description, default: 0] += 1 } }
    func received(bytes: Int) {
        packetsIn.add(1, ordering: .relaxed)
        bytesIn.add(bytes, ordering: .relaxed)
    }
    /// `packets` packets of `bytes` in all were handed to the transports.
    func sent(packets: Int, bytes: Int) {
        packetsOut.add(packets, ordering: .relaxed)
        bytesOut.add(bytes, ordering: .relaxed)
    }

    func packetDropped(_ count: Int = 1) { dropped.add(count, ordering: .relaxed) }
    func slowClientDisconnected() { slowClients.add(1, ordering: .relaxed) }
}
