import Foundation
import MetricsTestKit
import NIOCore
import Testing

@testable import HeraldQueue

@Suite("The embedded queue receives in large batches and group-commits its writes")
struct EmbeddedGroupCommitTests {
    @Test("one receive from the embedded source returns far more than SQS's 10 messages, oldest first")
    func largeReceiveBatch() async throws {
        let directory = try TemporaryDirectory()
        let (queue, source) = try await open(directory.file("batch.sqlite"))
        let ids = try await queue.enqueue(batch: (0..<200).map { .init(body: ByteBuffer(string: "\($0)")) })
        #expect(source.maxReceiveBatchSize > 10)
        let received = try await source.receive(maxMessages: 200, waitTime: .zero)
        #expect(received.map(\.id) == ids)
        try await queue.close()
    }

    @Test("deletes submitted while a transaction runs are committed together in the next one")
    func deletesShareATransaction() async throws {
        let directory = try TemporaryDirectory()
        let (queue, _) = try await open(directory.file("deletes.sqlite"))
        try await queue.enqueue(batch: (0..<200).map { .init(body: ByteBuffer(string: "\($0)")) })
        let receipts = try await queue.receive(maxMessages: 200).map(\.receipt)
        #expect(receipts.count == 200)

        let before = queue.transactionCount
        let missing = try await whileConnectionHeld(queue, untilPending: receipts.count - 1) {
            try await withThrowingTaskGroup(of: [QueueReceipt].self) { group in
                for receipt in receipts { group.addTask { try await queue.delete([receipt]) } }
                return try await group.reduce(into: []) { $0 += $1 }
            }
        }
        // The first delete took the writer before the others came; the 199 others share one transaction.
        #expect(queue.transactionCount - before == 2)
        #expect(missing.isEmpty)
        #expect(try await queue.counts() == .init(visible: 0, invisible: 0, deadLettered: 0))
        try await queue.close()
    }

