import AsyncHTTPClient
import Foundation
import JWTKit
import NIOCore
import NIOHTTP1
import SocketIO
import Testing

@testable import Herald

/// Sends a request with the given `Authorization` header; returns the status, headers and body.
private func send(
    _ method: HTTPMethod = .GET, port: Int, path: String, authorization: String? = nil, body: String? = nil
) async throws -> (status: Int, headers: HTTPHeaders, body: String) {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = method
    if let authorization { request.headers.add(name: "authorization", value: authorization) }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), response.headers, String(buffer: bytes))
}

private func basic(_ user: String, _ password: String) -> String {
    "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
}

/// Waits until `room` of the namespace has `count` sockets (rooms are joined after the connect).
private func waitForRoom(_ gateway: HeraldGateway, _ room: String, count: Int = 1, namespace: String = "/") async throws {
    try await eventually { await gateway.io.of(namespace).localSockets.roomSizes().contains { $0.name == room && $0.size == count } }
}

private let secret = "s3cret-s3cret-s3cret-s3cret-s3cret"

@Suite("The gateway's operations surfaces", .serialized, .enabled(if: testPython != nil, "run through scripts/test, which installs python-socketio"))
struct OperationsTests {
    @Test("with a key set, /, /api/stats and /metrics require it as a bearer token or Basic password; health stays open")
    func operationsEndpointsRequireTheKey() async throws {
        for (apiKey, operationsKey) in [("k3y", nil), ("k3y", "0ps-k3y")] as [(String, String?)] {
            var configuration = HeraldConfiguration()
            configuration.apiKey = apiKey
            configuration.operationsKey = operationsKey
            let key = operationsKey ?? apiKey
            try await withGateway(configuration) { _, port in
                for path in ["/", "/api/stats", "/metrics"] {
                    for refused in [nil, "Bearer wrong", "Bearer \(key)x", basic("admin", "wrong"), "Basic !!!", "Token \(key)"] {
                        let answer = try await send(port: port, path: path, authorization: refused)
                        #expect(answer.status == 401, "\(path) with \(refused ?? "nothing")")
                        #expect(answer.headers["www-authenticate"] == [#"Basic realm="herald""#], "\(path)")
                        #expect(!answer.body.contains("rooms"), "\(path)")
                    }
                    for accepted in ["Bearer \(key)", basic("admin", key), basic("", key), basic("any one", key)] {
                        #expect(try await send(port: port, path: path, authorization: accepted).status == 200, "\(path) with \(accepted)")
                    }
                }
                if operationsKey != nil {
                    // The publish key does not open the operations endpoints once they have their own.
                    #expect(try await send(port: port, path: "/api/stats", authorization: "Bearer \(apiKey)").status == 401)
                    #expect(try await send(port: port, path: "/api/stats", authorization: basic("ops", apiKey)).status == 401)
                }
                for path in ["/healthz", "/readyz"] {
                    #expect(try await send(port: port, path: path).status == 200, "\(path)")
                }
                // The publish API takes only its bearer key.
                let envelope = #"{"event":"item_added","data":1}"#
                #expect(try await send(.POST, port: port, path: "/api/emit", authorization: basic("x", apiKey), body: envelope).status == 401)
                #expect(try await send(.POST, port: port, path: "/api/emit", authorization: "Bearer \(apiKey)", body: envelope).status == 202)
            }
        }
    }

    @Test("without any key the operations endpoints stay open (loopback development)")
    func operationsEndpointsOpenWithoutKey() async throws {
        try await withGateway(HeraldConfiguration()) { _, port in
            for path in ["/", "/api/stats", "/metrics", "/healthz", "/readyz"] {
                let status = try await send(port: port, path: path).status
                #expect(status == 200, "\(path)")
            }
        }
    }

