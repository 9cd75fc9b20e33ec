import EngineIO
import Foundation
public import NIOCore
import NIOPosix
public import SocketIO

/// A Socket.IO client in the same process as a ``SocketIOServer``, for testing an application's
/// handlers without a network: it speaks the Engine.IO polling transport straight to the server's
/// request handler, so the packets go through the same decoder, middlewares, handlers and
/// acknowledgements as a real client's, in the server's parser.
///
/// ```swift
/// let io = SocketIOServer()
/// io.onConnection { socket in
///     socket.on("ping") { event in event.ack?.send(["pong"]) }
/// }
/// let client = SocketIOTestClient(server: io, auth: ["token": "abc"])
/// try await client.connect()
/// #expect(try await client.emitWithAck("ping") == ["pong"])
/// await client.disconnect()
/// ```
public final class SocketIOTestClient: Sendable {
    /// An event the server emitted to the client.
    public struct Event: Sendable, Hashable {
        /// The event name.
        public let name: String
        /// Its arguments.
        public let arguments: [SocketIOValue]
    }

    /// Why the client is not connected or an operation failed.
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// The server refused the namespace (a middleware threw, or it does not exist).
        case refused(message: String, data: SocketIOValue?)
        /// The server answered a request with an HTTP error.
        case http(status: Int, body: String)
        /// Nothing came within the time allowed.
        case timeout(String)
        /// The connection is closed.
        case closed

        public var description: String {
            switch self {
            case .refused(let message, _): "connection refused: \(message)"
            case .http(let status, let body): "HTTP \(status): \(body)"
            case .timeout(let what): "timed out waiting for \(what)"
            case .closed: "the connection is closed"
            }
        }
    }

    /// The namespace the client joins.
    public let namespace: String
    private let server: SocketIOServer
    private let auth: SocketIOValue?
    private let headers: [(name: String, value: String)]
    private let eventLoop: any EventLoop
    private let session = SocketIOTestSession()

    /// A client of `server`'s `namespace` that will present `auth` and `headers` when it connects;
    /// its connection lives on `eventLoop` (by default one of NIO's shared loops).
    public init(
        server: SocketIOServer, namespace: String = "/", auth: SocketIOValue? = nil, headers: [(name: String, value: String)] = [],
        eventLoop: (any EventLoop)? = nil
    ) {
        self.server = server
        self.namespace = namespace
        self.auth = auth
        self.headers = headers
        self.eventLoop = eventLoop ?? MultiThreadedEventLoopGroup.singleton.any()
    }

    /// The socket id the server gave, once connected.
    public var id: String? {
        get async { await session.socketID }
    }

    /// Opens the Engine.IO session and joins the namespace; returns the socket id. Throws
    /// ``Failure/refused(message:data:)`` with the server's `CONNECT_ERROR`.
    @discardableResult
    public func connect(timeout: Duration = .seconds(5)) async throws -> String {
        let open = try await request("GET", query: ["EIO": "4", "transport": "polling"])
        guard let packet = try EngineIOCodec.decodePayload(open).first, packet.type == .open, let text = packet.text,
            let sid = (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])?["sid"] as? String
        else { throw Failure.http(status: 200, body: "no Engine.IO handshake") }
        await session.opened(sid: sid)
        let poller = Task { await self.poll(sid: sid) }
        await session.keep(poller)
        do {
            try await send(SocketIOPacket(type: .connect, namespace: namespace, data: auth))
            return try await session.waitForConnect(timeout: timeout)
        } catch {
            await closeEngine(sid: sid)
            throw error
        }
    }

    /// Emits an event to the server.
    public func emit(_ event: String, _ arguments: SocketIOValue...) async throws {
        try await send(SocketIOPacket(type: .event, namespace: namespace, data: .array([.string(event)] + arguments)))
    }

    /// Emits an event and returns the arguments of the server's acknowledgement.
    public func emitWithAck(_ event: String, _ arguments: SocketIOValue..., timeout: Duration = .seconds(5)) async throws -> [SocketIOValue] {
        let id = await session.nextAckID()
        try await send(SocketIOPacket(type: .event, namespace: namespace, id: id, data: .array([.string(event)] + arguments)))
        return try await session.waitForAck(id, timeout: timeout)
    }

    /// Waits for the next event named `name` the server emits (or the first one not yet taken).
    public func receive(_ name: String, timeout: Duration = .seconds(5)) async throws -> [SocketIOValue] {
        try await session.take(name, timeout: timeout)
    }

    /// Answers the server's `emitWithAck` of `event` with what `answer` returns for its arguments.
    public func answer(_ event: String, with answer: @escaping @Sendable ([SocketIOValue]) -> [SocketIOValue]) async {
        await session.answer(event, with: answer)
    }

    /// Waits until the server disconnects the socket; returns whether it did within `timeout`.
    public func waitForDisconnect(timeout: Duration = .seconds(5)) async -> Bool {
        await session.waitForDisconnect(timeout: timeout)
    }

    /// Leaves the namespace and closes the Engine.IO session.
    public func disconnect() async {
        guard let sid = await session.engineID, await !session.isClosed else { return }
        try? await send(SocketIOPacket(type: .disconnect, namespace: namespace))
        await closeEngine(sid: sid)
    }

    private func closeEngine(sid: String) async {
        _ = try? await post(sid: sid, [EngineIOPacket(.close)])
        await session.close()
    }

    // MARK: The transport

    private func send(_ packet: SocketIOPacket) async throws {
        guard let sid = await session.engineID, await !session.isClosed else { throw Failure.closed }
        let payloads = server.configuration.parser.encode(packet)
        try await post(sid: sid, payloads.map { EngineIOPacket(.message, $0) })
    }

    private func post(sid: String, _ packets: [EngineIOPacket]) async throws {
        _ = try await request("POST", query: ["EIO": "4", "transport": "polling", "sid": sid], body: EngineIOCodec.encodePayload(packets))
    }

    /// Long-polls until the session closes, handing each packet to the session.
    private func poll(sid: String) async {
        var decoder = SocketIODecoder(maxAttachments: server.configuration.maxAttachments, parser: server.configuration.parser)
        while !Task.isCancelled, await !session.isClosed {
            guard let body = try? await request("GET", query: ["EIO": "4", "transport": "polling", "sid": sid]),
                let packets = try? EngineIOCodec.decodePayload(body)
            else {
                await session.close()
                return
            }
            for packet in packets {
                switch packet.type {
                case .ping:
                    try? await post(sid: sid, [EngineIOPacket(.pong)])
                case .message:
                    guard let payload = packet.payload, let decoded = try? decoder.decode(payload) else { continue }
                    if let reply = await session.receive(decoded) {
                        try? await send(reply)
                    }
                    // The server disconnected the socket: the session has nothing left to carry.
                    if await session.isClosed {
                        await closeEngine(sid: sid)
                        return
                    }
                case .close:
                    await session.close()
                    return
                default:
                    continue
                }
            }
        }
    }

    private func request(_ method: String, query: [String: String], body: ByteBuffer? = nil) async throws -> ByteBuffer {
        let queryText = query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&")
        let request = EngineIOHTTPRequest(
            method: method, uri: server.configuration.path + "?" + queryText, query: query, headers: headers, body: body,
            eventLoop: eventLoop)
        let response = await server.engine.handle(request)
        guard response.status == 200 else { throw Failure.http(status: response.status, body: String(buffer: response.body)) }
        return response.body
    }
}

