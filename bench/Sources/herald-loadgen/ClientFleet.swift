import BenchSupport
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The clients of one process: connects them at a bounded concurrency/rate, spread over event
/// loops and source addresses, and gathers the per-loop counters.
final class ClientFleet {
    struct ConnectPhase {
        var connected = 0
        var failed = 0
    }
    struct SlowResult: Sendable {
        var closedBeforeResume: Bool
        var closedAfterResume: Bool
        var receivedWhileStopped: UInt64
        var receivedTotal: UInt64
        var closeCode: UInt16?
        var sawDisconnectPacket: Bool
        var secondsToClose: Double?
    }

    let group: MultiThreadedEventLoopGroup
    let target: Target
    let frames: ClientFrames
    let sources: [SocketAddress]
    private var loops: [any EventLoop] = []
    private var stats: [ObjectIdentifier: LoopStats] = [:]
    private var channels: [any Channel] = []
    private var slowChannel: (any Channel)?
    private var slowHandler: NIOLoopBound<SocketIOClientHandler>?
    private var slowStats: LoopStats?
    var hasSlowClient: Bool { slowChannel != nil }

    init(group: MultiThreadedEventLoopGroup, target: Target, path: String, query: String, sources: [SocketAddress]) throws {
        self.group = group
        self.target = target
        self.frames = ClientFrames(host: target.host, port: target.port, path: path, query: query, connectPayload: "")
        self.sources = sources
        for loop in group.makeIterator() {
            loops.append(loop)
            stats[ObjectIdentifier(loop)] = LoopStats(eventLoop: loop)
        }
    }

    private func connectOne(globalIndex: Int, timeout: Double, slow: Bool) -> EventLoopFuture<any Channel> {
        let loop = loops[globalIndex % loops.count]
        let loopStats = slow ? LoopStats(eventLoop: loop) : stats[ObjectIdentifier(loop)]!
        if slow { slowStats = loopStats }
        let handshake = loop.makePromise(of: Void.self)
        let frames = self.frames
        let started = monotonicMicros()
        var bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(.milliseconds(Int64(timeout * 1000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Close with RST at the end of the run: no TIME_WAIT pile-up across runs.
                    if let provider = channel as? any SocketOptionProvider {
                        _ = provider.setSoLinger(linger(l_onoff: 1, l_linger: 0))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        SocketIOClientHandler(frames: frames, stats: loopStats, startedAt: started, handshake: handshake, slow: slow))
                }
            }
        if !sources.isEmpty {
            // IP_BIND_ADDRESS_NO_PORT (24): the port is chosen at connect time, per 4-tuple.
            bootstrap =
                bootstrap
                .channelOption(ChannelOptions.Types.SocketOption(level: SocketOptionLevel(IPPROTO_IP), name: 24), value: 1)
                .bind(to: sources[globalIndex % sources.count])
        }
        let connected = bootstrap.connect(host: target.host, port: target.port)
        connected.whenFailure { error in
            handshake.fail(error)
            loop.execute { loopStats.handshakeFailures += 1 }
        }
        return connected.flatMap { channel in
            let timer = loop.scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
                channel.close(promise: nil)
            }
            return handshake.futureResult.map {
                timer.cancel()
                return channel
            }
        }
    }

    func connect(count: Int, globalOffset: Int, concurrency: Int, rate: Double, timeout: Double, slowIndex: Int?) async -> ConnectPhase {
        var phase = ConnectPhase()
        let start = monotonicSeconds()
        var inFlight: [EventLoopFuture<any Channel>] = []
        var next = 0
        // Bounded concurrency without a task per connection: keep a window of futures and await
        // the oldest one when the window is full.
        var pendingSlow: EventLoopFuture<any Channel>?
        func settle(_ f: EventLoopFuture<any Channel>) async {
            do {
                let ch = try await f.get()
                if f === pendingSlow {
                    slowChannel = ch
                } else {
                    channels.append(ch)
                }
                phase.connected += 1
            } catch {
                phase.failed += 1
            }
        }
        while next < count {
            if rate > 0 {
                let due = start + Double(next) / rate
                let now = monotonicSeconds()
                if due > now { try? await Task.sleep(for: .microseconds(Int((due - now) * 1e6))) }
            }
            let slow = slowIndex == next
            let f = connectOne(globalIndex: globalOffset + next, timeout: timeout, slow: slow)
            if slow {
                pendingSlow = f
                if let ch = try? await f.get() {
                    slowHandler = try? await ch.eventLoop.submit {
                        NIOLoopBound(try ch.pipeline.syncOperations.handler(type: SocketIOClientHandler.self), eventLoop: ch.eventLoop)
                    }.get()
                }
            }
            inFlight.append(f)
            next += 1
            if inFlight.count >= concurrency {
                let first = inFlight.removeFirst()
                await settle(first)
            }
        }
        for f in inFlight { await settle(f) }
        return phase
    }

    func snapshot() async -> LoopStats.Snapshot {
        var total = LoopStats.Snapshot.empty
        for loop in loops {
            let s = stats[ObjectIdentifier(loop)]!
            if let snap = try? await loop.submit({ s.snapshot() }).get() { total.merge(snap) }
        }
        return total
    }

    func lastDelivery() async -> UInt64 {
        var last: UInt64 = 0
        for loop in loops {
            let s = stats[ObjectIdentifier(loop)]!
            if let v = try? await loop.submit({ s.lastDeliveryMicros }).get() { last = Swift.max(last, v) }
        }
        return last
    }

    func resetDeliveries() async {
        for loop in loops {
            let s = stats[ObjectIdentifier(loop)]!
            try? await loop.submit { s.resetDeliveries() }.get()
        }
        if let s = slowStats { try? await s.eventLoop.submit { s.resetDeliveries() }.get() }
    }

    /// Polls the loops until `expected` deliveries arrived or the deadline passed.
    func waitForDeliveries(expected: UInt64, deadline: Double) async -> LoopStats.Snapshot {
        while true {
            let snap = await snapshot()
            if snap.delivered >= expected || monotonicSeconds() >= deadline { return snap }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    func checkSlowClient(wait: Double) async -> SlowResult? {
        guard let ch = slowChannel, let handler = slowHandler, let s = slowStats else { return nil }
        let loop = ch.eventLoop
        let closedBefore = !ch.isActive
        let received = (try? await loop.submit { s.delivered }.get()) ?? 0
        let start = monotonicSeconds()
        _ = try? await ch.setOption(ChannelOptions.autoRead, value: true).get()
        ch.read()
        var closedAfter = false
        while monotonicSeconds() - start < wait {
            if !ch.isActive {
                closedAfter = true
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = monotonicSeconds() - start
        let (code, sawDisconnect, total) =
            (try? await loop.submit {
                (handler.value.sawCloseFrame, handler.value.sawDisconnectPacket, s.delivered)
            }.get()) ?? (nil, false, 0)
        return SlowResult(
            closedBeforeResume: closedBefore, closedAfterResume: closedAfter, receivedWhileStopped: received,
            receivedTotal: total, closeCode: code, sawDisconnectPacket: sawDisconnect,
            secondsToClose: closedAfter ? elapsed : nil)
    }

    func closeAll() async {
        var futures: [EventLoopFuture<Void>] = []
        for ch in channels { futures.append(ch.close()) }
        if let s = slowChannel { futures.append(s.close()) }
        for f in futures { try? await f.get() }
        channels.removeAll()
    }
}