    @Test("publishes arriving together are committed in one transaction, each returning once it is committed")
    func enqueuesShareATransaction() async throws {
        let directory = try TemporaryDirectory()
        let (queue, source) = try await open(directory.file("enqueues.sqlite"))
        let before = queue.transactionCount
        let ids = try await whileConnectionHeld(queue, untilPending: 49) {
            try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<50 { group.addTask { try await queue.enqueue(body: Array("\(index)".utf8)) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(queue.transactionCount - before == 2)
        #expect(try await queue.counts().visible == 50)
        let received = try await source.receive(maxMessages: 100, waitTime: .zero)
        #expect(Set(received.map(\.id)) == Set(ids))
        #expect(received.count == 50)
        try await queue.close()
    }

    @Test("a burst published into an ordered source is handed off once each, in order, in far fewer transactions than messages")
    func orderedBurst() async throws {
        let directory = try TemporaryDirectory()
        let (queue, _) = try await open(directory.file("burst.sqlite"))
        let handled = Shared([String]())
        let metrics = TestMetrics()
        var configuration = fastConfiguration()
        configuration.pollers = 1
        configuration.maxInFlight = 300
        let consumer = QueueConsumer(
            source: EmbeddedMessageSource(queue: queue, ordered: true), configuration: configuration,
            logger: testLogger("burst"), metricsFactory: metrics
        ) { message in
            handled.withLock { $0.append(message.id) }
            return .handedOff
        }
        let running = RunningConsumer.start(consumer)
        let total = 1_000
        let before = queue.transactionCount
        var ids: [String] = []
        // Ten publishers at a time, as concurrent HTTP publishes; each round's order is fixed by
        // the batch, rounds follow one another.
        for round in 0..<(total / 100) {
            let batches = try await withThrowingTaskGroup(of: (Int, [String]).self) { group in
                for publisher in 0..<10 {
                    group.addTask {
                        let bodies = (0..<10).map { EmbeddedQueue.NewMessage(body: ByteBuffer(string: "\(round)-\(publisher)-\($0)"), groupID: "g") }
                        return (publisher, try await queue.enqueue(batch: bodies))
                    }
                }
                return try await group.reduce(into: [(Int, [String])]()) { $0.append($1) }
            }
            // Concurrent publishes commit in the order they reached the queue: compare per round as a set,
            // and each publisher's own messages in order.
            ids += batches.sorted { $0.0 < $1.0 }.flatMap(\.1)
        }
        let done = await eventually(timeout: .seconds(60)) { metrics.total("herald_queue_deleted_total") >= Int64(total) }
        try await running.stop()
        #expect(done)
        let order = handled.current
        #expect(order.count == total)
        #expect(Set(order) == Set(ids))
        let position = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        // Every publish's messages were handed off in the order of its batch.
        for start in stride(from: 0, to: total, by: 10) {
            let batch = ids[start..<start + 10].compactMap { position[$0] }
            #expect(batch == batch.sorted())
        }
        #expect(try await queue.counts() == .init(visible: 0, invisible: 0, deadLettered: 0))
        // Enqueues, receives and deletes: once per message each would be 3000 transactions.
        #expect(queue.transactionCount - before < total)
        try await queue.close()
    }

    @Test("the consumer asks a source for as many messages as it allows, within the in-flight limit")
    func consumerUsesTheSourceBatchSize() async throws {
        let source = RecordingSource(maxReceiveBatchSize: 50)
        var configuration = fastConfiguration()
        configuration.maxInFlight = 40
        configuration.pollers = 1
        let consumer = QueueConsumer(source: source, configuration: configuration, logger: testLogger("recording")) { _ in .handedOff }
        let running = RunningConsumer.start(consumer)
        let asked = await eventually(timeout: .seconds(10)) { !source.asked.current.isEmpty }
        try await running.stop()
        #expect(asked)
        #expect(source.asked.current.first == 40)

        let wide = RecordingSource(maxReceiveBatchSize: 50)
        configuration.maxInFlight = 500
        let second = RunningConsumer.start(
            QueueConsumer(source: wide, configuration: configuration, logger: testLogger("recording")) { _ in .handedOff })
        let askedWide = await eventually(timeout: .seconds(10)) { !wide.asked.current.isEmpty }
        try await second.stop()
        #expect(askedWide)
        #expect(wide.asked.current.first == 50)
    }

    private func open(_ path: String) async throws -> (EmbeddedQueue, EmbeddedMessageSource) {
        var configuration = EmbeddedQueue.Configuration()
        configuration.pollInterval = .milliseconds(50)
        let queue = try await EmbeddedQueue.open(path: path, configuration: configuration)
        return (queue, EmbeddedMessageSource(queue: queue))
    }

    /// Runs `body` while the queue's connection is held, releasing it once `count` requests wait
    /// for the next transaction (the first request's batch waits for the connection meanwhile).
    private func whileConnectionHeld<T: Sendable>(
        _ queue: EmbeddedQueue, untilPending count: Int, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let (locked, lockedContinuation) = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await queue.lock.withLock {
                lockedContinuation.yield()
                let deadline = ContinuousClock.now + .seconds(10)
                while queue.pendingRequestCount < count {
                    guard ContinuousClock.now < deadline else { throw CancellationError() }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
        }
        for await _ in locked { break }
        async let result = body()
        try await holder.value
        return try await result
    }
}

/// A source that records how many messages each receive asked for and returns none.
final class RecordingSource: MessageSource {
    let maxReceiveBatchSize: Int
    let asked = Shared([Int]())

    init(maxReceiveBatchSize: Int) { self.maxReceiveBatchSize = maxReceiveBatchSize }

    var name: String { "recording" }
    var maxAcknowledgeBatchSize: Int { 10 }
    func describe() async throws -> QueueDescription { QueueDescription(deadLetterPolicy: nil, visibilityTimeout: .seconds(30), isFIFO: false) }
    func receive(maxMessages: Int, waitTime: Duration) async throws -> [QueueMessage] {
        asked.withLock { $0.append(maxMessages) }
        try await Task.sleep(for: waitTime)
        return []
    }
    func acknowledge(_ receipts: [QueueReceipt]) async throws -> [AcknowledgeFailure] { [] }
    func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws {}
}
