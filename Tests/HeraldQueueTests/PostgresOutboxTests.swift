import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import Testing

@testable import HeraldQueue

/// The PostgreSQL server of `scripts/with-postgres`, when the tests run under it.
let postgresTestURL = ProcessInfo.processInfo.environment["HERALD_TEST_POSTGRES_URL"].flatMap(URLComponents.init(string:))

@Suite(
    "The PostgreSQL outbox: SQS's semantics over a table, per-key order, dead letters, wake-ups",
    .enabled(if: postgresTestURL != nil, "run through scripts/with-postgres, which starts a PostgreSQL server")
)
struct PostgresOutboxTests {
    static let logger = Logger(label: "test.outbox")

    /// Outboxes on one fresh table, each over a client of its own (running for `body`).
    func withOutboxes(
        _ count: Int = 1, configure: (inout PostgresOutbox.Configuration) -> Void = { _ in },
        _ body: ([PostgresOutbox]) async throws -> Void
    ) async throws {
        let url = try #require(postgresTestURL)
        var configuration = PostgresOutbox.Configuration()
        configuration.tableName = "outbox_test_\(UInt32.random(in: 0...UInt32.max))"
        configure(&configuration)
        let client = PostgresClient.Configuration(
            host: url.host ?? "127.0.0.1", port: url.port ?? 5432, username: url.user ?? "herald", password: url.password,
            database: String(url.path.dropFirst()), tls: .disable)
        let outboxes = try (0..<count).map { _ in
            try PostgresOutbox(client: PostgresClient(configuration: client), configuration: configuration, logger: Self.logger)
        }
        try await withThrowingDiscardingTaskGroup { group in
            for outbox in outboxes {
                group.addTask { await outbox.client.run() }
                do {
                    try await outbox.prepare()
                } catch let error as PSQLError {
                    Issue.record("\(String(reflecting: error))")
                    throw error
                }
                group.addTask { await outbox.listen() }
            }
            do {
                try await body(outboxes)
            } catch let error as PSQLError {
                Issue.record("\(String(reflecting: error))")
            }
            group.cancelAll()
        }
    }

    /// What `body` returns, or `nil` when it did not within `limit`.
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    static func message(
        _ body: String, key: String? = nil, _ attributes: [String: String] = [:]
    ) -> (
        body: ByteBuffer, attributes: [String: String], key: String?
    ) {
        (ByteBuffer(string: body), attributes, key)
    }

