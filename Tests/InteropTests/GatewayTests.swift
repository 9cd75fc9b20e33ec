import AsyncHTTPClient
import Foundation
import Hummingbird
import JWTKit
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Prometheus
import SocketIO
import SocketIOHummingbird
import Testing

@testable import Herald

/// Runs a gateway on a free loopback port for the duration of `body`.
func withGateway(
    _ configuration: HeraldConfiguration,
    _ body: @Sendable (_ gateway: HeraldGateway, _ port: Int) async throws -> Void
) async throws {
    var logger = Logger(label: "gateway-test")
    logger.logLevel = .critical
    var socketIO = SocketIOConfiguration()
    socketIO.logger = logger
    let gateway = try await HeraldGateway(configuration: configuration, socketIO: socketIO, logger: logger)
    let router = Router()
    gateway.addPublishRoutes(to: router, publisher: DirectPublisher(gateway: gateway))
    gateway.addOperationsRoutes(to: router, registry: PrometheusCollectorRegistry())
    try await withApplication(router: router, server: .socketIO(gateway.io)) { port in
        try await body(gateway, port)
    }
}

/// Sends a request to the gateway and returns the status and body.
func request(_ method: HTTPMethod, port: Int, path: String, body: String? = nil, key: String? = nil) async throws -> (Int, String) {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = method
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    if let key { request.headers.add(name: "authorization", value: "Bearer \(key)") }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), String(buffer: bytes))
}

func token(secret: String, sub: String? = nil, rooms: [String]? = nil, expiresIn: TimeInterval = 3600) async throws -> String {
    let keys = JWTKeyCollection()
    await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    let claims = HeraldClaims(
        sub: sub.map { SubjectClaim(value: $0) }, exp: ExpirationClaim(value: Date().addingTimeInterval(expiresIn)), nbf: nil, rooms: rooms)
    return try await keys.sign(claims)
}

/// Waits until each room of `namespace` has exactly its expected members: the gateway's connection
/// handler joins a client's rooms on its own task, after the client counts as connected, and a
/// message published to a room before that would miss the client.
func waitForRooms(_ gateway: HeraldGateway, namespace: String = "/", _ expected: [String: Int]) async throws {
    try await eventually {
        let sizes = Dictionary(await gateway.io.of(namespace).localSockets.roomSizes().map { ($0.name, $0.size) }, uniquingKeysWith: +)
        return expected.allSatisfy { sizes[$0.key] == $0.value }
    }
}

/// Waits until a broadcast to everyone in `namespace` reaches `count` clients: it goes to the
/// namespace's local sockets, which the connection handler has seen once it counted the client.
func waitForClients(_ gateway: HeraldGateway, namespace: String = "/", _ count: Int) async throws {
    try await eventually { gateway.io.of(namespace).localSockets.count == count && gateway.stats.connectedClients == count }
}

