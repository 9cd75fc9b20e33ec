/// The receipts waiting for deletion and the messages deleted lately, so that a delete refused
/// because the message was received twice is told apart from a message left in the queue.
///
/// A queue may hand one message to two receives (SQS is at-least-once); the consumer then holds
/// two receipts of it and deletes both (the copy without handling it). One of the two deletes may
/// be refused (SQS honours only the newest receipt handle; moto refuses a handle issued while the
/// message was being deleted). That refusal loses nothing when another receipt of the message was
/// deleted lately, is waiting to be deleted, or is still being handled: it is a
/// ``DeleteFailureMeaning/duplicateRefusal``. Otherwise the message stays in the queue: a
/// ``DeleteFailureMeaning/failure``. When both receipts fail, the last one to fail is a failure.
struct DeleteLedger: Sendable {
    /// Receipts enqueued for deletion and not yet resolved, per message ID.
    private var pending: [String: Int] = [:]
    /// The IDs of the latest deleted messages, oldest first from `head`, at most `memory` of them.
    private var recent: [String] = []
    private var head = 0
    private var recentSet: Set<String> = []
    private let memory: Int

    /// - Parameter memory: How many deleted message IDs are remembered; a refused delete arrives
    ///   within moments of its sibling's, so a few thousand cover any rate.
    init(memory: Int = 4096) {
        self.memory = max(1, memory)
    }

    /// Records that `receipt` waits for deletion.
    mutating func enqueued(_ receipt: QueueReceipt) {
        pending[receipt.messageID, default: 0] += 1
    }

    /// Records that `receipt` was deleted.
    mutating func deleted(_ receipt: QueueReceipt) {
        resolve(receipt)
        remember(receipt.messageID)
    }

    /// Records that deleting `receipt` failed for good and says what that means.
    ///
    /// - Parameter receivedElsewhere: Whether another receipt of the message was received and is
    ///   still being handled (it will be deleted or given back).
    mutating func failed(_ receipt: QueueReceipt, receivedElsewhere: Bool) -> DeleteFailureMeaning {
        let othersPending = resolve(receipt)
        return recentSet.contains(receipt.messageID) || othersPending > 0 || receivedElsewhere ? .duplicateRefusal : .failure
    }

    /// Messages with receipts waiting for deletion.
    var pendingMessages: Int { pending.count }

    /// Removes `receipt` from the pending ones; returns how many of its message remain.
    @discardableResult
    private mutating func resolve(_ receipt: QueueReceipt) -> Int {
        let id = receipt.messageID
        let remaining = max((pending[id] ?? 1) - 1, 0)
        pending[id] = remaining == 0 ? nil : remaining
        return remaining
    }

    private mutating func remember(_ id: String) {
        guard recentSet.insert(id).inserted else { return }
        recent.append(id)
        if recent.count - head > memory {
            recentSet.remove(recent[head])
            head += 1
            if head >= memory {
                recent.removeFirst(head)
                head = 0
            }
        }
    }
}

/// What a delete that failed for good means for its message.
enum DeleteFailureMeaning: Sendable, Equatable {
    /// The message stays in the queue and will be delivered again.
    case failure
    /// Another receipt of the same message was deleted or is being deleted: nothing is lost.
    case duplicateRefusal
}
