import ArgumentParser
import BenchSupport
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// The raw ceiling: WebSocket clients on /socket.io/ get just enough Engine.IO/Socket.IO to
/// satisfy herald-loadgen (open packet, `40` -> `40{"sid":..}`, pings), and `POST /api/emit`
/// encodes one `42[event,data]` frame and writes that same ByteBuffer to every client, one task
/// per event loop (write to each, then flush each). No per-client queue, no slow-client policy.
@main
struct RawBroadcastServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "raw-broadcast-server")

    @Option var host = "127.0.0.1"
    @Option var port = 8080
    @Option(help: "Event loop threads (default: cores available to this process).")
    var threads: Int?
    @Option(help: "Engine.IO ping interval in ms.")
    var pingInterval = 25_000
    @Option(help: "Engine.IO ping timeout in ms (advertised only).")
    var pingTimeout = 20_000

    mutating func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads ?? availableCoreCount())
        let registries = Registries(group: group, pingInterval: pingInterval)
        let openInfo = "\"upgrades\":[],\"pingInterval\":\(pingInterval),\"pingTimeout\":\(pingTimeout),\"maxPayload\":1000000"
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: 1 << 20,
            shouldUpgrade: { channel, head in
                let ok = head.uri.hasPrefix("/socket.io/") && head.uri.contains("transport=websocket")
                return channel.eventLoop.makeSucceededFuture(ok ? HTTPHeaders() : nil)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let registry = registries.registry(for: channel.eventLoop)
                    let writer = RawWriter(registry: registry, openInfo: openInfo)
                    // First in the pipeline (next to the head): its context writes raw bytes that
                    // bypass the WebSocketFrameEncoder.
                    try channel.pipeline.syncOperations.addHandler(writer, position: .first)
                    try channel.pipeline.syncOperations.addHandler(EngineIOFrameHandler(writer: writer))
                }
            })
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let emit = EmitHandler(registries: registries)
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                if let h = try? context.pipeline.syncOperations.handler(type: EmitHandler.self) {
                                    context.pipeline.syncOperations.removeHandler(h, promise: nil)
                                }
                            }
                        ))
                    try channel.pipeline.syncOperations.addHandler(emit)
                }
            }
        let server = try await bootstrap.bind(host: host, port: port).get()
        print("raw-broadcast-server listening on \(host):\(port) with \(threads ?? availableCoreCount()) loop(s)")
        try await server.closeFuture.get()
    }
}

/// The clients of one event loop. Only touched on that loop.
final class LoopRegistry: @unchecked Sendable {
    let eventLoop: any EventLoop
    var writers: [RawWriter] = []
    var nextSid = 0
    let pingFrame = WebSocketBytes.serverFrame(payload: Array("2".utf8))

    init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }

    func add(_ w: RawWriter) {
        w.slot = writers.count
        writers.append(w)
    }

    func remove(_ w: RawWriter) {
        guard w.slot >= 0, w.slot < writers.count, writers[w.slot] === w else { return }
        let last = writers.removeLast()
        if last !== w {
            writers[w.slot] = last
            last.slot = w.slot
        }
        w.slot = -1
    }

    /// Writes the same buffer to every client of this loop, then flushes each.
    func broadcast(_ frame: ByteBuffer) {
        for w in writers { w.writeRaw(frame) }
        for w in writers { w.flushRaw() }
    }
}

final class Registries: Sendable {
    private let byLoop: [ObjectIdentifier: LoopRegistry]
    let all: [LoopRegistry]

    init(group: MultiThreadedEventLoopGroup, pingInterval: Int) {
        var map: [ObjectIdentifier: LoopRegistry] = [:]
        var all: [LoopRegistry] = []
        for loop in group.makeIterator() {
            let r = LoopRegistry(eventLoop: loop)
            map[ObjectIdentifier(loop)] = r
            all.append(r)
            loop.scheduleRepeatedTask(initialDelay: .milliseconds(Int64(pingInterval)), delay: .milliseconds(Int64(pingInterval))) { _ in
                r.broadcast(r.pingFrame)
            }
        }
        self.byLoop = map
        self.all = all
    }

    func registry(for loop: any EventLoop) -> LoopRegistry { byLoop[ObjectIdentifier(loop)]! }

    func broadcast(_ frame: ByteBuffer) {
        for r in all {
            r.eventLoop.execute { r.broadcast(frame) }
        }
    }

    var connectionCount: Int { 0 }
}

/// Sits next to the pipeline head; owns the registry slot and writes pre-encoded frames.
final class RawWriter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = ByteBuffer

    let registry: LoopRegistry
    let openInfo: String
    var slot = -1
    var sid = ""
    private var context: ChannelHandlerContext?

    init(registry: LoopRegistry, openInfo: String) {
        self.registry = registry
        self.openInfo = openInfo
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        registry.nextSid += 1
        sid = "raw\(registry.nextSid)x\(UInt(bitPattern: ObjectIdentifier(registry).hashValue) % 100_000)"
        let open = "0{\"sid\":\"\(sid)\",\(openInfo)}"
        context.writeAndFlush(
            wrapOutboundOut(WebSocketBytes.serverFrame(payload: Array(open.utf8), allocator: context.channel.allocator)), promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        registry.remove(self)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        registry.remove(self)
        context.fireChannelInactive()
    }

    func joined() {
        if slot < 0 { registry.add(self) }
    }

    @inline(__always) func writeRaw(_ frame: ByteBuffer) {
        context?.write(wrapOutboundOut(frame), promise: nil)
    }

    @inline(__always) func flushRaw() {
        context?.flush()
    }

    func sendText(_ text: String) {
        guard let context else { return }
        context.writeAndFlush(
            wrapOutboundOut(WebSocketBytes.serverFrame(payload: Array(text.utf8), allocator: context.channel.allocator)), promise: nil)
    }

    func sendClose() {
        guard let context else { return }
        context.writeAndFlush(
            wrapOutboundOut(WebSocketBytes.serverFrame(opcode: WebSocketBytes.opClose, payload: [0x03, 0xE8], allocator: context.channel.allocator)),
            promise: nil)
    }

    func sendFrame(opcode: UInt8, payload: ByteBuffer) {
        guard let context else { return }
        context.writeAndFlush(
            wrapOutboundOut(WebSocketBytes.serverFrame(opcode: opcode, payload: payload, allocator: context.channel.allocator)), promise: nil)
    }
}

