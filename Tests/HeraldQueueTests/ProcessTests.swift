import Foundation
import HeraldQueue
import NIOCore
import SQS
import Testing

/// `queue-test-consumer` as a child process.
final class ConsumerProcess: Sendable {
    /// Where `swift build --show-bin-path` put the executables (set by the test script).
    static let binPath = ProcessInfo.processInfo.environment["HERALD_BIN_PATH"]
    static var executable: String? { binPath.map { $0 + "/queue-test-consumer" } }
    static let skipMessage: Comment = "process test: set HERALD_BIN_PATH to `swift build --show-bin-path`"

    let process: Process

    init(arguments: [String], log: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.executable))
        process.arguments = arguments
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try handle.seekToEnd()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
    }

    func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// Waits for the process to exit; returns its status, or `nil` after `timeout`.
    func waitForExit(timeout: Duration = .seconds(30)) async -> Int32? {
        let exited = await eventually(timeout: timeout) { !process.isRunning }
        return exited ? process.terminationStatus : nil
    }

    /// Stops it gracefully and returns its exit status.
    func terminate() async -> Int32? {
        signal(SIGTERM)
        let status = await waitForExit()
        if status == nil { signal(SIGKILL) }
        return status
    }

    /// The message IDs in an output file, in order (with repeats).
    static func handedOff(in path: String) -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { $0.split(separator: "\t").first.map(String.init) }
    }
}

@Suite(
    "Process tests with queue-test-consumer", .serialized,
    .enabled(if: ConsumerProcess.binPath != nil, ConsumerProcess.skipMessage)
)
struct ProcessTests {
    static let messageCount = 300

    func sqsArguments(endpoint: URL, queueURL: String, output: String) -> [String] {
        [
            "--output", output, "--sqs-endpoint", endpoint.absoluteString, "--queue-url", queueURL,
            "--handler-delay-ms", "30", "--max-in-flight", "5", "--wait-time", "1", "--request-timeout", "4",
        ]
    }

    /// A short visibility timeout brings messages back soon after a kill; a graceful stop gets a
    /// longer one, so that a slow machine cannot make the queue redeliver a message still in hand.
    func embeddedArguments(path: String, output: String, visibilityTimeout: Int = 3) -> [String] {
        ["--output", output, "--embedded", path, "--handler-delay-ms", "30", "--max-in-flight", "5", "--visibility-timeout", "\(visibilityTimeout)"]
    }

    func sendMessages(_ sqs: SQSClient, queueURL: String) async throws -> [String] {
        let entries = (0..<Self.messageCount).map { SendMessageBatchEntry(id: "e\($0 % 10)", body: "message \($0)") }
        return try await Moto.sendAll(sqs, queueURL: queueURL, entries: entries, concurrency: 4)
    }

    func enqueueMessages(path: String) async throws -> [String] {
        let queue = try await EmbeddedQueue.open(path: path)
        let ids = try await queue.enqueue(batch: (0..<Self.messageCount).map { .init(body: ByteBuffer(string: "message \($0)")) })
        try await queue.close()
        return ids
    }

    func waitForLines(_ output: String, atLeast count: Int, timeout: Duration = .seconds(30)) async -> Bool {
        await eventually(timeout: timeout) { ConsumerProcess.handedOff(in: output).count >= count }
    }

    func waitForAll(_ ids: [String], in outputs: [String], timeout: Duration = .seconds(40)) async -> Bool {
        let wanted = Set(ids)
        return await eventually(timeout: timeout) {
            wanted.isSubset(of: Set(outputs.flatMap { ConsumerProcess.handedOff(in: $0) }))
        }
    }

    // MARK: SQS

    @Test(
        "SQS frozen with SIGSTOP for 10 s mid-stream: the consumer recovers by itself and loses nothing",
        .enabled(if: Moto.freezableEndpoint != nil && Moto.freezablePID != nil, Moto.skipMessage)
    )
    func sqsOutage() async throws {
        let endpoint = try #require(Moto.freezableEndpoint)
        let motoPID = try #require(Moto.freezablePID)
        let sqs = Moto.client(endpoint: endpoint)
        let directory = try TemporaryDirectory()
        let url = try await sqs.createQueue(name: Moto.uniqueName("outage"), attributes: [.visibilityTimeout: "5"])
        let ids = try await sendMessages(sqs, queueURL: url)
        let output = directory.file("out.txt")
        let consumer = try ConsumerProcess(
            arguments: sqsArguments(endpoint: endpoint, queueURL: url, output: output), log: directory.file("consumer.log")
        )
        #expect(await waitForLines(output, atLeast: 50))
        kill(motoPID, SIGSTOP)
        try await Task.sleep(for: .seconds(10))
        kill(motoPID, SIGCONT)
        let all = await waitForAll(ids, in: [output], timeout: .seconds(45))
        #expect(await consumer.terminate() == 0)

        #expect(all, "lost: \(Set(ids).subtracting(ConsumerProcess.handedOff(in: output)).count)")
        #expect(try await eventually(timeout: .seconds(10)) { try await Moto.remaining(sqs, queueURL: url) == 0 })
    }

