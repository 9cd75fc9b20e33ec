import Foundation

/// An error from SQS, from an AWS endpoint used on its behalf (STS, container credentials), or from the transport.
///
/// Match on `kind` for the broad category and on `code` for AWS's error code:
///
/// ```swift
/// catch let error as SQSError where error.kind == .service && error.code == "QueueDoesNotExist" { … }
/// ```
///
/// New kinds may be added in minor releases, so `switch` over `kind` with a `default` branch.
public struct SQSError: Error, Sendable, CustomStringConvertible {
    /// The broad category of an ``SQSError``.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case service, transport, timeout, credentials, invalidResponse
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// AWS answered with an error response; `code` and `message` say which.
        public static let service = Kind(.service)
        /// The request could not be sent or the connection failed.
        public static let transport = Kind(.transport)
        /// The request did not complete within the configured timeout.
        public static let timeout = Kind(.timeout)
        /// No credentials could be found or loaded.
        public static let credentials = Kind(.credentials)
        /// AWS answered with something this client could not decode.
        public static let invalidResponse = Kind(.invalidResponse)

        /// The kind's name, e.g. `service`.
        public var description: String { base.rawValue }
    }

    /// The broad category of the failure.
    public var kind: Kind
    /// The AWS operation that failed, e.g. `ReceiveMessage` or `AssumeRoleWithWebIdentity`.
    public var operation: String?
    /// The AWS error code without namespace, e.g. `QueueDoesNotExist` or `ThrottlingException`.
    public var code: String?
    /// The legacy query-protocol code from `x-amzn-query-error`, e.g. `AWS.SimpleQueueService.NonExistentQueue`.
    public var queryErrorCode: String?
    /// Whether AWS blamed the caller (`Sender`) rather than itself (`Receiver`), when it said.
    public var isSenderFault: Bool?
    /// AWS's human-readable message, or a description of the local failure.
    public var message: String?
    /// The HTTP status of the response, for service and invalid-response errors.
    public var statusCode: Int?
    /// The error that caused this one, e.g. a connection error.
    public var underlying: (any Error)?

    /// Creates an error; the client fills these in, tests and wrappers may too.
    public init(
        kind: Kind,
        operation: String? = nil,
        code: String? = nil,
        queryErrorCode: String? = nil,
        isSenderFault: Bool? = nil,
        message: String? = nil,
        statusCode: Int? = nil,
        underlying: (any Error)? = nil
    ) {
        self.kind = kind
        self.operation = operation
        self.code = code
        self.queryErrorCode = queryErrorCode
        self.isSenderFault = isSenderFault
        self.message = message
        self.statusCode = statusCode
        self.underlying = underlying
    }

    /// Whether either the modern or the legacy code equals `code`.
    public func hasCode(_ code: String) -> Bool {
        self.code == code || queryErrorCode == code
    }

    /// Whether AWS asked us to slow down; retry with backoff.
    public var isThrottling: Bool {
        statusCode == 429 || Self.throttlingCodes.contains { hasCode($0) }
    }

    /// Whether the credentials are missing, malformed, unknown, expired or signed wrongly.
    public var isCredentialsError: Bool {
        kind == .credentials || Self.credentialsCodes.contains { hasCode($0) }
    }

    /// Whether the caller lacks permission (IAM or queue policy) for the action.
    public var isAccessDenied: Bool {
        hasCode("AccessDenied") || hasCode("AccessDeniedException")
    }

    /// Whether the queue does not exist (wrong name, URL, account or region).
    public var isQueueDoesNotExist: Bool {
        hasCode("QueueDoesNotExist") || hasCode("AWS.SimpleQueueService.NonExistentQueue")
    }

    /// Whether retrying the same request later may succeed.
    public var isRetryable: Bool {
        kind == .transport || kind == .timeout || isThrottling || (statusCode ?? 0) >= 500
    }

    /// One line for an operator: what failed, AWS's code and message, and a hint when one helps.
    public var description: String {
        var text = "SQS"
        if let operation { text += " \(operation)" }
        text += " failed (\(kind))"
        if let code { text += ": \(code)" }
        if let queryErrorCode, queryErrorCode != code { text += " [\(queryErrorCode)]" }
        var details: [String] = []
        if let statusCode { details.append("HTTP \(statusCode)") }
        if let isSenderFault { details.append(isSenderFault ? "sender fault" : "receiver fault") }
        if !details.isEmpty { text += " (\(details.joined(separator: ", ")))" }
        if let message, !message.isEmpty { text += ": \(message)" }
        if let underlying, kind != .service { text += " — \(underlying)" }
        if let hint { text += ". Hint: \(hint)" }
        return text
    }

    private var hint: String? {
        if isThrottling { return "AWS is throttling requests; back off and retry" }
        if kind == .credentials {
            return "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile in ~/.aws/credentials, "
                + "or run with a task/pod role"
        }
        if hasCode("SignatureDoesNotMatch") {
            return "the secret key does not match the access key, or the clock is off"
        }
        if hasCode("ExpiredToken") || hasCode("ExpiredTokenException") {
            return "the session token expired; refresh the credentials"
        }
        if isCredentialsError { return "check the access key ID and the session token" }
        if isAccessDenied { return "the IAM policy or queue policy does not allow this action" }
        if isQueueDoesNotExist { return "check the queue name or URL, the account and the region" }
        if kind == .timeout { return "the endpoint did not answer in time; check connectivity or raise the timeout" }
        if kind == .transport { return "could not reach the endpoint; check the URL, DNS and network" }
        return nil
    }

    private static let throttlingCodes = [
        "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
        "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
        "SlowDown", "KMS.ThrottlingException",
    ]

    private static let credentialsCodes = [
        "InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
        "IncompleteSignature", "InvalidSignatureException", "MissingAuthenticationToken",
        "MissingAuthenticationTokenException", "InvalidAccessKeyId", "InvalidSecurity",
        "ExpiredToken", "ExpiredTokenException", "RequestExpired", "AuthFailure",
    ]
}

