// A consumer for the process tests: consumes SQS or an embedded queue with the real QueueConsumer
// and, for each message, appends `id<TAB>body` to an output file and fsyncs it before answering
// handedOff. SIGTERM shuts it down gracefully.
//
//   queue-test-consumer --output FILE --sqs-endpoint URL --queue-url URL
//   queue-test-consumer --output FILE --embedded PATH
import ArgumentParser
import Foundation
import HeraldQueue
import Logging
import NIOCore
import SQS
import ServiceLifecycle
import Synchronization

@main
struct QueueTestConsumer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue-test-consumer",
        abstract: "Consumes a queue into a file, for the process tests."
    )

    @Option(help: "File each handed-off message is appended to as `id<TAB>body`.")
    var output: String

    @Option(help: "SQS endpoint, e.g. http://127.0.0.1:5000 (with --queue-url).")
    var sqsEndpoint: String?

    @Option(help: "SQS queue URL.")
    var queueURL: String?

    @Option(help: "Embedded queue file (instead of SQS).")
    var embedded: String?

    @Option(help: "Embedded queue visibility timeout in seconds.")
    var visibilityTimeout: Int = 3

    @Option(help: "Milliseconds each handler sleeps before writing.")
    var handlerDelayMS: Int = 0

    @Option(help: "SQS request timeout in seconds.")
    var requestTimeout: Int = 5

    @Option(help: "Long-poll wait in seconds.")
    var waitTime: Int = 2

    @Option(help: "Messages in flight at most.")
    var maxInFlight: Int = 20

    func run() async throws {
        var logger = Logger(label: "queue-test-consumer")
        logger.logLevel = .info
        let writer = try OutputFile(path: output)
        let delay = handlerDelayMS

        let source: any MessageSource
        var embeddedQueue: EmbeddedQueue?
        if let embedded {
            var queueConfiguration = EmbeddedQueue.Configuration()
            queueConfiguration.visibilityTimeout = .seconds(visibilityTimeout)
            queueConfiguration.pollInterval = .milliseconds(50)
            let queue = try await EmbeddedQueue.open(path: embedded, configuration: queueConfiguration, logger: logger)
            embeddedQueue = queue
            source = EmbeddedMessageSource(queue: queue)
        } else if let sqsEndpoint, let queueURL, let endpoint = URL(string: sqsEndpoint) {
            let client = SQSClient(
                configuration: SQSConfiguration(
                    region: "us-east-1", endpoint: endpoint, requestTimeout: .seconds(requestTimeout),
                    credentialsProvider: StaticCredentialsProvider(AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing")),
                    logger: logger
                ))
            source = SQSMessageSource(client: client, queueURL: queueURL)
        } else {
            throw ValidationError("give --embedded PATH, or --sqs-endpoint and --queue-url")
        }

        var configuration = QueueConsumerConfiguration()
        configuration.pollers = 2
        configuration.maxInFlight = maxInFlight
        configuration.waitTime = .seconds(waitTime)
        configuration.heartbeatThreshold = .seconds(1)
        configuration.visibilityExtension = .seconds(5)
        configuration.receiveErrorBackoff = Backoff(base: .milliseconds(200), max: .seconds(2))
        configuration.shutdownDrainDeadline = .seconds(10)

        let consumer = QueueConsumer(source: source, configuration: configuration, logger: logger) { message in
            if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
            do {
                try writer.append(id: message.id, body: message.body)
                return .handedOff
            } catch {
                return .retryLater
            }
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: consumer)], gracefulShutdownSignals: [.sigterm], logger: logger
            ))
        try await group.run()
        try await embeddedQueue?.close()
        logger.info("queue-test-consumer exits")
    }
}

/// An append-only file written with `write` and `fsync`, one line per message.
final class OutputFile: Sendable {
    private let descriptor: Mutex<Int32>

    init(path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        descriptor = Mutex(fd)
    }

    /// Appends `id<TAB>body\n` and returns once it is on disk.
    func append(id: String, body: ByteBuffer) throws {
        var line = Array(id.utf8)
        line.append(UInt8(ascii: "\t"))
        line.append(contentsOf: body.readableBytesView)
        line.append(UInt8(ascii: "\n"))
        try descriptor.withLock { fd in
            let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == line.count, fsync(fd) == 0 else {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
        }
    }
}
