import AsyncHTTPClient
import Foundation
public import HeraldQueue
import Logging
public import Metrics
import NIOCore
public import SQS
import SocketIO
import Synchronization
import Tracing

/// Where client events go upstream: an HTTP webhook (whose JSON answer becomes the client's
/// acknowledgement) and/or an SQS queue.
public struct HeraldUpstreamConfiguration: Sendable {
    /// The client events to forward; `["*"]` forwards all.
    public var events: Set<String>
    /// The webhook receiving a POST per event.
    public var webhookURL: String?
    /// The queue receiving a message per event, and the client that sends to it.
    public var queue: (client: SQSClient, url: String)?
    /// How long the webhook may take to answer, per attempt.
    public var timeout: Duration = .seconds(10)
    /// The most events being forwarded at once, for all sockets together; past it an event is
    /// refused (its acknowledgement is `{"error": …}`) and counted in `herald_upstream_refused_total`.
    public var maxInFlight = 64
    /// How many times a forward is tried when the webhook cannot be reached or answers 5xx, or the
    /// queue send fails in a way worth retrying (1 tries once).
    public var maxAttempts = 3
    /// The wait between attempts: exponential, with jitter.
    public var retryBackoff = Backoff(base: .milliseconds(100), max: .seconds(2))
    /// Where the `herald_upstream_*` metrics go; `nil` for the process-wide `MetricsSystem.factory`.
    public var metricsFactory: (any MetricsFactory)?

    /// Forwards `events` to a webhook and/or a queue.
    public init(events: Set<String>, webhookURL: String? = nil, queue: (client: SQSClient, url: String)? = nil) {
        self.events = events
        self.webhookURL = webhookURL
        self.queue = queue
    }

    func forwards(_ event: String) -> Bool { events.contains("*") || events.contains(event) }
}

/// Forwards client events upstream, outside the order of the socket that sent them.
///
/// The body (webhook POST and queue message alike) is
/// `{"socket": id, "namespace": "/", "event": name, "args": [...], "claims": {...}}`. A binary
/// argument (or binary value nested in one) is sent as `{"_binary": "<standard base64 with padding>"}`.
/// When the client asked for an acknowledgement, the webhook's JSON answer is sent back as its
/// single argument (`{"error": ...}` when the webhook failed); with only a queue, the
/// acknowledgement is `{"queued": true}` once the message is sent.
///
/// Each event is forwarded on a task of its own, so a slow webhook does not hold up the socket's
/// later events; the webhook may therefore receive one socket's events out of order. At most
/// ``HeraldUpstreamConfiguration/maxInFlight`` forwards run at once; past it the event is refused
/// with an error acknowledgement. A webhook that cannot be reached or answers 5xx, and a queue send
/// that fails retryably, is tried up to ``HeraldUpstreamConfiguration/maxAttempts`` times with
/// jittered exponential backoff; a webhook that does not answer within the timeout is not tried
/// again (it may have acted on the event).
final class UpstreamForwarder: Sendable {
    let configuration: HeraldUpstreamConfiguration
    private let logger: Logger
    private let metrics: UpstreamMetrics
    private let inFlight = Atomic<Int>(0)

    init(configuration: HeraldUpstreamConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.metrics = UpstreamMetrics(factory: configuration.metricsFactory ?? MetricsSystem.factory)
    }

    /// Starts forwarding `event` and returns at once; refuses it when the bound is reached.
    func submit(_ event: SocketIOEvent) {
        let limit = max(1, configuration.maxInFlight)
        let running = inFlight.wrappingAdd(1, ordering: .relaxed).newValue
        guard running <= limit else {
            inFlight.wrappingSubtract(1, ordering: .relaxed)
            metrics.refused.increment()
            logger.warning("refused to forward '\(event.name)': \(limit) forwards are in flight (upstream max in flight)")
            event.ack?.send([["error": "the server is forwarding too many events; retry later"]])
            return
        }
        Task {
            defer { inFlight.wrappingSubtract(1, ordering: .relaxed) }
            await forward(event)
        }
    }

