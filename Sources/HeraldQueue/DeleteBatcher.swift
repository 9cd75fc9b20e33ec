import Logging
import Synchronization
import Tracing

/// Collects the receipts of finished messages and deletes them in batches, as the source's
/// ``MessageSource/acknowledgeFlushPolicy`` says: when a batch is full or the oldest pending
/// receipt has waited ``QueueConsumerConfiguration/deleteMaxWait`` (SQS), or everything pending as
/// soon as the previous delete finished (a group commit, for the embedded queue).
///
/// ``run()`` must run on a task that is not cancelled, so that ``close()`` can flush what is
/// pending even while the consumer is being cancelled.
final class DeleteBatcher: Sendable {
    private struct State {
        var pending: [QueueReceipt] = []
        var oldest: ContinuousClock.Instant?
        var closed = false
        /// Group commit: whether a delete is being sent (the next waits for it to finish).
        var sending = false
        var ledger = DeleteLedger()
        /// The `delete` span of each traced receipt, and its message's span, ended once deleted.
        var traces: [QueueReceipt: (delete: any Span, message: any Span)] = [:]

        mutating func take(_ count: Int) -> [QueueReceipt] {
            let batch = Array(pending.prefix(count))
            pending.removeFirst(batch.count)
            oldest = pending.isEmpty ? nil : .now
            return batch
        }
    }

    private let source: any MessageSource
    private let batchSize: Int
    private let groupCommit: Bool
    private let maxWait: Duration
    private let concurrency: Int
    private let attempts: Int
    private let metrics: QueueMetrics
    private let logger: Logger
    private let isReceivedElsewhere: @Sendable (QueueReceipt) -> Bool
    private let state = Mutex(State())
    private let batches: AsyncStream<[QueueReceipt]>
    private let batchContinuation: AsyncStream<[QueueReceipt]>.Continuation

    /// - Parameter isReceivedElsewhere: Whether another receipt of the receipt's message is received
    ///   and still being handled, to tell a refused delete of a duplicate from a real failure.
    init(
        source: any MessageSource, configuration: QueueConsumerConfiguration, metrics: QueueMetrics, logger: Logger,
        isReceivedElsewhere: @escaping @Sendable (QueueReceipt) -> Bool = { _ in false }
    ) {
        self.source = source
        self.isReceivedElsewhere = isReceivedElsewhere
        groupCommit = source.acknowledgeFlushPolicy.isGroupCommit
        batchSize = max(1, groupCommit ? source.maxAcknowledgeBatchSize : min(configuration.deleteBatchSize, source.maxAcknowledgeBatchSize))
        maxWait = configuration.deleteMaxWait
        concurrency = groupCommit ? 1 : max(1, configuration.deleteConcurrency)
        self.attempts = max(1, configuration.deleteAttempts)
        self.metrics = metrics
        self.logger = logger
        (batches, batchContinuation) = AsyncStream.makeStream(of: [QueueReceipt].self)
    }

    /// Queues a receipt for deletion. After ``close()`` it cannot be deleted any more: that is
    /// logged and counted, and the queue delivers the message again.
    ///
    /// With `trace`, the span of the message, a `delete` span starts as its child; both end when
    /// the delete is confirmed or fails for good.
    func enqueue(_ receipt: QueueReceipt, trace: (any Span)? = nil) {
        let delete = trace.map { InstrumentationSystem.tracer.startSpan("delete", context: $0.context, ofKind: .client) }
        let batch = state.withLock { state -> [QueueReceipt]? in
            state.ledger.enqueued(receipt)
            if let trace, let delete { state.traces[receipt] = (delete, trace) }
            if state.closed { return [] }
            if state.pending.isEmpty { state.oldest = .now }
            state.pending.append(receipt)
            if groupCommit {
                guard !state.sending else { return nil }
                state.sending = true
                return state.take(batchSize)
            }
            guard state.pending.count >= batchSize else { return nil }
            return state.take(batchSize)
        }
        guard let batch else { return }
        guard !batch.isEmpty else {
            report([AcknowledgeFailure(receipt: receipt, code: "ConsumerStopped", message: "finished after shutdown", isRetryable: false)])
            return
        }
        batchContinuation.yield(batch)
    }

    /// Sends what is pending and ends ``run()`` once every batch is sent.
    func close() {
        let rest = state.withLock { state -> [QueueReceipt] in
            state.closed = true
            // A group-commit delete in progress sends what is pending when it finishes.
            if state.sending { return [] }
            defer { state.pending = [] }
            return state.pending
        }
        var index = 0
        while index < rest.count {
            batchContinuation.yield(Array(rest[index..<min(index + batchSize, rest.count)]))
            index += batchSize
        }
        batchContinuation.finish()
    }

