import HeraldQueue
import SocketIO
import Synchronization

/// The deliveries of one queue message or one publish request: waits until each was written to
/// the event loops (with a recovery store, once the store kept it) and handed to the cluster,
/// and tells whether every one reached the cluster.
final class DeliveryWait: Sendable {
    private let pending: PendingCount
    private let missedCluster = Atomic<Bool>(false)

    /// Waits for `count` deliveries.
    init(count: Int) { pending = PendingCount(count: count) }

    /// One delivery is done.
    func done(_ delivery: SocketIODelivery) {
        if !delivery.reachedCluster { missedCluster.store(true, ordering: .relaxed) }
        pending.end()
    }

    /// Returns once every delivery is done: whether all reached the cluster.
    func reachedCluster() async -> Bool {
        await pending.drained()
        return !missedCluster.load(ordering: .relaxed)
    }
}
