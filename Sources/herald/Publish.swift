import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// `herald publish`: sends one event through a running herald's publish API.
struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish an event to the clients of a running herald.",
        discussion: #"Example: herald publish item_added '{"id": 1}' --to user:42"#
    )

    @Argument(help: "The event name.") var event: String
    @Argument(help: "The event's data, as JSON.") var json: String
    @Option(help: "A room to reach (repeat for several); everyone when absent.") var to: [String] = []
    @Option(help: "The namespace.") var namespace = "/"
    @Option(help: "herald's address.") var url = ProcessInfo.processInfo.environment["HERALD_URL"] ?? "http://127.0.0.1:8080"
    @Option(name: .customLong("api-key"), help: "The publish API key (default: HERALD_API_KEY).")
    var apiKey = ProcessInfo.processInfo.environment["HERALD_API_KEY"]

    func run() async throws {
        guard (try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])) != nil else {
            throw ValidationError("the data is not valid JSON: \(json)")
        }
        var envelope = #"{"event":\#(quoted(event)),"data":\#(json),"namespace":\#(quoted(namespace))"#
        if !to.isEmpty { envelope += #","to":[\#(to.map(quoted).joined(separator: ","))]"# }
        envelope += "}"
        var request = HTTPClientRequest(url: url.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/api/emit")
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        if let apiKey { request.headers.add(name: "authorization", value: "Bearer \(apiKey)") }
        request.body = .bytes(ByteBuffer(string: envelope))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status.code == 202 else {
            FileHandle.standardError.write(Data("herald publish: \(response.status.code) \(String(buffer: body))".utf8))
            throw ExitCode(1)
        }
        print(String(buffer: body), terminator: "")
    }

    private func quoted(_ text: String) -> String {
        let data = try! JSONSerialization.data(withJSONObject: [text], options: [])
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }
}
