// Wire shapes below use the JSON protocol's member names as property names.

extension SQSClient {
    /// Receives up to `maxNumberOfMessages` messages, long-polling for up to `waitTimeSeconds`.
    ///
    /// - Parameters:
    ///   - queueURL: The queue URL, as returned by CreateQueue or GetQueueUrl.
    ///   - maxNumberOfMessages: 1–10.
    ///   - waitTimeSeconds: 0–20; `nil` uses the queue's `ReceiveMessageWaitTimeSeconds`.
    ///     The request timeout is extended by this much.
    ///   - visibilityTimeout: Seconds the messages stay hidden; `nil` uses the queue's setting.
    ///   - systemAttributeNames: System attributes to return, e.g. `[.approximateReceiveCount]`.
    ///   - messageAttributeNames: User attributes to return; `["All"]` for every one.
    /// - Returns: The messages; empty when the wait ended with none.
    public func receiveMessages(
        queueURL: String,
        maxNumberOfMessages: Int = 1,
        waitTimeSeconds: Int? = nil,
        visibilityTimeout: Int? = nil,
        systemAttributeNames: [MessageSystemAttributeName] = [],
        messageAttributeNames: [String] = []
    ) async throws -> [SQSMessage] {
        struct Input: Encodable {
            var QueueUrl: String
            var MaxNumberOfMessages: Int
            var WaitTimeSeconds: Int?
            var VisibilityTimeout: Int?
            var MessageSystemAttributeNames: [String]?
            var MessageAttributeNames: [String]?
        }
        struct Output: Decodable { var Messages: [SQSMessage]? }
        let input = Input(
            QueueUrl: queueURL,
            MaxNumberOfMessages: maxNumberOfMessages,
            WaitTimeSeconds: waitTimeSeconds,
            VisibilityTimeout: visibilityTimeout,
            MessageSystemAttributeNames: systemAttributeNames.isEmpty ? nil : systemAttributeNames.map(\.rawValue),
            MessageAttributeNames: messageAttributeNames.isEmpty ? nil : messageAttributeNames
        )
        let output = try await call("ReceiveMessage", input, extraTime: .seconds(waitTimeSeconds ?? 20), as: Output.self)
        return output.Messages ?? []
    }

    /// Sends one message.
    ///
    /// - Parameters:
    ///   - queueURL: The queue URL.
    ///   - body: The body, up to the queue's maximum size.
    ///   - delaySeconds: Seconds to delay delivery (standard queues only).
    ///   - messageAttributes: User-defined attributes.
    ///   - messageGroupID: The FIFO message group (required for FIFO queues).
    ///   - messageDeduplicationID: The FIFO deduplication ID (unless the queue deduplicates by content).
    public func sendMessage(
        queueURL: String,
        body: String,
        delaySeconds: Int? = nil,
        messageAttributes: [String: MessageAttributeValue] = [:],
        messageGroupID: String? = nil,
        messageDeduplicationID: String? = nil
    ) async throws -> SendMessageResult {
        struct Input: Encodable {
            var QueueUrl: String
            var MessageBody: String
            var DelaySeconds: Int?
            var MessageAttributes: [String: MessageAttributeValue]?
            var MessageGroupId: String?
            var MessageDeduplicationId: String?
        }
        let input = Input(
            QueueUrl: queueURL,
            MessageBody: body,
            DelaySeconds: delaySeconds,
            MessageAttributes: messageAttributes.isEmpty ? nil : messageAttributes,
            MessageGroupId: messageGroupID,
            MessageDeduplicationId: messageDeduplicationID
        )
        return try await call("SendMessage", input)
    }

    /// Sends up to 10 messages in one request; check the result's `failed` entries.
    public func sendMessageBatch(
        queueURL: String,
        entries: [SendMessageBatchEntry]
    ) async throws -> BatchResult<SendMessageResult> {
        try await call("SendMessageBatch", BatchInput(QueueUrl: queueURL, Entries: entries))
    }

    /// Deletes a received message.
    public func deleteMessage(queueURL: String, receiptHandle: String) async throws {
        struct Input: Encodable {
            var QueueUrl: String
            var ReceiptHandle: String
        }
        _ = try await call("DeleteMessage", Input(QueueUrl: queueURL, ReceiptHandle: receiptHandle), as: EmptyOutput.self)
    }

    /// Deletes up to 10 received messages in one request; check the result's `failed` entries.
    public func deleteMessageBatch(
        queueURL: String,
        entries: [DeleteMessageBatchEntry]
    ) async throws -> BatchResult<BatchResultEntry> {
        try await call("DeleteMessageBatch", BatchInput(QueueUrl: queueURL, Entries: entries))
    }

    /// Hides a received message for `visibilityTimeout` more seconds (0 makes it visible now).
    public func changeMessageVisibility(queueURL: String, receiptHandle: String, visibilityTimeout: Int) async throws {
        struct Input: Encodable {
            var QueueUrl: String
            var ReceiptHandle: String
            var VisibilityTimeout: Int
        }
        let input = Input(QueueUrl: queueURL, ReceiptHandle: receiptHandle, VisibilityTimeout: visibilityTimeout)
        _ = try await call("ChangeMessageVisibility", input, as: EmptyOutput.self)
    }

    /// Changes the visibility of up to 10 messages in one request; check the result's `failed` entries.
    public func changeMessageVisibilityBatch(
        queueURL: String,
        entries: [ChangeMessageVisibilityBatchEntry]
    ) async throws -> BatchResult<BatchResultEntry> {
        try await call("ChangeMessageVisibilityBatch", BatchInput(QueueUrl: queueURL, Entries: entries))
    }
}

/// The input of every batch operation: a queue and its entries.
private struct BatchInput<Entry: Encodable>: Encodable {
    var QueueUrl: String
    var Entries: [Entry]
}
