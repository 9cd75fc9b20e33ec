import Synchronization

/// Counters of what an Engine.IO server had to give up on, for metrics.
public final class EngineIOStatistics: Sendable {
    private let dropped = Atomic<Int>(0)
    private let slowClients = Atomic<Int>(0)
    /// Broadcasts handed to event loops and not yet written.
    public let broadcastBacklog = EngineIOBroadcastBacklog()

    package init() {}

    /// Volatile packets dropped because their client was not ready for them.
    public var droppedPackets: Int { dropped.load(ordering: .relaxed) }
    /// Sessions closed because their client could not keep up.
    public var slowClientDisconnects: Int { slowClients.load(ordering: .relaxed) }

    func packetDropped(_ count: Int = 1) { dropped.add(count, ordering: .relaxed) }
    func slowClientDisconnected() { slowClients.add(1, ordering: .relaxed) }
}
