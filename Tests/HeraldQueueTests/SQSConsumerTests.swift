import Foundation
import MetricsTestKit
import NIOCore
import SQS
import Testing

@testable import HeraldQueue

/// The consumer against moto: `scripts/with-moto` starts it and sets the endpoint.
@Suite("QueueConsumer against moto", .serialized, .enabled(if: Moto.endpoint != nil, Moto.skipMessage))
struct SQSConsumerTests {
    let sqs = Moto.client()

    /// How many messages the bulk test sends; HERALD_TEST_BULK_MESSAGES overrides it.
    static let bulkCount = Moto.environment["HERALD_TEST_BULK_MESSAGES"].flatMap { Int($0) } ?? 10_000

    @Test("Bulk: every message is handed off exactly once and deleted, leaving the queue empty")
    func bulkExactlyOnce() async throws {
        let total = Self.bulkCount
        let url = try await sqs.createQueue(name: Moto.uniqueName("bulk"), attributes: [.visibilityTimeout: "30"])
        let counts = Shared([String: Int]())
        let metrics = TestMetrics()
        var configuration = fastConfiguration()
        configuration.pollers = 4
        configuration.maxInFlight = 200
        let consumer = QueueConsumer(
            source: SQSMessageSource(client: sqs, queueURL: url), configuration: configuration,
            logger: testLogger("bulk"), metricsFactory: metrics
        ) { message in
            counts.withLock { $0[message.id, default: 0] += 1 }
            return .handedOff
        }
        let running = RunningConsumer.start(consumer)
        let started = ContinuousClock.now
        let entries = (0..<total).map { SendMessageBatchEntry(id: "e\($0 % 10)", body: #"{"n":\#($0)}"#) }
        // Paced: moto's cost per request grows with the queue's length (sending 10,000 up front
        // takes minutes), so the backlog is kept small.
        let sent = try await Moto.sendPaced(sqs, queueURL: url, entries: entries, maxBacklog: 300) {
            Int(metrics.total("herald_queue_deleted_total"))
        }
        #expect(sent.count == total)
        // Drained: every message handed off and none left in the queue, visible or not.
        let drained = try await eventually(timeout: .seconds(60)) {
            guard metrics.total("herald_queue_handed_off_total") >= Int64(total) else { return false }
            return try await Moto.remaining(sqs, queueURL: url) == 0
        }
        try await running.stop()
        let duplicates = metrics.total("herald_queue_duplicates_total")
        let refusals = metrics.total("herald_queue_duplicate_delete_refusals_total")
        print(
            "bulk: \(total) messages sent, handed off and deleted in \(ContinuousClock.now - started); \(duplicates) duplicates suppressed, \(refusals) of their deletes refused"
        )

        #expect(drained)
        let seen = counts.current
        #expect(seen.count == total)
        #expect(Set(seen.keys) == Set(sent))
        #expect(seen.values.allSatisfy { $0 == 1 }, "each message handed off exactly once")
        #expect(metrics.total("herald_queue_handed_off_total") == Int64(total))
        #expect(try await Moto.remaining(sqs, queueURL: url) == 0, "ApproximateNumberOfMessages + NotVisible after the drain")
        // moto sometimes gives one message to two concurrent receives; the copy is deleted unhandled,
        // and one of the two deletes may be refused: every receipt is deleted or such a refusal.
        #expect(metrics.total("herald_queue_deleted_total") + refusals == Int64(total) + duplicates)
        #expect(metrics.total("herald_queue_delete_failures_total") == 0)
        #expect(try metrics.expectTimer("herald_queue_handoff_latency_seconds", [("queue", consumer.source.name)]).values.count == total)
    }

    @Test("A rejected message ends in the dead-letter queue of a queue with a redrive policy")
    func rejectWithRedrivePolicy() async throws {
        let dlqURL = try await sqs.createQueue(name: Moto.uniqueName("dlq"))
        let dlqARN = try #require(try await sqs.getQueueAttributes(queueURL: dlqURL, names: [.queueArn])[.queueArn])
        let url = try await sqs.createQueue(
            name: Moto.uniqueName("redrive"),
            attributes: [.redrivePolicy: #"{"deadLetterTargetArn":"\#(dlqARN)","maxReceiveCount":"2"}"#]
        )
        let sent = try await sqs.sendMessage(queueURL: url, body: "not json")
        let calls = Shared(0)
        let metrics = TestMetrics()
        let consumer = QueueConsumer(
            source: SQSMessageSource(client: sqs, queueURL: url), configuration: fastConfiguration(),
            logger: testLogger("redrive", level: .critical), metricsFactory: metrics
        ) { _ in
            calls.withLock { $0 += 1 }
            return .reject(reason: "bad JSON")
        }
        let running = RunningConsumer.start(consumer)
        let moved = try await eventually(timeout: .seconds(15)) {
            try await Moto.remaining(sqs, queueURL: dlqURL) == 1
        }
        try await running.stop()

        #expect(moved)
        let dead = try await sqs.receiveMessages(queueURL: dlqURL, maxNumberOfMessages: 10, waitTimeSeconds: 1)
        #expect(dead.map(\.messageID) == [sent.messageID])
        #expect(calls.current == 2)
        #expect(metrics.total("herald_queue_dead_lettered_total") == 2)
        #expect(metrics.total("herald_queue_deleted_total") == 0)
        #expect(try await Moto.remaining(sqs, queueURL: url) == 0)
    }

    @Test("Without a redrive policy a rejected message is logged, counted and deleted")
    func rejectWithoutRedrivePolicy() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("noredrive"))
        _ = try await sqs.sendMessage(queueURL: url, body: "not json")
        let metrics = TestMetrics()
        let consumer = QueueConsumer(
            source: SQSMessageSource(client: sqs, queueURL: url), configuration: fastConfiguration(),
            logger: testLogger("noredrive", level: .critical), metricsFactory: metrics
        ) { _ in .reject(reason: "unknown namespace") }
        let running = RunningConsumer.start(consumer)
        let deleted = await eventually(timeout: .seconds(10)) { metrics.total("herald_queue_deleted_total") == 1 }
        try await running.stop()

        #expect(deleted)
        #expect(metrics.total("herald_queue_rejected_total") == 1)
        #expect(metrics.total("herald_queue_discarded_total") == 1)
        #expect(metrics.total("herald_queue_dead_lettered_total") == 0)
        #expect(try await Moto.remaining(sqs, queueURL: url) == 0)
    }

    @Test("On a FIFO queue the order is kept within each of 20 groups of 100 messages")
    func fifoOrderPerGroup() async throws {
        let url = try await sqs.createQueue(
            name: Moto.uniqueName("order", fifo: true), attributes: [.fifoQueue: "true", .visibilityTimeout: "30"]
        )
        // Interleave the groups; each group's messages are sent in order.
        var entries: [SendMessageBatchEntry] = []
        for sequence in 0..<100 {
            for group in 0..<20 {
                entries.append(
                    SendMessageBatchEntry(
                        id: "g\(group)", body: "\(group):\(sequence)",
                        messageGroupID: "group-\(group)", messageDeduplicationID: "\(group)-\(sequence)"
                    ))
            }
        }
        let seen = Shared([Int: [Int]]())
        let metrics = TestMetrics()
        var configuration = fastConfiguration()
        // One poller: moto's long poll keeps the set of locked groups it saw when it started, so a
        // second poller could get a group's next message while the previous one is in flight.
        configuration.pollers = 1
        let consumer = QueueConsumer(
            source: SQSMessageSource(client: sqs, queueURL: url), configuration: configuration,
            logger: testLogger("fifo"), metricsFactory: metrics
        ) { message in
            let parts = String(buffer: message.body).split(separator: ":").compactMap { Int($0) }
            #expect(message.groupID == "group-\(parts[0])")
            seen.withLock { $0[parts[0], default: []].append(parts[1]) }
            return .handedOff
        }
        let running = RunningConsumer.start(consumer)
        // In order, one batch at a time, so that each group's messages are sent in order.
        _ = try await Moto.sendPaced(sqs, queueURL: url, entries: entries, maxBacklog: 200) {
            Int(metrics.total("herald_queue_deleted_total"))
        }
        let done = await eventually(timeout: .seconds(60)) { metrics.total("herald_queue_deleted_total") >= 2000 }
        try await running.stop()

        #expect(done)
        let groups = seen.current
        #expect(groups.count == 20)
        for (group, sequence) in groups {
            #expect(sequence == Array(0..<100), "group \(group) out of order")
        }
    }

    @Test("retryLater gives the message back after a backoff, and it comes back")
    func retryLaterBacksOff() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("retry"))
        _ = try await sqs.sendMessage(queueURL: url, body: "later")
        let deliveries = Shared([(count: Int, at: ContinuousClock.Instant)]())
        let metrics = TestMetrics()
        var configuration = fastConfiguration()
        configuration.retryBackoff = Backoff(base: .seconds(2), max: .seconds(10))
        let consumer = QueueConsumer(
            source: SQSMessageSource(client: sqs, queueURL: url), configuration: configuration,
            logger: testLogger("retry"), metricsFactory: metrics
        ) { message in
            let first = deliveries.withLock {
                $0.append((message.receiveCount, .now))
                return $0.count == 1
            }
            return first ? .retryLater : .handedOff
        }
        let running = RunningConsumer.start(consumer)
        let done = await eventually(timeout: .seconds(15)) { metrics.total("herald_queue_deleted_total") == 1 }
        try await running.stop()

