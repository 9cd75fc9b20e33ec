/// Dispatch: one task per message, or one lane per group on FIFO queues.
extension ConsumerRuntime {
    /// Handles messages from `messages` until it ends, then waits for the running handlers.
    func handle(_ messages: AsyncStream<QueueMessage>) async {
        await withDiscardingTaskGroup { group in
            for await message in messages {
                if description.isFIFO, let groupID = message.groupID {
                    if enqueueInLane(groupID, message) {
                        group.addTask { await self.runLane(groupID) }
                    }
                } else {
                    group.addTask { _ = await self.process(message) }
                }
            }
        }
    }

    /// Queues `message` in its group's lane; returns whether the lane must be started.
    func enqueueInLane(_ group: String, _ message: QueueMessage) -> Bool {
        lanes.withLock { lanes in
            if lanes[group] != nil {
                lanes[group]!.append(message)
                return false
            }
            lanes[group] = [message]
            return true
        }
    }

    /// Handles a group's messages in order until its lane is empty.
    func runLane(_ group: String) async {
        while true {
            let next = lanes.withLock { lanes -> QueueMessage? in
                guard let pending = lanes[group], !pending.isEmpty else {
                    lanes[group] = nil
                    return nil
                }
                return lanes[group]!.removeFirst()
            }
            guard let message = next else { return }
            let finished = await process(message)
            if !finished || Task.isCancelled {
                // Keep the group's order: what follows waits until this message comes back.
                let rest = lanes.withLock { lanes -> [QueueMessage] in
                    defer { lanes[group] = nil }
                    return lanes[group] ?? []
                }
                await giveBack(rest)
                return
            }
        }
    }

    /// Makes messages that were received but not handled visible again at once.
    func giveBack(_ messages: [QueueMessage]) async {
        for message in messages {
            do {
                try await source.changeVisibility(of: message.receipt, to: .zero)
            } catch {
                metrics.visibilityErrors.increment()
                logger.debug("Could not give a message back", metadata: ["message_id": "\(message.id)", "error": "\(error)"])
            }
            finishTracking(message)
        }
    }

    func finishTracking(_ message: QueueMessage) {
        tracker.remove(message.receipt)
        limiter.release(1)
    }
}
