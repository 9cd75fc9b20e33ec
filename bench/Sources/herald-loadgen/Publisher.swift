import BenchSupport
import NIOCore
import NIOHTTP1
import NIOPosix

/// Counts the answers on one publishing keep-alive connection.
final class EmitResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let publisher: Publisher
    private let index: Int

    init(publisher: Publisher, index: Int) {
        self.publisher = publisher
        self.index = index
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            publisher.onResponseHead(connection: index, status: head.status.code)
        case .body:
            break
        case .end:
            publisher.onResponseEnd(connection: index)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        publisher.onClosed(connection: index)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Open-loop publisher: message i is due at start + i/R, whatever the answers. It runs on one event
/// loop; all state is touched only there (`@unchecked Sendable` for the reference only).
/// Each request goes to an idle keep-alive connection, or is pipelined on the least busy one.
final class Publisher: @unchecked Sendable {
    struct Result: Sendable {
        var sent = 0
        var answered = 0
        var accepted = 0  // 2xx
        var rejected = 0  // other status
        var lateSends = 0  // sends more than 1 ms behind schedule
        var maxLagMicros: UInt64 = 0
        var closedConnections = 0
        var elapsed: Double = 0
        var responseTime = Histogram()
    }

    let eventLoop: any EventLoop
    private var channels: [any Channel] = []
    private var outstanding: [Int] = []
    private var sentTimes: [[UInt64]] = []  // per connection FIFO of send times (pipelining order)
    private var sentTimesHead: [Int] = []
    private var result = Result()
    private let headTemplate: HTTPRequestHead
    private let rate: Double
    private let count: Int
    private let padding: String
    private var startMicros: UInt64 = 0
    private var done: EventLoopPromise<Result>?
    private var timer: Scheduled<Void>?
    private var finished = false

    init(eventLoop: any EventLoop, host: String, port: Int, path: String, bearer: String?, rate: Double, count: Int, padBytes: Int) {
        self.padding = padBytes > 0 ? ",\"pad\":\"" + String(repeating: "x", count: padBytes) + "\"" : ""
        self.eventLoop = eventLoop
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Connection", value: "keep-alive")
        if let bearer { headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        self.headTemplate = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
        self.rate = rate
        self.count = count
    }

    static func connect(
        group: any EventLoopGroup, eventLoop: any EventLoop, host: String, port: Int, path: String,
        bearer: String?, rate: Double, count: Int, connections: Int, padBytes: Int
    ) async throws -> Publisher {
        let publisher = Publisher(
            eventLoop: eventLoop, host: host, port: port, path: path, bearer: bearer, rate: rate,
            count: count, padBytes: padBytes)
        for i in 0..<connections {
            let channel = try await ClientBootstrap(group: eventLoop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(EmitResponseHandler(publisher: publisher, index: i))
                    }
                }
                .connect(host: host, port: port).get()
            try await eventLoop.submit { publisher.add(channel) }.get()
        }
        return publisher
    }

    private func add(_ channel: any Channel) {
        channels.append(channel)
        outstanding.append(0)
        sentTimes.append([])
        sentTimesHead.append(0)
    }

    /// Starts the schedule; the future completes when all messages were sent and answered, or at
    /// `deadline` (seconds after start) whichever comes first.
    func run(deadlineSeconds: Double) -> EventLoopFuture<Result> {
        eventLoop.flatSubmit {
            let promise = self.eventLoop.makePromise(of: Result.self)
            self.done = promise
            self.startMicros = monotonicMicros()
            self.tick()
            self.eventLoop.scheduleTask(in: .microseconds(Int64(deadlineSeconds * 1_000_000))) { self.finish() }
            return promise.futureResult
        }
    }

    private func tick() {
        guard !finished else { return }
        let now = monotonicMicros()
        let elapsed = Double(now &- startMicros) / 1_000_000
        let due = Swift.min(count, Int((elapsed * rate).rounded(.down)) + 1)
        var wrote: Set<Int> = []
        while result.sent < due {
            let scheduled = startMicros &+ UInt64(Double(result.sent) / rate * 1_000_000)
            if now > scheduled &+ 1_000 { result.lateSends += 1 }
            if now > scheduled { result.maxLagMicros = Swift.max(result.maxLagMicros, now &- scheduled) }
            if let c = send(seq: result.sent) { wrote.insert(c) }
            result.sent += 1
        }
        for c in wrote { channels[c].flush() }
        if result.sent >= count {
            checkDone()
            return
        }
        let next = startMicros &+ UInt64(Double(result.sent) / rate * 1_000_000)
        let wait = next > now ? Int64(next - now) : 0
        timer = eventLoop.scheduleTask(in: .microseconds(wait)) { self.tick() }
    }

    private func pickConnection() -> Int? {
        var best: Int?
        for i in 0..<channels.count where channels[i].isActive {
            if outstanding[i] == 0 { return i }
            if best == nil || outstanding[i] < outstanding[best!] { best = i }
        }
        return best
    }

    private func send(seq: Int) -> Int? {
        guard let c = pickConnection() else { return nil }
        let channel = channels[c]
        let t = monotonicMicros()
        var body = channel.allocator.buffer(capacity: 96 + padding.utf8.count)
        body.writeString("{\"event\":\"bench\",\"data\":{\"t\":")
        body.writeString(String(t))
        body.writeString(",\"seq\":")
        body.writeString(String(seq))
        body.writeString(padding)
        body.writeString("}}")
        var head = headTemplate
        head.headers.add(name: "Content-Length", value: String(body.readableBytes))
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        channel.write(HTTPClientRequestPart.end(nil), promise: nil)
        outstanding[c] += 1
        sentTimes[c].append(t)
        return c
    }

    func onResponseHead(connection: Int, status: UInt) {
        if (200..<300).contains(status) { result.accepted += 1 } else { result.rejected += 1 }
    }

    func onResponseEnd(connection: Int) {
        result.answered += 1
        outstanding[connection] -= 1
        let h = sentTimesHead[connection]
        if h < sentTimes[connection].count {
            result.responseTime.record(monotonicMicros() &- sentTimes[connection][h])
            sentTimesHead[connection] = h + 1
        }
        checkDone()
    }

    func onClosed(connection: Int) {
        result.closedConnections += 1
    }

    private func checkDone() {
        if result.sent >= count && result.answered >= result.sent { finish() }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        timer?.cancel()
        result.elapsed = Double(monotonicMicros() &- startMicros) / 1_000_000
        done?.succeed(result)
    }

    func close() {
        eventLoop.execute {
            for c in self.channels { c.close(promise: nil) }
        }
    }
}
