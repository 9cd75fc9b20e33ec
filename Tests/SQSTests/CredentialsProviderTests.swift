import Foundation
import Synchronization
import Testing

@testable import SQS

@Suite("Credential providers")
struct CredentialsProviderTests {
    @Test("The environment provider reads the key pair and the session token")
    func environment() async throws {
        let provider = EnvironmentCredentialsProvider(environment: [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value", "AWS_SESSION_TOKEN": "t0k3n-value",
        ])
        let credentials = try await provider.credentials()
        #expect(credentials == AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t-value", sessionToken: "t0k3n-value"))
        #expect(!credentials.description.contains("s3cr3t") && !credentials.description.contains("t0k3n"))
    }

    @Test("The environment provider reports a missing secret as a credentials error")
    func environmentMissingSecret() async {
        let provider = EnvironmentCredentialsProvider(environment: ["AWS_ACCESS_KEY_ID": "AKID"])
        await #expect { try await provider.credentials() } throws: { error in
            (error as? SQSError)?.kind == .credentials
                && (error as? SQSError)?.message?.contains("AWS_SECRET_ACCESS_KEY") == true
        }
    }

    static let credentialsFile = """
        # comment
        [default]
        aws_access_key_id = AKIDDEFAULT
        aws_secret_access_key = secret-default

        [work]
        ; another comment
        aws_access_key_id=AKIDWORK
        aws_secret_access_key=secret=with=equals
        aws_session_token = token-work
        """

    @Test("The shared file provider reads the default profile from AWS_SHARED_CREDENTIALS_FILE")
    func sharedFileDefaultProfile() async throws {
        let file = try TemporaryFile(contents: Self.credentialsFile)
        let provider = SharedCredentialsFileProvider(environment: ["AWS_SHARED_CREDENTIALS_FILE": file.path])
        #expect(provider.path == file.path)
        let credentials = try await provider.credentials()
        #expect(credentials == AWSCredentials(accessKeyID: "AKIDDEFAULT", secretAccessKey: "secret-default"))
    }

    @Test("The shared file provider honours AWS_PROFILE and keeps '=' inside values")
    func sharedFileNamedProfile() async throws {
        let file = try TemporaryFile(contents: Self.credentialsFile)
        let provider = SharedCredentialsFileProvider(
            environment: ["AWS_SHARED_CREDENTIALS_FILE": file.path, "AWS_PROFILE": "work"]
        )
        let credentials = try await provider.credentials()
        #expect(credentials == AWSCredentials(accessKeyID: "AKIDWORK", secretAccessKey: "secret=with=equals", sessionToken: "token-work"))
    }

    @Test("The shared file provider defaults to ~/.aws/credentials and names a missing profile")
    func sharedFileDefaultsAndMissingProfile() async throws {
        #expect(SharedCredentialsFileProvider(environment: ["HOME": "/home/u"]).path == "/home/u/.aws/credentials")
        let file = try TemporaryFile(contents: Self.credentialsFile)
        let provider = SharedCredentialsFileProvider(path: file.path, profile: "nope")
        await #expect { try await provider.credentials() } throws: { error in
            (error as? SQSError)?.message?.contains("[nope]") == true
        }
    }

    @Test("The chain returns the first provider that has credentials and lists every reason when none has")
    func chainOrderAndReasons() async throws {
        let file = try TemporaryFile(contents: Self.credentialsFile)
        let environment = ["AWS_SHARED_CREDENTIALS_FILE": file.path]
        let chain = CredentialsProviderChain([
            EnvironmentCredentialsProvider(environment: environment),
            SharedCredentialsFileProvider(environment: environment),
        ])
        #expect(try await chain.credentials().accessKeyID == "AKIDDEFAULT")

        let empty = CachingCredentialsProvider.defaultChain(environment: ["HOME": "/nonexistent"])
        await #expect { try await empty.credentials() } throws: { error in
            guard let error = error as? SQSError, let message = error.message else { return false }
            return error.isCredentialsError && message.contains("AWS_ACCESS_KEY_ID")
                && message.contains("/nonexistent/.aws/credentials") && message.contains("CONTAINER")
                && message.contains("AWS_WEB_IDENTITY_TOKEN_FILE")
        }
    }

    @Test("The cache refreshes credentials shortly before they expire and not before")
    func cachingRefreshesNearExpiry() async throws {
        let clock = Mutex(Date(timeIntervalSince1970: 1_000_000))
        let calls = Counter()
        let source = FunctionProvider {
            let n = calls.increment()
            return AWSCredentials(
                accessKeyID: "AKID\(n)", secretAccessKey: "s",
                expiration: Date(timeIntervalSince1970: 1_000_000 + 3600 * Double(n))
            )
        }
        let cache = CachingCredentialsProvider(source, refreshMargin: .seconds(300)) { clock.withLock { $0 } }

        #expect(try await cache.credentials().accessKeyID == "AKID1")
        clock.withLock { $0 += 3000 }  // 10 minutes before expiry: still good
        #expect(try await cache.credentials().accessKeyID == "AKID1")
        clock.withLock { $0 += 400 }  // inside the 5-minute margin: refresh
        #expect(try await cache.credentials().accessKeyID == "AKID2")
        #expect(calls.value == 2)
    }

    @Test("Concurrent callers share one refresh")
    func cachingCoalescesRefreshes() async throws {
        let calls = Counter()
        let source = FunctionProvider {
            calls.increment()
            try await Task.sleep(for: .milliseconds(50))
            return AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s")
        }
        let cache = CachingCredentialsProvider(source)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10 { group.addTask { _ = try await cache.credentials() } }
            try await group.waitForAll()
        }
        #expect(calls.value == 1)
    }

    @Test("The container provider sends the authorization token and parses the expiry")
    func containerEndpoint() async throws {
        try await LocalHTTPServer.with(respond: { request in
            guard request.uri == "/creds", request.headers["authorization"] == "Bearer abc" else { return (401, "{}") }
            return (200, #"{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-02T03:04:05Z"}"#)
        }) { server in
            let provider = ContainerCredentialsProvider(environment: [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": "\(server.url)/creds",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer abc",
            ])
            let credentials = try await provider.credentials()
            #expect(credentials.accessKeyID == "ASIACONTAINER")
            #expect(credentials.sessionToken == "t")
            #expect(credentials.expiration == Date(timeIntervalSince1970: 1_893_553_445))
            #expect(server.requests.count == 1)
        }
    }

    @Test("The container provider reads the token from AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE and reports HTTP errors")
    func containerTokenFileAndErrors() async throws {
        try await LocalHTTPServer.with(respond: { request in
            request.headers["authorization"] == "from-file" ? (200, #"{"AccessKeyId":"A","SecretAccessKey":"S"}"#) : (403, "denied")
        }) { server in
            let token = try TemporaryFile(contents: "from-file\n")
            let good = ContainerCredentialsProvider(environment: [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url.absoluteString, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": token.path,
            ])
            #expect(try await good.credentials().accessKeyID == "A")

            let bad = ContainerCredentialsProvider(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": server.url.absoluteString])
            await #expect { try await bad.credentials() } throws: { error in
                (error as? SQSError)?.kind == .credentials && (error as? SQSError)?.message?.contains("HTTP 403") == true
            }
        }
    }

    @Test("The container provider refuses plain HTTP to hosts other than loopback and the ECS/EKS endpoints")
    func containerHostRules() throws {
        let remote = ContainerCredentialsProvider(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://example.com/creds"])
        #expect(throws: SQSError.self) { try remote.endpoint() }
        let relative = ContainerCredentialsProvider(environment: ["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"])
        #expect(try relative.endpoint().absoluteString == "http://169.254.170.2/v2/credentials/x")
        let eks = ContainerCredentialsProvider(environment: ["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials"])
        #expect(try eks.endpoint().host == "169.254.170.23")
    }

    @Test("The web identity provider posts the token to STS and parses the XML answer")
    func webIdentityAgainstFakeSTS() async throws {
        try await LocalHTTPServer.with(respond: { request in
            guard request.body.contains("Action=AssumeRoleWithWebIdentity"),
                request.body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fherald"),
                request.body.contains("WebIdentityToken=jwt.token.value"),
                request.body.contains("RoleSessionName=herald-test")
            else {
                return (
                    400,
                    "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
                        + "<Message>bad &amp; wrong</Message></Error></ErrorResponse>"
                )
            }
            return (
                200,
                """
                <AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>
                <AccessKeyId>ASIAWEB</AccessKeyId><SecretAccessKey>web/secret+key</SecretAccessKey>
                <SessionToken>tok&amp;en</SessionToken><Expiration>2030-01-02T03:04:05.123Z</Expiration>
                </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>
                """
            )
        }) { server in
            let token = try TemporaryFile(contents: "jwt.token.value\n")
            var environment = [
                "AWS_WEB_IDENTITY_TOKEN_FILE": token.path, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/herald",
                "AWS_ROLE_SESSION_NAME": "herald-test",
            ]
            let provider = WebIdentityCredentialsProvider(environment: environment, stsEndpoint: server.url)
            let credentials = try await provider.credentials()
            #expect(credentials.accessKeyID == "ASIAWEB")
            #expect(credentials.secretAccessKey == "web/secret+key")
            #expect(credentials.sessionToken == "tok&en")
            #expect(credentials.expiration.map { Int($0.timeIntervalSince1970) } == 1_893_553_445)

            environment["AWS_ROLE_SESSION_NAME"] = "other"
            let rejected = WebIdentityCredentialsProvider(environment: environment, stsEndpoint: server.url)
            await #expect { try await rejected.credentials() } throws: { error in
                guard let error = error as? SQSError else { return false }
                return error.kind == .service && error.code == "InvalidIdentityToken" && error.message == "bad & wrong"
                    && error.isSenderFault == true
            }
        }
    }

    @Test("The web identity provider uses the regional STS endpoint by default")
    func webIdentityDefaultEndpoint() {
        #expect(
            WebIdentityCredentialsProvider(environment: ["AWS_REGION": "eu-west-1"]).stsEndpoint.absoluteString
                == "https://sts.eu-west-1.amazonaws.com")
        #expect(WebIdentityCredentialsProvider(environment: [:]).stsEndpoint.absoluteString == "https://sts.amazonaws.com")
    }
}

/// A provider backed by a closure.
struct FunctionProvider: CredentialsProvider {
    let body: @Sendable () async throws -> AWSCredentials
    init(_ body: @escaping @Sendable () async throws -> AWSCredentials) { self.body = body }
    func credentials() async throws -> AWSCredentials { try await body() }
}

/// A thread-safe call counter.
final class Counter: Sendable {
    private let count = Mutex(0)
    var value: Int { count.withLock { $0 } }
    @discardableResult func increment() -> Int {
        count.withLock {
            $0 += 1
            return $0
        }
    }
}