/// What the test client has received, and who waits for what.
private actor SocketIOTestSession {
    private(set) var engineID: String?
    private(set) var socketID: String?
    private(set) var isClosed = false
    private var poller: Task<Void, Never>?
    private var refusal: SocketIOTestClient.Failure?
    private var events: [SocketIOTestClient.Event] = []
    private var acks: [Int: [SocketIOValue]] = [:]
    private var answers: [String: @Sendable ([SocketIOValue]) -> [SocketIOValue]] = [:]
    private var ackIDs = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func opened(sid: String) { engineID = sid }

    func keep(_ task: Task<Void, Never>) { poller = task }

    func nextAckID() -> Int {
        defer { ackIDs += 1 }
        return ackIDs
    }

    func answer(_ event: String, with answer: @escaping @Sendable ([SocketIOValue]) -> [SocketIOValue]) {
        answers[event] = answer
    }

    /// Takes in a packet of the server; returns the acknowledgement to send back, if one is due.
    func receive(_ packet: SocketIOPacket) -> SocketIOPacket? {
        defer { wake() }
        switch packet.type {
        case .connect:
            socketID = packet.data?["sid"]?.stringValue ?? ""
        case .connectError:
            let message = packet.data?["message"]?.stringValue ?? packet.data?.stringValue ?? "refused"
            refusal = .refused(message: message, data: packet.data?["data"])
        case .event, .binaryEvent:
            guard let arguments = packet.data?.arrayValue, let name = arguments.first?.stringValue else { return nil }
            let rest = Array(arguments.dropFirst())
            if let id = packet.id {
                let reply = answers[name]?(rest) ?? []
                return SocketIOPacket(type: .ack, namespace: packet.namespace, id: id, data: .array(reply))
            }
            events.append(.init(name: name, arguments: rest))
        case .ack, .binaryAck:
            if let id = packet.id { acks[id] = packet.data?.arrayValue ?? [] }
        case .disconnect:
            isClosed = true
        }
        return nil
    }

    func close() {
        isClosed = true
        poller?.cancel()
        wake()
    }

    func waitForConnect(timeout: Duration) async throws -> String {
        try await wait(for: "the CONNECT reply", timeout: timeout) { session throws(SocketIOTestClient.Failure) in
            if let refusal = session.refusal { throw refusal }
            return session.socketID
        }
    }

    func waitForAck(_ id: Int, timeout: Duration) async throws -> [SocketIOValue] {
        try await wait(for: "the acknowledgement \(id)", timeout: timeout) { session in session.acks.removeValue(forKey: id) }
    }

    func take(_ name: String, timeout: Duration) async throws -> [SocketIOValue] {
        try await wait(for: "the event '\(name)'", timeout: timeout) { session in
            guard let index = session.events.firstIndex(where: { $0.name == name }) else { return nil }
            return session.events.remove(at: index).arguments
        }
    }

    func waitForDisconnect(timeout: Duration) async -> Bool {
        (try? await wait(for: "the disconnect", timeout: timeout) { session in session.isClosed ? true : nil }) ?? false
    }

    /// Checks `found` after each packet until it gives a value, the session closes or `timeout` passes.
    private func wait<Value: Sendable>(
        for what: String, timeout: Duration, _ found: (isolated SocketIOTestSession) throws(SocketIOTestClient.Failure) -> Value?
    ) async throws(SocketIOTestClient.Failure) -> Value {
        let deadline = ContinuousClock.now + timeout
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline)
            await self?.wake()
        }
        defer { timer.cancel() }
        while true {
            if let value = try found(self) { return value }
            if isClosed { throw .closed }
            if ContinuousClock.now >= deadline { throw .timeout(what) }
            await withCheckedContinuation { waiters.append($0) }
        }
    }

    private func wake() {
        let waiting = waiters
        waiters = []
        for waiter in waiting { waiter.resume() }
    }
}
