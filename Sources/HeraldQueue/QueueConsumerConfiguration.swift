/// How a ``QueueConsumer`` polls, batches deletes, keeps messages invisible, retries and shuts down.
public struct QueueConsumerConfiguration: Sendable {
    /// Concurrent long-polling receive loops.
    public var pollers: Int = 2
    /// The most messages received but not yet finished (handled and acknowledged, retried or rejected).
    public var maxInFlight: Int = 100
    /// The most messages one receive asks for; `nil` (the default) asks for as many as the
    /// source allows (``MessageSource/maxReceiveBatchSize``: 10 for SQS, 256 for the embedded
    /// queue). Either way a receive asks for no more than the free room under ``maxInFlight``.
    public var maxMessagesPerReceive: Int? = nil
    /// How long one receive waits for messages (SQS allows up to 20 s).
    public var waitTime: Duration = .seconds(20)
    /// Deletes are sent in batches of this many (at most the source's limit, 10 for SQS)…
    public var deleteBatchSize: Int = 10
    /// …or when the oldest pending delete has waited this long.
    ///
    /// These two and ``deleteConcurrency`` apply to sources whose policy is
    /// ``AcknowledgeFlushPolicy/fullBatchOrMaxWait`` (SQS); a source that group-commits its deletes
    /// (``AcknowledgeFlushPolicy/afterPreviousDelete``, the embedded queue) gets every pending
    /// receipt, up to its own limit, as soon as its previous delete finished.
    public var deleteMaxWait: Duration = .seconds(1)
    /// Delete requests in flight at once.
    public var deleteConcurrency: Int = 4
    /// Attempts for a delete whose request or entry failed with a retryable error.
    public var deleteAttempts: Int = 3
    /// A message is kept invisible (visibility heartbeat) once it has been in flight this long since
    /// it was received or last extended; keep it well below the queue's visibility timeout.
    public var heartbeatThreshold: Duration = .seconds(10)
    /// Each heartbeat makes the message invisible for this long from then.
    public var visibilityExtension: Duration = .seconds(30)
    /// The visibility given to a message whose handler answered `retryLater`, by receive count.
    public var retryBackoff = Backoff(base: .seconds(2), max: .seconds(300))
    /// The wait after a failed receive, by consecutive failures (jittered).
    public var receiveErrorBackoff = Backoff(base: .milliseconds(200), max: .seconds(20))
    /// How long a handed-off message's key is remembered for duplicate suppression (`.zero` disables it).
    public var duplicateWindow: Duration = .seconds(300)
    /// What identifies duplicates.
    public var deduplicationKey: DeduplicationKey = .messageID
    /// On graceful shutdown, how long running handlers may take before they are cancelled.
    public var shutdownDrainDeadline: Duration = .seconds(10)

    /// Creates a configuration with the defaults; set the properties to change them.
    public init() {}
}