    /// Sends batches until ``close()`` was called and all are sent.
    func run() async {
        if groupCommit {
            for await batch in batches {
                var next: [QueueReceipt]? = batch
                while let current = next {
                    await send(current)
                    next = state.withLock { state in
                        guard !state.pending.isEmpty else {
                            state.sending = false
                            return nil
                        }
                        return state.take(batchSize)
                    }
                }
            }
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.tick() }
            await withTaskGroup(of: Void.self) { senders in
                for _ in 0..<concurrency {
                    senders.addTask {
                        for await batch in self.batches { await self.send(batch) }
                    }
                }
            }
            group.cancelAll()
        }
    }

    /// Cuts a batch from pending receipts that have waited long enough.
    private func tick() async {
        let period = maxWait / 4
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            let batch = state.withLock { state -> [QueueReceipt]? in
                guard !state.closed, let oldest = state.oldest, ContinuousClock.now - oldest >= maxWait - period else {
                    return nil
                }
                return state.take(batchSize)
            }
            if let batch, !batch.isEmpty { batchContinuation.yield(batch) }
        }
    }

    /// Deletes one batch, retrying the request and the retryable entries.
    private func send(_ batch: [QueueReceipt]) async {
        var remaining = batch
        var attempt = 0
        var lastFailures: [AcknowledgeFailure] = []
        while !remaining.isEmpty, attempt < attempts {
            attempt += 1
            do {
                let failures = try await source.acknowledge(remaining)
                metrics.deleted.increment(by: Int64(remaining.count - failures.count))
                recordDeleted(remaining, except: failures)
                let permanent = failures.filter { !$0.isRetryable }
                report(permanent)
                let retryable = failures.filter(\.isRetryable)
                remaining = retryable.map(\.receipt)
                lastFailures = retryable
            } catch {
                logger.warning(
                    "Deleting messages failed; retrying",
                    metadata: ["count": "\(remaining.count)", "attempt": "\(attempt)", "error": "\(error)"]
                )
                lastFailures = remaining.map {
                    AcknowledgeFailure(receipt: $0, code: "RequestFailed", message: "\(error)", isRetryable: true)
                }
            }
            if !remaining.isEmpty, attempt < attempts {
                // Not cancellable on purpose: the flush at shutdown must complete.
                await sleepIgnoringCancellation(.milliseconds(200 << min(attempt, 4)))
            }
        }
        if !remaining.isEmpty { report(lastFailures) }
    }

    private func recordDeleted(_ receipts: [QueueReceipt], except failures: [AcknowledgeFailure]) {
        let failed = Set(failures.map(\.receipt))
        let traces = state.withLock { state in
            var traces: [(delete: any Span, message: any Span)] = []
            for receipt in receipts where !failed.contains(receipt) {
                state.ledger.deleted(receipt)
                if let trace = state.traces.removeValue(forKey: receipt) { traces.append(trace) }
            }
            return traces
        }
        for trace in traces {
            trace.delete.end()
            trace.message.end()
        }
    }

    /// Counts and logs deletes that failed for good, apart from refusals of a duplicate's receipt.
    private func report(_ failures: [AcknowledgeFailure]) {
        guard !failures.isEmpty else { return }
        let traces = state.withLock { state in failures.compactMap { state.traces.removeValue(forKey: $0.receipt) } }
        for trace in traces {
            trace.delete.setStatus(SpanStatus(code: .error, message: "the delete failed"))
            trace.delete.end()
            trace.message.end()
        }
        let elsewhere = failures.map { isReceivedElsewhere($0.receipt) }
        let meanings = state.withLock { state in
            zip(failures, elsewhere).map { state.ledger.failed($0.receipt, receivedElsewhere: $1) }
        }
        for (failure, meaning) in zip(failures, meanings) {
            switch meaning {
            case .duplicateRefusal:
                metrics.duplicateDeleteRefusals.increment()
                logger.debug(
                    "A delete was refused for a message deleted through another receipt",
                    metadata: ["message_id": "\(failure.receipt.messageID)", "error": "\(failure)"]
                )
            case .failure:
                metrics.deleteFailures.increment()
                logger.error(
                    "Could not delete a handed-off message; the queue will deliver it again",
                    metadata: ["message_id": "\(failure.receipt.messageID)", "error": "\(failure)"]
                )
            }
        }
    }
}

/// Sleeps for `duration` even when the task is cancelled.
func sleepIgnoringCancellation(_ duration: Duration) async {
    await Task.detached { try? await Task.sleep(for: duration) }.value
}
