import Foundation
import SQS
import Testing

/// The client against a local fake endpoint: request shape, timeouts and transport errors.
@Suite("SQS client without moto")
struct SQSClientTests {
    static func client(_ endpoint: URL, timeout: Duration = .seconds(5), credentials: (any CredentialsProvider)? = nil) -> SQSClient {
        SQSClient(
            configuration: SQSConfiguration(
                region: "eu-west-1", endpoint: endpoint, requestTimeout: timeout,
                credentialsProvider: credentials ?? StaticCredentialsProvider(Moto.credentials)
            ))
    }

    @Test("Requests are signed JSON 1.0 POSTs with the operation in X-Amz-Target")
    func requestShape() async throws {
        try await LocalHTTPServer.with(respond: { _ in (200, #"{"QueueUrl":"http://q/123/jobs"}"#) }) { server in
            let url = try await Self.client(server.url).getQueueURL(name: "jobs", ownerAccountID: "123")
            #expect(url == "http://q/123/jobs")

            let request = try #require(server.requests.first)
            #expect(request.method == "POST")
            #expect(request.uri == "/")
            #expect(request.headers["x-amz-target"] == "AmazonSQS.GetQueueUrl")
            #expect(request.headers["content-type"] == "application/x-amz-json-1.0")
            #expect(request.headers["host"] == "127.0.0.1:\(server.port)")
            #expect(request.headers["x-amz-date"]?.count == 16)
            let authorization = try #require(request.headers["authorization"])
            #expect(authorization.hasPrefix("AWS4-HMAC-SHA256 Credential=testing/"))
            #expect(authorization.contains("/eu-west-1/sqs/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, "))
            let body = try JSONSerialization.jsonObject(with: Data(request.body.utf8)) as? [String: String]
            #expect(body == ["QueueName": "jobs", "QueueOwnerAWSAccountId": "123"])
        }
    }

    @Test("Operations without output accept an empty body")
    func emptyOutput() async throws {
        try await LocalHTTPServer.with(respond: { _ in (200, "") }) { server in
            try await Self.client(server.url).deleteMessage(queueURL: "http://q/1/jobs", receiptHandle: "rh")
            let body = try #require(server.requests.first?.body)
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: String]
            #expect(json == ["QueueUrl": "http://q/1/jobs", "ReceiptHandle": "rh"])
        }
    }

    @Test("An unanswered request fails with a timeout error after the request timeout")
    func timeout() async throws {
        try await LocalHTTPServer.with(respond: { _ in nil }) { server in
            let clock = ContinuousClock()
            let start = clock.now
            let error = await #expect(throws: SQSError.self) {
                try await Self.client(server.url, timeout: .milliseconds(300)).getQueueURL(name: "jobs")
            }
            #expect(error?.kind == .timeout)
            #expect(error?.isRetryable == true)
            #expect(error?.operation == "GetQueueUrl")
            // It waited for the timeout: how much longer depends on the machine's load, and the
            // event loop's timer may fire a few milliseconds before this test's clock says.
            #expect(clock.now - start >= .milliseconds(250))
        }
    }

    @Test("A closed port fails with a transport error")
    func transportError() async throws {
        // A socket bound but not listening: connections to its port are refused, and no other
        // test can take the port while it is held (a port freed by closing a server could be).
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, length) == 0 && getsockname(holder, $0, &length) == 0 }
        }
        try #require(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let error = await #expect(throws: SQSError.self) {
            try await Self.client(URL(string: "http://127.0.0.1:\(port)")!, timeout: .seconds(5)).getQueueURL(name: "jobs")
        }
        #expect(error?.kind == .transport)
        #expect(error?.description.contains("could not reach") == true)
    }

    @Test("An error body is decoded and an unreadable success body is an invalid response")
    func errorAndInvalidBodies() async throws {
        try await LocalHTTPServer.with(respond: { request in
            request.headers["x-amz-target"] == "AmazonSQS.GetQueueUrl"
                ? (400, #"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"nope"}"#)
                : (200, "not json")
        }) { server in
            let client = Self.client(server.url)
            let missing = await #expect(throws: SQSError.self) { try await client.getQueueURL(name: "jobs") }
            #expect(missing?.code == "QueueDoesNotExist")
            #expect(missing?.message == "nope")
            let invalid = await #expect(throws: SQSError.self) { try await client.createQueue(name: "jobs") }
            #expect(invalid?.kind == .invalidResponse)
        }
    }

    @Test("Missing credentials fail before any request, naming the operation")
    func missingCredentials() async throws {
        try await LocalHTTPServer.with(respond: { _ in (200, "{}") }) { server in
            let client = Self.client(server.url, credentials: EnvironmentCredentialsProvider(environment: [:]))
            let error = await #expect(throws: SQSError.self) { try await client.getQueueURL(name: "jobs") }
            #expect(error?.kind == .credentials)
            #expect(error?.operation == "GetQueueUrl")
            #expect(server.requests.isEmpty)
        }
    }

    @Test("The default endpoint follows the region, including China regions")
    func defaultEndpoint() {
        let credentials = StaticCredentialsProvider(Moto.credentials)
        #expect(
            SQSConfiguration(region: "eu-west-1", credentialsProvider: credentials).resolvedEndpoint.absoluteString
                == "https://sqs.eu-west-1.amazonaws.com")
        #expect(
            SQSConfiguration(region: "cn-north-1", credentialsProvider: credentials).resolvedEndpoint.absoluteString
                == "https://sqs.cn-north-1.amazonaws.com.cn")
    }
}
