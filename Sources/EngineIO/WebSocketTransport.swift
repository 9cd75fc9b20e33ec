import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket
import Synchronization

/// The WebSocket side of a session: a handle any thread may write through. Writes made on the
/// channel's event loop go straight into the pipeline; others hop onto it, in order.
final class WebSocketTransport: Sendable {
    private static let nextID = Atomic<UInt64>(0)

    /// How the session's state machine knows this socket.
    let id: EngineIOSessionStateMachine.WebSocketID
    let channel: any Channel
    /// The channel's event loop.
    let eventLoop: any EventLoop
    private let handler: NIOLoopBound<EngineIOWebSocketHandler>

    init(channel: any Channel, handler: EngineIOWebSocketHandler) {
        self.id = EngineIOSessionStateMachine.WebSocketID(rawValue: Self.nextID.add(1, ordering: .relaxed).newValue)
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.handler = NIOLoopBound(handler, eventLoop: channel.eventLoop)
    }

    /// Queues the frames for writing; the flush happens once per event-loop tick.
    func write(_ frames: some Collection<EngineIOFrame>) {
        if channel.eventLoop.inEventLoop {
            handler.value.write(frames)
        } else {
            let frames = Array(frames)
            let handler = self.handler
            channel.eventLoop.execute { handler.value.write(frames) }
        }
    }

    /// Writes on the channel's event loop (the caller is on it).
    func writeOnLoop(_ frames: some Collection<EngineIOFrame>) {
        handler.value.write(frames)
    }

    /// Sends a close frame and closes the connection.
    func close(code: UInt16 = 1000) {
        let handler = self.handler
        if channel.eventLoop.inEventLoop {
            handler.value.closeConnection(code: code)
        } else {
            channel.eventLoop.execute { handler.value.closeConnection(code: code) }
        }
    }
}

/// Reads WebSocket frames for one Engine.IO session and writes pre-encoded frames to the socket.
///
/// It sits after the frame decoder; nothing encodes frames below it: every outbound buffer is
/// already a complete frame, so a broadcast writes the same bytes to every socket.
final class EngineIOWebSocketHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = ByteBuffer

    var connection: EngineIOConnection?
    var transport: WebSocketTransport?
    private var context: ChannelHandlerContext?
    private var coalescer: FlushCoalescer?
    private var needsFlush = false
    private var closing = false
    private let highWaterMark: Int
    private let maxQueuedBytes: Int
    private let closeTimeout: TimeAmount
    private let statistics: EngineIOStatistics
    /// v3 binary frames carry the packet type (4) before the data.
    private let protocolVersion: EngineIOProtocol

    init(configuration: EngineIOConfiguration, statistics: EngineIOStatistics, protocolVersion: EngineIOProtocol = .v4) {
        self.statistics = statistics
        self.protocolVersion = protocolVersion
        self.highWaterMark = configuration.webSocketHighWaterMark
        self.maxQueuedBytes = configuration.webSocketMaxQueuedBytes
        self.closeTimeout = TimeAmount(configuration.webSocketCloseTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.coalescer = FlushCoalescer.forCurrentLoop(context.eventLoop)
        let low = max(highWaterMark / 2, 1)
        context.channel.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: low, high: max(highWaterMark, low + 1)))
            .whenFailure { _ in }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Writing

    /// Writes frames; the socket is flushed once at the end of the event-loop tick, together with
    /// every other socket of the loop written to in the meantime.
    func write(_ frames: some Collection<EngineIOFrame>) {
        guard let context, !closing else { return }
        let writable = context.channel.isWritable
        for frame in frames {
            if writable || !frame.isVolatile {
                if protocolVersion == .v3, case .binary(let data) = frame.packet.payload {
                    let typed = WebSocketFraming.frame(
                        opcode: .binary, typeByte: EngineIOPacketType.message.rawValue - UInt8(ascii: "0"), payload: data,
                        allocator: context.channel.allocator)
                    context.write(wrapOutboundOut(typed), promise: nil)
                    continue
                }
                context.write(wrapOutboundOut(frame.webSocketFrame), promise: nil)
            } else {
                statistics.packetDropped()
            }
        }
        if !writable, let queued = try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes),
            queued > maxQueuedBytes
        {
            // Decided here, acted on after this write returns: the session may be in the middle
            // of performing the actions of the transition that wrote.
            let loop = context.eventLoop.assumeIsolated()
            loop.execute { self.failSlowClient() }
        }
        if !needsFlush {
            needsFlush = true
            coalescer?.add(self)
        }
    }

    func flushNow() {
        needsFlush = false
        context?.flush()
    }

    private func failSlowClient() {
        guard !closing, transport != nil else { return }
        statistics.slowClientDisconnected()
        fail(code: 1008, reason: .slowClient)
    }

    /// Ends the session for `reason`, then closes the socket with `code`. In this order: the close
    /// frame's write may complete at once and close the channel, whose inactivity would otherwise
    /// report the session's end first, as a plain transport close.
    private func fail(code: UInt16, reason: EngineIOCloseReason) {
        if !closing, let connection, let transport { connection.socketClosed(transport, reason: reason) }
        closeConnection(code: code)
    }

    /// Sends a close frame, then closes the channel once it is written, or after the close
    /// timeout when it cannot be (a client that stopped reading has the frame queued behind its
    /// backlog for ever): the descriptor and the queued buffers are released either way.
    func closeConnection(code: UInt16) {
        guard !closing, let context else { return }
        closing = true
        let channel = context.channel
        let deadline = context.eventLoop.scheduleTask(in: closeTimeout) { channel.close(promise: nil) }
        context.writeAndFlush(wrapOutboundOut(WebSocketFraming.close(code: code, allocator: channel.allocator)))
            .assumeIsolated()
            .whenComplete { _ in
                deadline.cancel()
                channel.close(promise: nil)
            }
    }

    // MARK: Reading

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text:
            deliver { () throws(EngineIOCodecError) in try EngineIOCodec.decodePacket(text: frame.unmaskedData) }
        case .binary where protocolVersion == .v3:
            var data = frame.unmaskedData
            deliver { () throws(EngineIOCodecError) in
                guard data.readInteger(as: UInt8.self) == 4 else { throw .binaryNotMessage }
                return EngineIOCodec.decodePacket(binary: data)
            }
        case .binary:
            deliver { EngineIOCodec.decodePacket(binary: frame.unmaskedData) }
        case .ping:
            let pong = WebSocketFraming.frame(opcode: .pong, typeByte: nil, payload: frame.unmaskedData, allocator: context.channel.allocator)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            closeConnection(code: 1000)
        default:
            break
        }
    }

    private func deliver(_ decode: () throws(EngineIOCodecError) -> EngineIOPacket) {
        guard let connection, let transport, !closing else { return }
        do {
            connection.receive(try decode(), from: transport)
        } catch {
            fail(code: 1003, reason: .parseError)
        }
    }

    /// The client closed its side of the TCP connection without a close frame (the server's
    /// channels allow half-closure, for HTTP): nothing more will come, so the connection ends now
    /// rather than at the next missed ping.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        if let connection, let transport { connection.socketClosed(transport, reason: .transportClose) }
        connection = nil
        transport = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let tooLarge = (error as? NIOWebSocketError) == .invalidFrameLength
        fail(code: tooLarge ? 1009 : 1002, reason: .transportError)
    }
}