    @Test("rows come in id order with their body, attributes and key; a delete takes a row once, by its receipt")
    func receiveAndDelete() async throws {
        try await withOutboxes { outboxes in
            let outbox = outboxes[0]
            try await outbox.insert([
                Self.message(#"{"event":"a"}"#), Self.message("b", key: "k", ["herald-event": "item", "n": "2"]),
            ])
            let received = try await outbox.receive(maxMessages: 10, waitTime: .zero)
            #expect(received.map { String(buffer: $0.body) } == [#"{"event":"a"}"#, "b"])
            #expect(received.map(\.groupID) == [nil, "k"])
            #expect(received[1].messageAttributes == ["herald-event": "item", "n": "2"])
            #expect(received.map(\.receiveCount) == [1, 1])
            #expect(try await outbox.counts() == .init(visible: 0, invisible: 2, deadLettered: 0))
            #expect(try await outbox.delete(received.map(\.receipt)).isEmpty)
            #expect(try await outbox.delete([received[0].receipt]) == [received[0].receipt])
            #expect(try await outbox.counts() == .init(visible: 0, invisible: 0, deadLettered: 0))
        }
    }

    @Test("a receipt of an earlier reception neither deletes nor hides the row received again")
    func staleReceipt() async throws {
        try await withOutboxes { outboxes in
            let outbox = outboxes[0]
            try await outbox.insert([Self.message("x")])
            let first = try #require(try await outbox.receive(maxMessages: 1, waitTime: .zero).first)
            try await outbox.changeVisibility(of: first.receipt, to: .zero)
            let second = try #require(try await outbox.receive(maxMessages: 1, waitTime: .zero).first)
            #expect(second.receiveCount == 2)
            #expect(try await outbox.delete([first.receipt]) == [first.receipt])
            await #expect(throws: PostgresOutboxError.self) { try await outbox.changeVisibility(of: first.receipt, to: .zero) }
            #expect(try await outbox.delete([second.receipt]).isEmpty)
        }
    }

    @Test("a key's rows wait while an earlier row of the key is in flight; rows without a key do not")
    func perKeyOrder() async throws {
        try await withOutboxes { outboxes in
            let outbox = outboxes[0]
            try await outbox.insert([Self.message("k1", key: "k"), Self.message("k2", key: "k"), Self.message("free")])
            let batch = try await outbox.receive(maxMessages: 10, waitTime: .zero)
            #expect(batch.map { String(buffer: $0.body) } == ["k1", "k2", "free"])
            try await outbox.insert([Self.message("k3", key: "k"), Self.message("other", key: "j")])
            #expect(try await outbox.receive(maxMessages: 10, waitTime: .zero).map { String(buffer: $0.body) } == ["other"])
            // k1 retried later, k2 given back: k2 waits for k1.
            try await outbox.changeVisibility(of: batch[0].receipt, to: .seconds(60))
            try await outbox.changeVisibility(of: batch[1].receipt, to: .zero)
            #expect(try await outbox.receive(maxMessages: 10, waitTime: .zero).isEmpty)
            // Once k1 is done, k2 and k3 follow in order.
            try await outbox.changeVisibility(of: batch[0].receipt, to: .zero)
            let k1 = try await outbox.receive(maxMessages: 10, waitTime: .zero)
            #expect(k1.map { String(buffer: $0.body) } == ["k1", "k2", "k3"])
        }
    }

    @Test("a row received the most times moves to the dead-letter table on its next receive, freeing its key")
    func deadLetters() async throws {
        try await withOutboxes(configure: { $0.maxReceiveCount = 2 }) { outboxes in
            let outbox = outboxes[0]
            try await outbox.insert([Self.message("poison", key: "k"), Self.message("next", key: "k")])
            for _ in 0..<2 {
                let poison = try #require(try await outbox.receive(maxMessages: 1, waitTime: .zero).first)
                #expect(String(buffer: poison.body) == "poison")
                try await outbox.changeVisibility(of: poison.receipt, to: .zero)
            }
            let next = try await outbox.receive(maxMessages: 10, waitTime: .zero)
            #expect(next.map { String(buffer: $0.body) } == ["next"])
            #expect(try await outbox.counts() == .init(visible: 0, invisible: 1, deadLettered: 1))
        }
    }

    @Test("a waiting receive wakes on another client's insert (its poll interval is its whole wait)")
    func wakeUp() async throws {
        try await withOutboxes(2, configure: { $0.pollInterval = .seconds(30) }) { outboxes in
            let deadline = ContinuousClock.now + .seconds(10)
            while !outboxes[0].isListening, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            async let received = Self.within(.seconds(10)) { try await outboxes[0].receive(maxMessages: 10, waitTime: .seconds(30)) }
            while outboxes[0].waitingReceives == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            try await outboxes[1].insert([Self.message("wake")])
            #expect(try await received?.map { String(buffer: $0.body) } == ["wake"], "woken well before its next look, 30 s later")
        }
    }

    @Test("a waiting receive wakes when the earlier row of a key it waits for is deleted elsewhere")
    func wakeUpOnDelete() async throws {
        try await withOutboxes(2, configure: { $0.pollInterval = .seconds(30) }) { outboxes in
            let deadline = ContinuousClock.now + .seconds(10)
            while !outboxes[0].isListening, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            try await outboxes[1].insert([Self.message("first", key: "k"), Self.message("second", key: "k")])
            let first = try #require(try await outboxes[1].receive(maxMessages: 1, waitTime: .zero).first)
            #expect(try await outboxes[0].receive(maxMessages: 10, waitTime: .zero).isEmpty, "second waits for first")
            // Without the wake-up the receive would find the row at its next look, 30 s later:
            // it must come well before.
            async let received = Self.within(.seconds(10)) { try await outboxes[0].receive(maxMessages: 10, waitTime: .seconds(30)) }
            while outboxes[0].waitingReceives == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            #expect(outboxes[0].waitingReceives == 1, "the receive looked, found nothing, and waits")
            #expect(try await outboxes[1].delete([first.receipt]).isEmpty)
            #expect(try await received?.map { String(buffer: $0.body) } == ["second"])
        }
    }

    @Test("three consumers on one table take every row once, and never two rows of one key at a time")
    func competingConsumers() async throws {
        try await withOutboxes(3) { outboxes in
            let (keys, perKey) = (5, 100)
            try await outboxes[0].insert(
                (0..<(keys * perKey)).map { Self.message("\($0 % keys):\($0 / keys)", key: $0 % 7 == 0 ? nil : "k\($0 % keys)") })
            // Each row's body, logged just before its delete: within a key the log must follow
            // insertion order, since a key's next row is taken only once the previous is deleted.
            let log = DeleteLog()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for outbox in outboxes {
                    group.addTask {
                        while log.bodies.count < keys * perKey {
                            let batch = try await outbox.receive(maxMessages: 7, waitTime: .milliseconds(200))
                            log.append(batch.map { String(buffer: $0.body) })
                            #expect(try await outbox.delete(batch.map(\.receipt)).isEmpty)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let bodies = log.bodies
            #expect(bodies.count == keys * perKey)
            #expect(Set(bodies).count == keys * perKey)
            for key in 0..<keys {
                let sequence = bodies.compactMap { body -> Int? in
                    let parts = body.split(separator: ":").compactMap { Int($0) }
                    let n = parts[1] * keys + parts[0]
                    return parts[0] == key && n % 7 != 0 ? parts[1] : nil
                }
                #expect(sequence == sequence.sorted(), "key k\(key) out of order")
            }
            #expect(try await outboxes[0].counts() == .init(visible: 0, invisible: 0, deadLettered: 0))
        }
    }
}

/// What the competing consumers took, in the order they took it.
private final class DeleteLog: Sendable {
    private let state = Mutex<[String]>([])
    var bodies: [String] { state.withLock { $0 } }
    func append(_ bodies: [String]) { state.withLock { $0 += bodies } }
}
