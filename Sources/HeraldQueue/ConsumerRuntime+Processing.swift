import Logging
import Tracing

/// What happens to a message: duplicate check, the handler, and acting on its answer.
extension ConsumerRuntime {
    /// Handles one message and acts on the handler's answer; returns whether the message is done
    /// (handed off, a deleted duplicate, or deleted after a reject) rather than left in the queue.
    ///
    /// Traced as a `queue receive` span (the child of the `traceparent` message attribute when
    /// the producer sent one), with a `hand-off` child around the handler (whose broadcast is
    /// its child) and a `delete` child until the queue confirmed the delete; the message's span
    /// ends with its delete, or when it is left in the queue.
    func process(_ message: QueueMessage) async -> Bool {
        var settling = false
        defer { if !settling { finishTracking(message) } }
        var parent = ServiceContext.topLevel
        InstrumentationSystem.instrument.extract(message.messageAttributes, into: &parent, using: MessageAttributesExtractor())
        let span = InstrumentationSystem.tracer.startSpan("queue receive", context: parent, ofKind: .consumer)
        span.attributes["messaging.message.id"] = message.id
        span.attributes["messaging.message.delivery_count"] = message.receiveCount
        let key = configuration.deduplicationKey.key(of: message)
        switch duplicates.begin(key) {
        case .duplicate:
            metrics.duplicates.increment()
            logger.debug("Deleting a duplicate without handling it", metadata: ["message_id": "\(message.id)"])
            span.attributes["herald.outcome"] = "duplicate"
            batcher.enqueue(message.receipt, trace: span)
            return true
        case .inProgress:
            span.attributes["herald.outcome"] = "duplicate in progress"
            defer { span.end() }
            await changeVisibility(message, to: .seconds(max(1, configuration.retryBackoff.base.seconds)), why: "duplicate in progress")
            return false
        case .new:
            break
        }

        let result = await withSpan("hand-off", context: span.context, ofKind: .internal) { _ in await handler(message) }
        // No heartbeat from now on, so none can undo the visibility set below.
        tracker.remove(message.receipt)
        span.attributes["herald.outcome"] = result.outcome
        if case .handedOffOnceSettled(let settlement) = result {
            metrics.recordHandOff(sent: message.sentTimestamp)
            settling = true
            settle(message, key: key, settlement, trace: span)
            return true
        }
        return await act(on: result, for: message, key: key, trace: span)
    }

    /// Acts on the handler's answer (other than a hand-off that settles later). The message's
    /// span ends with its delete, or here when it stays in the queue.
    private func act(on result: HandOffResult, for message: QueueMessage, key: String, trace span: any Span) async -> Bool {
        switch result {
        case .handedOff:
            duplicates.finish(key, handedOff: true)
            metrics.recordHandOff(sent: message.sentTimestamp)
            batcher.enqueue(message.receipt, trace: span)
            return true
        case .handedOffOnceSettled:
            preconditionFailure("settled hand-offs are handled by process(_:)")
        case .retryLater:
            duplicates.finish(key, handedOff: false)
            metrics.retried.increment()
            let delay = configuration.retryBackoff.delay(attempt: message.receiveCount)
            logger.debug(
                "Handler asked to retry a message later",
                metadata: ["message_id": "\(message.id)", "receive_count": "\(message.receiveCount)", "retry_in": "\(delay)"]
            )
            await changeVisibility(message, to: delay, why: "retry later")
            span.end()
            return false
        case .reject(let reason):
            duplicates.finish(key, handedOff: false)
            metrics.rejected.increment()
            if let policy = description.deadLetterPolicy {
                metrics.deadLettered.increment()
                logger.warning(
                    "Rejected a message; leaving it for the dead-letter queue",
                    metadata: [
                        "message_id": "\(message.id)", "reason": "\(reason)",
                        "receive_count": "\(message.receiveCount)", "dead_letter": "\(policy)",
                    ]
                )
                await changeVisibility(message, to: .zero, why: "reject to dead-letter queue")
                span.end()
                return false
            }
            metrics.discarded.increment()
            logger.error(
                "Rejected a message and the queue has no dead-letter queue; deleting it",
                metadata: [
                    "message_id": "\(message.id)", "reason": "\(reason)",
                    "receive_count": "\(message.receiveCount)",
                ]
            )
            batcher.enqueue(message.receipt, trace: span)
            return true
        }
    }

    /// Deletes a handed-off message once its settlement says so, or lets it come again after a
    /// backoff; it counts as in flight until then, and a shutdown waits for it before the last
    /// deletes.
    private func settle(_ message: QueueMessage, key: String, _ settlement: HandOffSettlement, trace span: any Span) {
        settling.begin()
        Task {
            if await settlement.wait() {
                duplicates.finish(key, handedOff: true)
                batcher.enqueue(message.receipt, trace: span)
            } else {
                span.attributes["herald.outcome"] = "hand-off incomplete"
                defer { span.end() }
                duplicates.finish(key, handedOff: false)
                metrics.retried.increment()
                let delay = configuration.retryBackoff.delay(attempt: message.receiveCount)
                logger.warning(
                    "A message's hand-off did not complete; it comes again",
                    metadata: ["message_id": "\(message.id)", "receive_count": "\(message.receiveCount)", "retry_in": "\(delay)"])
                await changeVisibility(message, to: delay, why: "hand-off incomplete")
            }
            finishTracking(message)
            settling.end()
        }
    }

    func changeVisibility(_ message: QueueMessage, to timeout: Duration, why: String) async {
        do {
            try await source.changeVisibility(of: message.receipt, to: timeout)
        } catch {
            metrics.visibilityErrors.increment()
            logger.warning(
                "Could not change a message's visibility; it comes back after the visibility timeout",
                metadata: ["message_id": "\(message.id)", "purpose": "\(why)", "error": "\(error)"]
            )
        }
    }
}

/// Reads trace context (`traceparent`, `tracestate`) from a message's attributes.
struct MessageAttributesExtractor: Extractor {
    func extract(key: String, from attributes: [String: String]) -> String? { attributes[key] }
}

extension HandOffResult {
    /// The outcome as a span attribute.
    var outcome: String {
        switch self {
        case .handedOff, .handedOffOnceSettled: "handed off"
        case .retryLater: "retry later"
        case .reject: "rejected"
        }
    }
}