@Suite("The gateway with real clients", .serialized, .enabled(if: testPython != nil, "run through scripts/test, which installs python-socketio"))
struct GatewayTests {
    @Test("a published event reaches a python-socketio client with exactly the published data")
    func publishReachesClients() async throws {
        var configuration = HeraldConfiguration()
        configuration.apiKey = "k3y"
        try await withGateway(configuration) { gateway, port in
            let listener = try PythonProcess(script: "listen.py", arguments: ["http://127.0.0.1:\(port)", "--event", "item_added", "--count", "2"])
            try await waitForClients(gateway, 1)
            let data = #"{"id":42,"name":"ünïcode ✓","tags":["a","b"],"price":12.5,"nested":{"ok":true,"none":null}}"#
            #expect(try await request(.POST, port: port, path: "/api/emit", body: #"{"event":"item_added","data":\#(data)}"#, key: "k3y").0 == 202)
            #expect(
                try await request(.POST, port: port, path: "/api/emit/batch", body: #"[{"event":"item_added","args":[1,"two"]}]"#, key: "k3y").0
                    == 202)
            let result = try await listener.result()
            let events = try #require(result["events"] as? [[Any]])
            #expect(events.count == 2)
            let received = try JSONSerialization.data(withJSONObject: events[0][0], options: [.sortedKeys])
            let expected = try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(data.utf8)), options: [.sortedKeys])
            #expect(received == expected)
            #expect(events[1].count == 2 && events[1][0] as? Int == 1 && events[1][1] as? String == "two")
        }
    }

    @Test("the publish API refuses a missing or wrong key, and bad bodies with a message")
    func publishRefusals() async throws {
        var configuration = HeraldConfiguration()
        configuration.apiKey = "k3y"
        try await withGateway(configuration) { _, port in
            let envelope = #"{"event":"item_added","data":1}"#
            #expect(try await request(.POST, port: port, path: "/api/emit", body: envelope).0 == 401)
            #expect(try await request(.POST, port: port, path: "/api/emit", body: envelope, key: "wrong").0 == 401)
            let (status, body) = try await request(.POST, port: port, path: "/api/emit", body: #"{"event":"e","namespace":"/nope"}"#, key: "k3y")
            #expect(status == 400)
            #expect(body.contains("unknown namespace '/nope'"))
            let (badStatus, badBody) = try await request(.POST, port: port, path: "/api/emit", body: "{oops", key: "k3y")
            #expect(badStatus == 400)
            #expect(badBody.contains("not JSON"))
        }
    }

    @Test("envelopes reach only their rooms and namespaces; JWT claims place clients in rooms")
    func routing() async throws {
        var configuration = HeraldConfiguration()
        configuration.namespaces = ["/", "/orders"]
        configuration.auth = .hs256(secret: "s3cret-s3cret-s3cret-s3cret-s3cret")
        try await withGateway(configuration) { gateway, port in
            let alice = try await token(secret: "s3cret-s3cret-s3cret-s3cret-s3cret", sub: "alice", rooms: ["team-red"])
            let bob = try await token(secret: "s3cret-s3cret-s3cret-s3cret-s3cret", sub: "bob")
            let url = "http://127.0.0.1:\(port)"
            let clients = [
                ("alice", try PythonProcess(script: "listen.py", arguments: [url, "--token", alice, "--count", "3", "--timeout", "4"])),
                ("bob", try PythonProcess(script: "listen.py", arguments: [url, "--token", bob, "--count", "3", "--timeout", "4"])),
                (
                    "orders",
                    try PythonProcess(
                        script: "listen.py", arguments: [url, "--token", bob, "--namespace", "/orders", "--count", "1", "--timeout", "4"])
                ),
            ]
            try await waitForRooms(gateway, ["user:alice": 1, "team-red": 1, "user:bob": 1])
            try await waitForRooms(gateway, namespace: "/orders", ["user:bob": 1])
            for envelope in [
                #"{"event":"item_added","data":"to user:alice","to":"user:alice"}"#,
                #"{"event":"item_added","data":"to team-red","to":["team-red"]}"#,
                #"{"event":"item_added","data":"all but alice","except":"user:alice"}"#,
                #"{"event":"item_added","data":"orders only","namespace":"/orders"}"#,
                #"{"event":"item_added","data":"everyone"}"#,
            ] {
                #expect(try await request(.POST, port: port, path: "/api/emit", body: envelope).0 == 202)
            }
            var received: [String: [String]] = [:]
            for (name, client) in clients {
                received[name] = (try await client.result()["events"] as? [[Any]])?.compactMap { $0.first as? String }
            }
            #expect(received["alice"] == ["to user:alice", "to team-red", "everyone"])
            #expect(received["bob"] == ["all but alice", "everyone"])
            #expect(received["orders"] == ["orders only"])
        }
    }

    @Test("invalid and expired tokens are refused with their message")
    func tokenRefusals() async throws {
        var configuration = HeraldConfiguration()
        configuration.auth = .hs256(secret: "s3cret-s3cret-s3cret-s3cret-s3cret")
        try await withGateway(configuration) { _, port in
            let url = "http://127.0.0.1:\(port)"
            let cases: [([String], String)] = [
                ([], "authentication required: send a JWT as auth.token"),
                (["--token", "not-a-jwt"], "invalid token"),
                (["--token", try await token(secret: "other-other-other-other-other-other", sub: "x")], "invalid token"),
                (["--token", try await token(secret: "s3cret-s3cret-s3cret-s3cret-s3cret", sub: "x", expiresIn: -60)], "token expired"),
            ]
            for (arguments, message) in cases {
                let result = try await PythonProcess(script: "listen.py", arguments: [url, "--timeout", "1"] + arguments).result()
                #expect(result["connected"] as? Bool == false)
                let error = (result["error"] as? [String: Any])?["message"] as? String
                #expect(error?.hasPrefix(message) == true, "expected '\(message)', got \(String(describing: error))")
            }
        }
    }

    @Test("/metrics and /readyz report true values")
    func operations() async throws {
        try await withGateway(HeraldConfiguration()) { gateway, port in
            let listener = try PythonProcess(script: "listen.py", arguments: ["http://127.0.0.1:\(port)", "--count", "1"])
            try await waitForClients(gateway, 1)
            #expect(try await request(.POST, port: port, path: "/api/emit", body: #"{"event":"item_added","data":1}"#).0 == 202)
            _ = try await listener.result()
            try await eventually { gateway.stats.connectedClients == 0 }
            let (status, metrics) = try await request(.GET, port: port, path: "/metrics")
            #expect(status == 200)
            #expect(metrics.contains("herald_messages_broadcast_total 1\n"))
            #expect(metrics.contains("herald_connections_total 1\n"))
            #expect(metrics.contains("herald_connected_clients 0.0"))
            let (readyStatus, ready) = try await request(.GET, port: port, path: "/readyz")
            #expect(readyStatus == 200 && ready.contains(#""ready":true"#))
            gateway.stats.beginShutdown()
            #expect(try await request(.GET, port: port, path: "/readyz").0 == 503)
        }
    }
}

