import AsyncHTTPClient
import Foundation
import Testing

@testable import SQS

/// Live tests against a moto server with IAM authentication switched on, so moto checks
/// every signature with botocore's signer: an independent implementation of SigV4.
///
/// Moto lets the first N actions through unchecked (`/moto-api/reset-auth`); the test spends
/// exactly those on creating a user, a role and their policies, and on one web identity call.
@Suite(
    "Live signature checks against moto with IAM auth",
    .enabled(if: Moto.authEndpoint != nil, "live test: run through scripts/with-moto, which sets HERALD_TEST_SQS_AUTH_ENDPOINT")
)
struct LiveSignatureTests {
    static let allowAll = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
    static let trustAnyone =
        #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"herald"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#

    @Test("Moto accepts our signatures for IAM-user and web-identity credentials and rejects wrong ones")
    func signaturesAreVerified() async throws {
        let endpoint = try #require(Moto.authEndpoint)
        let suffix = UUID().uuidString.prefix(8)

        // The six actions moto lets through before it starts checking.
        try await Self.resetAuth(endpoint, allowing: "6")
        _ = try await Self.iam(endpoint, ["Action": "CreateUser", "UserName": "herald-\(suffix)"])
        _ = try await Self.iam(
            endpoint,
            [
                "Action": "PutUserPolicy", "UserName": "herald-\(suffix)", "PolicyName": "all", "PolicyDocument": Self.allowAll,
            ])
        let keyXML = try await Self.iam(endpoint, ["Action": "CreateAccessKey", "UserName": "herald-\(suffix)"])
        _ = try await Self.iam(
            endpoint,
            [
                "Action": "CreateRole", "RoleName": "herald-\(suffix)", "AssumeRolePolicyDocument": Self.trustAnyone,
            ])
        _ = try await Self.iam(
            endpoint,
            [
                "Action": "PutRolePolicy", "RoleName": "herald-\(suffix)", "PolicyName": "all", "PolicyDocument": Self.allowAll,
            ])
        let token = try TemporaryFile(contents: "eyJhbGciOiJub25lIn0.eyJzdWIiOiJoZXJhbGQifQ.")
        let webIdentity = try await WebIdentityCredentialsProvider(
            environment: [
                "AWS_WEB_IDENTITY_TOKEN_FILE": token.path,
                "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/herald-\(suffix)",
            ],
            stsEndpoint: endpoint
        ).credentials()

        // From here on every request is authenticated and authorised by moto.
        let keyID = try #require(xmlValue("AccessKeyId", in: keyXML))
        let secret = try #require(xmlValue("SecretAccessKey", in: keyXML))
        let environment = EnvironmentCredentialsProvider(environment: ["AWS_ACCESS_KEY_ID": keyID, "AWS_SECRET_ACCESS_KEY": secret])
        let user = Moto.client(endpoint: endpoint, credentials: environment)
        let url = try await user.createQueue(name: Moto.uniqueName("signed"))
        _ = try await user.sendMessage(queueURL: url, body: "signed body with ünïcode & symbols +/=")
        let received = try await user.receiveMessages(queueURL: url, waitTimeSeconds: 1)
        #expect(received.first?.body == "signed body with ünïcode & symbols +/=")

        #expect(webIdentity.sessionToken != nil)
        let role = Moto.client(endpoint: endpoint, credentials: StaticCredentialsProvider(webIdentity))
        #expect(try await role.getQueueAttributes(queueURL: url, names: [.queueArn])[.queueArn] != nil)

        var withoutToken = webIdentity
        withoutToken.sessionToken = "not-the-token"
        let badToken = Moto.client(endpoint: endpoint, credentials: StaticCredentialsProvider(withoutToken))
        let tokenError = await #expect(throws: SQSError.self) { try await badToken.getQueueURL(name: "x") }
        #expect(tokenError?.isCredentialsError == true, "\(String(describing: tokenError))")

        let wrongSecret = Moto.client(endpoint: endpoint, credentials: .static(accessKeyID: keyID, secretAccessKey: "wrong"))
        let signatureError = await #expect(throws: SQSError.self) { try await wrongSecret.getQueueURL(name: "x") }
        #expect(signatureError?.code == "SignatureDoesNotMatch", "\(String(describing: signatureError))")
        #expect(signatureError?.isCredentialsError == true)
        #expect(signatureError?.statusCode == 403)

        let unknownKey = Moto.client(endpoint: endpoint, credentials: .static(accessKeyID: "AKIAUNKNOWN0000000", secretAccessKey: "x"))
        let keyError = await #expect(throws: SQSError.self) { try await unknownKey.getQueueURL(name: "x") }
        #expect(keyError?.code == "InvalidClientTokenId", "\(String(describing: keyError))")
        #expect(keyError?.isCredentialsError == true)
    }

    /// Sets how many actions moto lets through before it checks credentials again.
    static func resetAuth(_ endpoint: URL, allowing count: String) async throws {
        let response = try await performHTTP(
            client: .shared, method: "POST", url: endpoint.appendingPathComponent("moto-api/reset-auth"),
            headers: [], body: Array(count.utf8), timeout: .seconds(5), operation: "reset-auth"
        )
        #expect(response.status == 200)
    }

    /// One IAM query-protocol call, signed with throwaway credentials; returns the XML answer.
    static func iam(_ endpoint: URL, _ parameters: [String: String]) async throws -> String {
        let body = Array(
            (parameters.merging(["Version": "2010-05-08"]) { a, _ in a })
                .map { "\($0.key)=\(SigV4Signer.uriEncode($0.value))" }.joined(separator: "&").utf8)
        let signer = SigV4Signer(credentials: Moto.credentials, region: "us-east-1", service: "iam")
        let headers = signer.sign(
            method: "POST", url: endpoint, headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
            body: body, date: Date()
        )
        let response = try await performHTTP(
            client: .shared, method: "POST", url: endpoint, headers: headers, body: body, timeout: .seconds(5),
            operation: parameters["Action"] ?? "IAM"
        )
        let xml = String(decoding: response.body, as: UTF8.self)
        #expect(response.status == 200, "\(parameters["Action"] ?? ""): \(xml)")
        return xml
    }
}
