import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
public import SQS
import SocketIO

/// Where client events go upstream: an HTTP webhook (whose JSON answer becomes the client's
/// acknowledgement) and/or an SQS queue.
public struct HeraldUpstreamConfiguration: Sendable {
    /// The client events to forward; `["*"]` forwards all.
    public var events: Set<String>
    /// The webhook receiving a POST per event.
    public var webhookURL: String?
    /// The queue receiving a message per event, and the client that sends to it.
    public var queue: (client: SQSClient, url: String)?
    /// How long the webhook may take to answer.
    public var timeout: Duration = .seconds(10)

    /// Forwards `events` to a webhook and/or a queue.
    public init(events: Set<String>, webhookURL: String? = nil, queue: (client: SQSClient, url: String)? = nil) {
        self.events = events
        self.webhookURL = webhookURL
        self.queue = queue
    }

    func forwards(_ event: String) -> Bool { events.contains("*") || events.contains(event) }
}

/// Forwards client events upstream.
///
/// The body (webhook POST and queue message alike) is
/// `{"socket": id, "namespace": "/", "event": name, "args": [...], "claims": {...}}`. When the
/// client asked for an acknowledgement, the webhook's JSON answer is sent back as its single
/// argument (`{"error": ...}` when the webhook failed); with only a queue, the acknowledgement is
/// `{"queued": true}` once the message is sent.
struct UpstreamForwarder: Sendable {
    let configuration: HeraldUpstreamConfiguration
    let logger: Logger

    func forward(_ event: SocketIOEvent) async {
        let body: SocketIOValue = [
            "socket": .string(event.socket.id),
            "namespace": .string(event.socket.namespace.name),
            "event": .string(event.name),
            "args": .array(event.arguments),
            "claims": event.socket.data["claims"] ?? .object([:]),
        ]
        var answer: SocketIOValue?
        if let (client, url) = configuration.queue {
            do {
                _ = try await client.sendMessage(queueURL: url, body: String(buffer: body.jsonBytes))
                answer = ["queued": true]
            } catch {
                logger.error("forwarding '\(event.name)' to the upstream queue failed: \(error)")
                answer = ["error": .string("the event could not be queued")]
            }
        }
        if let url = configuration.webhookURL {
            answer = await post(body, to: url, event: event.name)
        }
        if let ack = event.ack, let answer { ack(answer) }
    }

    private func post(_ body: SocketIOValue, to url: String, event: String) async -> SocketIOValue {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(body.jsonBytes)
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: TimeAmount(configuration.timeout))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            guard (200..<300).contains(response.status.code) else {
                logger.warning("webhook answered \(response.status.code) to '\(event)'")
                return ["error": .string("the webhook answered \(response.status.code)")]
            }
            if bytes.readableBytes == 0 { return .null }
            return try SocketIOValue(json: bytes)
        } catch {
            logger.warning("webhook call for '\(event)' failed: \(error)")
            return ["error": .string("the webhook could not be reached")]
        }
    }
}
