import Foundation
import Hummingbird
import Logging
import NIOCore
import SocketIO
import SocketIOHummingbird

/// Runs a Socket.IO server on a free loopback port for the duration of `body`.
func withLiveServer(
    configure: (SocketIOServer) -> Void,
    _ body: @Sendable (_ port: Int) async throws -> Void
) async throws {
    var configuration = SocketIOConfiguration()
    configuration.engine.pingInterval = .seconds(2)
    configuration.engine.pingTimeout = .seconds(2)
    let io = SocketIOServer(configuration: configuration)
    configure(io)
    let (portStream, portContinuation) = AsyncStream.makeStream(of: Int.self)
    var logger = Logger(label: "interop")
    logger.logLevel = .critical
    let app = Application(
        router: Router(),
        server: .socketIO(io),
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        },
        logger: logger
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService() }
        var ports = portStream.makeAsyncIterator()
        guard let port = await ports.next(), port > 0 else { throw LiveServerError.noPort }
        defer { group.cancelAll() }
        try await body(port)
    }
}

enum LiveServerError: Error { case noPort }

/// Where the test virtualenv's Python is (set by scripts/test).
let testPython: String? = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"]

/// Runs a python-socketio client scenario and returns the JSON object it printed.
func runPythonClient(port: Int, transports: String, scenario: String) async throws -> [String: Any] {
    guard let python = testPython else { throw PythonClientError(message: "HERALD_TEST_PYTHON is not set: run the tests with scripts/test") }
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Clients/client.py").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: python)
    process.arguments = [script, "http://127.0.0.1:\(port)", transports, scenario]
    let output = Pipe()
    let errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let (stdout, stderr) = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            let stdout = output.fileHandleForReading.readDataToEndOfFile()
            let stderr = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            continuation.resume(returning: (stdout, stderr))
        }
    }
    guard process.terminationStatus == 0,
        let object = try? JSONSerialization.jsonObject(with: stdout) as? [String: Any]
    else {
        throw PythonClientError(
            message: "client \(scenario) over \(transports) failed (\(process.terminationStatus)):\n\(String(decoding: stdout, as: UTF8.self))\n\(String(decoding: stderr, as: UTF8.self))"
        )
    }
    return object
}

struct PythonClientError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
