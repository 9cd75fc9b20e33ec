import ArgumentParser
import Hummingbird
import Logging
import SocketIO
import SocketIOHummingbird

/// The herald command line.
@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "A real-time gateway: pushes queue messages to Socket.IO clients.",
        discussion: "This version serves Socket.IO only; the queue consumer and publish API come with the gateway."
    )

    @Option(help: "The address to bind.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port = 8080

    func run() async throws {
        let logger = Logger(label: "herald")
        var configuration = SocketIOConfiguration()
        configuration.logger = logger
        let io = SocketIOServer(configuration: configuration)
        io.onConnection { socket in
            logger.info("client connected", metadata: ["socket.id": .string(socket.id), "transport": .string(socket.connection.transportName)])
            socket.onDisconnect { socket, reason in
                logger.info("client disconnected", metadata: ["socket.id": .string(socket.id), "reason": .string(reason.description)])
            }
        }
        let app = Application(
            router: Router(),
            server: .socketIO(io),
            configuration: .init(address: .hostname(host, port: port)),
            logger: logger
        )
        try await app.runService()
    }
}
