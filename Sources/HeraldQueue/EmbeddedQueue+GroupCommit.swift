import Foundation
import Logging
import SQLiteNIO

/// The writer: runs the batches of ``GroupCommit`` one transaction each, one after the other.
extension EmbeddedQueue {
    /// The receives waiting for messages now.
    var parkedReceiveCount: Int { groupCommit.withLock { $0.parkedCount } }

    /// The requests waiting for the next write transaction.
    var pendingRequestCount: Int { groupCommit.withLock { $0.pendingCount } }

    /// Adds a request (through `body`) and, when no transaction runs, starts writing on a task of
    /// its own: SQLite work must never be cut short by a caller's cancellation.
    func submit(_ body: (inout GroupCommit) -> GroupCommit.Batch?) {
        guard let batch = groupCommit.withLock({ body(&$0) }) else { return }
        Task { await write(batch) }
    }

    /// Submits a receive: it looks in the next transaction, or parks at once.
    func submit(_ receive: GroupCommit.Receive) {
        let (batch, timer) = groupCommit.withLock { $0.submit(receive, now: .now, pollInterval: configuration.pollInterval) }
        if let timer { start(timer) }
        if let batch { Task { await write(batch) } }
    }

    private func start(_ timer: GroupCommit.PollTimer) {
        Task {
            try? await Task.sleep(for: timer.delay)
            self.submit { $0.pollTimerFired(id: timer.id, park: timer.park) }
        }
    }

    /// Writes `first`, then each batch that gathered meanwhile, until none is pending.
    private func write(_ first: GroupCommit.Batch) async {
        var batch = first
        while true {
            let received = await perform(batch)
            let aftermath = groupCommit.withLock {
                $0.finished(batch, received: received, now: .now, pollInterval: configuration.pollInterval)
            }
            for resumption in aftermath.resumptions { resumption.resume() }
            for timer in aftermath.timers { start(timer) }
            guard let next = aftermath.next else { return }
            batch = next
        }
    }

    /// Runs the batch in one transaction and resumes its writes; returns the receives' outcomes.
    /// When the transaction fails, each request is tried again in a transaction of its own, so
    /// that one failing request does not fail those it was grouped with.
    private func perform(_ batch: GroupCommit.Batch) async -> [UInt64: Result<[QueueMessage], any Error>] {
        do {
            let outcome = try await transaction(batch)
            for statements in batch.statements { statements.continuation.resume() }
            for insert in batch.inserts { insert.continuation.resume() }
            for (change, found) in zip(batch.changes, outcome.found) { change.continuation.resume(returning: found) }
            for (delete, missing) in zip(batch.deletes, outcome.missing) { delete.continuation.resume(returning: missing) }
            return outcome.received.mapValues { .success($0) }
        } catch {
            guard batch.count > 1 else {
                for statements in batch.statements { statements.continuation.resume(throwing: error) }
                for insert in batch.inserts { insert.continuation.resume(throwing: error) }
                for change in batch.changes { change.continuation.resume(throwing: error) }
                for delete in batch.deletes { delete.continuation.resume(throwing: error) }
                return Dictionary(uniqueKeysWithValues: batch.receives.map { ($0.id, .failure(error)) })
            }
            logger.debug("A grouped write transaction failed; trying its requests one by one", metadata: ["error": "\(error)"])
            var received: [UInt64: Result<[QueueMessage], any Error>] = [:]
            for single in batch.split() {
                received.merge(await perform(single)) { first, _ in first }
            }
            return received
        }
    }

    private struct Outcome: Sendable {
        /// Per visibility change, whether its receipt matched.
        var found: [Bool] = []
        /// Per delete, the receipts that matched nothing.
        var missing: [[QueueReceipt]] = []
        /// Per receive ID, the messages received.
        var received: [UInt64: [QueueMessage]] = [:]
    }

