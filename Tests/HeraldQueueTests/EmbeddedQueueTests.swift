import Foundation
import MetricsTestKit
import NIOCore
import Testing

@testable import HeraldQueue

/// A temporary folder for queue files, removed at the end.
final class TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("herald-queue-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

@Suite("Embedded queue")
struct EmbeddedQueueTests {
    func configuration(visibility: Duration = .seconds(30), maxReceiveCount: Int? = 5) -> EmbeddedQueue.Configuration {
        var configuration = EmbeddedQueue.Configuration()
        configuration.visibilityTimeout = visibility
        configuration.maxReceiveCount = maxReceiveCount
        configuration.pollInterval = .milliseconds(20)
        return configuration
    }

    @Test("A received message is invisible until its deadline, counts its receives and is deleted by its receipt")
    func visibilityAndReceipts() async throws {
        let directory = try TemporaryDirectory()
        let queue = try await EmbeddedQueue.open(path: directory.file("q.sqlite"), configuration: configuration(visibility: .seconds(60)))
        let id = try await queue.enqueue(body: Array("hello".utf8), attributes: ["herald-id": "e1"], groupID: "g")

        // A deadline far enough away that a busy machine cannot reach it during the checks.
        let first = try await queue.receive(maxMessages: 10)
        #expect(first.map(\.id) == [id])
        #expect(first.first.map { String(buffer: $0.body) } == "hello")
        #expect(first.first?.messageAttributes == ["herald-id": "e1"])
        #expect(first.first?.groupID == "g")
        #expect(first.first?.receiveCount == 1)
        #expect(try await queue.receive(maxMessages: 10).isEmpty)
        #expect(try await queue.counts() == .init(visible: 0, invisible: 1, deadLettered: 0))

        // Brought near, the deadline passes: a waiting receive gets the message again.
        try await queue.changeVisibility(of: first[0].receipt, to: .milliseconds(100))
        let second = try await queue.receive(maxMessages: 10, waitTime: .seconds(10))
        #expect(second.map(\.id) == [id])
        #expect(second.first?.receiveCount == 2)
        // The first receipt is stale now: it deletes nothing.
        #expect(try await queue.delete([first[0].receipt]) == [first[0].receipt])
        await #expect(throws: EmbeddedQueueError.self) { try await queue.changeVisibility(of: first[0].receipt, to: .zero) }
        try await queue.changeVisibility(of: second[0].receipt, to: .zero)
        let third = try await queue.receive(maxMessages: 10)
        #expect(try await queue.delete([third[0].receipt]).isEmpty)
        #expect(try await queue.counts() == .init(visible: 0, invisible: 0, deadLettered: 0))
        try await queue.close()
    }

    @Test("A message received N times is moved to the dead-letter table on its next receive")
    func deadLetterAfterMaxReceives() async throws {
        let directory = try TemporaryDirectory()
        let metrics = TestMetrics()
        let queue = try await EmbeddedQueue.open(
            path: directory.file("dlq.sqlite"), configuration: configuration(maxReceiveCount: 2), metricsFactory: metrics
        )
        let id = try await queue.enqueue(body: Array("poison".utf8))
        for expected in 1...2 {
            let received = try await queue.receive(maxMessages: 1)
            #expect(received.first?.receiveCount == expected)
            try await queue.changeVisibility(of: received[0].receipt, to: .zero)
        }
        #expect(try await queue.receive(maxMessages: 1).isEmpty)
        #expect(try await queue.deadLetterIDs() == [id])
        #expect(try await queue.counts() == .init(visible: 0, invisible: 0, deadLettered: 1))
        #expect(metrics.total("herald_queue_dead_letter_moves_total") == 1)
        try await queue.close()
    }

    @Test("Unconsumed messages survive closing and reopening the file")
    func survivesReopen() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("durable.sqlite")
        let queue = try await EmbeddedQueue.open(path: path, configuration: configuration())
        let ids = try await queue.enqueue(batch: (0..<250).map { .init(body: ByteBuffer(string: "m\($0)")) })
        let taken = try await queue.receive(maxMessages: 50)
        #expect(try await queue.delete(taken.map(\.receipt)).isEmpty)
        try await queue.close()

        let reopened = try await EmbeddedQueue.open(path: path, configuration: configuration())
        var rest: [String] = []
        while true {
            let batch = try await reopened.receive(maxMessages: 100)
            if batch.isEmpty { break }
            rest += batch.map(\.id)
        }
        #expect(rest == Array(ids.dropFirst(50)))
        try await reopened.close()
    }

    @Test("Many tasks enqueue and receive at once without losing or repeating a message")
    func concurrentUse() async throws {
        let directory = try TemporaryDirectory()
        let queue = try await EmbeddedQueue.open(path: directory.file("concurrent.sqlite"), configuration: configuration())
        let enqueued = try await withThrowingTaskGroup(of: [String].self) { group in
            for task in 0..<8 {
                group.addTask {
                    var ids: [String] = []
                    for index in 0..<25 { ids.append(try await queue.enqueue(body: Array("\(task)-\(index)".utf8))) }
                    return ids
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let received = try await withThrowingTaskGroup(of: [String].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    var ids: [String] = []
                    while true {
                        let batch = try await queue.receive(maxMessages: 7)
                        if batch.isEmpty { return ids }
                        ids += batch.map(\.id)
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(received.count == 200)
        #expect(Set(received) == Set(enqueued))
        try await queue.close()
    }

    @Test("The consumer hands every message of the embedded queue off exactly once and deletes it")
    func consumerExactlyOnce() async throws {
        let directory = try TemporaryDirectory()
        let queue = try await EmbeddedQueue.open(path: directory.file("consume.sqlite"), configuration: configuration())
        let total = 5_000
        var ids: [String] = []
        for start in stride(from: 0, to: total, by: 500) {
            ids += try await queue.enqueue(batch: (start..<start + 500).map { .init(body: ByteBuffer(string: "\($0)")) })
        }
        let counts = Shared([String: Int]())
        let metrics = TestMetrics()
        var consumerConfiguration = fastConfiguration()
        consumerConfiguration.pollers = 2
        consumerConfiguration.maxInFlight = 200
        consumerConfiguration.deleteBatchSize = 50
        let consumer = QueueConsumer(
            source: EmbeddedMessageSource(queue: queue), configuration: consumerConfiguration,
            logger: testLogger("embedded"), metricsFactory: metrics
        ) { message in
            counts.withLock { $0[message.id, default: 0] += 1 }
            return .handedOff
        }
        let running = RunningConsumer.start(consumer)
        let done = await eventually(timeout: .seconds(60)) { metrics.total("herald_queue_deleted_total") >= Int64(total) }
        try await running.stop()

        #expect(done)
        #expect(Set(counts.current.keys) == Set(ids))
        #expect(counts.current.values.allSatisfy { $0 == 1 })
        #expect(try await queue.counts() == .init(visible: 0, invisible: 0, deadLettered: 0))
        try await queue.close()
    }

    @Test("A message the consumer rejects ends in the embedded queue's dead-letter table")
    func consumerRejectsToDeadLetters() async throws {
        let directory = try TemporaryDirectory()
        let queue = try await EmbeddedQueue.open(path: directory.file("reject.sqlite"), configuration: configuration(maxReceiveCount: 2))
        let id = try await queue.enqueue(body: Array("bad".utf8))
        let metrics = TestMetrics()
        let consumer = QueueConsumer(
            source: EmbeddedMessageSource(queue: queue), configuration: fastConfiguration(),
            logger: testLogger("embedded-reject", level: .critical), metricsFactory: metrics
        ) { _ in .reject(reason: "bad JSON") }
        let running = RunningConsumer.start(consumer)
        let moved = try await eventually(timeout: .seconds(10)) { try await queue.counts().deadLettered == 1 }
        try await running.stop()
        #expect(moved)
        #expect(try await queue.deadLetterIDs() == [id])
        #expect(metrics.total("herald_queue_dead_lettered_total") == 2)
        try await queue.close()
    }
}
