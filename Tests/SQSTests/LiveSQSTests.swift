import Foundation
import SQS
import Testing

/// Live tests against moto in server mode; `scripts/with-moto` starts it and sets the endpoint.
@Suite("Live SQS against moto", .enabled(if: Moto.endpoint != nil, Moto.skipMessage))
struct LiveSQSTests {
    let sqs = Moto.client()

    @Test("Creating a queue with attributes makes them readable and its URL findable by name")
    func createQueueAndReadAttributes() async throws {
        let deadLetterName = Moto.uniqueName("dlq")
        let deadLetterURL = try await sqs.createQueue(name: deadLetterName)
        let deadLetterARN = try #require(try await sqs.getQueueAttributes(queueURL: deadLetterURL, names: [.queueArn])[.queueArn])

        let name = Moto.uniqueName("main")
        let redrive = #"{"deadLetterTargetArn":"\#(deadLetterARN)","maxReceiveCount":"3"}"#
        let url = try await sqs.createQueue(
            name: name, attributes: [.visibilityTimeout: "45", .redrivePolicy: redrive], tags: ["team": "herald"]
        )
        #expect(url.hasSuffix("/\(name)"))
        #expect(try await sqs.getQueueURL(name: name) == url)

        let attributes = try await sqs.getQueueAttributes(queueURL: url)
        #expect(attributes[.visibilityTimeout] == "45")
        #expect(attributes[.redrivePolicy]?.contains(deadLetterARN) == true)
        #expect(attributes[.approximateNumberOfMessages] == "0")
    }

