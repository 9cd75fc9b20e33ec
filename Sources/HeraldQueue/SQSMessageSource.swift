import Foundation
import NIOCore
public import SQS

/// A ``MessageSource`` over an SQS queue, through ``SQS/SQSClient``.
///
/// Receives ask for every message attribute and for the system attributes
/// `ApproximateReceiveCount`, `SentTimestamp` and `MessageGroupId`. ``describe()`` reads the
/// queue's `RedrivePolicy`, `VisibilityTimeout` and `FifoQueue` attributes.
public struct SQSMessageSource: MessageSource {
    /// The client requests go through.
    public let client: SQSClient
    /// The queue URL.
    public let queueURL: String
    /// The visibility timeout asked for on each receive, in seconds; `nil` uses the queue's.
    public let visibilityTimeout: Int?

    /// The queue's name, the last component of its URL.
    public var name: String {
        queueURL.split(separator: "/").last.map(String.init) ?? queueURL
    }

    /// SQS returns up to 10 messages per receive.
    public var maxReceiveBatchSize: Int { 10 }

    /// SQS deletes up to 10 messages per request.
    public var maxAcknowledgeBatchSize: Int { 10 }

    /// Each request is a round trip: deletes wait to fill a batch.
    public var acknowledgeFlushPolicy: AcknowledgeFlushPolicy { .fullBatchOrMaxWait }

    /// Creates a source.
    ///
    /// - Parameters:
    ///   - client: The SQS client.
    ///   - queueURL: The queue URL, as returned by CreateQueue or GetQueueUrl.
    ///   - visibilityTimeout: Seconds each receive hides its messages; `nil` for the queue's setting.
    public init(client: SQSClient, queueURL: String, visibilityTimeout: Int? = nil) {
        self.client = client
        self.queueURL = queueURL
        self.visibilityTimeout = visibilityTimeout
    }

    /// Reads the redrive policy, visibility timeout and FIFO flag with GetQueueAttributes.
    public func describe() async throws -> QueueDescription {
        let attributes = try await client.getQueueAttributes(
            queueURL: queueURL, names: [.redrivePolicy, .visibilityTimeout, .fifoQueue]
        )
        let policy = attributes[.redrivePolicy].flatMap(Self.parseRedrivePolicy)
        let seconds = visibilityTimeout ?? attributes[.visibilityTimeout].flatMap { Int($0) } ?? 30
        let isFIFO = attributes[.fifoQueue] == "true" || name.hasSuffix(".fifo")
        return QueueDescription(deadLetterPolicy: policy, visibilityTimeout: .seconds(seconds), isFIFO: isFIFO)
    }

    /// Parses `{"deadLetterTargetArn": "…", "maxReceiveCount": 5}` (the count may be a string).
    static func parseRedrivePolicy(_ json: String) -> DeadLetterPolicy? {
        guard
            let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let target = object["deadLetterTargetArn"] as? String
        else { return nil }
        let count: Int? =
            switch object["maxReceiveCount"] {
            case let number as NSNumber: number.intValue
            case let string as String: Int(string)
            default: nil
            }
        guard let count else { return nil }
        return DeadLetterPolicy(target: target, maxReceiveCount: count)
    }

    /// Long-polls with ReceiveMessage (at most 10 messages and 20 s).
    public func receive(maxMessages: Int, waitTime: Duration) async throws -> [QueueMessage] {
        let wait = min(max(Int(waitTime.seconds.rounded()), 0), 20)
        let messages = try await client.receiveMessages(
            queueURL: queueURL,
            maxNumberOfMessages: min(max(maxMessages, 1), 10),
            waitTimeSeconds: wait,
            visibilityTimeout: visibilityTimeout,
            systemAttributeNames: [.approximateReceiveCount, .sentTimestamp, .messageGroupID],
            messageAttributeNames: ["All"]
        )
        return messages.map(Self.queueMessage)
    }

    /// Converts an SQS message, keeping the body as bytes.
    static func queueMessage(_ message: SQSMessage) -> QueueMessage {
        var attributes: [String: String] = [:]
        for (name, value) in message.messageAttributes {
            attributes[name] = value.stringValue ?? value.binaryValue?.base64EncodedString() ?? ""
        }
        return QueueMessage(
            id: message.messageID,
            body: ByteBuffer(string: message.body),
            attributes: message.attributes,
            messageAttributes: attributes,
            receiveCount: message.approximateReceiveCount ?? 1,
            sentTimestamp: message.sentTimestamp,
            groupID: message.messageGroupID,
            receipt: QueueReceipt(messageID: message.messageID, handle: message.receiptHandle)
        )
    }

    /// Deletes with DeleteMessageBatch (10 entries per request), mapping each Failed entry back to its receipt.
    public func acknowledge(_ receipts: [QueueReceipt]) async throws -> [AcknowledgeFailure] {
        var failures: [AcknowledgeFailure] = []
        var start = 0
        while start < receipts.count {
            let chunk = Array(receipts[start..<min(start + 10, receipts.count)])
            start += 10
            let entries = chunk.enumerated().map {
                DeleteMessageBatchEntry(id: "m\($0.offset)", receiptHandle: $0.element.handle)
            }
            let result = try await client.deleteMessageBatch(queueURL: queueURL, entries: entries)
            for failed in result.failed {
                guard let index = Int(failed.id.dropFirst()), chunk.indices.contains(index) else { continue }
                failures.append(
                    AcknowledgeFailure(
                        receipt: chunk[index], code: failed.code, message: failed.message, isRetryable: !failed.senderFault
                    ))
            }
        }
        return failures
    }

    /// ChangeMessageVisibility, in whole seconds rounded up (0–43200).
    public func changeVisibility(of receipt: QueueReceipt, to timeout: Duration) async throws {
        let seconds = min(max(timeout.wholeSecondsRoundedUp, 0), 43_200)
        try await client.changeMessageVisibility(queueURL: queueURL, receiptHandle: receipt.handle, visibilityTimeout: seconds)
    }
}
