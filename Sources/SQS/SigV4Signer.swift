import Crypto
public import Foundation

/// Signs HTTP requests with AWS Signature Version 4, as a pure function of its inputs.
///
/// The signer adds `Host`, `X-Amz-Date`, `X-Amz-Security-Token` (for temporary credentials),
/// optionally `X-Amz-Content-Sha256`, and `Authorization`. Every header passed in is signed,
/// so pass only headers that reach the server unchanged.
///
/// Paths are encoded once per segment, as the published test suite and the JSON and query
/// protocols expect; dot segments are not normalised and S3's rules are not implemented.
public struct SigV4Signer: Sendable {
    /// The credentials whose secret key signs the request.
    public var credentials: AWSCredentials
    /// The region in the credential scope, e.g. `us-east-1`.
    public var region: String
    /// The signing name of the service, e.g. `sqs`, `sts` or `iam`.
    public var service: String
    /// Whether to send and sign `X-Amz-Content-Sha256` (S3 needs it; SQS does not).
    public var signsContentHash: Bool

    /// Creates a signer for one service in one region.
    public init(credentials: AWSCredentials, region: String, service: String = "sqs", signsContentHash: Bool = false) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.signsContentHash = signsContentHash
    }

    /// Returns the headers to send: the given ones plus the signing headers and `Authorization`.
    ///
    /// - Parameters:
    ///   - method: The HTTP method, e.g. `POST`.
    ///   - url: The full request URL; its query is part of the signature.
    ///   - headers: Headers to sign and send. A `Host` header here replaces the one derived from `url`.
    ///   - body: The exact bytes of the request body.
    ///   - date: The signing time; AWS rejects requests more than 5 minutes off.
    public func sign(
        method: String,
        url: URL,
        headers: [(name: String, value: String)] = [],
        body: [UInt8] = [],
        date: Date
    ) -> [(name: String, value: String)] {
        let parts = canonicalParts(method: method, url: url, headers: headers, body: body, date: date)
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(parts.scope), "
            + "SignedHeaders=\(parts.signedHeaders), Signature=\(parts.signature)"
        return parts.headers + [("Authorization", authorization)]
    }

    /// The intermediate values of one signature, exposed to tests.
    struct Parts {
        var headers: [(name: String, value: String)]
        var canonicalRequest: String
        var scope: String
        var stringToSign: String
        var signedHeaders: String
        var signature: String
    }

    func canonicalParts(
        method: String,
        url: URL,
        headers: [(name: String, value: String)],
        body: [UInt8],
        date: Date
    ) -> Parts {
        let (amzDate, day) = Self.timestamps(date)
        let payloadHash = Self.hex(SHA256.hash(data: body))
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)

        var outgoing = headers.filter { $0.name.lowercased() != "authorization" }
        if !outgoing.contains(where: { $0.name.lowercased() == "host" }) {
            outgoing.insert(("Host", Self.hostHeader(components)), at: 0)
        }
        outgoing.append(("X-Amz-Date", amzDate))
        if let token = credentials.sessionToken { outgoing.append(("X-Amz-Security-Token", token)) }
        if signsContentHash { outgoing.append(("X-Amz-Content-Sha256", payloadHash)) }

        var grouped: [String: [String]] = [:]
        for (name, value) in outgoing { grouped[name.lowercased(), default: []].append(Self.trimmed(value)) }
        let names = grouped.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(grouped[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")

        let canonicalRequest = [
            method.uppercased(),
            Self.canonicalPath(components?.percentEncodedPath ?? ""),
            Self.canonicalQuery(components?.percentEncodedQuery),
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")

        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = [
            "AWS4-HMAC-SHA256", amzDate, scope, Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))),
        ].joined(separator: "\n")

        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))

        return Parts(
            headers: outgoing,
            canonicalRequest: canonicalRequest,
            scope: scope,
            stringToSign: stringToSign,
            signedHeaders: signedHeaders,
            signature: signature
        )
    }

    // MARK: - Canonical forms

    /// `host` or `host:port` when the port is not the scheme's default.
    static func hostHeader(_ components: URLComponents?) -> String {
        let host = components?.percentEncodedHost ?? ""
        guard let port = components?.port else { return host }
        let isDefault = (components?.scheme == "https" && port == 443) || (components?.scheme == "http" && port == 80)
        return isDefault ? host : "\(host):\(port)"
    }

    /// Each path segment decoded and re-encoded with the strict unreserved set.
    static func canonicalPath(_ percentEncodedPath: String) -> String {
        guard !percentEncodedPath.isEmpty else { return "/" }
        return
            percentEncodedPath
            .split(separator: "/", omittingEmptySubsequences: false)
            .map { uriEncode(String($0).removingPercentEncoding ?? String($0)) }
            .joined(separator: "/")
    }

    /// Query parameters decoded, strictly re-encoded and sorted by name, then value.
    static func canonicalQuery(_ percentEncodedQuery: String?) -> String {
        guard let query = percentEncodedQuery, !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&").map { item -> (String, String) in
            let halves = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in uriEncode(String(text).removingPercentEncoding ?? String(text)) }
            return (decode(halves[0]), halves.count > 1 ? decode(halves[1]) : "")
        }
        return pairs.sorted { $0.0 == $1.0 ? $0.1 < $1.1 : $0.0 < $1.0 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Percent-encodes every byte outside `A-Z a-z 0-9 - _ . ~`, as SigV4 requires.
    static func uriEncode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "."), UInt8(ascii: "~"):
                result.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                result += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return result
    }

    /// Header values with outer whitespace removed and inner runs of spaces collapsed.
    static func trimmed(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
    }

    /// `X-Amz-Date` (`20150830T123600Z`) and the scope's day (`20150830`), in UTC.
    static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let pad = { (value: Int?, width: Int) in String(value ?? 0).leftPadded(to: width) }
        let day = pad(c.year, 4) + pad(c.month, 2) + pad(c.day, 2)
        return (day + "T" + pad(c.hour, 2) + pad(c.minute, 2) + pad(c.second, 2) + "Z", day)
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
