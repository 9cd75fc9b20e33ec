public import EngineIO
public import NIOCore

/// Which sockets a broadcast or a bulk operation reaches.
public struct SocketIOBroadcastOptions: Sendable, Hashable {
    /// Only sockets in at least one of these rooms; all sockets when empty.
    public var rooms: Set<String> = []
    /// Sockets in any of these rooms are left out.
    public var except: Set<String> = []
    /// The packet may be dropped for clients that are not ready for it.
    public var isVolatile = false
    /// Only this server's sockets, not those of the other servers of a cluster.
    public var isLocal = false
    /// How long a broadcast with acknowledgement waits for the answers.
    public var timeout: Duration?

    /// Options that reach every socket.
    public init() {}
}

/// A packet encoded once, in the server's parser, ready to be written to any number of clients.
public struct SocketIOOutboundPacket: Sendable {
    /// The packet, when it was built from values (`nil` for events spliced from raw JSON).
    public let packet: SocketIOPacket?
    /// The Engine.IO frames: in the text format, the packet text, then its binary attachments;
    /// in msgpack, one binary message.
    public let frames: [EngineIOFrame]

    /// Encodes `packet` in `parser`'s format.
    public init(_ packet: SocketIOPacket, parser: SocketIOParser, isVolatile: Bool = false) {
        self.packet = packet
        self.frames = Self.frames(parser.encode(packet), isVolatile: isVolatile)
    }

    /// An event with its arguments, and a recovery offset as its last argument when given.
    init(event: String, arguments: [SocketIOValue], namespace: String, parser: SocketIOParser, isVolatile: Bool = false, offset: String?) {
        let data: [SocketIOValue] = [.string(event)] + arguments + (offset.map { [.string($0)] } ?? [])
        self.init(SocketIOPacket(type: .event, namespace: namespace, data: .array(data)), parser: parser, isVolatile: isVolatile)
    }

    /// Frames already encoded (a logged event read back).
    init(frames: [EngineIOFrame]) {
        self.packet = nil
        self.frames = frames
    }

    /// An event whose arguments are already a JSON array: spliced in without being parsed in the
    /// text format, parsed once in msgpack.
    public init(event: String, jsonArguments: ByteBuffer, namespace: String, parser: SocketIOParser, id: Int? = nil, isVolatile: Bool = false) {
        self.init(event: event, jsonArguments: jsonArguments, namespace: namespace, parser: parser, id: id, isVolatile: isVolatile, offset: nil)
    }

    /// An event from raw JSON, with a recovery offset as its last argument when given.
    init(
        event: String, jsonArguments: ByteBuffer, namespace: String, parser: SocketIOParser, id: Int? = nil, isVolatile: Bool = false,
        offset: String?
    ) {
        self.packet = nil
        self.frames = Self.frames(
            parser.encodeEvent(event, jsonArguments: jsonArguments, namespace: namespace, id: id, trailingString: offset), isVolatile: isVolatile)
    }

    private static func frames(_ payloads: [EngineIOPayload], isVolatile: Bool) -> [EngineIOFrame] {
        payloads.map { payload in
            switch payload {
            case .text(let text): .message(text, isVolatile: isVolatile)
            case .binary(let bytes): .binary(bytes, isVolatile: isVolatile)
            }
        }
    }
}

/// A socket as a bulk operation sees it: on this server, or (in a cluster) on another node.
public struct SocketIORemoteSocket: Sendable {
    /// The socket id.
    public let id: String
    /// The handshake of the socket.
    public let handshake: SocketIOHandshake?
    /// The rooms the socket is in.
    public let rooms: Set<String>
    /// The socket's application data.
    public let data: SocketIOValue
    /// The socket itself, when it lives on this server.
    public let local: SocketIOSocket?
}

/// Carries a namespace's broadcasts and bulk operations to the other servers of a cluster (for
/// example over PostgreSQL). A single server's adapter, ``InMemoryAdapter``, does nothing.
///
/// Local delivery is not the adapter's: the namespace's ``SocketIOLocalSockets`` (one shard per
/// event loop) selects and writes this server's sockets, then the namespace hands the same
/// operation to the adapter for the other servers. An adapter that receives an operation from
/// another server applies it to the ``SocketIOLocalSockets`` its factory was given.
///
/// Every method returns at once: anything remote is handed to a background task.
public protocol SocketIOAdapter: Sendable {
    /// Sends an encoded packet to the sockets the options select on the other servers; calls
    /// `published`, when given, once it was handed to them (`true`) or could not be (`false`).
    func broadcast(_ packet: SocketIOOutboundPacket, options: SocketIOBroadcastOptions, published: (@Sendable (Bool) -> Void)?)
    /// How many servers the cluster has, this one included.
    func serverCount() -> Int
    /// Sends a packet that asks each recipient on the other servers for an acknowledgement (the
    /// packet carries `ackID`). Returns how many other servers were asked: `expect` is then
    /// called once for each with its recipient count, `respond` with each recipient's answer.
    func broadcastWithAck(
        _ packet: SocketIOOutboundPacket,
        ackID: Int,
        options: SocketIOBroadcastOptions,
        expect: @escaping @Sendable (Int) -> Void,
        respond: @escaping @Sendable ([SocketIOValue]) -> Void
    ) -> Int
    /// Emits an event (its name, then its arguments) to the other servers.
    func serverSideEmit(_ packet: [SocketIOValue])
    /// Emits an event to the other servers and returns each one's answer; throws a
    /// ``SocketIOClusterTimeoutError`` when some did not answer in time.
    func serverSideEmitWithAck(_ packet: [SocketIOValue]) async throws -> [SocketIOValue]
    /// The sockets the options select on the other servers.
    func fetchSockets(_ options: SocketIOBroadcastOptions) async throws -> [SocketIORemoteSocket]
    /// Makes the selected sockets of the other servers join rooms.
    func addSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>)
    /// Makes the selected sockets of the other servers leave rooms.
    func delSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>)
    /// Disconnects the selected sockets of the other servers; `close` also closes their connections.
    func disconnectSockets(_ options: SocketIOBroadcastOptions, close: Bool)
}
