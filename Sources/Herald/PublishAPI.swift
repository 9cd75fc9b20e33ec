import Foundation
import HeraldQueue
public import Hummingbird
import NIOCore
import SocketIO

/// Where published messages go: straight to the broadcast path, or into a durable queue.
public protocol HeraldPublisher: Sendable {
    /// Takes the messages (and the bodies they were decoded from); returns once they are
    /// durably enqueued or handed off.
    func publish(_ messages: [HeraldMessage], bodies: [ByteBuffer]) async throws
}

/// Publishes by handing messages straight to the gateway's broadcast path.
public struct DirectPublisher: HeraldPublisher {
    let gateway: HeraldGateway

    /// Creates a publisher that delivers through `gateway`.
    public init(gateway: HeraldGateway) { self.gateway = gateway }

    /// With a recovery store, returns once the store kept the events (so that `202` means they
    /// survive a crash, as with a queue); in a cluster, once they were published to the other
    /// nodes, and throws ``HeraldClusterUnreachable`` when they could not be.
    public func publish(_ messages: [HeraldMessage], bodies: [ByteBuffer]) async throws {
        try gateway.checkBacklog()
        guard gateway.io.configuration.connectionStateRecovery?.store != nil || gateway.cluster != nil else {
            for message in messages { try gateway.deliver(message) }
            return
        }
        let written = DeliveryWait(count: messages.count)
        for message in messages { _ = try gateway.deliver(message, messageID: nil) { written.done($0) } }
        guard await written.reachedCluster() else { throw HeraldClusterUnreachable() }
    }
}

extension HeraldGateway {
    /// Adds the publish API to a router:
    /// - `POST /api/emit` with one envelope,
    /// - `POST /api/emit/batch` with a JSON array of envelopes,
    ///
    /// both answered `202 {"accepted": N}` once `publisher` took them; `401` without the
    /// configured bearer key (compared in constant time), `400` with a message for a bad body,
    /// `413` for a body over the limit, `405` with `Allow: POST` for another method.
    ///
    /// An envelope whose `id` was accepted within the duplicate window (see
    /// ``PublishDuplicates``) is not published again: the answer counts it apart,
    /// `{"accepted": 0, "duplicates": 1}`.
    public func addPublishRoutes<Context: RequestContext>(to router: Router<Context>, publisher: any HeraldPublisher) {
        let configuration = self.configuration
        let logger = self.logger
        let key = configuration.apiKey.map(AccessKey.init)
        let duplicates = PublishDuplicates()
        let handle: @Sendable (Request, Bool) async throws -> Response = { request, isBatch in
            if let key, !key.authorizes(authorization: request.headers[.authorization], allowBasic: false) {
                return .json(
                    status: .unauthorized, ["error": "a valid 'Authorization: Bearer <key>' header is required (the key is the gateway's api-key)"])
            }
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: configuration.maxPublishBodySize)
            } catch {
                return .json(status: .contentTooLarge, ["error": .string("the body is larger than \(configuration.maxPublishBodySize) bytes")])
            }
            var messages: [HeraldMessage]
            var bodies: [ByteBuffer]
            do {
                if isBatch {
                    messages = try HeraldMessage.decodeBatch(body: body)
                    bodies = (try? RawJSON.elements(of: body)) ?? []
                } else {
                    messages = [try HeraldMessage.decode(body: body)]
                    bodies = [body]
                }
                for message in messages where !configuration.namespaces.contains(message.namespace) {
                    throw HeraldMessageError("unknown namespace '\(message.namespace)' (served: \(configuration.namespaces.joined(separator: ", ")))")
                }
            } catch {
                return .json(status: .badRequest, ["error": .string(String(describing: error))])
            }
            let isNew = duplicates.reserve(messages.map(\.id))
            let repeated = isNew.count { !$0 }
            if repeated > 0 {
                let kept = isNew.indices.filter { isNew[$0] }
                messages = kept.map { messages[$0] }
                bodies = kept.compactMap { bodies.indices.contains($0) ? bodies[$0] : nil }
            }
            if !messages.isEmpty {
                do {
                    try await publisher.publish(messages, bodies: bodies)
                } catch let error as HeraldOverloadedError {
                    duplicates.release(messages.compactMap(\.id))
                    var response = Response.json(status: .serviceUnavailable, ["error": .string(error.description)])
                    response.headers[.retryAfter] = "1"
                    return response
                } catch {
                    duplicates.release(messages.compactMap(\.id))
                    logger.error("publishing failed: \(error)")
                    return .json(status: .serviceUnavailable, ["error": .string("the message could not be queued: \(error)")])
                }
            }
            var answer: SocketIOObject = ["accepted": .number(Double(messages.count))]
            if repeated > 0 { answer["duplicates"] = .number(Double(repeated)) }
            return .json(status: .accepted, answer)
        }
        router.post("/api/emit") { request, _ in try await handle(request, false) }
        router.post("/api/emit/batch") { request, _ in try await handle(request, true) }
        for path in ["/api/emit", "/api/emit/batch"] {
            for method in [HTTPRequest.Method.get, .put, .patch, .delete] {
                router.on(RouterPath(path), method: method) { _, _ in
                    var response = Response.json(status: .methodNotAllowed, ["error": .string("\(path) takes POST with a JSON body")])
                    response.headers[.allow] = "POST"
                    return response
                }
            }
        }
    }
}

extension Response {
    static func json(status: HTTPResponse.Status, _ object: SocketIOObject) -> Response {
        var body = SocketIOValue.object(object).jsonBytes
        body.writeString("\n")
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
}
