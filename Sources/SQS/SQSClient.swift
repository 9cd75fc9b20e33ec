import AsyncHTTPClient
import Foundation
import Logging

/// A small SQS client speaking the AWS JSON 1.0 protocol over AsyncHTTPClient.
///
/// Every operation is one signed `POST` to the endpoint with `X-Amz-Target: AmazonSQS.<Operation>`.
/// Failures are thrown as ``SQSError``. The client holds no connections of its own; it is cheap
/// to copy and safe to share between tasks.
public struct SQSClient: Sendable {
    /// The endpoint, region, timeout, credentials and HTTP client in use.
    public var configuration: SQSConfiguration

    /// Creates a client.
    public init(configuration: SQSConfiguration) {
        self.configuration = configuration
    }

    /// Sends one operation and decodes its answer.
    ///
    /// - Parameter extraTime: Added to the request timeout, for long polls.
    func call<Output: Decodable>(
        _ operation: String,
        _ input: some Encodable,
        extraTime: Duration = .zero,
        as output: Output.Type = Output.self
    ) async throws -> Output {
        let body = Array(try JSONEncoder().encode(input))
        let url = configuration.resolvedEndpoint
        let credentials: AWSCredentials
        do {
            credentials = try await configuration.credentialsProvider.credentials()
        } catch var error as SQSError {
            error.operation = error.operation ?? operation
            throw error
        }
        let signer = SigV4Signer(credentials: credentials, region: configuration.region, service: "sqs")
        let headers = signer.sign(
            method: "POST",
            url: url,
            headers: [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "AmazonSQS.\(operation)")],
            body: body,
            date: Date()
        )

        let response = try await performHTTP(
            client: configuration.httpClient, method: "POST", url: url, headers: headers, body: body,
            timeout: configuration.requestTimeout + extraTime, operation: operation
        )
        guard (200..<300).contains(response.status) else {
            let error = SQSError.fromJSONResponse(
                operation: operation, statusCode: response.status, headers: response.headers, body: response.body
            )
            configuration.logger.debug("SQS request failed", metadata: ["error": "\(error)"])
            throw error
        }
        do {
            return try JSONDecoder().decode(Output.self, from: response.body.isEmpty ? Data("{}".utf8) : Data(response.body))
        } catch {
            throw SQSError(
                kind: .invalidResponse, operation: operation,
                message: "undecodable answer: " + String(decoding: response.body.prefix(256), as: UTF8.self),
                statusCode: response.status, underlying: error
            )
        }
    }
}

/// The answer of operations that return nothing.
struct EmptyOutput: Decodable {}