/// Inbound WebSocket frames (decoded and unmasked by NIO): `40` joins, `2` -> `3`, close.
final class EngineIOFrameHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    let writer: RawWriter

    init(writer: RawWriter) { self.writer = writer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            let payload = frame.unmaskedData
            guard let first = payload.getInteger(at: payload.readerIndex, as: UInt8.self) else { return }
            if first == UInt8(ascii: "4"), payload.readableBytes >= 2,
                payload.getInteger(at: payload.readerIndex + 1, as: UInt8.self) == UInt8(ascii: "0")
            {
                writer.sendText("40{\"sid\":\"\(writer.sid)\"}")
                writer.joined()
            } else if first == UInt8(ascii: "2") {
                writer.sendText("3")
            } else if first == UInt8(ascii: "1") {
                context.close(promise: nil)
            }
        case .ping:
            writer.sendFrame(opcode: WebSocketBytes.opPong, payload: frame.unmaskedData)
        case .connectionClose:
            writer.sendClose()
            context.close(promise: nil)
        default:
            break
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// `POST /api/emit` with `{"event":"<name>","data":<json>}` (data last): builds
/// `42["<name>",<data>]` once and broadcasts it; answers 202. Anything else: 404.
final class EmitHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registries: Registries
    private var head: HTTPRequestHead?
    private var body: ByteBuffer?

    init(registries: Registries) { self.registries = registries }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = nil
        case .body(var chunk):
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard let h = head else { return }
            head = nil
            if h.method == .POST && h.uri.hasPrefix("/api/emit") {
                if let frame = body.flatMap({ buildFrame(from: $0, allocator: context.channel.allocator) }) {
                    registries.broadcast(frame)
                    respond(context: context, status: .accepted, keepAlive: h.isKeepAlive)
                } else {
                    respond(context: context, status: .badRequest, keepAlive: h.isKeepAlive)
                }
            } else {
                respond(context: context, status: .notFound, keepAlive: h.isKeepAlive)
            }
            body = nil
        }
    }

    private func respond(context: ChannelHandlerContext, status: HTTPResponseStatus, keepAlive: Bool) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: "0")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
    }

    /// Minimal envelope reading: the string after `"event":"` and the bytes after `"data":` up
    /// to the object's closing brace. Enough for the benchmark; not a JSON parser.
    private func buildFrame(from body: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        let bytes = body.readableBytesView
        guard let eventKeyEnd = find(Array("\"event\"".utf8), in: bytes),
            let eventKey = skipColon(bytes, from: eventKeyEnd),
            bytes[eventKey] == UInt8(ascii: "\""),
            let eventEnd = bytes[(eventKey + 1)...].firstIndex(of: UInt8(ascii: "\"")),
            let dataKeyEnd = find(Array("\"data\"".utf8), in: bytes),
            let dataKey = skipColon(bytes, from: dataKeyEnd),
            let close = bytes.lastIndex(of: UInt8(ascii: "}")), close > dataKey
        else { return nil }
        var dataEnd = close
        while dataEnd > dataKey, bytes[dataEnd - 1] == 0x20 || bytes[dataEnd - 1] == 0x0A || bytes[dataEnd - 1] == 0x0D || bytes[dataEnd - 1] == 0x09
        { dataEnd -= 1 }
        let event = bytes[(eventKey + 1)..<eventEnd]
        let data = bytes[dataKey..<dataEnd]
        let payloadLength = 4 + event.count + 2 + data.count + 1  // 42[" + event + ", + data + ]
        var frame = allocator.buffer(capacity: payloadLength + 10)
        WebSocketBytes.writeHeader(into: &frame, opcode: WebSocketBytes.opText, length: payloadLength, masked: false)
        frame.writeString("42[\"")
        frame.writeBytes(event)
        frame.writeString("\",")
        frame.writeBytes(data)
        frame.writeString("]")
        return frame
    }

    /// Skips blanks, one ':' and blanks; the index of the value's first byte.
    private func skipColon(_ hay: ByteBufferView, from start: ByteBufferView.Index) -> ByteBufferView.Index? {
        var i = start
        var colon = false
        while i < hay.endIndex {
            let b = hay[i]
            if b == UInt8(ascii: ":") && !colon { colon = true } else if b != 0x20 && b != 0x09 && b != 0x0A && b != 0x0D { break }
            i += 1
        }
        return colon && i < hay.endIndex ? i : nil
    }

    /// Index just past the first occurrence of `needle`.
    private func find(_ needle: [UInt8], in hay: ByteBufferView) -> ByteBufferView.Index? {
        guard hay.count >= needle.count else { return nil }
        var i = hay.startIndex
        while i <= hay.endIndex - needle.count {
            var match = true
            for k in 0..<needle.count where hay[i + k] != needle[k] {
                match = false
                break
            }
            if match { return i + needle.count }
            i += 1
        }
        return nil
    }
}
