import EngineIO
import Synchronization

/// The gateway is behind: more than ``HeraldConfiguration/maxBroadcastBacklogBytes`` of
/// broadcasts wait for the event loops. The publish API answers 503 with `Retry-After`.
public struct HeraldOverloadedError: Error, CustomStringConvertible {
    /// The bytes waiting when the message was refused.
    public let pendingBytes: Int
    /// The configured limit.
    public let limit: Int

    public var description: String {
        "herald is overloaded: \(pendingBytes) bytes of broadcasts wait for the event loops (limit \(limit)); retry shortly"
    }
}

/// How often publishers were held back by the broadcast backlog.
public final class BackpressureStats: Sendable {
    private let refused = Atomic<Int>(0)
    private let waits = Atomic<Int>(0)

    init() {}

    /// Publish requests answered 503 because of the backlog.
    public var refusedPublishes: Int { refused.load(ordering: .relaxed) }
    /// Queue messages whose hand-off waited for the backlog to go down.
    public var consumerWaits: Int { waits.load(ordering: .relaxed) }

    func publishRefused() { refused.add(1, ordering: .relaxed) }
    func consumerWaited() { waits.add(1, ordering: .relaxed) }
}

extension HeraldGateway {
    /// The bytes of broadcasts waiting for the event loops: those waiting for a loop to select
    /// their recipients, and those waiting for another loop to write to a WebSocket.
    var broadcastBacklogBytes: Int { io.engine.statistics.broadcastBacklog.pendingBytes }

    /// Throws when the broadcast backlog is past its limit: for publishers that answer at once.
    public func checkBacklog() throws(HeraldOverloadedError) {
        let pending = broadcastBacklogBytes
        guard pending <= configuration.maxBroadcastBacklogBytes else {
            backpressure.publishRefused()
            throw HeraldOverloadedError(pendingBytes: pending, limit: configuration.maxBroadcastBacklogBytes)
        }
    }

    /// Waits while the broadcast backlog is past its limit: for the queue consumer, which then
    /// stops receiving (its in-flight bound fills up) instead of piling messages up in memory.
    public func waitForBacklog() async {
        let limit = configuration.maxBroadcastBacklogBytes
        guard broadcastBacklogBytes > limit else { return }
        backpressure.consumerWaited()
        await io.engine.statistics.broadcastBacklog.wait(untilAtMost: limit / 2)
    }
}
