public import Logging
public import Metrics
public import ServiceLifecycle

/// Consumes a queue and hands every message to a handler, deleting it only once it was handed off.
///
/// Run it in a `ServiceGroup` (it is a `Service`). Several pollers long-poll the source while
/// handlers run, up to ``QueueConsumerConfiguration/maxInFlight`` messages at once; each receive
/// asks for as many as the source allows (``MessageSource/maxReceiveBatchSize``) within that limit. The handler's
/// answer decides what happens to the message:
///
/// - ``HandOffResult/handedOff``: deleted, in batches, as the source's
///   ``MessageSource/acknowledgeFlushPolicy`` says (SQS: ``QueueConsumerConfiguration/deleteBatchSize``,
///   flushed after ``QueueConsumerConfiguration/deleteMaxWait`` at the latest; the embedded queue:
///   everything pending as soon as the previous delete finished).
/// - ``HandOffResult/retryLater``: made visible again after a backoff that grows with its receive count.
/// - ``HandOffResult/reject(reason:)``: with a dead-letter policy, made visible at once so that the
///   queue moves it to its dead-letter queue after `maxReceiveCount` receives; otherwise logged at
///   error level with its ID and reason, counted (`herald_queue_discarded_total`) and deleted.
///
/// Messages in flight longer than ``QueueConsumerConfiguration/heartbeatThreshold`` are kept
/// invisible. On a FIFO queue, the messages of one group are handled one after the other, in order,
/// and groups in parallel. A message whose key was handed off within
/// ``QueueConsumerConfiguration/duplicateWindow`` is deleted without calling the handler.
///
/// Graceful shutdown stops the pollers (cancelling a waiting receive), lets running handlers finish
/// within ``QueueConsumerConfiguration/shutdownDrainDeadline`` (then cancels them), and flushes the
/// pending deletes on a task that is not cancelled. Cancelling ``run()`` cancels the handlers at
/// once but still flushes the deletes of the messages already handed off.
public struct QueueConsumer: Service {
    /// The handler: hands a message on and says what became of it. It may run concurrently for
    /// different messages (one at a time per group on FIFO queues).
    public typealias Handler = @Sendable (QueueMessage) async -> HandOffResult

    /// The queue consumed.
    public let source: any MessageSource
    /// Polling, batching, heartbeat, retry and shutdown settings.
    public let configuration: QueueConsumerConfiguration
    /// Where the consumer logs.
    public let logger: Logger
    private let metricsFactory: (any MetricsFactory)?
    private let handler: Handler

