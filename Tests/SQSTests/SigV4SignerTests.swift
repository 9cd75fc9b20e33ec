import Foundation
import Testing

@testable import SQS

/// Known answers from AWS's IAM user guide example and the published aws-sig-v4-test-suite.
@Suite("SigV4 signer")
struct SigV4SignerTests {
    /// 2015-08-30T12:36:00Z, the date of every published example.
    static let exampleDate = Date(timeIntervalSince1970: 1_440_938_160)
    static let exampleCredentials = AWSCredentials(
        accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    )
    static let suiteToken =
        "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

    static func suiteSigner(token: String? = nil) -> SigV4Signer {
        var credentials = exampleCredentials
        credentials.sessionToken = token
        return SigV4Signer(credentials: credentials, region: "us-east-1", service: "service")
    }

    static func authorization(_ headers: [(name: String, value: String)]) -> String? {
        headers.first { $0.name == "Authorization" }?.value
    }

    @Test("The IAM user guide ListUsers example signs to the published signature")
    func iamUserGuideExample() throws {
        let signer = SigV4Signer(credentials: Self.exampleCredentials, region: "us-east-1", service: "iam")
        let url = try #require(URL(string: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"))
        let headers = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
        let parts = signer.canonicalParts(method: "GET", url: url, headers: headers, body: [], date: Self.exampleDate)

        #expect(
            parts.canonicalRequest == """
                GET
                /
                Action=ListUsers&Version=2010-05-08
                content-type:application/x-www-form-urlencoded; charset=utf-8
                host:iam.amazonaws.com
                x-amz-date:20150830T123600Z

                content-type;host;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """)
        #expect(parts.stringToSign.hasSuffix("f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"))
        #expect(parts.signature == "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")

        let signed = signer.sign(method: "GET", url: url, headers: headers, date: Self.exampleDate)
        #expect(
            Self.authorization(signed) == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
                + "SignedHeaders=content-type;host;x-amz-date, "
                + "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
    }

    @Test("get-vanilla matches its published canonical request, string to sign and signature")
    func getVanilla() throws {
        let url = try #require(URL(string: "https://example.amazonaws.com/"))
        let parts = Self.suiteSigner().canonicalParts(method: "GET", url: url, headers: [], body: [], date: Self.exampleDate)
        #expect(
            parts.canonicalRequest == """
                GET
                /

                host:example.amazonaws.com
                x-amz-date:20150830T123600Z

                host;x-amz-date
                e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
                """)
        #expect(
            parts.stringToSign == """
                AWS4-HMAC-SHA256
                20150830T123600Z
                20150830/us-east-1/service/aws4_request
                bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63
                """)
        #expect(parts.signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test(
        "Published test-suite requests sign to their published signatures",
        arguments: [
            (
                "get-vanilla", "GET", "https://example.amazonaws.com/", [(String, String)](), "",
                "host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            ),
            (
                "get-vanilla-query-order-key-case", "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", [], "",
                "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
            ),
            (
                "post-vanilla", "POST", "https://example.amazonaws.com/", [], "",
                "host;x-amz-date", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
            ),
            (
                "post-vanilla-query", "POST", "https://example.amazonaws.com/?Param1=value1", [], "",
                "host;x-amz-date", "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"
            ),
            (
                "post-x-www-form-urlencoded", "POST", "https://example.amazonaws.com/",
                [("Content-Type", "application/x-www-form-urlencoded")], "Param1=value1",
                "content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
            ),
        ]
    )
    func testSuite(
        name: String, method: String, url: String, headers: [(String, String)], body: String,
        signedHeaders: String, signature: String
    ) throws {
        let signed = Self.suiteSigner().sign(
            method: method, url: try #require(URL(string: url)), headers: headers.map { ($0.0, $0.1) },
            body: Array(body.utf8), date: Self.exampleDate
        )
        #expect(
            Self.authorization(signed) == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=\(signedHeaders), Signature=\(signature)", "\(name)")
    }

    @Test("post-x-www-form-urlencoded hashes the body into the string to sign")
    func formBodyStringToSign() throws {
        let parts = Self.suiteSigner().canonicalParts(
            method: "POST", url: try #require(URL(string: "https://example.amazonaws.com/")),
            headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array("Param1=value1".utf8),
            date: Self.exampleDate
        )
        #expect(parts.canonicalRequest.hasSuffix("\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"))
        #expect(parts.stringToSign.hasSuffix("\n42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281"))
    }

    @Test("A session token is sent and signed as X-Amz-Security-Token (post-sts-header-before)")
    func sessionTokenIsSigned() throws {
        let signed = Self.suiteSigner(token: Self.suiteToken).sign(
            method: "POST", url: try #require(URL(string: "https://example.amazonaws.com/")), date: Self.exampleDate
        )
        #expect(signed.contains { $0.name == "X-Amz-Security-Token" && $0.value == Self.suiteToken })
        #expect(
            Self.authorization(signed) == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                + "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead")
    }

    @Test("Non-default ports are part of the signed Host header and default ports are not")
    func hostHeaderPorts() throws {
        let signer = Self.suiteSigner()
        let local = signer.sign(method: "POST", url: try #require(URL(string: "http://127.0.0.1:5000/")), date: Self.exampleDate)
        #expect(local.contains { $0.name == "Host" && $0.value == "127.0.0.1:5000" })
        let https = signer.sign(method: "POST", url: try #require(URL(string: "https://sqs.eu-west-1.amazonaws.com:443/")), date: Self.exampleDate)
        #expect(https.contains { $0.name == "Host" && $0.value == "sqs.eu-west-1.amazonaws.com" })
    }

    @Test("The content hash header is added only when asked for")
    func contentHashHeader() throws {
        var signer = Self.suiteSigner()
        let url = try #require(URL(string: "https://example.amazonaws.com/"))
        #expect(!signer.sign(method: "GET", url: url, date: Self.exampleDate).contains { $0.name == "X-Amz-Content-Sha256" })
        signer.signsContentHash = true
        let signed = signer.sign(method: "GET", url: url, date: Self.exampleDate)
        #expect(
            signed.contains {
                $0.name == "X-Amz-Content-Sha256" && $0.value == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            })
        #expect(Self.authorization(signed)?.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date") == true)
    }

    @Test("Header values are trimmed and inner spaces collapsed; repeated names are joined")
    func headerCanonicalisation() throws {
        let parts = Self.suiteSigner().canonicalParts(
            method: "GET", url: try #require(URL(string: "https://example.amazonaws.com/")),
            headers: [("My-Header1", "  a   b  "), ("my-header1", "c")], body: [], date: Self.exampleDate
        )
        #expect(parts.canonicalRequest.contains("\nmy-header1:a b,c\n"))
    }

    @Test("Query strings are strictly encoded and sorted by name then value")
    func queryCanonicalisation() {
        #expect(SigV4Signer.canonicalQuery("b=2&a=z&a=y&c=%20x~&d") == "a=y&a=z&b=2&c=%20x~&d=")
        #expect(SigV4Signer.uriEncode("a b/c+é") == "a%20b%2Fc%2B%C3%A9")
    }
}