        #expect(done)
        let seen = deliveries.current
        #expect(seen.map(\.count) == [1, 2])
        if seen.count == 2 {
            #expect(seen[1].at - seen[0].at >= .milliseconds(1900))
        }
        #expect(metrics.total("herald_queue_retried_total") == 1)
    }

    @Test("The visibility heartbeat keeps a slow message from being delivered again")
    func heartbeatKeepsSlowMessageHidden() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("slow"), attributes: [.visibilityTimeout: "2"])
        _ = try await sqs.sendMessage(queueURL: url, body: "slow")
        let calls = Shared(0)
        let metrics = TestMetrics()
        var configuration = fastConfiguration()
        configuration.heartbeatThreshold = .milliseconds(700)
        configuration.visibilityExtension = .seconds(2)
        configuration.duplicateWindow = .zero  // a redelivery would call the handler again
        let consumer = QueueConsumer(
            source: SQSMessageSource(client: sqs, queueURL: url), configuration: configuration,
            logger: testLogger("slow"), metricsFactory: metrics
        ) { _ in
            calls.withLock { $0 += 1 }
            try? await Task.sleep(for: .seconds(5))
            return .handedOff
        }
        let running = RunningConsumer.start(consumer)
        let done = await eventually(timeout: .seconds(15)) { metrics.total("herald_queue_deleted_total") == 1 }
        try await Task.sleep(for: .milliseconds(500))
        try await running.stop()

        #expect(done)
        #expect(calls.current == 1)
        #expect(metrics.total("herald_queue_received_total") == 1)
    }

    @Test("A duplicate by idempotency-key attribute is deleted without calling the handler again")
    func duplicateSuppressionByAttribute() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("dup"))
        let calls = Shared([String]())
        let metrics = TestMetrics()
        var configuration = fastConfiguration()
        configuration.deduplicationKey = .attribute("herald-id")
        configuration.pollers = 1
        let consumer = QueueConsumer(
            source: SQSMessageSource(client: sqs, queueURL: url), configuration: configuration,
            logger: testLogger("dup"), metricsFactory: metrics
        ) { message in
            calls.withLock { $0.append(String(buffer: message.body)) }
            return .handedOff
        }
        let running = RunningConsumer.start(consumer)
        _ = try await sqs.sendMessage(queueURL: url, body: "first", messageAttributes: ["herald-id": .string("event-1")])
        _ = await eventually(timeout: .seconds(10)) { metrics.total("herald_queue_deleted_total") == 1 }
        _ = try await sqs.sendMessage(queueURL: url, body: "again", messageAttributes: ["herald-id": .string("event-1")])
        _ = try await sqs.sendMessage(queueURL: url, body: "other", messageAttributes: ["herald-id": .string("event-2")])
        let done = await eventually(timeout: .seconds(10)) { metrics.total("herald_queue_deleted_total") == 3 }
        try await running.stop()

        #expect(done)
        #expect(calls.current == ["first", "other"])
        #expect(metrics.total("herald_queue_duplicates_total") == 1)
        #expect(try await Moto.remaining(sqs, queueURL: url) == 0)
    }
}
