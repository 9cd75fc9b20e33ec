import Foundation
import NIOCore
import Testing

@testable import HeraldQueue

@Suite("The embedded queue hands a message to a waiting receive when it is committed")
struct EmbeddedWakeUpTests {
    @Test("a receive waiting with no poll to fall back on gets the message enqueued meanwhile")
    func enqueueWakesAWaitingReceive() async throws {
        let directory = try TemporaryDirectory()
        let (queue, source) = try await open(directory.file("wake.sqlite"))
        let receive = Task { try await source.receive(maxMessages: 10, waitTime: .seconds(10)) }
        // The receive is waiting once it has looked once and found nothing: enqueue after that.
        try await waitUntil { queue.parkedReceiveCount > 0 }
        let before = queue.transactionCount
        let id = try await queue.enqueue(body: Array("hello".utf8))
        let received = try await receive.value
        #expect(received.map(\.id) == [id])
        #expect(queue.transactionCount == before + 1, "the waiting receive joins the enqueue's transaction")
        #expect(received.first?.receiveCount == 1)
        #expect(try await queue.counts() == .init(visible: 0, invisible: 1, deadLettered: 0), "received: hidden, not visible")
        #expect(try await queue.delete(received.map(\.receipt)).isEmpty, "its receipt deletes it")
        try await queue.close()
    }

    @Test("a message given back with zero visibility wakes a waiting receive too")
    func visibilityResetWakes() async throws {
        let directory = try TemporaryDirectory()
        let (queue, source) = try await open(directory.file("back.sqlite"))
        try await queue.enqueue(body: Array("again".utf8))
        let first = try await queue.receive(maxMessages: 1)
        let receive = Task { try await source.receive(maxMessages: 10, waitTime: .seconds(10)) }
        try await waitUntil { queue.parkedReceiveCount > 0 }
        try await queue.changeVisibility(of: first[0].receipt, to: .zero)
        #expect(try await receive.value.map(\.id) == first.map(\.id))
        try await queue.close()
    }

    @Test("a cancelled receive stops waiting at once")
    func cancellation() async throws {
        let directory = try TemporaryDirectory()
        let (queue, source) = try await open(directory.file("cancel.sqlite"))
        let receive = Task { try await source.receive(maxMessages: 10, waitTime: .seconds(60)) }
        try await waitUntil { queue.parkedReceiveCount > 0 }
        receive.cancel()
        await #expect(throws: CancellationError.self) { try await receive.value }
        #expect(queue.parkedReceiveCount == 0)
        try await queue.close()
    }

    /// A queue whose poll interval is longer than any wait here: only a commit's signal can
    /// make a waiting receive look again.
    private func open(_ path: String) async throws -> (EmbeddedQueue, EmbeddedMessageSource) {
        var configuration = EmbeddedQueue.Configuration()
        configuration.pollInterval = .seconds(60)
        let queue = try await EmbeddedQueue.open(path: path, configuration: configuration)
        return (queue, EmbeddedMessageSource(queue: queue))
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