    @Test("SQS, consumer SIGKILLed mid-stream and restarted: every message is handed off at least once")
    func sqsKill() async throws {
        let endpoint = try #require(Moto.endpoint)
        let sqs = Moto.client()
        let directory = try TemporaryDirectory()
        let url = try await sqs.createQueue(name: Moto.uniqueName("kill"), attributes: [.visibilityTimeout: "3"])
        let ids = try await sendMessages(sqs, queueURL: url)
        let output = directory.file("out.txt")
        let arguments = sqsArguments(endpoint: endpoint, queueURL: url, output: output)
        let first = try ConsumerProcess(arguments: arguments, log: directory.file("consumer.log"))
        #expect(await waitForLines(output, atLeast: 80))
        first.signal(SIGKILL)
        _ = await first.waitForExit()
        #expect(ConsumerProcess.handedOff(in: output).count < ids.count, "the kill came after the stream")

        let second = try ConsumerProcess(arguments: arguments, log: directory.file("consumer.log"))
        let all = await waitForAll(ids, in: [output])
        #expect(await second.terminate() == 0)
        #expect(all, "lost: \(Set(ids).subtracting(ConsumerProcess.handedOff(in: output)).count)")
        #expect(try await Moto.remaining(sqs, queueURL: url) == 0)
    }

    @Test("SQS, SIGTERM mid-stream: every handed-off message is deleted and none comes back after a restart")
    func sqsTerminate() async throws {
        let endpoint = try #require(Moto.endpoint)
        let sqs = Moto.client()
        let directory = try TemporaryDirectory()
        let url = try await sqs.createQueue(name: Moto.uniqueName("term"), attributes: [.visibilityTimeout: "3"])
        let ids = try await sendMessages(sqs, queueURL: url)
        let before = directory.file("before.txt")
        let first = try ConsumerProcess(
            arguments: sqsArguments(endpoint: endpoint, queueURL: url, output: before), log: directory.file("consumer.log")
        )
        #expect(await waitForLines(before, atLeast: 80))
        #expect(await first.terminate() == 0)
        let handedOff = ConsumerProcess.handedOff(in: before)
        #expect(handedOff.count < ids.count, "the SIGTERM came after the stream")
        #expect(Set(handedOff).count == handedOff.count)
        // Every handed-off message was deleted before the process exited.
        #expect(try await Moto.remaining(sqs, queueURL: url) == ids.count - handedOff.count)

        let after = directory.file("after.txt")
        let second = try ConsumerProcess(
            arguments: sqsArguments(endpoint: endpoint, queueURL: url, output: after), log: directory.file("consumer.log")
        )
        let all = await waitForAll(ids, in: [before, after])
        #expect(await second.terminate() == 0)
        #expect(all)
        #expect(Set(handedOff).isDisjoint(with: ConsumerProcess.handedOff(in: after)))
    }

    // MARK: Embedded queue

    @Test("Embedded queue, consumer SIGKILLed mid-stream and restarted: every message is handed off at least once")
    func embeddedKill() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("queue.sqlite")
        let ids = try await enqueueMessages(path: path)
        let output = directory.file("out.txt")
        let first = try ConsumerProcess(arguments: embeddedArguments(path: path, output: output), log: directory.file("consumer.log"))
        #expect(await waitForLines(output, atLeast: 80))
        first.signal(SIGKILL)
        _ = await first.waitForExit()
        #expect(ConsumerProcess.handedOff(in: output).count < ids.count, "the kill came after the stream")

        let second = try ConsumerProcess(arguments: embeddedArguments(path: path, output: output), log: directory.file("consumer.log"))
        let all = await waitForAll(ids, in: [output])
        #expect(await second.terminate() == 0)
        #expect(all, "lost: \(Set(ids).subtracting(ConsumerProcess.handedOff(in: output)).count)")
        let queue = try await EmbeddedQueue.open(path: path)
        #expect(try await queue.counts() == .init(visible: 0, invisible: 0, deadLettered: 0))
        try await queue.close()
    }

    @Test("Embedded queue, SIGTERM mid-stream: handed-off messages are deleted, the rest survive the restart")
    func embeddedTerminate() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("queue.sqlite")
        let ids = try await enqueueMessages(path: path)
        let before = directory.file("before.txt")
        let first = try ConsumerProcess(
            arguments: embeddedArguments(path: path, output: before, visibilityTimeout: 10), log: directory.file("consumer.log"))
        #expect(await waitForLines(before, atLeast: 80))
        #expect(await first.terminate() == 0)
        let handedOff = ConsumerProcess.handedOff(in: before)
        #expect(handedOff.count < ids.count, "the SIGTERM came after the stream")

        let queue = try await EmbeddedQueue.open(path: path)
        let counts = try await queue.counts()
        try await queue.close()
        #expect(counts.visible + counts.invisible == ids.count - handedOff.count)

        let after = directory.file("after.txt")
        let second = try ConsumerProcess(arguments: embeddedArguments(path: path, output: after), log: directory.file("consumer.log"))
        let all = await waitForAll(ids, in: [before, after])
        #expect(await second.terminate() == 0)
        #expect(all)
        #expect(Set(handedOff).isDisjoint(with: ConsumerProcess.handedOff(in: after)))
    }
}
