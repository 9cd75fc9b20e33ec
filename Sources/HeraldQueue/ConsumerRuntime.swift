import Logging
import Synchronization

/// The state of one ``QueueConsumer/run()``: pollers, handlers, FIFO lanes, heartbeat and deletes.
final class ConsumerRuntime: Sendable {
    let source: any MessageSource
    let description: QueueDescription
    let configuration: QueueConsumerConfiguration
    let metrics: QueueMetrics
    let logger: Logger
    let handler: QueueConsumer.Handler
    let limiter: InFlightLimiter
    let tracker: InFlightTracker
    let duplicates: DuplicateFilter
    let batcher: DeleteBatcher
    /// Handed-off messages waiting for their settlement before their delete.
    let settling = PendingCount()
    /// Pending messages per FIFO group; a group has an entry while its lane task runs.
    let lanes = Mutex<[String: [QueueMessage]]>([:])

    init(
        source: any MessageSource,
        description: QueueDescription,
        configuration: QueueConsumerConfiguration,
        metrics: QueueMetrics,
        logger: Logger,
        handler: @escaping QueueConsumer.Handler
    ) {
        self.source = source
        self.description = description
        self.configuration = configuration
        self.metrics = metrics
        self.logger = logger
        self.handler = handler
        limiter = InFlightLimiter(limit: configuration.maxInFlight)
        tracker = InFlightTracker { [gauge = metrics.inFlight] count in gauge.record(count) }
        duplicates = DuplicateFilter(window: configuration.duplicateWindow)
        batcher = DeleteBatcher(source: source, configuration: configuration, metrics: metrics, logger: logger) {
            [tracker] receipt in tracker.hasOtherReceipt(of: receipt)
        }
    }
}
