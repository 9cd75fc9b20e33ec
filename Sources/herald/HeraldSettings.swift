import Foundation
import Herald

/// Every setting of `herald serve`, resolved from flags, then `HERALD_*` environment variables,
/// then the configuration file, then the defaults.
struct HeraldSettings {
    /// One setting: its key (as written in the file), its environment variable and its help.
    struct Key: Hashable {
        let name: String
        let help: String
        var environment: String { "HERALD_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    static let host = Key(name: "host", help: "Address to bind (default 127.0.0.1).")
    static let port = Key(name: "port", help: "Port to listen on (default 8080).")
    static let apiKey = Key(name: "api-key", help: "Bearer key required by the publish API; required when binding a non-loopback address.")
    static let namespaces = Key(name: "namespaces", help: "Namespaces served, comma-separated (default /).")
    static let defaultEvent = Key(name: "default-event", help: "Event of raw message bodies that name none.")
    static let jwtSecret = Key(name: "jwt-secret", help: "HS256 secret clients' tokens are signed with.")
    static let jwtPublicKeys = Key(name: "jwt-public-keys", help: "PEM file of RS256/ES256 public keys for clients' tokens.")
    static let jwks = Key(name: "jwks", help: "JWKS file of public keys for clients' tokens.")
    static let auth = Key(name: "auth", help: "Client authentication: 'jwt' (default when a key is set) or 'none' (development).")
    static let logFormat = Key(name: "log-format", help: "Log format: 'text' (default) or 'json'.")
    static let logLevel = Key(name: "log-level", help: "Log level: trace, debug, info (default), notice, warning, error, critical.")
    static let shutdownDeadline = Key(name: "shutdown-deadline", help: "Seconds a graceful shutdown may take (default 30).")

    static let queue = Key(name: "queue", help: "Message source: 'embedded' (default: a durable SQLite queue), 'sqs', or 'none'.")
    static let queuePath = Key(name: "queue-path", help: "The embedded queue's SQLite file (default herald-queue.sqlite).")
    static let sqsQueueURL = Key(name: "sqs-queue-url", help: "The SQS queue to consume (with queue = sqs).")
    static let sqsRegion = Key(name: "sqs-region", help: "AWS region (default AWS_REGION, else us-east-1).")
    static let sqsEndpoint = Key(name: "sqs-endpoint", help: "SQS endpoint override (moto, LocalStack, ElasticMQ).")
    static let pollers = Key(name: "pollers", help: "Concurrent long-polls of the queue (default 2).")
    static let maxInFlight = Key(name: "max-in-flight", help: "Messages handled at once (default 100).")
    static let upstreamEvents = Key(name: "upstream-events", help: "Client events forwarded upstream, comma-separated ('*' for all).")
    static let webhookURL = Key(name: "webhook-url", help: "Webhook receiving forwarded client events; its JSON answer is the client's ack.")
    static let upstreamQueueURL = Key(name: "upstream-queue-url", help: "SQS queue receiving forwarded client events.")

    static let all: [Key] = [
        host, port, apiKey, namespaces, defaultEvent, jwtSecret, jwtPublicKeys, jwks, auth, logFormat, logLevel, shutdownDeadline,
        queue, queuePath, sqsQueueURL, sqsRegion, sqsEndpoint, pollers, maxInFlight, upstreamEvents, webhookURL, upstreamQueueURL,
    ]

    /// A setting that could not be used; the message names its key.
    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    private var values: [String: (value: String, source: String)] = [:]

    /// Resolves the settings from `flags` (by key name), the environment and the file at `path`.
    init(flags: [String: String], environment: [String: String], file path: String?) throws(Problem) {
        if let path {
            let text: String
            do {
                text = try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw Problem(description: "config: cannot read \(path): \(error.localizedDescription)")
            }
            for (name, value) in try ConfigFile.parse(text, path: path) {
                guard Self.all.contains(where: { $0.name == name }) else {
                    throw Problem(description: "config \(path): unknown key '\(name)' (known: \(Self.all.map(\.name).joined(separator: ", ")))")
                }
                values[name] = (value, "\(path)")
            }
        }
        for key in Self.all {
            if let value = environment[key.environment] { values[key.name] = (value, key.environment) }
            if let value = flags[key.name] { values[key.name] = (value, "--\(key.name)") }
        }
    }

    func string(_ key: Key) -> String? { values[key.name]?.value }

    func int(_ key: Key, default fallback: Int, range: ClosedRange<Int>) throws(Problem) -> Int {
        guard let (text, source) = values[key.name] else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw Problem(description: "\(key.name) (from \(source)): '\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    func choice(_ key: Key, _ choices: [String], default fallback: String) throws(Problem) -> String {
        guard let (text, source) = values[key.name] else { return fallback }
        guard choices.contains(text) else {
            throw Problem(description: "\(key.name) (from \(source)): '\(text)' is not one of \(choices.joined(separator: ", "))")
        }
        return text
    }

    func list(_ key: Key) -> [String]? {
        values[key.name].map { $0.value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
    }

    func source(_ key: Key) -> String { values[key.name]?.source ?? "default" }
}

/// The configuration file: TOML's flat form — `key = value` lines, with strings in quotes,
/// numbers, booleans, arrays of strings and `#` comments.
enum ConfigFile {
    static func parse(_ text: String, path: String) throws(HeraldSettings.Problem) -> [(String, String)] {
        var pairs: [(String, String)] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = stripComment(rawLine).trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw HeraldSettings.Problem(description: "config \(path):\(index + 1): expected 'key = value'")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw HeraldSettings.Problem(description: "config \(path):\(index + 1): missing key") }
            pairs.append((key, try decode(value, key: key, where: "\(path):\(index + 1)")))
        }
        return pairs
    }

    private static func stripComment(_ line: Substring) -> Substring {
        var inString = false
        for index in line.indices {
            if line[index] == "\"" { inString.toggle() }
            if line[index] == "#", !inString { return line[..<index] }
        }
        return line
    }

    private static func decode(_ value: String, key: String, where location: String) throws(HeraldSettings.Problem) -> String {
        if value.hasPrefix("\"") {
            guard value.count >= 2, value.hasSuffix("\"") else {
                throw HeraldSettings.Problem(description: "config \(location): '\(key)' has an unterminated string")
            }
            return String(value.dropFirst().dropLast())
        }
        if value.hasPrefix("[") {
            guard value.hasSuffix("]") else { throw HeraldSettings.Problem(description: "config \(location): '\(key)' has an unterminated array") }
            var items: [String] = []
            for item in value.dropFirst().dropLast().split(separator: ",") {
                let trimmed = item.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                items.append(try decode(trimmed, key: key, where: location))
            }
            return items.joined(separator: ",")
        }
        if value == "true" || value == "false" || Double(value) != nil { return value }
        throw HeraldSettings.Problem(description: "config \(location): '\(key)' = \(value) is not a string, number, boolean or array (quote strings)")
    }
}