    /// Creates a consumer.
    ///
    /// - Parameters:
    ///   - source: The queue to consume.
    ///   - configuration: Settings; see ``QueueConsumerConfiguration``.
    ///   - logger: Where the consumer logs.
    ///   - metricsFactory: Where metrics go; `nil` for the process-wide `MetricsSystem.factory`.
    ///   - handler: Called for each message; see ``Handler``.
    public init(
        source: any MessageSource,
        configuration: QueueConsumerConfiguration = .init(),
        logger: Logger = Logger(label: "herald.queue"),
        metricsFactory: (any MetricsFactory)? = nil,
        handler: @escaping Handler
    ) {
        self.source = source
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "queue"] = "\(source.name)"
        self.logger = logger
        self.metricsFactory = metricsFactory
        self.handler = handler
    }

    /// Consumes until graceful shutdown or cancellation; see the type's documentation.
    ///
    /// Throws only when the queue cannot be described at start for a reason that retrying will not
    /// fix (e.g. it does not exist, or the credentials are refused), or when cancelled before that.
    public func run() async throws {
        let metrics = QueueMetrics(queue: source.name, factory: metricsFactory ?? MetricsSystem.factory)
        let description: QueueDescription
        do {
            // A graceful shutdown while the queue cannot be read yet must not wait for it.
            description = try await cancelWhenGracefulShutdown { try await describeSource(metrics: metrics) }
        } catch is CancellationError where Task.isShuttingDownGracefully && !Task.isCancelled {
            logger.info("Shut down before consuming the queue")
            return
        }
        logger.info(
            "Consuming queue",
            metadata: [
                "dead_letter": "\(description.deadLetterPolicy.map(\.description) ?? "none")",
                "fifo": "\(description.isFIFO)",
                "visibility_timeout": "\(description.visibilityTimeout)",
            ]
        )
        if configuration.heartbeatThreshold >= description.visibilityTimeout {
            logger.warning(
                "The visibility heartbeat threshold is not below the queue's visibility timeout; slow messages may be delivered twice",
                metadata: ["threshold": "\(configuration.heartbeatThreshold)"]
            )
        }

        if configuration.visibilityExtension <= configuration.heartbeatThreshold {
            logger.warning(
                "The visibility extension is not longer than the heartbeat threshold; slow messages may be delivered twice",
                metadata: ["extension": "\(configuration.visibilityExtension)", "threshold": "\(configuration.heartbeatThreshold)"]
            )
        }

        let runtime = ConsumerRuntime(
            source: source, description: description, configuration: configuration,
            metrics: metrics, logger: logger, handler: handler
        )
        let batcherTask = Task { await runtime.batcher.run() }
        let heartbeatTask = Task { await runtime.heartbeat() }
        let (messages, continuation) = AsyncStream.makeStream(of: QueueMessage.self)
        let handlersTask = Task { await runtime.handle(messages) }
        let pollersTask = Task { await runtime.poll(into: continuation) }

        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await pollersTask.value
            } onGracefulShutdown: {
                pollersTask.cancel()
            }
        } onCancel: {
            pollersTask.cancel()
            handlersTask.cancel()
        }
        logger.debug("Pollers stopped; draining handlers", metadata: ["in_flight": "\(runtime.tracker.count)"])
        continuation.finish()

        let drained = await Self.wait(for: handlersTask, deadline: configuration.shutdownDrainDeadline)
        if !drained {
            logger.warning(
                "Handlers did not finish within the shutdown deadline; cancelling them",
                metadata: ["in_flight": "\(runtime.tracker.count)"]
            )
            handlersTask.cancel()
            await handlersTask.value
        }
        heartbeatTask.cancel()
        await heartbeatTask.value
        // Messages handed off but still being made durable are deleted once they are.
        await runtime.settling.drained()

        // A new unstructured task: not cancelled even when this one is, so handed-off messages get deleted.
        await Task {
            runtime.batcher.close()
            await batcherTask.value
        }.value
        logger.info("Stopped consuming queue")
    }

    /// Waits for `task` up to `deadline`; returns whether it finished.
    private static func wait(for task: Task<Void, Never>, deadline: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await task.value
                return true
            }
            group.addTask {
                try? await Task.sleep(for: deadline)
                return false
            }
            let first = await group.next() ?? false
            if !first { task.cancel() }
            group.cancelAll()
            return first
        }
    }

    /// Describes the source, retrying what may pass (throttling, network) with a backoff.
    private func describeSource(metrics: QueueMetrics) async throws -> QueueDescription {
        var failures = 0
        while true {
            do {
                return try await source.describe()
            } catch {
                try Task.checkCancellation()
                failures += 1
                let advice = ReceiveErrorAdvice(error)
                guard advice.isRetryable else {
                    logger.critical("Cannot start consuming the queue: \(advice.operatorMessage)")
                    throw error
                }
                let delay = configuration.receiveErrorBackoff.jitteredDelay(attempt: failures)
                logger.log(
                    level: advice.level,
                    "Cannot read the queue's attributes yet: \(advice.operatorMessage)",
                    metadata: ["retry_in": "\(delay)", "failures": "\(failures)"]
                )
                try await Task.sleep(for: delay)
            }
        }
    }
}