    /// Runs the other statements, inserts, changes visibility, deletes and receives, in that
    /// order, in one transaction (one statement runs on its own, without BEGIN and COMMIT).
    private func transaction(_ batch: GroupCommit.Batch) async throws -> Outcome {
        let inserts = batch.inserts.flatMap(\.rows)
        let receipts = batch.deletes.flatMap(\.receipts)
        let limit = configuration.maxReceiveCount
        let sweeps = !batch.looks.isEmpty && limit != nil
        // Rows inserted as received by the first parked receive, when nothing else is visible:
        // one statement both commits a published message and hands it to the waiting consumer.
        let taker = batch.insertsReceived ? batch.joiners.first : nil
        let handed = taker.map { min($0.maxMessages, inserts.count) } ?? 0
        let receives = taker == nil ? batch.receives : Array(batch.receives.dropFirst())
        let statements =
            Self.chunks(handed) + Self.chunks(inserts.count - handed) + batch.changes.count + Self.chunks(receipts.count)
            + receives.count + (sweeps ? 2 : 0) + 2 * batch.statements.count
        // The writer's task is never cancelled: it may take the connection without a task of its own.
        return try await lock.withLock { [self] in
            let explicit = statements > 1
            if explicit { _ = try await connection.query("BEGIN IMMEDIATE") }
            do {
                let now = Self.milliseconds(Date())
                var outcome = Outcome()
                for statements in batch.statements { try await statements.perform(connection) }
                if let taker {
                    let hidden = now + Self.milliseconds(taker.visibilityTimeout)
                    outcome.received[taker.id] = try await insertReceivedRows(inserts[..<handed], visibleAt: hidden)
                }
                try await insertRows(inserts[handed...])
                for change in batch.changes {
                    outcome.found.append(try await updateVisibility(change, now: now))
                }
                let deleted = try await deleteRows(receipts)
                outcome.missing = batch.deletes.map { $0.receipts.filter { !deleted.contains($0) } }
                if sweeps, let limit { try await moveToDeadLetters(now: now, limit: limit) }
                for receive in receives {
                    outcome.received[receive.id] = try await receiveRows(receive, now: now, limit: limit)
                }
                if explicit { _ = try await connection.query("COMMIT") }
                countTransaction()
                return outcome
            } catch {
                if explicit { _ = try? await connection.query("ROLLBACK") }
                throw error
            }
        }
    }

    /// Statements of at most 100 rows keep under SQLite's limit on bound parameters.
    private static let rowsPerStatement = 100

    private static func chunks(_ count: Int) -> Int {
        (count + rowsPerStatement - 1) / rowsPerStatement
    }

    private func insertRows(_ rows: ArraySlice<[SQLiteData]>) async throws {
        var start = rows.startIndex
        while start < rows.endIndex {
            let chunk = rows[start..<min(start + Self.rowsPerStatement, rows.endIndex)]
            start += Self.rowsPerStatement
            let values = Array(repeating: "(?, ?, ?, ?, ?, ?)", count: chunk.count).joined(separator: ", ")
            _ = try await connection.query(
                "INSERT INTO messages (id, body, attributes, group_id, sent_at, visible_at) VALUES \(values)", chunk.flatMap { $0 }
            )
        }
    }

    /// Inserts rows already received (hidden until `visibleAt`, received once, with a receipt),
    /// oldest first.
    private func insertReceivedRows(_ rows: ArraySlice<[SQLiteData]>, visibleAt: Int) async throws -> [QueueMessage] {
        var messages: [QueueMessage] = []
        var start = rows.startIndex
        while start < rows.endIndex {
            let chunk = rows[start..<min(start + Self.rowsPerStatement, rows.endIndex)]
            start += Self.rowsPerStatement
            let values = Array(repeating: "(?, ?, ?, ?, ?, ?, 1, lower(hex(randomblob(12))))", count: chunk.count).joined(separator: ", ")
            // The enqueue's visible_at (its last parameter) becomes the end of the receive's visibility timeout.
            let binds = chunk.flatMap { $0.dropLast() + [SQLiteData.integer(visibleAt)] }
            let rows = try await connection.query(
                """
                INSERT INTO messages (id, body, attributes, group_id, sent_at, visible_at, receive_count, receipt) VALUES \(values)
                RETURNING seq, id, body, attributes, group_id, sent_at, receive_count, receipt
                """,
                binds
            )
            messages += rows.sorted { ($0.column("seq")?.integer ?? 0) < ($1.column("seq")?.integer ?? 0) }.map(Self.message)
        }
        return messages
    }

