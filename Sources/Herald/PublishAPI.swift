import Foundation
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

    public func publish(_ messages: [HeraldMessage], bodies: [ByteBuffer]) async throws {
        try gateway.checkBacklog()
        for message in messages { try gateway.deliver(message) }
    }
}

extension HeraldGateway {
    /// Adds the publish API to a router:
    /// - `POST /api/emit` with one envelope,
    /// - `POST /api/emit/batch` with a JSON array of envelopes,
    ///
    /// both answered `202 {"accepted": N}` once `publisher` took them; `401` without the
    /// configured bearer key, `400` with a message for a bad body, `413` for a body over the limit.
    public func addPublishRoutes<Context: RequestContext>(to router: Router<Context>, publisher: any HeraldPublisher) {
        let configuration = self.configuration
        let logger = self.logger
        let handle: @Sendable (Request, Bool) async throws -> Response = { request, isBatch in
            if let key = configuration.apiKey {
                guard request.headers[.authorization] == "Bearer \(key)" else {
                    return .json(status: .unauthorized, ["error": "a valid 'Authorization: Bearer <key>' header is required"])
                }
            }
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: configuration.maxPublishBodySize)
            } catch {
                return .json(status: .contentTooLarge, ["error": .string("the body is larger than \(configuration.maxPublishBodySize) bytes")])
            }
            let messages: [HeraldMessage]
            let bodies: [ByteBuffer]
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
            do {
                try await publisher.publish(messages, bodies: bodies)
            } catch let error as HeraldOverloadedError {
                var response = Response.json(status: .serviceUnavailable, ["error": .string(error.description)])
                response.headers[.retryAfter] = "1"
                return response
            } catch {
                logger.error("publishing failed: \(error)")
                return .json(status: .serviceUnavailable, ["error": .string("the message could not be queued: \(error)")])
            }
            return .json(status: .accepted, ["accepted": .number(Double(messages.count))])
        }
        router.post("/api/emit") { request, _ in try await handle(request, false) }
        router.post("/api/emit/batch") { request, _ in try await handle(request, true) }
    }
}

extension Response {
    static func json(status: HTTPResponse.Status, _ object: SocketIOObject) -> Response {
        var body = SocketIOValue.object(object).jsonBytes
        body.writeString("\n")
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }
}
