import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SQS
import Synchronization
import Testing

/// The moto endpoints `scripts/with-moto` exports; live tests are skipped without them.
enum Moto {
    static let environment = ProcessInfo.processInfo.environment
    /// A plain moto server: accepts any credentials.
    static let endpoint = environment["HERALD_TEST_SQS_ENDPOINT"].flatMap(URL.init(string:))
    /// A second moto server, used with IAM authentication switched on.
    static let authEndpoint = environment["HERALD_TEST_SQS_AUTH_ENDPOINT"].flatMap(URL.init(string:))
    static let skipMessage: Comment = "live test: run through scripts/with-moto, which sets HERALD_TEST_SQS_ENDPOINT"

    static let credentials = AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing")

    static func client(
        endpoint: URL? = Moto.endpoint,
        credentials: any CredentialsProvider = StaticCredentialsProvider(Moto.credentials)
    ) -> SQSClient {
        SQSClient(
            configuration: SQSConfiguration(
                region: "us-east-1", endpoint: endpoint, requestTimeout: .seconds(10), credentialsProvider: credentials
            ))
    }

    /// A queue name no other test uses on the shared server.
    static func uniqueName(_ prefix: String, fifo: Bool = false) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8))" + (fifo ? ".fifo" : "")
    }
}

/// A request seen by ``LocalHTTPServer``.
struct RecordedRequest: Sendable {
    var method: String
    var uri: String
    var headers: [String: String]
    var body: String
}

/// A one-route HTTP server on a free loopback port, for the container endpoint and a fake STS.
final class LocalHTTPServer: Sendable {
    typealias Respond = @Sendable (RecordedRequest) -> (status: Int, body: String)?

    let port: Int
    private let channel: any Channel
    private let recorder: Recorder

    var url: URL { URL(string: "http://127.0.0.1:\(port)")! }
    var requests: [RecordedRequest] { recorder.requests.withLock { $0 } }

    /// Starts a server; a `nil` answer from `respond` means never answer (to provoke timeouts).
    static func start(respond: @escaping Respond) async throws -> LocalHTTPServer {
        let recorder = Recorder()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        Handler { request in
                            recorder.requests.withLock { $0.append(request) }
                            return respond(request)
                        })
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return LocalHTTPServer(channel: channel, port: channel.localAddress!.port!, recorder: recorder)
    }

    private init(channel: any Channel, port: Int, recorder: Recorder) {
        self.channel = channel
        self.port = port
        self.recorder = recorder
    }

    private final class Recorder: Sendable {
        let requests = Mutex<[RecordedRequest]>([])
    }

    func shutdown() async throws {
        try await channel.close()
    }

    /// Runs `body` with a started server and shuts it down afterwards, even when `body` throws.
    static func with<T>(
        respond: @escaping Respond,
        _ body: (LocalHTTPServer) async throws -> T
    ) async throws -> T {
        let server = try await start(respond: respond)
        do {
            let result = try await body(server)
            try await server.shutdown()
            return result
        } catch {
            try? await server.shutdown()
            throw error
        }
    }

    private final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let respond: @Sendable (RecordedRequest) -> (status: Int, body: String)?
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(respond: @escaping @Sendable (RecordedRequest) -> (status: Int, body: String)?) {
            self.respond = respond
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch Self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                let request = RecordedRequest(
                    method: head.method.rawValue,
                    uri: head.uri,
                    headers: Dictionary(head.headers.map { ($0.name.lowercased(), $0.value) }) { a, _ in a },
                    body: String(decoding: body, as: UTF8.self)
                )
                guard let answer = respond(request) else { return }
                let bytes = ByteBuffer(string: answer.body)
                var headers = HTTPHeaders()
                headers.add(name: "Content-Length", value: "\(bytes.readableBytes)")
                headers.add(name: "Content-Type", value: answer.body.hasPrefix("<") ? "text/xml" : "application/json")
                let status = HTTPResponseStatus(statusCode: answer.status)
                context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
                context.write(Self.wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
                context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}

/// A temporary file removed when the value is deinitialised.
final class TemporaryFile: Sendable {
    let path: String

    init(contents: String) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("sqs-test-\(UUID().uuidString)").path
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