    @Test("A sent message is received with its attributes and is gone after deletion")
    func sendReceiveDelete() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("basic"))
        let sent = try await sqs.sendMessage(
            queueURL: url, body: #"{"event":"hello"}"#,
            messageAttributes: ["kind": .string("greeting"), "count": .number(3), "blob": .binary(Data([0, 1, 255]))]
        )
        #expect(!sent.messageID.isEmpty)
        #expect(sent.md5OfMessageBody == "690987f4983a74691f434987cf81ca6a")

        let before = Date().addingTimeInterval(-60)
        let messages = try await sqs.receiveMessages(
            queueURL: url, maxNumberOfMessages: 10, waitTimeSeconds: 1,
            systemAttributeNames: [.approximateReceiveCount, .sentTimestamp], messageAttributeNames: ["All"]
        )
        let message = try #require(messages.first)
        #expect(messages.count == 1)
        #expect(message.messageID == sent.messageID)
        #expect(message.body == #"{"event":"hello"}"#)
        #expect(message.approximateReceiveCount == 1)
        #expect(try #require(message.sentTimestamp) > before)
        #expect(message.messageAttributes["kind"] == .string("greeting"))
        #expect(message.messageAttributes["count"] == .number(3))
        #expect(message.messageAttributes["blob"]?.binaryValue == Data([0, 1, 255]))

        try await sqs.deleteMessage(queueURL: url, receiptHandle: message.receiptHandle)
        #expect(try await sqs.receiveMessages(queueURL: url, waitTimeSeconds: 0).isEmpty)
    }

    @Test("Batch send succeeds per entry and batch delete reports a bad receipt handle as Failed")
    func batchSendAndDeleteWithFailure() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("batch"))
        let sent = try await sqs.sendMessageBatch(
            queueURL: url,
            entries: (1...3).map {
                SendMessageBatchEntry(id: "m\($0)", body: "body \($0)", messageAttributes: ["n": .number($0)])
            })
        #expect(Set(sent.successful.compactMap(\.id)) == ["m1", "m2", "m3"])
        #expect(sent.failed.isEmpty)

        let received = try await sqs.receiveMessages(queueURL: url, maxNumberOfMessages: 10, waitTimeSeconds: 1)
        #expect(received.count == 3)
        var entries = received.enumerated().map { DeleteMessageBatchEntry(id: "d\($0.offset)", receiptHandle: $0.element.receiptHandle) }
        entries.append(DeleteMessageBatchEntry(id: "bogus", receiptHandle: "not-a-receipt-handle"))

        let deleted = try await sqs.deleteMessageBatch(queueURL: url, entries: entries)
        #expect(deleted.successful.count == 3)
        let failure = try #require(deleted.failed.first)
        #expect(deleted.failed.count == 1)
        #expect(failure.id == "bogus")
        #expect(failure.code == "ReceiptHandleIsInvalid")
        #expect(failure.senderFault)
        #expect(failure.message?.contains("not-a-receipt-handle") == true)
    }

    @Test("Changing visibility to zero makes a message receivable again with a higher receive count")
    func changeVisibility() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("visibility"))
        _ = try await sqs.sendMessage(queueURL: url, body: "again")

        let first = try #require(try await sqs.receiveMessages(queueURL: url, waitTimeSeconds: 1, visibilityTimeout: 60).first)
        #expect(try await sqs.receiveMessages(queueURL: url, waitTimeSeconds: 0).isEmpty)

        try await sqs.changeMessageVisibility(queueURL: url, receiptHandle: first.receiptHandle, visibilityTimeout: 0)
        let second = try #require(
            try await sqs.receiveMessages(
                queueURL: url, waitTimeSeconds: 1, visibilityTimeout: 60, systemAttributeNames: [.all]
            ).first)
        #expect(second.messageID == first.messageID)
        #expect(second.approximateReceiveCount == 2)

        let batch = try await sqs.changeMessageVisibilityBatch(
            queueURL: url,
            entries: [
                ChangeMessageVisibilityBatchEntry(id: "ok", receiptHandle: second.receiptHandle, visibilityTimeout: 0),
                ChangeMessageVisibilityBatchEntry(id: "bad", receiptHandle: "nope", visibilityTimeout: 0),
            ])
        #expect(batch.successful.map(\.id) == ["ok"])
        #expect(batch.failed.map(\.id) == ["bad"])
        #expect(batch.failed.first?.code == "ReceiptHandleIsInvalid")
    }

    @Test("A FIFO queue keeps order within a message group and reports the group id")
    func fifoGroups() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("orders", fifo: true), attributes: [.fifoQueue: "true"])
        var sequenceNumbers: [String] = []
        for index in 1...3 {
            let result = try await sqs.sendMessage(
                queueURL: url, body: "order \(index)", messageGroupID: "customer-42", messageDeduplicationID: "dedup-\(index)"
            )
            sequenceNumbers.append(try #require(result.sequenceNumber))
        }
        let duplicate = try await sqs.sendMessage(
            queueURL: url, body: "order 1 again", messageGroupID: "customer-42", messageDeduplicationID: "dedup-1"
        )
        #expect(!duplicate.messageID.isEmpty)

        let messages = try await sqs.receiveMessages(
            queueURL: url, maxNumberOfMessages: 10, waitTimeSeconds: 1,
            systemAttributeNames: [.messageGroupID, .sequenceNumber, .messageDeduplicationID]
        )
        #expect(messages.map(\.body) == ["order 1", "order 2", "order 3"])
        #expect(messages.allSatisfy { $0.messageGroupID == "customer-42" })
        #expect(messages.compactMap { $0.attributes["SequenceNumber"] } == sequenceNumbers)

        let batch = try await sqs.sendMessageBatch(
            queueURL: url,
            entries: [
                SendMessageBatchEntry(id: "a", body: "x", messageGroupID: "g2", messageDeduplicationID: "x1"),
                SendMessageBatchEntry(id: "b", body: "y", messageGroupID: "g2", messageDeduplicationID: "y1"),
            ])
        #expect(batch.successful.allSatisfy { $0.sequenceNumber != nil })
    }

    @Test("A missing queue is reported as QueueDoesNotExist with the legacy code and sender fault")
    func nonExistentQueue() async throws {
        let error = await #expect(throws: SQSError.self) { try await sqs.getQueueURL(name: Moto.uniqueName("missing")) }
        let sqsError = try #require(error)
        #expect(sqsError.kind == .service)
        #expect(sqsError.operation == "GetQueueUrl")
        #expect(sqsError.code == "QueueDoesNotExist")
        #expect(sqsError.queryErrorCode == "AWS.SimpleQueueService.NonExistentQueue")
        #expect(sqsError.isSenderFault == true)
        #expect(sqsError.statusCode == 400)
        #expect(sqsError.isQueueDoesNotExist)
        #expect(sqsError.message?.isEmpty == false)
    }

    @Test("An empty long poll returns no messages after the wait time")
    func emptyLongPoll() async throws {
        let url = try await sqs.createQueue(name: Moto.uniqueName("empty"))
        let clock = ContinuousClock()
        let start = clock.now
        let messages = try await sqs.receiveMessages(queueURL: url, waitTimeSeconds: 1)
        #expect(messages.isEmpty)
        #expect(clock.now - start >= .milliseconds(900))
    }

    @Test("The web identity provider gets credentials from moto's STS that SQS then accepts")
    func webIdentityAgainstMotoSTS() async throws {
        let token = try TemporaryFile(contents: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJoZXJhbGQifQ.")
        let provider = CachingCredentialsProvider.defaultChain(
            environment: [
                "HOME": "/nonexistent",
                "AWS_WEB_IDENTITY_TOKEN_FILE": token.path,
                "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/herald",
                "AWS_ROLE_SESSION_NAME": "herald-live-test",
            ],
            stsEndpoint: Moto.endpoint
        )
        let credentials = try await provider.credentials()
        #expect(credentials.sessionToken?.isEmpty == false)
        #expect(try #require(credentials.expiration) > Date())

        let client = Moto.client(credentials: provider)
        let url = try await client.createQueue(name: Moto.uniqueName("web-identity"))
        #expect(url.contains("web-identity"))
    }
}

/// Guards against live tests silently not running where they must.
@Suite("Live test wiring")
struct LiveTestWiringTests {
    @Test("CI runs the live tests, so the moto endpoints are set there", .enabled(if: Moto.environment["CI"] != nil))
    func endpointsAreSetInCI() {
        #expect(Moto.endpoint != nil, "run the tests through scripts/with-moto")
        #expect(Moto.authEndpoint != nil, "run the tests through scripts/with-moto")
    }
}
