import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import SocketIO
import SocketIOHummingbird

/// Runs a Hummingbird application on a free loopback port for the duration of `body`.
func withApplication(
    router: Router<BasicRequestContext>,
    server: HTTPServerBuilder = .http1(),
    _ body: @Sendable (_ port: Int) async throws -> Void
) async throws {
    let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
    var logger = Logger(label: "interop")
    logger.logLevel = .critical
    let app = Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            continuation.yield(channel.localAddress?.port ?? 0)
            continuation.finish()
        },
        logger: logger
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.runService() }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else { throw LiveServerError.noPort }
        defer { group.cancelAll() }
        try await body(port)
    }
}

/// Runs a Socket.IO server on a free loopback port for the duration of `body`.
func withLiveServer(
    parser: SocketIOParser = .json,
    allowEIO3: Bool = false,
    configure: (SocketIOServer) -> Void,
    _ body: @Sendable (_ port: Int) async throws -> Void
) async throws {
    var configuration = SocketIOConfiguration()
    configuration.parser = parser
    configuration.engine.allowEIO3 = allowEIO3
    configuration.engine.pingInterval = .seconds(2)
    configuration.engine.pingTimeout = .seconds(2)
    let io = SocketIOServer(configuration: configuration)
    configure(io)
    try await withApplication(router: Router(), server: .socketIO(io), body)
}

enum LiveServerError: Error { case noPort }

/// Where the test virtualenv's Python is (set by scripts/test).
let testPython: String? = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"]
/// The Python of the virtualenv with python-socketio 4.x, the Engine.IO v3 client (set by scripts/test).
let testPythonEIO3: String? = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON_EIO3"]

/// Runs a python-socketio client scenario, its clients of the serializer matching `parser`, and
/// returns the JSON object it printed.
func runPythonClient(port: Int, transports: String, scenario: String, parser: SocketIOParser = .json) async throws -> [String: Any] {
    let serializer = parser == .msgpack ? "msgpack" : "default"
    return try await PythonProcess(script: "client.py", arguments: ["http://127.0.0.1:\(port)", transports, scenario, serializer]).result()
}

/// A Python client script of Clients/ running in the test virtualenv.
final class PythonProcess: Sendable {
    private let process: Process
    private let output = Pipe()
    private let errors = Pipe()
    let description: String

    init(script: String, arguments: [String], python: String? = testPython) throws {
        guard let python else { throw PythonClientError(message: "HERALD_TEST_PYTHON(_EIO3) is not set: run the tests with scripts/test") }
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Clients/\(script)").path
        process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [path] + arguments
        process.standardOutput = output
        process.standardError = errors
        description = ([script] + arguments).joined(separator: " ")
        try process.run()
    }

    /// Waits for the script to end and returns the JSON object it printed.
    func result() async throws -> [String: Any] {
        let (stdout, stderr) = await withCheckedContinuation { continuation in
            DispatchQueue.global().async { [self] in
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
                message:
                    "\(description) failed (\(process.terminationStatus)):\n\(String(decoding: stdout, as: UTF8.self))\n\(String(decoding: stderr, as: UTF8.self))"
            )
        }
        return object
    }
}

/// Waits until `condition` holds, checking every 20 ms, for at most `timeout`.
func eventually(timeout: Duration = .seconds(10), _ condition: () async -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(await condition()) {
        guard ContinuousClock.now < deadline else { throw PythonClientError(message: "condition not met within \(timeout)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

struct PythonClientError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