    private func updateVisibility(_ change: GroupCommit.VisibilityChange, now: Int) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE messages SET visible_at = ? WHERE id = ? AND receipt = ? RETURNING id",
            [.integer(now + Self.milliseconds(change.timeout)), .text(change.receipt.messageID), .text(change.receipt.handle)]
        )
        return !rows.isEmpty
    }

    /// Deletes by receipt; returns the receipts that matched.
    private func deleteRows(_ receipts: [QueueReceipt]) async throws -> Set<QueueReceipt> {
        var deleted: Set<QueueReceipt> = []
        var start = 0
        while start < receipts.count {
            let chunk = receipts[start..<min(start + Self.rowsPerStatement, receipts.count)]
            start += Self.rowsPerStatement
            let values = Array(repeating: "(?, ?)", count: chunk.count).joined(separator: ", ")
            let rows = try await connection.query(
                "DELETE FROM messages WHERE (id, receipt) IN (VALUES \(values)) RETURNING id, receipt",
                chunk.flatMap { [SQLiteData.text($0.messageID), .text($0.handle)] }
            )
            for row in rows {
                deleted.insert(QueueReceipt(messageID: row.column("id")?.string ?? "", handle: row.column("receipt")?.string ?? ""))
            }
        }
        return deleted
    }

    /// Receives for one receive, oldest first. Messages at the receive limit are left for the
    /// dead-letter sweep, which runs before every look (a parked receive that joins a transaction
    /// skips it: that transaction's enqueues are not at the limit).
    private func receiveRows(_ receive: GroupCommit.Receive, now: Int, limit: Int?) async throws -> [QueueMessage] {
        let rows = try await connection.query(
            """
            UPDATE messages SET receive_count = receive_count + 1, visible_at = ?,
                receipt = lower(hex(randomblob(12)))
            WHERE seq IN (SELECT seq FROM messages WHERE visible_at <= ? AND receive_count < ? ORDER BY seq LIMIT ?)
            RETURNING seq, id, body, attributes, group_id, sent_at, receive_count, receipt
            """,
            [
                .integer(now + Self.milliseconds(receive.visibilityTimeout)), .integer(now), .integer(limit ?? Int.max),
                .integer(receive.maxMessages),
            ]
        )
        return
            rows
            .sorted { ($0.column("seq")?.integer ?? 0) < ($1.column("seq")?.integer ?? 0) }
            .map(Self.message)
    }

    private func moveToDeadLetters(now: Int, limit: Int) async throws {
        let moved = try await connection.query(
            """
            INSERT INTO dead_letters (seq, id, body, attributes, group_id, sent_at, receive_count, dead_at)
            SELECT seq, id, body, attributes, group_id, sent_at, receive_count, ?
            FROM messages WHERE visible_at <= ? AND receive_count >= ?
            RETURNING id, receive_count
            """,
            [.integer(now), .integer(now), .integer(limit)]
        )
        guard !moved.isEmpty else { return }
        _ = try await connection.query(
            "DELETE FROM messages WHERE visible_at <= ? AND receive_count >= ?", [.integer(now), .integer(limit)]
        )
        deadLetterCounter.increment(by: Int64(moved.count))
        for row in moved {
            logger.warning(
                "Moved a message to the dead-letter table",
                metadata: [
                    "message_id": "\(row.column("id")?.string ?? "?")",
                    "receive_count": "\(row.column("receive_count")?.integer ?? 0)",
                ]
            )
        }
    }
}