    private func forward(_ event: SocketIOEvent) async {
        let body: SocketIOValue = [
            "socket": .string(event.socket.id),
            "namespace": .string(event.socket.namespace.name),
            "event": .string(event.name),
            "args": .array(event.arguments.map(\.upstreamForm)),
            "claims": event.socket.data["claims"] ?? .object([:]),
        ]
        var answer: SocketIOValue?
        await withSpan("upstream forward", ofKind: .producer) { span in
            span.attributes["socket.io.event"] = event.name
            span.attributes["socket.io.namespace"] = event.socket.namespace.name
            if let (client, url) = configuration.queue {
                answer = await send(body, to: client, url: url, event: event.name)
            }
            if let url = configuration.webhookURL {
                answer = await post(body, to: url, event: event.name)
            }
            if answer?["error"] != nil { span.setStatus(SpanStatus(code: .error, message: "the upstream refused or failed")) }
        }
        if let ack = event.ack, let answer { ack(answer) }
    }

    /// One attempt's outcome.
    private enum Attempt {
        case answered(SocketIOValue)
        case retryable(SocketIOValue, String)
        case failed(SocketIOValue, String)
    }

    /// Runs `attempt` until it answers, fails for good, or the attempts are used up.
    private func withRetries(target: UpstreamMetrics.Target, event: String, _ attempt: () async -> Attempt) async -> SocketIOValue {
        metrics.forwards(target).increment()
        let attempts = max(1, configuration.maxAttempts)
        var number = 1
        while true {
            switch await attempt() {
            case .answered(let answer):
                return answer
            case .failed(let answer, let why):
                metrics.failures(target).increment()
                logger.warning("forwarding '\(event)' to the upstream \(target.rawValue) failed: \(why)")
                return answer
            case .retryable(let answer, let why):
                guard number < attempts else {
                    metrics.failures(target).increment()
                    logger.warning("forwarding '\(event)' to the upstream \(target.rawValue) failed after \(attempts) attempts: \(why)")
                    return answer
                }
                metrics.retries(target).increment()
                logger.debug("forwarding '\(event)' to the upstream \(target.rawValue) failed (\(why)); retrying")
                try? await Task.sleep(for: configuration.retryBackoff.jitteredDelay(attempt: number))
                number += 1
            }
        }
    }

    private func send(_ body: SocketIOValue, to client: SQSClient, url: String, event: String) async -> SocketIOValue {
        let text = String(buffer: body.jsonBytes)
        return await withRetries(target: .queue, event: event) {
            do {
                _ = try await client.sendMessage(queueURL: url, body: text)
                return .answered(["queued": true])
            } catch let error as SQSError where error.isRetryable {
                return .retryable(["error": "the event could not be queued"], "\(error)")
            } catch {
                return .failed(["error": "the event could not be queued"], "\(error)")
            }
        }
    }

    private func post(_ body: SocketIOValue, to url: String, event: String) async -> SocketIOValue {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(body.jsonBytes)
        return await withRetries(target: .webhook, event: event) {
            let response: HTTPClientResponse
            do {
                response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(configuration.timeout))
            } catch let error as HTTPClientError where error == .deadlineExceeded {
                return .failed(["error": "the webhook did not answer in time"], "\(error)")
            } catch {
                return .retryable(["error": "the webhook could not be reached"], "\(error)")
            }
            let status = Int(response.status.code)
            let bytes: ByteBuffer
            do {
                bytes = try await response.body.collect(upTo: 1 << 20)
            } catch {
                return .failed(["error": "the webhook's answer could not be read"], "reading the answer: \(error)")
            }
            switch status {
            case 200..<300:
                if bytes.readableBytes == 0 { return .answered(.null) }
                do {
                    return .answered(try SocketIOValue(json: bytes))
                } catch {
                    return .failed(["error": "the webhook's answer is not JSON"], "the answer is not JSON: \(error)")
                }
            case 500...:
                return .retryable(["error": .string("the webhook answered \(status)")], "answered \(status)")
            default:
                return .failed(["error": .string("the webhook answered \(status)")], "answered \(status)")
            }
        }
    }
}
