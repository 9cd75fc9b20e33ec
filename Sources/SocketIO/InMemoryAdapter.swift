/// The adapter of a single server: there are no other servers to reach, so it does nothing; the
/// namespace's ``SocketIOLocalSockets`` deliver everything.
public struct InMemoryAdapter: SocketIOAdapter {
    /// Creates the adapter of the namespace whose sockets are `sockets`.
    public init(sockets: SocketIOLocalSockets) {}

    public func serverCount() -> Int { 1 }

    public func broadcast(_ packet: SocketIOOutboundPacket, options: SocketIOBroadcastOptions, published: (@Sendable (Bool) -> Void)?) {
        published?(true)
    }

    public func broadcastWithAck(
        _ packet: SocketIOOutboundPacket,
        ackID: Int,
        options: SocketIOBroadcastOptions,
        expect: @escaping @Sendable (Int) -> Void,
        respond: @escaping @Sendable ([SocketIOValue]) -> Void
    ) -> Int { 0 }

    public func serverSideEmit(_ packet: [SocketIOValue]) {}

    public func serverSideEmitWithAck(_ packet: [SocketIOValue]) async throws -> [SocketIOValue] { [] }

    public func fetchSockets(_ options: SocketIOBroadcastOptions) async throws -> [SocketIORemoteSocket] { [] }

    public func addSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>) {}

    public func delSockets(_ options: SocketIOBroadcastOptions, rooms: Set<String>) {}

    public func disconnectSockets(_ options: SocketIOBroadcastOptions, close: Bool) {}
}
