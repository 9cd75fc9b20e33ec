public import NIOCore
public import NIOHTTP1
import NIOWebSocket

/// The WebSocket upgrader for Engine.IO endpoints, for NIO's typed HTTP upgrade pipeline.
///
/// It answers the handshake (`Sec-WebSocket-Accept`) like NIO's own upgrader but installs no
/// frame encoder: Engine.IO writes complete, pre-encoded frames.
public final class EngineIOWebSocketUpgrader<UpgradeResult: Sendable>: NIOTypedHTTPServerProtocolUpgrader, Sendable {
    /// `websocket`.
    public let supportedProtocol = "websocket"
    /// None: the WebSocket headers are checked while building the response.
    public let requiredUpgradeHeaders: [String] = []

    private let handshake: NIOTypedWebSocketServerUpgrader<UpgradeResult>
    private let server: @Sendable (String) -> EngineIOServer?
    private let result: @Sendable (any Channel) -> UpgradeResult

    /// Creates an upgrader; `server` finds the Engine.IO server mounted at a request path,
    /// `refused` learns why an upgrade is refused (the request then goes on as plain HTTP, to be
    /// answered with that error), and `result` is what the upgrade pipeline reports once the
    /// channel belongs to Engine.IO.
    public init(
        server: @escaping @Sendable (String) -> EngineIOServer?,
        refused: @escaping @Sendable (any Channel, EngineIORequestError) -> Void,
        result: @escaping @Sendable (any Channel) -> UpgradeResult
    ) {
        self.server = server
        self.result = result
        self.handshake = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
            shouldUpgrade: { channel, head in
                let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
                let refusal =
                    server(path).map {
                        $0.upgradeRefusal(
                            uri: head.uri, origin: head.headers.first(name: "origin"), host: head.headers.first(name: "host"),
                            remoteAddress: channel.remoteAddress)
                    } ?? .badRequest
                if let refusal {
                    refused(channel, refusal)
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
            },
            upgradePipelineHandler: { channel, _ in channel.eventLoop.makeSucceededFuture(result(channel)) }
        )
    }

    public func buildUpgradeResponse(
        channel: any Channel,
        upgradeRequest: HTTPRequestHead,
        initialResponseHeaders: HTTPHeaders
    ) -> EventLoopFuture<HTTPHeaders> {
        handshake.buildUpgradeResponse(channel: channel, upgradeRequest: upgradeRequest, initialResponseHeaders: initialResponseHeaders)
    }

    public func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        channel.eventLoop.makeCompletedFuture {
            let path = upgradeRequest.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? upgradeRequest.uri
            guard let engine = server(path) else { throw NIOWebSocketUpgradeError.unsupportedWebSocketTarget }
            let headers = upgradeRequest.headers.map { (name: $0.name.lowercased(), value: $0.value) }
            try engine.attachWebSocket(to: channel, uri: upgradeRequest.uri, headers: headers)
            return result(channel)
        }
    }
}
