import BenchSupport
import NIOCore

/// Static bytes every client writes: built once, shared by all channels (ByteBuffer is CoW).
struct ClientFrames: Sendable {
    let upgradeRequest: ByteBuffer
    let connectPacket: ByteBuffer  // "40" (default namespace)
    let pongPacket: ByteBuffer  // "3"

    init(host: String, port: Int, path: String, query: String, connectPayload: String) {
        let alloc = ByteBufferAllocator()
        var req = alloc.buffer(capacity: 256)
        let sep = query.isEmpty ? "" : "&"
        req.writeString(
            "GET \(path)?EIO=4&transport=websocket\(sep)\(query) HTTP/1.1\r\n"
                + "Host: \(host):\(port)\r\n"
                + "Upgrade: websocket\r\n"
                + "Connection: Upgrade\r\n"
                + "Sec-WebSocket-Key: aGVyYWxkLWxvYWRnZW4tMQ==\r\n"
                + "Sec-WebSocket-Version: 13\r\n\r\n")
        self.upgradeRequest = req
        self.connectPacket = WebSocketBytes.clientFrame(payload: Array(("40" + connectPayload).utf8))
        self.pongPacket = WebSocketBytes.clientFrame(payload: Array("3".utf8))
    }
}

/// One Socket.IO client over a raw WebSocket, parsed by hand: the HTTP 101 answer, then frames.
/// Server frames are unmasked; the handler reads the frame header, and for text frames looks at
/// the first bytes only: `0` open -> send `40`; `40` connected; `2` ping -> `3`; `42["bench",`
/// -> find `"t":` and read the digits. No JSON parser, no allocation per message.
final class SocketIOClientHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State { case upgrading, awaitingOpen, awaitingConnect, connected, closed }

    private var state = State.upgrading
    private var cumulation: ByteBuffer?
    private let frames: ClientFrames
    private let stats: LoopStats
    private let startedAt: UInt64
    let handshake: EventLoopPromise<Void>
    private(set) var sawCloseFrame: UInt16?
    private(set) var sawDisconnectPacket = false
    private(set) var deliveredHere: UInt64 = 0
    /// Set for the slow client: stop reading as soon as the handshake is done.
    let stopReadingAfterHandshake: Bool

    init(frames: ClientFrames, stats: LoopStats, startedAt: UInt64, handshake: EventLoopPromise<Void>, slow: Bool) {
        self.frames = frames
        self.stats = stats
        self.startedAt = startedAt
        self.handshake = handshake
        self.stopReadingAfterHandshake = slow
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(frames.upgradeRequest), promise: nil)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .connected:
            stats.closedAfterHandshake += 1
        case .closed:
            break
        default:
            stats.handshakeFailures += 1
            handshake.fail(LoadgenError.closedDuringHandshake)
        }
        state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var pending = cumulation {
            pending.writeBuffer(&incoming)
            cumulation = nil
            process(context: context, buffer: &pending)
            if pending.readableBytes > 0 { keep(pending) }
        } else {
            process(context: context, buffer: &incoming)
            if incoming.readableBytes > 0 { keep(incoming) }
        }
    }

    private func keep(_ rest: ByteBuffer) {
        // Copy the partial frame so the large read buffer is not pinned.
        var copy = ByteBufferAllocator().buffer(capacity: Swift.max(rest.readableBytes, 256))
        var r = rest
        copy.writeBuffer(&r)
        cumulation = copy
    }

    private func process(context: ChannelHandlerContext, buffer: inout ByteBuffer) {
        if state == .upgrading {
            guard let end = headerEnd(buffer) else { return }
            let ok = buffer.readableBytesView.starts(with: "HTTP/1.1 101".utf8)
            buffer.moveReaderIndex(forwardBy: end)
            if !ok {
                stats.handshakeFailures += 1
                state = .closed
                handshake.fail(LoadgenError.upgradeRefused)
                context.close(promise: nil)
                return
            }
            state = .awaitingOpen
        }
        while state != .closed {
            let available = buffer.readableBytes
            guard available >= 2,
                let b0 = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
                let b1 = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
            else { return }
            let opcode = b0 & 0x0F
            let masked = (b1 & 0x80) != 0
            var header = 2
            var length = Int(b1 & 0x7F)
            if length == 126 {
                guard available >= 4, let l = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return }
                length = Int(l)
                header = 4
            } else if length == 127 {
                guard available >= 10, let l = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self) else { return }
                length = Int(l)
                header = 10
            }
            if masked { header += 4 }
            guard available >= header + length else { return }
            let payloadStart = buffer.readerIndex + header
            handleFrame(context: context, opcode: opcode, buffer: buffer, start: payloadStart, length: length)
            buffer.moveReaderIndex(forwardBy: header + length)
        }
    }

    private func headerEnd(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { raw -> Int? in
            guard raw.count >= 4 else { return nil }
            for i in 0...(raw.count - 4) where raw[i] == 13 && raw[i + 1] == 10 && raw[i + 2] == 13 && raw[i + 3] == 10 {
                return i + 4
            }
            return nil
        }
    }

    private func handleFrame(context: ChannelHandlerContext, opcode: UInt8, buffer: ByteBuffer, start: Int, length: Int) {
        switch opcode {
        case 0x1, 0x0:
            handleText(context: context, buffer: buffer, start: start, length: length)
        case 0x9:  // WebSocket ping (uvicorn/websockets sends them): answer a masked pong
            var pong = context.channel.allocator.buffer(capacity: length + 14)
            WebSocketBytes.writeHeader(into: &pong, opcode: 0xA, length: length, masked: true)
            if let bytes = buffer.getSlice(at: start, length: length) {
                var b = bytes
                pong.writeBuffer(&b)
            }
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case 0x8:
            if length >= 2, let code = buffer.getInteger(at: start, as: UInt16.self) {
                sawCloseFrame = code
            } else {
                sawCloseFrame = 1005
            }
            context.close(promise: nil)
        default:
            break
        }
    }

    private func handleText(context: ChannelHandlerContext, buffer: ByteBuffer, start: Int, length: Int) {
        guard length >= 1, let first = buffer.getInteger(at: start, as: UInt8.self) else { return }
        switch first {
        case UInt8(ascii: "4"):
            guard length >= 2, let second = buffer.getInteger(at: start + 1, as: UInt8.self) else { return }
            if second == UInt8(ascii: "2") {
                onEvent(buffer: buffer, start: start, length: length)
            } else if second == UInt8(ascii: "0"), state == .awaitingConnect {
                state = .connected
                stats.handshakes += 1
                stats.connectTime.record(monotonicMicros() &- startedAt)
                handshake.succeed(())
                if stopReadingAfterHandshake {
                    context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
                }
            } else if second == UInt8(ascii: "1") {
                sawDisconnectPacket = true
            } else if second == UInt8(ascii: "4"), state == .awaitingConnect {
                stats.handshakeFailures += 1
                state = .closed
                handshake.fail(LoadgenError.connectError)
                context.close(promise: nil)
            }
        case UInt8(ascii: "2"):
            stats.pingsAnswered += 1
            context.writeAndFlush(wrapOutboundOut(frames.pongPacket), promise: nil)
        case UInt8(ascii: "0"):
            if state == .awaitingOpen {
                state = .awaitingConnect
                context.writeAndFlush(wrapOutboundOut(frames.connectPacket), promise: nil)
            }
        default:
            break
        }
    }

    /// `42["bench",{"t":123,"seq":4}]`: find `"t":` after the event name and read the number.
    @inline(__always)
    private func onEvent(buffer: ByteBuffer, start: Int, length: Int) {
        let now = monotonicMicros()
        let t: UInt64? = buffer.withUnsafeReadableBytes { raw -> UInt64? in
            let base = start - buffer.readerIndex
            let end = base + length
            // `42["bench",` is 11 bytes; anything else is some other event.
            let prefix: StaticString = "42[\"bench\","
            guard length > prefix.utf8CodeUnitCount else { return nil }
            let p = prefix.utf8Start
            for k in 0..<prefix.utf8CodeUnitCount where raw[base + k] != p[k] { return nil }
            var i = base + prefix.utf8CodeUnitCount
            // find "t":
            while i + 4 <= end {
                if raw[i] == 0x22 && raw[i + 1] == 0x74 && raw[i + 2] == 0x22 && raw[i + 3] == 0x3A {
                    i += 4
                    while i < end && raw[i] == 0x20 { i += 1 }
                    var v: UInt64 = 0
                    var digits = 0
                    while i < end, raw[i] >= 0x30, raw[i] <= 0x39 {
                        v = v &* 10 &+ UInt64(raw[i] &- 0x30)
                        i += 1
                        digits += 1
                    }
                    return digits > 0 ? v : nil
                }
                i += 1
            }
            return nil
        }
        guard let sent = t else {
            stats.otherEvents += 1
            return
        }
        stats.delivered &+= 1
        stats.lastDeliveryMicros = now
        deliveredHere &+= 1
        if now >= sent {
            stats.latency.record(now &- sent)
        } else {
            stats.negativeLatency &+= 1
            stats.latency.record(0)
        }
    }
}

enum LoadgenError: Error, CustomStringConvertible {
    case closedDuringHandshake, upgradeRefused, connectError, handshakeTimeout
    case badURL(String)
    case worker(String)
    var description: String {
        switch self {
        case .closedDuringHandshake: "connection closed during the handshake"
        case .upgradeRefused: "WebSocket upgrade refused"
        case .connectError: "Socket.IO connect error (44)"
        case .handshakeTimeout: "handshake timed out"
        case .badURL(let u): "bad URL \(u)"
        case .worker(let m): "worker: \(m)"
        }
    }
}
