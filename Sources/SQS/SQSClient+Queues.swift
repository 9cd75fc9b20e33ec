// Wire shapes below use the JSON protocol's member names as property names.

extension SQSClient {
    /// Creates a queue, or returns the URL of an existing one with identical attributes.
    ///
    /// - Parameters:
    ///   - name: The queue name; FIFO queues end in `.fifo` and need `[.fifoQueue: "true"]`.
    ///   - attributes: E.g. `[.visibilityTimeout: "60", .fifoQueue: "true"]`; see ``QueueAttributeName/redrivePolicy``.
    ///   - tags: Cost-allocation tags.
    /// - Returns: The queue URL.
    public func createQueue(
        name: String,
        attributes: [QueueAttributeName: String] = [:],
        tags: [String: String] = [:]
    ) async throws -> String {
        struct Input: Encodable {
            var QueueName: String
            var Attributes: [String: String]?
            var tags: [String: String]?
        }
        struct Output: Decodable { var QueueUrl: String }
        let input = Input(
            QueueName: name,
            Attributes: attributes.isEmpty ? nil : Dictionary(uniqueKeysWithValues: attributes.map { ($0.rawValue, $1) }),
            tags: tags.isEmpty ? nil : tags
        )
        return try await call("CreateQueue", input, as: Output.self).QueueUrl
    }

    /// Looks up a queue's URL by name, optionally in another account.
    public func getQueueURL(name: String, ownerAccountID: String? = nil) async throws -> String {
        struct Input: Encodable {
            var QueueName: String
            var QueueOwnerAWSAccountId: String?
        }
        struct Output: Decodable { var QueueUrl: String }
        return try await call("GetQueueUrl", Input(QueueName: name, QueueOwnerAWSAccountId: ownerAccountID), as: Output.self)
            .QueueUrl
    }

    /// Reads queue attributes, e.g. `[.approximateNumberOfMessages, .queueArn]`; values are strings as on the wire.
    public func getQueueAttributes(
        queueURL: String,
        names: [QueueAttributeName] = [.all]
    ) async throws -> [QueueAttributeName: String] {
        struct Input: Encodable {
            var QueueUrl: String
            var AttributeNames: [String]
        }
        struct Output: Decodable { var Attributes: [String: String]? }
        let output = try await call(
            "GetQueueAttributes", Input(QueueUrl: queueURL, AttributeNames: names.map(\.rawValue)), as: Output.self
        )
        return Dictionary(uniqueKeysWithValues: (output.Attributes ?? [:]).map { (QueueAttributeName(rawValue: $0), $1) })
    }
}
