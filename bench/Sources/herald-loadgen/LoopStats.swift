import BenchSupport
import NIOCore

/// Counters of one event loop. Only touched on that loop (the handlers of its channels and tasks
/// submitted to it), hence `@unchecked Sendable`: the reference crosses threads, the state does not.
final class LoopStats: @unchecked Sendable {
    let eventLoop: any EventLoop
    var latency = Histogram()
    var connectTime = Histogram()
    var delivered: UInt64 = 0
    var otherEvents: UInt64 = 0
    var pingsAnswered: UInt64 = 0
    var handshakes = 0
    var handshakeFailures = 0
    var closedAfterHandshake = 0
    var negativeLatency: UInt64 = 0
    var lastDeliveryMicros: UInt64 = 0

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    struct Snapshot: Sendable {
        var latency: Histogram
        var connectTime: Histogram
        var delivered: UInt64
        var otherEvents: UInt64
        var pingsAnswered: UInt64
        var handshakes: Int
        var handshakeFailures: Int
        var closedAfterHandshake: Int
    }

    func snapshot() -> Snapshot {
        Snapshot(
            latency: latency, connectTime: connectTime, delivered: delivered, otherEvents: otherEvents,
            pingsAnswered: pingsAnswered, handshakes: handshakes, handshakeFailures: handshakeFailures,
            closedAfterHandshake: closedAfterHandshake)
    }

    func resetDeliveries() {
        latency = Histogram()
        delivered = 0
        otherEvents = 0
    }
}

extension LoopStats.Snapshot {
    static var empty: Self {
        .init(
            latency: Histogram(), connectTime: Histogram(), delivered: 0, otherEvents: 0, pingsAnswered: 0,
            handshakes: 0, handshakeFailures: 0, closedAfterHandshake: 0)
    }

    mutating func merge(_ o: Self) {
        latency.merge(o.latency)
        connectTime.merge(o.connectTime)
        delivered += o.delivered
        otherEvents += o.otherEvents
        pingsAnswered += o.pingsAnswered
        handshakes += o.handshakes
        handshakeFailures += o.handshakeFailures
        closedAfterHandshake += o.closedAfterHandshake
    }
}
