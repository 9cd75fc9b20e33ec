public import AsyncHTTPClient
public import Foundation

/// Caches another provider's credentials and refreshes them shortly before they expire.
///
/// Concurrent callers share one refresh. Credentials without an expiry are kept for good.
/// If a refresh fails while the cached credentials are still valid, those are returned.
public final class CachingCredentialsProvider: CredentialsProvider {
    private let state: State

    /// Wraps `provider`; credentials are refreshed once they expire within `refreshMargin`.
    ///
    /// - Parameter now: The clock, injectable for tests.
    public init(
        _ provider: any CredentialsProvider,
        refreshMargin: Duration = .seconds(300),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        let margin = TimeInterval(refreshMargin.components.seconds)
        self.state = State(provider: provider, margin: margin, now: now)
    }

    /// Returns cached credentials, refreshing them first when they are about to expire.
    public func credentials() async throws -> AWSCredentials {
        try await state.credentials()
    }

    private actor State {
        let provider: any CredentialsProvider
        let margin: TimeInterval
        let now: @Sendable () -> Date
        var cached: AWSCredentials?
        var refresh: Task<AWSCredentials, any Error>?

        init(provider: any CredentialsProvider, margin: TimeInterval, now: @escaping @Sendable () -> Date) {
            self.provider = provider
            self.margin = margin
            self.now = now
        }

        func credentials() async throws -> AWSCredentials {
            if let cached, !cached.expires(before: now(), margin: margin) { return cached }
            let task = refresh ?? Task { [provider] in try await provider.credentials() }
            refresh = task
            defer { refresh = nil }
            do {
                let fresh = try await task.value
                cached = fresh
                return fresh
            } catch {
                if let cached, !cached.expires(before: now()) { return cached }
                throw error
            }
        }
    }
}

extension CredentialsProvider where Self == CachingCredentialsProvider {
    /// The default chain, cached: environment, shared credentials file, container endpoint, web identity.
    ///
    /// - Parameters:
    ///   - httpClient: Used for the container endpoint and STS.
    ///   - environment: The variables every provider reads; the process environment by default.
    ///   - stsEndpoint: Overrides the STS URL for web identity (tests, private endpoints).
    public static func defaultChain(
        httpClient: HTTPClient = .shared,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        stsEndpoint: URL? = nil
    ) -> CachingCredentialsProvider {
        CachingCredentialsProvider(
            CredentialsProviderChain([
                EnvironmentCredentialsProvider(environment: environment),
                SharedCredentialsFileProvider(environment: environment),
                ContainerCredentialsProvider(httpClient: httpClient, environment: environment),
                WebIdentityCredentialsProvider(httpClient: httpClient, environment: environment, stsEndpoint: stsEndpoint),
            ])
        )
    }
}