    @Test(
        "a client whose token expires while connected receives connect_error 'token expired' at exp and stops receiving",
        arguments: ["websocket", "polling"])
    func expiringTokenDisconnects(transport: String) async throws {
        var configuration = HeraldConfiguration()
        configuration.auth = .hs256(secret: secret)
        try await withGateway(configuration) { gateway, port in
            let expiresIn: TimeInterval = 2
            let jwt = try await token(secret: secret, sub: "erin", expiresIn: expiresIn)
            let exp = try #require(
                (try await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256).verify(jwt, as: HeraldClaims.self)).exp?
                    .value)
            let client = try PythonProcess(
                script: "expiry.py", arguments: ["http://127.0.0.1:\(port)", "--token", jwt, "--transports", transport, "--timeout", "20"])
            try await waitForRoom(gateway, "user:erin")
            #expect(
                try await send(.POST, port: port, path: "/api/emit", body: #"{"event":"item_added","data":"before exp","to":"user:erin"}"#).status
                    == 202)
            let result = try await client.result()
            #expect(result["connected"] as? Bool == true)
            #expect((result["events"] as? [[String]]) == [["before exp"]])
            let error = try #require(result["error"] as? [String: Any], "no connect_error: \(result)")
            #expect(error["message"] as? String == "token expired")
            let errorTime = try #require(result["error_time"] as? Double)
            // Not before exp (JWT times have whole seconds), and within a few seconds of it.
            #expect(errorTime >= exp.timeIntervalSince1970 - 0.05, "connect_error came \(exp.timeIntervalSince1970 - errorTime) s before exp")
            #expect(errorTime < exp.timeIntervalSince1970 + 3, "connect_error came \(errorTime - exp.timeIntervalSince1970) s after exp")
            #expect(result["closed"] as? Bool == true, "the connection stayed open: \(result)")
            // The server dropped the socket and its rooms.
            try await eventually {
                let rooms = await gateway.io.of("/").localSockets.roomSizes()
                return gateway.io.of("/").localSockets.count == 0 && gateway.stats.connectedClients == 0 && !rooms.contains { $0.name == "user:erin" }
            }
        }
    }

    @Test("a client in two namespaces gets 'token expired' in each at exp, and the connection closes with the last")
    func expiringTokenInTwoNamespaces() async throws {
        var configuration = HeraldConfiguration()
        configuration.namespaces = ["/", "/orders"]
        configuration.auth = .hs256(secret: secret)
        try await withGateway(configuration) { gateway, port in
            let jwt = try await token(secret: secret, sub: "jill", expiresIn: 2)
            let client = try PythonProcess(
                script: "expiry.py", arguments: ["http://127.0.0.1:\(port)", "--token", jwt, "--namespaces", "/,/orders", "--timeout", "20"]
            )
            try await waitForRoom(gateway, "user:jill", namespace: "/orders")
            try await waitForRoom(gateway, "user:jill")
            #expect(
                try await send(.POST, port: port, path: "/api/emit", body: #"{"event":"item_added","data":"orders","namespace":"/orders"}"#).status
                    == 202)
            let result = try await client.result()
            #expect((result["events"] as? [[String]]) == [["orders"]])
            let errors = try #require(result["errors"] as? [String: [String: Any]], "\(result)")
            #expect(errors.keys.sorted() == ["/", "/orders"])
            #expect(errors.values.allSatisfy { $0["message"] as? String == "token expired" }, "\(errors)")
            #expect(result["closed"] as? Bool == true, "the connection stayed open: \(result)")
            try await eventually { gateway.io.of("/").localSockets.count == 0 && gateway.io.of("/orders").localSockets.count == 0 }
        }
    }

    @Test("with requireTokenExpiration a token without exp is refused, one with exp accepted")
    func requiredExpiration() async throws {
        var configuration = HeraldConfiguration()
        configuration.auth = .hs256(secret: secret)
        configuration.requireTokenExpiration = true
        try await withGateway(configuration) { _, port in
            let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            let forever = try await keys.sign(HeraldClaims(sub: SubjectClaim(value: "frank"), exp: nil, nbf: nil, rooms: nil))
            let url = "http://127.0.0.1:\(port)"
            let refused = try await PythonProcess(script: "listen.py", arguments: [url, "--token", forever, "--timeout", "1"]).result()
            #expect(refused["connected"] as? Bool == false)
            let message = (refused["error"] as? [String: Any])?["message"] as? String
            #expect(message?.hasPrefix("token has no exp claim") == true, "\(String(describing: message))")
            #expect(message?.contains("jwt-require-exp") == true)
            let expiring = try await token(secret: secret, sub: "frank", expiresIn: 600)
            let accepted = try await PythonProcess(script: "listen.py", arguments: [url, "--token", expiring, "--timeout", "0.1"]).result()
            #expect(accepted["connected"] as? Bool == true)
        }
    }

    @Test("a token signed by any key of a PEM file is accepted, without a kid")
    func everyPEMKeyVerifies() async throws {
        let first = ES256PrivateKey()
        let second = ES256PrivateKey()
        let stranger = ES256PrivateKey()
        let pem = FileManager.default.temporaryDirectory.appendingPathComponent("herald-\(UUID().uuidString).pem").path
        defer { try? FileManager.default.removeItem(atPath: pem) }
        try (first.publicKey.pemRepresentation + "\n" + second.publicKey.pemRepresentation + "\n").write(
            toFile: pem, atomically: true, encoding: .utf8)
        var configuration = HeraldConfiguration()
        configuration.auth = .publicKeys(pemFile: pem)
        try await withGateway(configuration) { gateway, port in
            let url = "http://127.0.0.1:\(port)"
            func signed(by key: ES256PrivateKey, sub: String) async throws -> String {
                let keys = await JWTKeyCollection().add(ecdsa: key)
                return try await keys.sign(
                    HeraldClaims(sub: SubjectClaim(value: sub), exp: ExpirationClaim(value: Date().addingTimeInterval(600)), nbf: nil, rooms: nil))
            }
            for (key, sub) in [(second, "gina"), (first, "hank")] {
                let listener = try PythonProcess(
                    script: "listen.py", arguments: [url, "--token", try await signed(by: key, sub: sub), "--count", "1", "--timeout", "10"])
                try await waitForRoom(gateway, "user:\(sub)")
                #expect(
                    try await send(.POST, port: port, path: "/api/emit", body: #"{"event":"item_added","data":"for \#(sub)","to":"user:\#(sub)"}"#)
                        .status == 202)
                let result = try await listener.result()
                #expect(result["connected"] as? Bool == true, "\(sub): \(result)")
                #expect((result["events"] as? [[String]]) == [["for \(sub)"]])
            }
            let refused = try await PythonProcess(
                script: "listen.py", arguments: [url, "--token", try await signed(by: stranger, sub: "ivan"), "--timeout", "1"]
            ).result()
            #expect(refused["connected"] as? Bool == false)
            #expect(((refused["error"] as? [String: Any])?["message"] as? String) == "invalid token: bad signature")
        }
    }

    @Test("/metrics counts deliveries per recipient and messages that reached nobody, with counter and gauge types")
    func deliveryMetrics() async throws {
        try await withGateway(HeraldConfiguration()) { gateway, port in
            let emit = #"{"event":"item_added","data":1}"#
            #expect(try await send(.POST, port: port, path: "/api/emit", body: emit).status == 202)
            var metrics = try await send(port: port, path: "/metrics").body
            #expect(metrics.contains("herald_messages_broadcast_total 1\n"), "\(metrics)")
            #expect(metrics.contains("herald_deliveries_total 0\n"))
            #expect(metrics.contains("herald_messages_without_recipients_total 1\n"))

            let url = "http://127.0.0.1:\(port)"
            let listeners = try (0..<2).map { _ in try PythonProcess(script: "listen.py", arguments: [url, "--count", "1", "--timeout", "10"]) }
            try await eventually { gateway.io.of("/").localSockets.count == 2 }
            #expect(try await send(.POST, port: port, path: "/api/emit", body: emit).status == 202)
            for listener in listeners { #expect((try await listener.result()["events"] as? [[Int]]) == [[1]]) }
            try await eventually { gateway.stats.connectedClients == 0 }

            metrics = try await send(port: port, path: "/metrics").body
            #expect(metrics.contains("herald_messages_broadcast_total 2\n"), "\(metrics)")
            #expect(metrics.contains("herald_deliveries_total 2\n"))
            #expect(metrics.contains("herald_messages_without_recipients_total 1\n"))
            #expect(metrics.contains("herald_connections_total 2\n"))
            #expect(metrics.contains("herald_connected_clients 0.0\n"))
            for counter in [
                "herald_connections_total", "herald_messages_broadcast_total", "herald_deliveries_total",
                "herald_messages_without_recipients_total", "herald_events_in_total", "herald_dropped_packets_total",
                "herald_slow_client_disconnects_total",
            ] {
                #expect(metrics.contains("# TYPE \(counter) counter\n"), "\(counter)")
                #expect(metrics.contains("# HELP \(counter) "), "\(counter)")
            }
            for gauge in ["herald_connected_clients", "herald_namespace_clients"] {
                #expect(metrics.contains("# TYPE \(gauge) gauge\n"), "\(gauge)")
            }
            // A second scrape reports the same totals (counters advance by what grew, once).
            #expect(try await send(port: port, path: "/metrics").body.contains("herald_deliveries_total 2\n"))
            let stats = try await send(port: port, path: "/api/stats").body
            #expect(
                stats.contains(#""messages":2"#) && stats.contains(#""deliveries":2"#) && stats.contains(#""messagesWithoutRecipients":1"#),
                "\(stats)")
        }
    }

    @Test("GET and other methods on the publish API answer 405 with Allow: POST")
    func publishMethodNotAllowed() async throws {
        var configuration = HeraldConfiguration()
        configuration.apiKey = "k3y"
        try await withGateway(configuration) { _, port in
            for path in ["/api/emit", "/api/emit/batch"] {
                for method in [HTTPMethod.GET, .PUT, .DELETE] {
                    let answer = try await send(method, port: port, path: path)
                    #expect(answer.status == 405, "\(method) \(path)")
                    #expect(answer.headers["allow"] == ["POST"], "\(method) \(path)")
                }
            }
        }
    }

    @Test("a repeated id is answered as a duplicate and not delivered again")
    func duplicateIDs() async throws {
        try await withGateway(HeraldConfiguration()) { gateway, port in
            let listener = try PythonProcess(script: "listen.py", arguments: ["http://127.0.0.1:\(port)", "--count", "4", "--timeout", "10"])
            try await eventually { gateway.io.of("/").localSockets.count == 1 }
            let once = #"{"event":"item_added","data":"once","id":"order-1"}"#
            var answer = try await send(.POST, port: port, path: "/api/emit", body: once)
            #expect(answer.status == 202 && answer.body == "{\"accepted\":1}\n", "\(answer.body)")
            answer = try await send(.POST, port: port, path: "/api/emit", body: once)
            #expect(answer.status == 202 && answer.body == "{\"accepted\":0,\"duplicates\":1}\n", "\(answer.body)")
            let batch =
                #"[{"event":"item_added","data":"a","id":"b-1"},{"event":"item_added","data":"again","id":"b-1"},{"event":"item_added","data":"once","id":"order-1"},{"event":"item_added","data":"no id"}]"#
            answer = try await send(.POST, port: port, path: "/api/emit/batch", body: batch)
            #expect(answer.status == 202 && answer.body == "{\"accepted\":2,\"duplicates\":2}\n", "\(answer.body)")
            // A message without an id is never a duplicate; it also closes the stream the client waits for.
            #expect(try await send(.POST, port: port, path: "/api/emit", body: #"{"event":"item_added","data":"no id"}"#).status == 202)
            let events = try await listener.result()["events"] as? [[String]]
            #expect(events == [["once"], ["a"], ["no id"], ["no id"]])
        }
    }
}
