import Foundation
import Metrics

/// The consumer's metrics, all named `herald_queue_…` with a `queue` dimension, after the
/// Prometheus conventions: counters end in `_total`, the hand-off latency is a histogram in seconds.
struct QueueMetrics: Sendable {
    /// Messages received.
    let received: Counter
    /// Messages the handler handed off.
    let handedOff: Counter
    /// Messages deleted from the queue.
    let deleted: Counter
    /// Deletes that failed for good (the message will be delivered again).
    let deleteFailures: Counter
    /// Refused deletes of a receipt whose message was deleted, or is being deleted, through another
    /// receipt (a copy received twice): not a failure, the message is gone either way.
    let duplicateDeleteRefusals: Counter
    /// Messages given back with a backoff (`retryLater`).
    let retried: Counter
    /// Messages the handler rejected.
    let rejected: Counter
    /// Rejected messages left for the queue's dead-letter queue.
    let deadLettered: Counter
    /// Rejected messages deleted because the queue has no dead-letter queue (logged with their ID).
    let discarded: Counter
    /// Duplicates deleted without being handled.
    let duplicates: Counter
    /// Failed receives.
    let receiveErrors: Counter
    /// Failed visibility changes (heartbeats, retries, rejects).
    let visibilityErrors: Counter
    /// Messages received and not yet finished.
    let inFlight: Gauge
    /// From the message's sent timestamp to its hand-off.
    let handOffLatency: Metrics.Timer

    init(queue: String, factory: any MetricsFactory) {
        let dimensions = [("queue", queue)]
        func counter(_ name: String) -> Counter {
            Counter(label: "herald_queue_\(name)_total", dimensions: dimensions, factory: factory)
        }
        received = counter("received")
        handedOff = counter("handed_off")
        deleted = counter("deleted")
        deleteFailures = counter("delete_failures")
        duplicateDeleteRefusals = counter("duplicate_delete_refusals")
        retried = counter("retried")
        rejected = counter("rejected")
        deadLettered = counter("dead_lettered")
        discarded = counter("discarded")
        duplicates = counter("duplicates")
        receiveErrors = counter("receive_errors")
        visibilityErrors = counter("visibility_errors")
        inFlight = Gauge(label: "herald_queue_in_flight", dimensions: dimensions, factory: factory)
        handOffLatency = Metrics.Timer(label: "herald_queue_handoff_latency_seconds", dimensions: dimensions, factory: factory)
    }

    /// Records the latency from `sent` to now.
    func recordHandOff(sent: Date?) {
        handedOff.increment()
        if let sent {
            let nanoseconds = Date().timeIntervalSince(sent) * 1e9
            handOffLatency.recordNanoseconds(Int64(max(nanoseconds, 0)))
        }
    }
}
