import Foundation
import Logging
import Metrics
import MetricsTestKit
import SQS
import ServiceLifecycle
import Synchronization
import Testing

@testable import HeraldQueue

/// The moto endpoints `scripts/with-moto` exports; live tests are skipped without them.
enum Moto {
    static let environment = ProcessInfo.processInfo.environment
    /// A plain moto server shared by the tests.
    static let endpoint = environment["HERALD_TEST_SQS_ENDPOINT"].flatMap(URL.init(string:))
    /// A moto server of its own for the test that freezes it, and its process ID.
    static let freezableEndpoint = environment["HERALD_TEST_SQS_FREEZABLE_ENDPOINT"].flatMap(URL.init(string:))
    static let freezablePID = environment["HERALD_TEST_SQS_FREEZABLE_PID"].flatMap { Int32($0) }
    static let skipMessage: Comment = "live test: run through scripts/with-moto, which sets HERALD_TEST_SQS_ENDPOINT"

    static func client(endpoint: URL? = Moto.endpoint, timeout: Duration = .seconds(10)) -> SQSClient {
        SQSClient(
            configuration: SQSConfiguration(
                region: "us-east-1", endpoint: endpoint, requestTimeout: timeout,
                credentialsProvider: StaticCredentialsProvider(AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing"))
            ))
    }

    /// A queue name no other test uses on the shared server.
    static func uniqueName(_ prefix: String, fifo: Bool = false) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8))" + (fifo ? ".fifo" : "")
    }

    /// Sends `entries` with SendMessageBatch, `concurrency` requests at a time; returns the message IDs.
    static func sendAll(
        _ sqs: SQSClient, queueURL: String, entries: [SendMessageBatchEntry], concurrency: Int = 8
    ) async throws -> [String] {
        var batches: [[SendMessageBatchEntry]] = []
        var start = 0
        while start < entries.count {
            batches.append(Array(entries[start..<min(start + 10, entries.count)]))
            start += 10
        }
        return try await withThrowingTaskGroup(of: [String].self) { group in
            var ids: [String] = []
            var next = 0
            func add() {
                guard next < batches.count else { return }
                let batch = batches[next]
                next += 1
                group.addTask {
                    let result = try await sqs.sendMessageBatch(queueURL: queueURL, entries: batch)
                    if !result.failed.isEmpty { throw TestFailure("send failed: \(result.failed)") }
                    return result.successful.map(\.messageID)
                }
            }
            for _ in 0..<concurrency { add() }
            while let sent = try await group.next() {
                ids += sent
                add()
            }
            return ids
        }
    }

    /// Sends `entries` in order, one SendMessageBatch at a time, while at most `maxBacklog` sent
    /// messages are not yet `consumed()`: moto's cost per request grows with the queue's length.
    static func sendPaced(
        _ sqs: SQSClient, queueURL: String, entries: [SendMessageBatchEntry], maxBacklog: Int,
        consumed: @Sendable () -> Int
    ) async throws -> [String] {
        var ids: [String] = []
        var start = 0
        while start < entries.count {
            while ids.count - consumed() > maxBacklog { try await Task.sleep(for: .milliseconds(20)) }
            let batch = Array(entries[start..<min(start + 10, entries.count)])
            start += 10
            let result = try await sqs.sendMessageBatch(queueURL: queueURL, entries: batch)
            if !result.failed.isEmpty { throw TestFailure("send failed: \(result.failed)") }
            ids += result.successful.map(\.messageID)
        }
        return ids
    }

    /// Visible + not-visible messages of a queue.
    static func remaining(_ sqs: SQSClient, queueURL: String) async throws -> Int {
        let attributes = try await sqs.getQueueAttributes(
            queueURL: queueURL, names: [.approximateNumberOfMessages, .approximateNumberOfMessagesNotVisible]
        )
        return (Int(attributes[.approximateNumberOfMessages] ?? "") ?? -1)
            + (Int(attributes[.approximateNumberOfMessagesNotVisible] ?? "") ?? -1)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A value shared between a test and its handlers.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
    var current: Value { value.withLock { $0 } }
}

/// A consumer running in a ServiceGroup, stopped gracefully by ``stop()``.
struct RunningConsumer {
    let group: ServiceGroup
    let task: Task<Void, any Error>

    static func start(_ consumer: QueueConsumer) -> RunningConsumer {
        var logger = Logger(label: "test.servicegroup")
        logger.logLevel = .error
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [.init(service: consumer)], logger: logger))
        let task = Task { try await group.run() }
        return RunningConsumer(group: group, task: task)
    }

    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
func eventually(timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// A logger for tests: warnings and up on stderr.
func testLogger(_ label: String, level: Logger.Level = .warning) -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = level
    return logger
}

extension TestMetrics {
    /// The total of a counter, 0 when it was never made.
    func total(_ label: String) -> Int64 { counterTotal(label: label) }
}

/// A consumer configuration with short waits, for tests.
func fastConfiguration() -> QueueConsumerConfiguration {
    var configuration = QueueConsumerConfiguration()
    configuration.waitTime = .seconds(1)
    configuration.deleteMaxWait = .milliseconds(200)
    configuration.shutdownDrainDeadline = .seconds(5)
    configuration.receiveErrorBackoff = Backoff(base: .milliseconds(100), max: .seconds(1))
    return configuration
}
