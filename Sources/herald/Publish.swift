import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// `herald publish`: sends one event through a running herald's publish API.
///
/// Exit status: 0 accepted, 1 herald answered with an error (its answer is printed), 2 a bad
/// argument or herald unreachable.
struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish an event to the clients of a running herald.",
        discussion: #"""
            Example: herald publish item_added '{"id": 1}' --to user:42
            Exit status: 0 accepted, 1 herald refused it (its answer is printed), 2 a bad argument \
            or herald unreachable at --url.
            """#
    )

    @Argument(help: "The event name.") var event: String
    @Argument(help: "The event's data, as JSON.") var json: String
    @Option(help: "A room to reach (repeat for several); everyone when absent.") var to: [String] = []
    @Option(help: "A room to leave out (repeat for several).") var except: [String] = []
    @Flag(help: "Send it only to clients ready for it now: a client whose connection is busy misses it.") var volatile = false
    @Option(help: "An idempotency key: herald suppresses a second message with the same id.") var id: String?
    @Option(help: "The namespace.") var namespace = "/"
    @Option(help: "herald's address (default: HERALD_URL, else http://127.0.0.1:8080).")
    var url = ProcessInfo.processInfo.environment["HERALD_URL"] ?? "http://127.0.0.1:8080"
    @Option(name: .customLong("api-key"), help: "The publish API key (default: HERALD_API_KEY).")
    var apiKey: String?

    func validate() throws {
        guard (try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])) != nil else {
            throw ValidationError("the data is not valid JSON: \(json)")
        }
        guard let base = URL(string: url), base.scheme == "http" || base.scheme == "https", base.host?.isEmpty == false else {
            throw ValidationError("--url '\(url)' is not an http(s) URL")
        }
        if id?.isEmpty == true { throw ValidationError("--id must not be empty") }
    }

    /// The envelope the publish API takes; `json` is written as given.
    var envelope: String {
        var envelope = #"{"event":\#(quoted(event)),"data":\#(json),"namespace":\#(quoted(namespace))"#
        if !to.isEmpty { envelope += #","to":[\#(to.map(quoted).joined(separator: ","))]"# }
        if !except.isEmpty { envelope += #","except":[\#(except.map(quoted).joined(separator: ","))]"# }
        if volatile { envelope += #","volatile":true"# }
        if let id { envelope += #","id":\#(quoted(id))"# }
        return envelope + "}"
    }

    func run() async throws {
        let endpoint = url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/api/emit"
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        if let apiKey = apiKey ?? ProcessInfo.processInfo.environment["HERALD_API_KEY"] {
            request.headers.add(name: "authorization", value: "Bearer \(apiKey)")
        }
        request.body = .bytes(ByteBuffer(string: envelope))
        let status: UInt
        let body: ByteBuffer
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            status = response.status.code
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            FileHandle.standardError.write(
                Data(
                    "herald publish: cannot reach herald at \(url): \(PublishFailure.reason(error)) (is herald running? set --url or HERALD_URL)\n"
                        .utf8))
            throw ExitCode(2)
        }
        guard status == 202 else {
            FileHandle.standardError.write(Data("herald publish: herald answered \(status): \(String(buffer: body))\n".utf8))
            throw ExitCode(1)
        }
        print(String(buffer: body), terminator: "")
    }

    private func quoted(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [])
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
