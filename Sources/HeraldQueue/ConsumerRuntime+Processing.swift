import Logging

/// What happens to a message: duplicate check, the handler, and acting on its answer.
extension ConsumerRuntime {
    /// Handles one message and acts on the handler's answer; returns whether the message is done
    /// (handed off, a deleted duplicate, or deleted after a reject) rather than left in the queue.
    func process(_ message: QueueMessage) async -> Bool {
        var settling = false
        defer { if !settling { finishTracking(message) } }
        let key = configuration.deduplicationKey.key(of: message)
        switch duplicates.begin(key) {
        case .duplicate:
            metrics.duplicates.increment()
            logger.debug("Deleting a duplicate without handling it", metadata: ["message_id": "\(message.id)"])
            batcher.enqueue(message.receipt)
            return true
        case .inProgress:
            await changeVisibility(message, to: .seconds(max(1, configuration.retryBackoff.base.seconds)), why: "duplicate in progress")
            return false
        case .new:
            break
        }

        let result = await handler(message)
        // No heartbeat from now on, so none can undo the visibility set below.
        tracker.remove(message.receipt)
        switch result {
        case .handedOff:
            duplicates.finish(key, handedOff: true)
            metrics.recordHandOff(sent: message.sentTimestamp)
            batcher.enqueue(message.receipt)
            return true
        case .handedOffOnceSettled(let settlement):
            metrics.recordHandOff(sent: message.sentTimestamp)
            settling = true
            settle(message, key: key, settlement)
            return true
        case .retryLater:
            duplicates.finish(key, handedOff: false)
            metrics.retried.increment()
            let delay = configuration.retryBackoff.delay(attempt: message.receiveCount)
            logger.debug(
                "Handler asked to retry a message later",
                metadata: ["message_id": "\(message.id)", "receive_count": "\(message.receiveCount)", "retry_in": "\(delay)"]
            )
            await changeVisibility(message, to: delay, why: "retry later")
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
            batcher.enqueue(message.receipt)
            return true
        }
    }

    /// Deletes a handed-off message once its settlement says so, or lets it come again after a
    /// backoff; it counts as in flight until then, and a shutdown waits for it before the last
    /// deletes.
    private func settle(_ message: QueueMessage, key: String, _ settlement: HandOffSettlement) {
        settling.begin()
        Task {
            if await settlement.wait() {
                duplicates.finish(key, handedOff: true)
                batcher.enqueue(message.receipt)
            } else {
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
