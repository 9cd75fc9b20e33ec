import Logging

/// The visibility heartbeat.
extension ConsumerRuntime {
    /// Extends the visibility of messages in flight for longer than the threshold, until cancelled.
    func heartbeat() async {
        let threshold = configuration.heartbeatThreshold
        let period = min(max(threshold / 4, .milliseconds(50)), .seconds(1))
        while !Task.isCancelled {
            do { try await Task.sleep(for: period) } catch { return }
            let due = tracker.takeDue(threshold: threshold)
            guard !due.isEmpty else { continue }
            await withTaskGroup(of: Void.self) { group in
                var running = 0
                for message in due {
                    if running >= 10 {
                        await group.next()
                        running -= 1
                    }
                    running += 1
                    group.addTask {
                        do {
                            try await self.source.extendVisibility(of: message.receipt, by: self.configuration.visibilityExtension)
                        } catch {
                            self.metrics.visibilityErrors.increment()
                            self.logger.warning(
                                "Visibility heartbeat failed",
                                metadata: ["message_id": "\(message.id)", "error": "\(error)"]
                            )
                        }
                    }
                }
            }
        }
    }
}
