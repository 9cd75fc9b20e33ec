public import HummingbirdCore
public import SocketIO

extension HTTPServerBuilder {
    /// An HTTP/1 server that also serves Socket.IO servers at their configured paths (polling and
    /// WebSocket), and bare Engine.IO servers at the given mounts.
    ///
    /// ```swift
    /// let io = SocketIOServer()
    /// let app = Application(router: router, server: .socketIO(io))
    /// ```
    public static func socketIO(
        _ servers: SocketIOServer...,
        engineIO mounts: [EngineIOMount] = [],
        configuration: HTTP1Channel.Configuration = .init()
    ) -> HTTPServerBuilder {
        let all = servers.map { EngineIOMount(path: $0.configuration.path, server: $0.engine) } + mounts
        return HTTPServerBuilder { responder in
            SocketIOChannel(mounts: all, configuration: configuration, responder: responder)
        }
    }
}