@Suite(
    "herald's configuration",
    .enabled(if: ProcessInfo.processInfo.environment["HERALD_BIN_PATH"] != nil, "run through scripts/test, which builds herald"))
struct ConfigurationTests {
    func herald(_ arguments: [String], environment: [String: String] = [:]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["HERALD_BIN_PATH"]! + "/herald")
        process.arguments = arguments
        process.environment = environment
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stderr, as: UTF8.self))
    }

    @Test(
        "a bad setting exits non-zero with an error that names its key",
        arguments: [
            (["serve", "--port", "99999"], [String: String](), "port (from --port)"),
            (["serve"], ["HERALD_PORT": "eighty"], "port (from HERALD_PORT)"),
            (["serve", "--auth", "none", "--host", "0.0.0.0"], [:], "api-key: binding 0.0.0.0"),
            (["serve", "--log-format", "xml"], [:], "log-format (from --log-format)"),
            (["serve", "--jwt-secret", "short"], [:], "jwt-secret (from --jwt-secret)"),
            (["serve", "--namespaces", "/,orders"], [:], "namespaces"),
            (["serve", "--jwt-secret", String(repeating: "x", count: 32), "--jwks", "/tmp/keys.json"], [:], "jwt-secret and jwks"),
        ])
    func badSettings(arguments: [String], environment: [String: String], key: String) throws {
        let (status, stderr) = try herald(arguments, environment: environment)
        #expect(status == 2)
        #expect(stderr.contains(key), "stderr: \(stderr)")
    }

    @Test("a configuration file with an unknown key or a bad line is refused with its location")
    func badFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("herald-\(UUID().uuidString).toml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "port = 8080\ncolour = \"red\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (status, stderr) = try herald(["serve", "--config", path])
        #expect(status != 0)
        #expect(stderr.contains("unknown key 'colour'"))
        try "port = 8080\nhost 127.0.0.1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let (status2, stderr2) = try herald(["serve", "--config", path])
        #expect(status2 != 0)
        #expect(stderr2.contains("\(path):2"))
    }
}

