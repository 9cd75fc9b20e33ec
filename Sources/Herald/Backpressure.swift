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
    private var backlog: EngineIOBroadcastBacklog { io.engine.statistics.broadcastBacklog }

    /// Throws when the broadcast backlog is past its limit: for publishers that answer at once.
    public func checkBacklog() throws(HeraldOverloadedError) {
        let pending = backlog.pendingBytes
        guard pending <= configuration.maxBroadcastBacklogBytes else {
            backpressure.publishRefused()
            throw HeraldOverloadedError(pendingBytes: pending, limit: configuration.maxBroadcastBacklogBytes)
        }
    }

    /// Waits while the broadcast backlog is past its limit: for the queue consumer, which then
    /// stops receiving (its in-flight bound fills up) instead of piling messages up in memory.
    public func waitForBacklog() async {
        guard backlog.pendingBytes > configuration.maxBroadcastBacklogBytes else { return }
        backpressure.consumerWaited()
        await backlog.wait(untilAtMost: configuration.maxBroadcastBacklogBytes)
    }
}
