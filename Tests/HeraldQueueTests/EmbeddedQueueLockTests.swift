import Foundation
import HeraldQueue
import NIOCore
import Testing

@Suite("Embedded queue lock")
struct EmbeddedQueueLockTests {
    func exclusive() -> EmbeddedQueue.Configuration {
        var configuration = EmbeddedQueue.Configuration()
        configuration.exclusive = true
        return configuration
    }

    @Test("An exclusive queue keeps a second exclusive opener out until it is closed, and lets plain openers share the file")
    func exclusiveOpeners() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("q.sqlite")
        let first = try await EmbeddedQueue.open(path: path, configuration: exclusive())
        await #expect(throws: EmbeddedQueueLockError.held(queuePath: path)) {
            _ = try await EmbeddedQueue.open(path: path, configuration: exclusive())
        }
        let producer = try await EmbeddedQueue.open(path: path)
        try await producer.enqueue(body: Array("shared".utf8))
        #expect(try await first.receive(maxMessages: 10).map { String(buffer: $0.body) } == ["shared"])
        try await producer.close()
        try await first.close()
        let second = try await EmbeddedQueue.open(path: path, configuration: exclusive())
        try await second.close()
    }

    @Test("An exclusive open in a directory that does not exist says which lock file it could not make")
    func missingDirectory() async throws {
        let path = "/nonexistent-\(UUID().uuidString)/q.sqlite"
        await #expect(throws: EmbeddedQueueLockError.cannotOpen(path: path + ".lock", reason: "No such file or directory")) {
            _ = try await EmbeddedQueue.open(path: path, configuration: exclusive())
        }
    }
}
