import ArgumentParser
import EngineIO
import Hummingbird
import SocketIO
import SocketIOHummingbird

/// The server the official Socket.IO and Engine.IO protocol test suites expect.
@main
struct ConformanceServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance-server",
        abstract:
            "Serves Socket.IO on /socket.io/ and a bare Engine.IO echo server on /engine.io/, configured as the official protocol test suites expect."
    )

    @Option(help: "The port to listen on.")
    var port = 3000

    @Option(help: "The address to bind.")
    var host = "127.0.0.1"

    func run() async throws {
        var engineConfiguration = EngineIOConfiguration()
        engineConfiguration.pingInterval = .milliseconds(300)
        engineConfiguration.pingTimeout = .milliseconds(200)
        engineConfiguration.maxHTTPBufferSize = 1_000_000
        engineConfiguration.cors = CORSConfiguration(origin: .any)

        var configuration = SocketIOConfiguration()
        configuration.engine = engineConfiguration
        configuration.connectTimeout = .milliseconds(1000)
        let io = SocketIOServer(configuration: configuration)

        io.onConnection { socket in
            socket.emit("auth", socket.handshake.auth)
            socket.on("message") { event in
                socket.emit("message-back", arguments: event.arguments)
            }
            socket.on("message-with-ack") { event in
                event.ack?.send(event.arguments)
            }
        }
        io.of("/custom").onConnection { socket in
            socket.emit("auth", socket.handshake.auth)
        }

        let echo = EngineIOServer(configuration: engineConfiguration) { _ in EchoDelegate() }

        let app = Application(
            router: Router(),
            server: .socketIO(io, engineIO: [EngineIOMount(path: "/engine.io/", server: echo)]),
            configuration: .init(address: .hostname(host, port: port))
        )
        try await app.runService()
    }
}

/// Sends every message back to the client that sent it.
final class EchoDelegate: EngineIOConnectionDelegate {
    func connection(_ connection: EngineIOConnection, didReceive payload: EngineIOPayload) {
        connection.send(EngineIOFrame(EngineIOPacket(.message, payload)))
    }

    func connection(_ connection: EngineIOConnection, didCloseWith reason: EngineIOCloseReason) {}
}