extension GatewayTests {
    @Test("client events go to the webhook, whose answer becomes the client's acknowledgement")
    func webhook() async throws {
        let received = NIOLockedValueBox<[String]>([])
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 16)
            received.withLockedValue { $0.append(String(buffer: body)) }
            let value = try SocketIOValue(json: body)
            let answer: SocketIOValue = [
                "ok": true, "event": value["event"] ?? .null, "sub": value["claims"]?["sub"] ?? .null, "args": value["args"] ?? .null,
            ]
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: answer.jsonBytes))
        }
        try await withApplication(router: router) { hookPort in
            var configuration = HeraldConfiguration()
            configuration.auth = .hs256(secret: "s3cret-s3cret-s3cret-s3cret-s3cret")
            configuration.upstream = HeraldUpstreamConfiguration(events: ["item_removed"], webhookURL: "http://127.0.0.1:\(hookPort)/hook")
            try await withGateway(configuration) { _, port in
                let jwt = try await token(secret: "s3cret-s3cret-s3cret-s3cret-s3cret", sub: "carol")
                let result = try await PythonProcess(
                    script: "call.py", arguments: ["http://127.0.0.1:\(port)", "item_removed", #"{"id": 5}"#, "--token", jwt]
                ).result()
                let ack = try #require(result["ack"] as? [String: Any])
                #expect(ack["ok"] as? Bool == true)
                #expect(ack["event"] as? String == "item_removed")
                #expect(ack["sub"] as? String == "carol")
                #expect((ack["args"] as? [[String: Int]]) == [["id": 5]])
            }
        }
        let bodies = received.withLockedValue { $0 }
        #expect(bodies.count == 1)
        #expect(bodies.first?.contains(#""namespace":"/""#) == true)
    }
}

extension GatewayTests {
    /// Signs HeraldClaims with an ES256 key, as an identity provider would.
    func es256Token(_ key: ES256PrivateKey, kid: String?, sub: String) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: kid.map { JWKIdentifier(string: $0) })
        let claims = HeraldClaims(sub: SubjectClaim(value: sub), exp: ExpirationClaim(value: Date().addingTimeInterval(600)), nbf: nil, rooms: nil)
        return try await keys.sign(claims, kid: kid.map { JWKIdentifier(string: $0) })
    }

    @Test("ES256 tokens are verified with a PEM public key and with a JWKS file")
    func publicKeyTokens() async throws {
        let key = ES256PrivateKey()
        let other = ES256PrivateKey()
        let directory = FileManager.default.temporaryDirectory
        let pem = directory.appendingPathComponent("herald-\(UUID().uuidString).pem").path
        let jwks = directory.appendingPathComponent("herald-\(UUID().uuidString).json").path
        defer {
            try? FileManager.default.removeItem(atPath: pem)
            try? FileManager.default.removeItem(atPath: jwks)
        }
        try key.publicKey.pemRepresentation.write(toFile: pem, atomically: true, encoding: .utf8)
        let (x, y) = try #require(key.publicKey.parameters)
        try #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"k1","x":"\#(x)","y":"\#(y)"}]}"#
            .write(toFile: jwks, atomically: true, encoding: .utf8)

        for (auth, kid) in [(HeraldAuthConfiguration.publicKeys(pemFile: pem), nil), (.jwks(file: jwks), "k1")]
            as [(HeraldAuthConfiguration, String?)]
        {
            var configuration = HeraldConfiguration()
            configuration.auth = auth
            try await withGateway(configuration) { gateway, port in
                let url = "http://127.0.0.1:\(port)"
                let good = try await es256Token(key, kid: kid, sub: "dave")
                let accepted = try PythonProcess(script: "listen.py", arguments: [url, "--token", good, "--count", "1", "--timeout", "5"])
                try await waitForRooms(gateway, ["user:dave": 1])
                #expect(
                    try await request(.POST, port: port, path: "/api/emit", body: #"{"event":"item_added","data":"for dave","to":"user:dave"}"#).0
                        == 202)
                let result = try await accepted.result()
                #expect(result["connected"] as? Bool == true, "\(auth)")
                #expect((result["events"] as? [[String]]) == [["for dave"]], "\(auth)")

                let forged = try await es256Token(other, kid: kid, sub: "mallory")
                let refused = try await PythonProcess(script: "listen.py", arguments: [url, "--token", forged, "--timeout", "1"]).result()
                #expect(refused["connected"] as? Bool == false, "\(auth)")
                #expect(((refused["error"] as? [String: Any])?["message"] as? String)?.hasPrefix("invalid token") == true, "\(auth)")
            }
        }
    }
}
