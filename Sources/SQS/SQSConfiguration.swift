public import AsyncHTTPClient
public import Foundation
public import Logging

/// Where and how ``SQSClient`` talks to SQS: region, endpoint, timeout, credentials and HTTP client.
public struct SQSConfiguration: Sendable {
    /// The AWS region, e.g. `eu-west-1`; also the region in the signature scope.
    public var region: String
    /// Overrides the regional endpoint, e.g. `http://127.0.0.1:5000` for moto, LocalStack or ElasticMQ.
    public var endpoint: URL?
    /// The longest one request may take; ReceiveMessage adds its `WaitTimeSeconds` on top.
    public var requestTimeout: Duration
    /// Where signing credentials come from.
    public var credentialsProvider: any CredentialsProvider
    /// The HTTP client requests go through.
    public var httpClient: HTTPClient
    /// Receives a debug line for every request that fails.
    public var logger: Logger

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - region: The AWS region.
    ///   - endpoint: An endpoint override; `nil` for `https://sqs.<region>.amazonaws.com`.
    ///   - requestTimeout: The longest one request may take, long-poll wait excluded.
    ///   - credentialsProvider: `nil` for the cached default chain over `httpClient`.
    ///   - httpClient: Defaults to AsyncHTTPClient's shared client.
    ///   - logger: Defaults to a logger labelled `herald.sqs`.
    public init(
        region: String,
        endpoint: URL? = nil,
        requestTimeout: Duration = .seconds(30),
        credentialsProvider: (any CredentialsProvider)? = nil,
        httpClient: HTTPClient = .shared,
        logger: Logger = Logger(label: "herald.sqs")
    ) {
        self.region = region
        self.endpoint = endpoint
        self.requestTimeout = requestTimeout
        self.credentialsProvider = credentialsProvider ?? .defaultChain(httpClient: httpClient)
        self.httpClient = httpClient
        self.logger = logger
    }

    /// The URL requests are posted to: the override, or the region's public endpoint.
    public var resolvedEndpoint: URL {
        if let endpoint { return endpoint }
        let suffix = region.hasPrefix("cn-") ? "amazonaws.com.cn" : "amazonaws.com"
        return URL(string: "https://sqs.\(region).\(suffix)")!
    }
}
