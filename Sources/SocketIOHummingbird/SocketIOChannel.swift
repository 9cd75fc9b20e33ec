public import EngineIO
import HTTPTypes
public import HummingbirdCore
public import Logging
public import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// An Engine.IO server answering at a path (for example Socket.IO at `/socket.io/`).
public struct EngineIOMount: Sendable {
    /// The path, with a trailing slash (`/socket.io/`).
    public let path: String
    /// The server answering there.
    public let server: EngineIOServer

    /// Mounts `server` at `path`.
    public init(path: String, server: EngineIOServer) {
        var path = path.hasPrefix("/") ? path : "/" + path
        if !path.hasSuffix("/") { path += "/" }
        self.path = path
        self.server = server
    }

    func matches(_ requestPath: some StringProtocol) -> Bool {
        requestPath == path || (requestPath.count + 1 == path.count && path.hasPrefix(requestPath))
    }
}

/// An HTTP/1 child channel that serves Engine.IO: polling requests on the mounted paths go to
/// the Engine.IO servers, WebSocket upgrades on those paths are handed to Engine.IO's own
/// channel handlers (no task per connection), and every other request goes to the application.
public struct SocketIOChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case engineIO
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, EngineIORequestError)
    }

    /// The negotiated outcome of a new connection.
    public struct Value: ServerChildChannelValue {
        let result: EventLoopFuture<UpgradeResult>
        /// The connection's channel.
        public let channel: any Channel
    }

    /// The responder for requests that are not Engine.IO's.
    public let responder: HTTPChannelHandler.Responder
    private let mounts: [EngineIOMount]
    private let configuration: HTTP1Channel.Configuration

    /// Creates the channel; `responder` answers every request outside the mounted paths.
    public init(mounts: [EngineIOMount], configuration: HTTP1Channel.Configuration, responder: @escaping HTTPChannelHandler.Responder) {
        self.mounts = mounts
        self.configuration = configuration
        self.responder = { request, writer, channel in
            if let mount = mounts.first(where: { $0.matches(request.uri.path) }) {
                try await EngineIOHTTPBridge.serve(request, writer: writer, channel: channel, server: mount.server)
            } else {
                try await responder(request, writer, channel)
            }
        }
    }

    public func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let mounts = self.mounts
        let configuration = self.configuration
        return channel.eventLoop.makeCompletedFuture {
            let refusal = NIOLoopBoundBox<EngineIORequestError?>(nil, eventLoop: channel.eventLoop)
            let upgrader = EngineIOWebSocketUpgrader<UpgradeResult>(
                server: { path in mounts.first { $0.matches(path) }?.server },
                refused: { _, error in refusal.value = error },
                result: { _ in .engineIO }
            )
            let upgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration<UpgradeResult>(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try pipeline.addHandlers(configuration.additionalChannelHandlers())
                        try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: configuration.idleTimeout.map { .init($0) }, logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        if let error = refusal.value { return .refused(http, error) }
                        return .http(http)
                    }
                }
            )
            var pipelineConfiguration = NIOUpgradableHTTPServerPipelineConfiguration(upgradeConfiguration: upgradeConfiguration)
            pipelineConfiguration.enablePipelining = false
            pipelineConfiguration.enableErrorHandling = false
            pipelineConfiguration.enableResponseHeaderValidation = false
            pipelineConfiguration.decoderConfiguration.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
            pipelineConfiguration.decoderConfiguration.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
            pipelineConfiguration.decoderConfiguration.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipelineConfiguration)
            return Value(result: result, channel: channel)
        }
    }

    public func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.result.get() {
            case .engineIO:
                // The channel now belongs to Engine.IO's handlers; nothing waits on it here.
                return
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let error):
                // As the reference server answers a refused upgrade: 400 and the error message.
                try await http.executeThenClose { _, outbound in
                    let body = ByteBuffer(string: error.message)
                    let head = HTTPResponse(
                        status: .badRequest,
                        headerFields: [.connection: "close", .contentType: "text/html", .contentLength: String(body.readableBytes)]
                    )
                    try await outbound.write(contentsOf: [.head(head), .body(body), .end(nil)])
                }
            }
        } catch {
            logger.debug("connection ended during HTTP upgrade negotiation", metadata: ["error": "\(error)"])
        }
    }
}

/// Converts between Hummingbird requests and Engine.IO's framework-independent ones.
enum EngineIOHTTPBridge {
    static func serve(_ request: Request, writer: consuming ResponseWriter, channel: any Channel, server: EngineIOServer) async throws {
        var body: ByteBuffer?
        var tooLarge = false
        if request.method == .post {
            let limit = server.configuration.maxHTTPBufferSize
            var collected = ByteBuffer()
            // A body announced past the limit is refused before a byte of it is read: a client
            // declaring a gigabyte gets its 413 at once, not after sending it.
            let declared = request.headers[.contentLength].flatMap { Int($0) }
            tooLarge = declared.map { $0 > limit } ?? false
            if !tooLarge {
                for try await var part in request.body {
                    if collected.readableBytes + part.readableBytes > limit {
                        tooLarge = true
                        break
                    }
                    collected.writeBuffer(&part)
                }
            }
            body = collected
        }
        let engineRequest = EngineIOHTTPRequest(
            method: request.method.rawValue,
            uri: request.uri.string,
            query: [:],
            // HTTPTypes keeps `Host` as the request's authority, not among its header fields.
            headers: request.headers.map { (name: $0.name.canonicalName, value: $0.value) } + (request.head.authority.map { [("host", $0)] } ?? []),
            body: body,
            bodyTooLarge: tooLarge,
            remoteAddress: channel.remoteAddress,
            eventLoop: channel.eventLoop
        ).withParsedQuery()
        let response = await server.handle(engineRequest)
        var fields = HTTPFields()
        for (name, value) in response.headers {
            if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
        }
        fields[.contentLength] = String(response.body.readableBytes)
        if tooLarge { fields[.connection] = "close" }
        try await writer.write(
            response: HTTPResponse(status: .init(code: response.status), headerFields: fields),
            body: ResponseBody(byteBuffer: response.body)
        )
    }
}
