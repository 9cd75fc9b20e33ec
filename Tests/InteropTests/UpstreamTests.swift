import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import Prometheus
import SocketIO
import Testing

@testable import Herald

/// A webhook on a free loopback port for the duration of `body`; `answer` gets each request's JSON
/// body and returns the status and JSON answer.
func withWebhook(
    _ answer: @escaping @Sendable (SocketIOValue) async throws -> (HTTPResponse.Status, SocketIOValue),
    _ body: @Sendable (_ url: String) async throws -> Void
) async throws {
    let router = Router()
    router.post("/hook") { request, _ -> Response in
        var request = request
        let (status, value) = try await answer(try SocketIOValue(json: try await request.collectBody(upTo: 1 << 20)))
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: value.jsonBytes))
    }
    try await withApplication(router: router) { port in try await body("http://127.0.0.1:\(port)/hook") }
}

/// The value of a sample in Prometheus text (`name{labels}`, exactly as written), or `nil`.
func sample(_ line: String, in registry: PrometheusCollectorRegistry) -> Double? {
    var buffer: [UInt8] = []
    registry.emit(into: &buffer)
    let text = String(decoding: buffer, as: UTF8.self)
    return text.split(separator: "\n").first { $0.hasPrefix(line + " ") }.flatMap { Double($0.dropFirst(line.count + 1)) }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
func holds(within timeout: Duration, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while !condition() {
        guard ContinuousClock.now < deadline else { return false }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return true
}

extension GatewayTests {
    /// Forwards `events` to `url` with metrics in `registry` and fast retries.
    func upstream(_ url: String, registry: PrometheusCollectorRegistry, maxInFlight: Int = 64) -> HeraldConfiguration {
        var upstream = HeraldUpstreamConfiguration(events: ["*"], webhookURL: url)
        upstream.maxInFlight = maxInFlight
        upstream.retryBackoff = .init(base: .milliseconds(20), max: .milliseconds(100))
        upstream.metricsFactory = PrometheusMetricsFactory(registry: registry)
        var configuration = HeraldConfiguration()
        configuration.upstream = upstream
        return configuration
    }

    @Test("a slow webhook does not hold up the socket's next event")
    func slowWebhookDoesNotBlock() async throws {
        let fastArrived = NIOLockedValueBox(false)
        try await withWebhook({ body in
            if body["event"]?.stringValue == "fast" {
                fastArrived.withLockedValue { $0 = true }
                return (.ok, ["event": "fast"])
            }
            // The slow answer waits for the next event to reach the webhook (at most 5 s).
            let overlapped = await holds(within: .seconds(5)) { fastArrived.withLockedValue { $0 } }
            return (.ok, ["event": "slow", "overlapped": .bool(overlapped)])
        }) { url in
            try await withGateway(upstream(url, registry: PrometheusCollectorRegistry())) { _, port in
                let result = try await PythonProcess(script: "call.py", arguments: ["http://127.0.0.1:\(port)", "slow", "1", "fast", "2"]).result()
                let acks = try #require(result["acks"] as? [[String: Any]])
                #expect(acks.count == 2)
                #expect(acks.first?["overlapped"] as? Bool == true, "the second event reached the webhook while the first was unanswered")
                #expect(acks.last?["event"] as? String == "fast")
            }
        }
    }

    @Test("a webhook that answers 503 twice is tried again, and its third answer is the acknowledgement")
    func webhookRetries() async throws {
        let attempts = NIOLockedValueBox(0)
        let registry = PrometheusCollectorRegistry()
        try await withWebhook({ _ in
            let attempt = attempts.withLockedValue {
                $0 += 1
                return $0
            }
            return attempt < 3 ? (.serviceUnavailable, ["busy": true]) : (.ok, ["ok": true, "attempt": .number(Double(attempt))])
        }) { url in
            try await withGateway(upstream(url, registry: registry)) { _, port in
                let result = try await PythonProcess(script: "call.py", arguments: ["http://127.0.0.1:\(port)", "order", #"{"id": 1}"#]).result()
                let ack = try #require(result["ack"] as? [String: Any])
                #expect(ack["ok"] as? Bool == true)
                #expect(ack["attempt"] as? Int == 3)
            }
        }
        #expect(sample(#"herald_upstream_forwards_total{target="webhook"}"#, in: registry) == 1)
        #expect(sample(#"herald_upstream_retries_total{target="webhook"}"#, in: registry) == 2)
        #expect(sample(#"herald_upstream_failures_total{target="webhook"}"#, in: registry) == 0)
    }

    @Test("past the most forwards in flight an event is refused with an error acknowledgement, and counted")
    func forwardsAreBounded() async throws {
        let registry = PrometheusCollectorRegistry()
        try await withWebhook({ body in
            // The first forward holds the only slot until the second event was refused (at most 5 s).
            let refused = await holds(within: .seconds(5)) { sample("herald_upstream_refused_total", in: registry) == 1 }
            return (.ok, ["event": body["event"] ?? .null, "second_refused": .bool(refused)])
        }) { url in
            try await withGateway(upstream(url, registry: registry, maxInFlight: 1)) { _, port in
                let result = try await PythonProcess(script: "call.py", arguments: ["http://127.0.0.1:\(port)", "first", "1", "second", "2"]).result()
                let acks = try #require(result["acks"] as? [[String: Any]])
                #expect(acks.first?["event"] as? String == "first")
                #expect(acks.first?["second_refused"] as? Bool == true)
                #expect(acks.last?.count == 1)
                #expect(acks.last?["error"] as? String == "the server is forwarding too many events; retry later")
            }
        }
        #expect(sample("herald_upstream_refused_total", in: registry) == 1)
        #expect(sample(#"herald_upstream_forwards_total{target="webhook"}"#, in: registry) == 1)
    }

    @Test("binary arguments reach the webhook as base64, top-level and nested")
    func binaryArguments() async throws {
        try await withWebhook({ body in
            func hex(_ value: SocketIOValue?) -> SocketIOValue {
                guard let text = value?["_binary"]?.stringValue, let data = Data(base64Encoded: text) else { return .null }
                return .string(data.map { String(format: "%02x", $0) }.joined())
            }
            let argument = body["args"]?.arrayValue?.first
            return (.ok, ["top": hex(argument), "nested": hex(argument?["file"]), "name": argument?["name"] ?? .null])
        }) { url in
            try await withGateway(upstream(url, registry: PrometheusCollectorRegistry())) { _, port in
                let result = try await PythonProcess(
                    script: "call.py",
                    arguments: [
                        "http://127.0.0.1:\(port)", "upload", #"{"$bytes": "00ff10"}"#, "upload",
                        #"{"file": {"$bytes": "deadbeef00"}, "name": "a.bin"}"#,
                    ]
                ).result()
                let acks = try #require(result["acks"] as? [[String: Any]])
                #expect(acks.first?["top"] as? String == "00ff10")
                #expect(acks.last?["nested"] as? String == "deadbeef00")
                #expect(acks.last?["name"] as? String == "a.bin")
            }
        }
    }
}
