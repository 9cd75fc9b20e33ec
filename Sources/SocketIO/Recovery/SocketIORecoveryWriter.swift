import Foundation
import Logging
import Synchronization

/// Writes a server's recovery events and sessions to its ``SocketIORecoveryStore``, off the event
/// loops, in group commits: what is submitted while a write runs goes into the next one. Once a
/// write is durable, each log it carried events of hands them to the loops.
///
/// Session changes are kept by pid, the last one winning: a socket that joined three rooms while
/// a write ran costs one row in the next.
final class SocketIORecoveryWriter: Sendable {
    private enum SessionChange {
        case keep(SocketIOStoredSession)
        case forget
    }

    private struct State {
        var events: [SocketIOStoredEvent] = []
        /// The logs whose events are in `events`, with the last offset of each.
        var logs: [ObjectIdentifier: (log: SocketIORecoveryLog, through: UInt64)] = [:]
        var sessions: [String: SessionChange] = [:]
        var writing = false
        /// Callers of ``flush()`` waiting for the writes that were pending when they called.
        var flushes: [(generation: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        /// Counts the writes started; a flush waits for the one after those pending at its call.
        var generation: UInt64 = 0
        var written: UInt64 = 0

        var isEmpty: Bool { events.isEmpty && sessions.isEmpty }
    }

    private let state = Mutex(State())
    let store: any SocketIORecoveryStore
    let window: Duration
    private let logger: Logger
    /// How long a failed write waits before it is tried again.
    static let retryDelay: Duration = .seconds(1)

    init(store: any SocketIORecoveryStore, window: Duration, logger: Logger) {
        self.store = store
        self.window = window
        self.logger = logger
    }

    /// An event of `log`; `log.stored(through:)` is called once it is durable. Called under the
    /// log's lock, so each log's events arrive in offset order.
    func submit(_ event: SocketIOStoredEvent, of log: SocketIORecoveryLog) {
        let start = state.withLock { state in
            state.events.append(event)
            state.logs[ObjectIdentifier(log)] = (log, event.offset)
            return startIfIdle(&state)
        }
        if start { run() }
    }

    /// A socket's session as it is now (admitted, rooms changed, or gone).
    func keep(_ session: SocketIOStoredSession) {
        change(session.pid, .keep(session))
    }

    /// A session that no longer may come back.
    func forget(pid: String) {
        change(pid, .forget)
    }

    private func change(_ pid: String, _ change: SessionChange) {
        let start = state.withLock { state in
            state.sessions[pid] = change
            return startIfIdle(&state)
        }
        if start { run() }
    }

    /// Returns once everything submitted before the call is durable.
    func flush() async {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if !state.writing && state.isEmpty { return true }
                // Pending work goes into the write after the current one.
                let target = state.generation + (state.isEmpty ? 0 : 1)
                state.flushes.append((target, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    private func startIfIdle(_ state: inout State) -> Bool {
        guard !state.writing else { return false }
        state.writing = true
        return true
    }

    private func run() {
        Task { [self] in
            while let (batch, logs) = take() {
                while true {
                    do {
                        try await store.write(batch)
                        break
                    } catch {
                        logger.error(
                            "Could not write to the recovery store; trying again",
                            metadata: ["error": "\(error)", "events": "\(batch.events.count)", "sessions": "\(batch.sessions.count)"])
                        try? await Task.sleep(for: Self.retryDelay)
                    }
                }
                for (log, through) in logs { log.stored(through: through) }
                finished()
            }
        }
    }

    /// The next batch, or `nil` (and the writer idle) when nothing is pending.
    private func take() -> (SocketIORecoveryBatch, [(SocketIORecoveryLog, UInt64)])? {
        state.withLock { state in
            guard !state.isEmpty else {
                state.writing = false
                return nil
            }
            var batch = SocketIORecoveryBatch(pruneBefore: Date() - TimeInterval(window.components.seconds))
            batch.events = state.events
            for (pid, change) in state.sessions {
                switch change {
                case .keep(let session): batch.sessions.append(session)
                case .forget: batch.removedSessions.insert(pid)
                }
            }
            let logs = state.logs.values.map { ($0.log, $0.through) }
            state.events = []
            state.logs = [:]
            state.sessions = [:]
            state.generation += 1
            return (batch, logs)
        }
    }

    private func finished() {
        let resumed = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.written += 1
            let written = state.written
            let ready = state.flushes.filter { $0.generation <= written }.map(\.continuation)
            state.flushes.removeAll { $0.generation <= written }
            return ready
        }
        for continuation in resumed { continuation.resume() }
    }
}
