import Foundation
public import HeraldQueue
public import NIOCore
import SocketIO
import Tracing

extension HeraldGateway {
    /// The consumer's handler: decodes a queue message (envelope, or raw body routed by its
    /// attributes) and hands it to the broadcast path. A message that cannot be routed is
    /// rejected with the reason, so it goes to the dead-letter queue or is logged and counted.
    public func handOff(_ message: QueueMessage) async -> HandOffResult {
        await waitForBacklog()
        let decoded: HeraldMessage
        do {
            decoded = try HeraldMessage.decode(body: message.body, attributes: message.messageAttributes, defaultEvent: configuration.defaultEvent)
        } catch {
            return .reject(reason: error.description)
        }
        // The message is deleted once its event was written to the loops: with a recovery store,
        // once the store kept it, so that a crash after the delete loses nothing (one delivered
        // again after a crash before the delete is recognised by its id in the log); in a
        // cluster, once it was published to the other nodes (else it comes again). The hand-off
        // returns at once: the next message follows in order while this one is written.
        // The previous message of its group may have been taken by another node: its broadcast,
        // committed before this message could be received, reaches this node's clients first
        // (a cluster that sequences broadcasts delivers them in commit order anyway).
        if message.groupID != nil, let cluster, cluster.recovery == nil { _ = await cluster.barrier(namespace: decoded.namespace) }
        let written = DeliveryWait(count: 1)
        // A child of the consumer's hand-off span; it ends once the event was written to the
        // loops (and, in a cluster, published to the other nodes).
        let span = InstrumentationSystem.tracer.startSpan("broadcast", context: ServiceContext.current ?? .topLevel, ofKind: .producer)
        span.attributes["socket.io.event"] = decoded.event
        span.attributes["socket.io.namespace"] = decoded.namespace
        do {
            let delivered: @Sendable (SocketIODelivery) -> Void = { delivery in
                span.attributes["socket.io.recipients"] = delivery.localRecipients
                span.end()
                written.done(delivery)
            }
            if try !deliver(decoded, messageID: message.id, delivered: delivered) {
                span.attributes["herald.outcome"] = "already in the recovery log"
                span.end()
                stats.duplicateSkipped()
                logger.debug(
                    "A queue message whose event is in the recovery log came again; not broadcast twice",
                    metadata: ["message_id": "\(message.id)"])
                return .handedOff
            }
        } catch {
            let reason = String(describing: error)
            span.setStatus(SpanStatus(code: .error, message: reason))
            span.end()
            return .reject(reason: reason)
        }
        if let sent = message.sentTimestamp {
            stats.recordQueueLag(seconds: max(0, Date().timeIntervalSince(sent)))
        }
        return .handedOffOnceSettled(HandOffSettlement { await written.reachedCluster() })
    }
}

/// Publishes into the embedded queue: the publish API answers once the messages are committed
/// to disk, and the consumer delivers them. Every message is in one group, so an ordered source
/// delivers them in the order they were published.
public struct EmbeddedQueuePublisher: HeraldPublisher {
    /// The group of published messages.
    public static let group = "herald"
    let queue: EmbeddedQueue

    /// Creates a publisher that enqueues into `queue`.
    public init(queue: EmbeddedQueue) { self.queue = queue }

    public func publish(_ messages: [HeraldMessage], bodies: [ByteBuffer]) async throws {
        let batch = zip(messages, bodies).map { message, body in
            EmbeddedQueue.NewMessage(
                body: body, attributes: message.id.map { [HeraldMessage.idAttribute: $0] } ?? [:], groupID: Self.group
            )
        }
        _ = try await queue.enqueue(batch: batch)
    }
}

/// Publishes into the PostgreSQL outbox: the publish API answers once the rows are committed,
/// and the consumer delivers them. Every row has one key, so they are delivered in the order
/// they were published.
public struct OutboxPublisher: HeraldPublisher {
    /// The key of published rows.
    public static let key = "herald"
    let outbox: PostgresOutbox

    /// Creates a publisher that inserts into `outbox`.
    public init(outbox: PostgresOutbox) { self.outbox = outbox }

    public func publish(_ messages: [HeraldMessage], bodies: [ByteBuffer]) async throws {
        try await outbox.insert(
            zip(messages, bodies).map { message, body in
                (body: body, attributes: message.id.map { [HeraldMessage.idAttribute: $0] } ?? [:], key: Self.key)
            })
    }
}