extension SQSError {
    /// Decodes an AWS JSON-protocol error response.
    ///
    /// Falls back to an XML `<Error>` body (which moto sends for authentication failures,
    /// whatever the protocol), then to the raw body.
    static func fromJSONResponse(
        operation: String,
        statusCode: Int,
        headers: [(name: String, value: String)],
        body: [UInt8]
    ) -> SQSError {
        struct Payload: Decodable {
            var type: String?
            var message: String?
            var capitalMessage: String?
            enum CodingKeys: String, CodingKey {
                case type = "__type"
                case message
                case capitalMessage = "Message"
            }
        }
        let header = { (name: String) in headers.first { $0.name.lowercased() == name }?.value }
        let payload = try? JSONDecoder().decode(Payload.self, from: Data(body))

        var error = SQSError(kind: .service, operation: operation, statusCode: statusCode)
        error.code = (payload?.type ?? header("x-amzn-errortype")).map(stripNamespace)
        error.message = payload?.message ?? payload?.capitalMessage
        if let query = header("x-amzn-query-error") {
            let parts = query.split(separator: ";", maxSplits: 1)
            error.queryErrorCode = parts.first.map(String.init)
            if parts.count > 1 { error.isSenderFault = parts[1] == "Sender" }
        }
        if error.code == nil, error.message == nil, body.first == UInt8(ascii: "<") {
            let xml = String(decoding: body, as: UTF8.self)
            error.code = xmlValue("Code", in: xml)
            error.message = xmlValue("Message", in: xml)
            error.isSenderFault = error.isSenderFault ?? xmlValue("Type", in: xml).map { $0 == "Sender" }
        }
        if error.code == nil && error.message == nil {
            error.message = String(decoding: body.prefix(512), as: UTF8.self)
        }
        return error
    }

    /// `com.amazonaws.sqs#QueueDoesNotExist:http://…` becomes `QueueDoesNotExist`.
    static func stripNamespace(_ type: String) -> String {
        var code = Substring(type)
        if let hash = code.lastIndex(of: "#") { code = code[code.index(after: hash)...] }
        if let colon = code.firstIndex(of: ":") { code = code[..<colon] }
        return String(code)
    }
}
