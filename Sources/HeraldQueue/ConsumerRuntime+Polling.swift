import Logging

/// The pollers: long-poll the source while handlers run, within the in-flight limit.
extension ConsumerRuntime {
    /// Runs the pollers until the task is cancelled.
    func poll(into continuation: AsyncStream<QueueMessage>.Continuation) async {
        await withDiscardingTaskGroup { group in
            for index in 0..<max(1, configuration.pollers) {
                group.addTask { await self.pollLoop(index: index, continuation: continuation) }
            }
        }
    }

    func pollLoop(index: Int, continuation: AsyncStream<QueueMessage>.Continuation) async {
        var failures = 0
        let perReceive = max(1, min(configuration.maxMessagesPerReceive ?? source.maxReceiveBatchSize, source.maxReceiveBatchSize))
        while !Task.isCancelled {
            let slots: Int
            do {
                slots = try await limiter.acquire(upTo: perReceive)
            } catch {
                return
            }
            do {
                let messages = try await source.receive(maxMessages: slots, waitTime: configuration.waitTime)
                limiter.release(slots - messages.count)
                if failures > 0 {
                    logger.notice("Receiving works again", metadata: ["failures": "\(failures)", "poller": "\(index)"])
                    failures = 0
                }
                guard !messages.isEmpty else { continue }
                metrics.received.increment(by: Int64(messages.count))
                for message in messages {
                    tracker.add(message)
                    continuation.yield(message)
                }
            } catch {
                limiter.release(slots)
                if Task.isCancelled { return }
                failures += 1
                metrics.receiveErrors.increment()
                let advice = ReceiveErrorAdvice(error)
                let delay = configuration.receiveErrorBackoff.jitteredDelay(attempt: failures)
                logger.log(
                    level: advice.level,
                    "Receiving from the queue failed: \(advice.operatorMessage)",
                    metadata: ["retry_in": "\(delay)", "failures": "\(failures)", "poller": "\(index)"]
                )
                do { try await Task.sleep(for: delay) } catch { return }
            }
        }
    }
}
