import Foundation

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