/// What RFC 6455 requires of every client frame, checked before frames are aggregated: masked,
/// no reserved bit (herald negotiates no extension), and a known opcode. A frame that breaks
/// a rule fails the connection, which ``EngineIOWebSocketHandler`` closes with 1002.
final class WebSocketClientFrameRules: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame

    enum Violation: Error { case unmasked, reservedBits, unknownOpcode }

    private var failed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        let frame = unwrapInboundIn(data)
        let violation: Violation? =
            if frame.maskKey == nil { .unmasked } else if frame.rsv1 || frame.rsv2 || frame.rsv3 {
                .reservedBits
            } else if !Self.known.contains(frame.opcode) { .unknownOpcode } else { nil }
        if let violation {
            failed = true
            context.fireErrorCaught(violation)
            return
        }
        context.fireChannelRead(data)
    }

    private static let known: [WebSocketOpcode] = [.continuation, .text, .binary, .connectionClose, .ping, .pong]
}

/// Flushes, once each, the sockets of one event loop that were written to during the current
/// tick, after every task already queued on the loop has run: the frames of several broadcasts
/// queued together leave a socket in one write.
final class FlushCoalescer {
    private let loop: any EventLoop
    private var pending: [EngineIOWebSocketHandler] = []
    private var spare: [EngineIOWebSocketHandler] = []
    private var scheduled = false

    private init(loop: any EventLoop) {
        self.loop = loop
    }

    private static let coalescers = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<FlushCoalescer>]>([:])

    /// The coalescer of `loop`, which must be the current event loop.
    static func forCurrentLoop(_ loop: any EventLoop) -> FlushCoalescer {
        coalescers.withLockedValue { coalescers in
            if let existing = coalescers[ObjectIdentifier(loop)] { return existing.value }
            let coalescer = FlushCoalescer(loop: loop)
            coalescers[ObjectIdentifier(loop)] = NIOLoopBound(coalescer, eventLoop: loop)
            return coalescer
        }
    }

    func add(_ handler: EngineIOWebSocketHandler) {
        pending.append(handler)
        guard !scheduled else { return }
        scheduled = true
        loop.assumeIsolated().execute { self.flush() }
    }

    private func flush() {
        scheduled = false
        swap(&pending, &spare)
        for handler in spare { handler.flushNow() }
        spare.removeAll(keepingCapacity: true)
    }
}
