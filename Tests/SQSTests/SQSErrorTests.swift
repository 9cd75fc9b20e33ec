import Testing

@testable import SQS

@Suite("SQS errors")
struct SQSErrorTests {
    static func parse(status: Int = 400, headers: [(String, String)] = [], body: String) -> SQSError {
        SQSError.fromJSONResponse(
            operation: "GetQueueUrl", statusCode: status, headers: headers.map { ($0.0, $0.1) }, body: Array(body.utf8)
        )
    }

    @Test("A namespaced __type, a lowercase message and the query error header are all parsed")
    func parsesJSONErrorAndQueryHeader() {
        let error = Self.parse(
            headers: [("x-amzn-query-error", "AWS.SimpleQueueService.NonExistentQueue;Sender")],
            body: #"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#
        )
        #expect(error.kind == .service)
        #expect(error.code == "QueueDoesNotExist")
        #expect(error.queryErrorCode == "AWS.SimpleQueueService.NonExistentQueue")
        #expect(error.isSenderFault == true)
        #expect(error.message == "The specified queue does not exist.")
        #expect(error.statusCode == 400)
        #expect(error.isQueueDoesNotExist)
        #expect(!error.isRetryable)
        #expect(error.description.contains("GetQueueUrl"))
        #expect(error.description.contains("QueueDoesNotExist"))
        #expect(error.description.contains("check the queue name"))
    }

    @Test("A capitalised Message and a __type with a URL suffix are understood")
    func parsesCapitalisedMessageAndSuffix() {
        let error = Self.parse(body: #"{"__type":"aws.foo#ThrottlingException:http://internal/","Message":"Rate exceeded"}"#)
        #expect(error.code == "ThrottlingException")
        #expect(error.message == "Rate exceeded")
        #expect(error.isThrottling)
        #expect(error.isRetryable)
        #expect(error.description.contains("back off"))
    }

    @Test("The X-Amzn-Errortype header stands in for a missing __type")
    func fallsBackToErrortypeHeader() {
        let error = Self.parse(status: 403, headers: [("X-Amzn-Errortype", "InvalidClientTokenId:http://x")], body: "{}")
        #expect(error.code == "InvalidClientTokenId")
        #expect(error.isCredentialsError)
    }

    @Test("An XML error body, as moto sends for failed authentication, is understood too")
    func parsesXMLErrorBody() {
        let error = Self.parse(
            status: 403,
            body: """
                <?xml version="1.0" encoding="utf-8"?>
                <ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>does &amp; not match</Message>\
                <Type>Sender</Type></Error></Errors></ErrorResponse>
                """)
        #expect(error.code == "SignatureDoesNotMatch")
        #expect(error.message == "does & not match")
        #expect(error.isSenderFault == true)
        #expect(error.isCredentialsError)
    }

    @Test("A non-JSON body is kept as the message")
    func keepsUnparseableBody() {
        let error = Self.parse(status: 502, body: "<html>Bad Gateway</html>")
        #expect(error.code == nil)
        #expect(error.message == "<html>Bad Gateway</html>")
        #expect(error.isRetryable)
    }

    @Test("Signature and access errors get operator hints")
    func hintsForCredentialProblems() {
        let signature = Self.parse(status: 403, body: #"{"__type":"com.amazon.coral.service#SignatureDoesNotMatch","message":"no"}"#)
        #expect(signature.isCredentialsError)
        #expect(signature.description.contains("secret key"))
        let denied = Self.parse(status: 403, body: #"{"__type":"com.amazon.coral.service#AccessDeniedException"}"#)
        #expect(denied.isAccessDenied)
        #expect(!denied.isCredentialsError)
        #expect(SQSError(kind: .credentials, message: "none").isCredentialsError)
    }

    @Test("Kinds compare by identity and print their names")
    func kinds() {
        #expect(SQSError.Kind.timeout == .timeout)
        #expect(SQSError.Kind.timeout != .transport)
        #expect("\(SQSError.Kind.invalidResponse)" == "invalidResponse")
    }
}
