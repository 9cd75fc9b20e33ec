import MetricsTestKit
import Testing

@testable import HeraldQueue

/// How refused deletes are classified: a refusal for a message received twice and deleted through
/// its other receipt is not a failure; a message left in the queue is.
@Suite("Delete failure classification")
struct DeleteLedgerTests {
    enum Step: Sendable, CustomStringConvertible {
        /// A receipt (`"A1"`: message A, handle 1) waits for deletion.
        case enqueue(String)
        /// Its delete succeeded.
        case delete(String)
        /// Its delete failed for good; `elsewhere`: another receipt of the message is still being handled.
        case fail(String, elsewhere: Bool = false)

        var description: String {
            switch self {
            case .enqueue(let receipt): "enqueue \(receipt)"
            case .delete(let receipt): "delete \(receipt)"
            case .fail(let receipt, let elsewhere): "fail \(receipt)\(elsewhere ? " (copy being handled)" : "")"
            }
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let steps: [Step]
        let expected: [DeleteFailureMeaning]
        var memory = 4096
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "a message with one receipt whose delete fails stays in the queue",
            steps: [.enqueue("A1"), .fail("A1")], expected: [.failure]),
        Case(
            name: "the older receipt refused while the copy's delete is pending",
            steps: [.enqueue("A1"), .enqueue("A2"), .fail("A1"), .delete("A2")], expected: [.duplicateRefusal]),
        Case(
            name: "the older receipt refused after the copy's receipt deleted the message",
            steps: [.enqueue("A1"), .enqueue("A2"), .delete("A2"), .fail("A1")], expected: [.duplicateRefusal]),
        Case(
            name: "the copy's receipt refused after the original was deleted (moto's race)",
            steps: [.enqueue("A1"), .delete("A1"), .enqueue("A2"), .fail("A2")], expected: [.duplicateRefusal]),
        Case(
            name: "a refusal while the copy is still being handled",
            steps: [.enqueue("A1"), .fail("A1", elsewhere: true)], expected: [.duplicateRefusal]),
        Case(
            name: "both receipts refused: the last one is a failure",
            steps: [.enqueue("A1"), .enqueue("A2"), .fail("A1"), .fail("A2")], expected: [.duplicateRefusal, .failure]),
        Case(
            name: "another message's delete excuses nothing",
            steps: [.enqueue("A1"), .enqueue("B1"), .delete("B1"), .fail("A1")], expected: [.failure]),
        Case(
            name: "a deletion long forgotten excuses nothing",
            steps: [.enqueue("A1"), .delete("A1"), .enqueue("B1"), .delete("B1"), .enqueue("C1"), .delete("C1"), .enqueue("A2"), .fail("A2")],
            expected: [.failure], memory: 2),
    ]

    @Test("a refused delete is a duplicate refusal only when another receipt deleted the message or may", arguments: cases)
    func classification(_ testCase: Case) {
        var ledger = DeleteLedger(memory: testCase.memory)
        var meanings: [DeleteFailureMeaning] = []
        for step in testCase.steps {
            switch step {
            case .enqueue(let name): ledger.enqueued(Self.receipt(name))
            case .delete(let name): ledger.deleted(Self.receipt(name))
            case .fail(let name, let elsewhere): meanings.append(ledger.failed(Self.receipt(name), receivedElsewhere: elsewhere))
            }
        }
        #expect(meanings == testCase.expected, "\(testCase.steps)")
        #expect(ledger.pendingMessages == 0, "every receipt was resolved, so none stays pending")
    }

    static func receipt(_ name: String) -> QueueReceipt {
        QueueReceipt(messageID: String(name.prefix(1)), handle: String(name.dropFirst()))
    }
}

/// A source whose deletes refuse every receipt with handle `refused`, as SQS refuses a stale one.
struct RefusingSource: MessageSource {
    var name: String { "refusing" }
    var maxAcknowledgeBatchSize: Int { 10 }
    func describe() async throws -> QueueDescription { QueueDescription(deadLetterPolicy: nil, visibilityTimeout: .seconds(30), isFIFO: false) }
    func receive(maxMessages: Int, waitTime: Duration) async throws -> [QueueMessage] { [] }
    func acknowledge(_ receipts: [QueueReceipt]) async throws -> [AcknowledgeFailure] {
        receipts.filter { $0.handle == "refused" }.map {
            AcknowledgeFailure(receipt: $0, code: "ReceiptHandleIsInvalid", message: "The input receipt handle is invalid.", isRetryable: false)
        }
    }
    func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws {}
}

extension DeleteLedgerTests {
    @Test("the delete batcher counts a refused delete of a message's copy apart from delete failures")
    func batcherCountsRefusalsApart() async {
        let metrics = TestMetrics()
        let batcher = DeleteBatcher(
            source: RefusingSource(), configuration: QueueConsumerConfiguration(),
            metrics: QueueMetrics(queue: "refusing", factory: metrics), logger: testLogger("ledger", level: .critical)
        )
        async let running: Void = batcher.run()
        batcher.enqueue(QueueReceipt(messageID: "A", handle: "accepted"))
        batcher.enqueue(QueueReceipt(messageID: "A", handle: "refused"))
        batcher.enqueue(QueueReceipt(messageID: "B", handle: "refused"))
        batcher.close()
        await running
        #expect(metrics.total("herald_queue_deleted_total") == 1)
        #expect(metrics.total("herald_queue_duplicate_delete_refusals_total") == 1, "A's copy: A was deleted through its other receipt")
        #expect(metrics.total("herald_queue_delete_failures_total") == 1, "B stays in the queue")
    }
}
