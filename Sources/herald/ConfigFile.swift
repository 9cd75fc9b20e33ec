import TOMLKit

/// The configuration file: TOML, read by TOMLKit, each setting a top-level key whose value has
/// the setting's TOML type (a string, an integer, a boolean or an array of strings).
enum ConfigFile {
    /// A setting the file gives, and the line it is on.
    struct Entry {
        let key: String
        let input: SettingInput
        let line: Int
    }

    /// The file's settings, in the order of their lines; a syntax error, an unknown key or a
    /// value of the wrong type is a problem naming the file, the line and the key.
    static func read(_ text: String, path: String) throws(HeraldSettings.Problem) -> [Entry] {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw HeraldSettings.Problem(description: "config \(path):\(error.source.begin.line): \(error.description)")
        } catch {
            throw HeraldSettings.Problem(description: "config \(path): \(error)")
        }
        var entries: [Entry] = []
        for (key, value) in table {
            let line = line(of: key, in: text)
            let location = "config \(path):\(line)"
            guard key != HeraldSettings.config.name, let setting = HeraldSettings.declaration(named: key) else {
                let known = HeraldSettings.all.map(\.name).filter { $0 != HeraldSettings.config.name }
                throw HeraldSettings.Problem(description: "\(location): unknown key '\(key)' (known: \(known.joined(separator: ", ")))")
            }
            guard let input = input(value, as: setting.fileType) else {
                throw HeraldSettings.Problem(
                    description: "\(location): \(key) = \(value.debugDescription) is \(name(of: value)); \(key) takes \(article(setting.fileType))")
            }
            entries.append(Entry(key: key, input: input, line: line))
        }
        return entries.sorted { $0.line < $1.line }
    }

    private static func input(_ value: any TOMLValueConvertible, as type: SettingFileType) -> SettingInput? {
        switch type {
        case .string: value.string.map { .text($0) }
        case .integer: value.int.map { .text(String($0)) }
        case .boolean: value.bool.map { .text(String($0)) }
        case .array:
            value.array.flatMap { array in
                let items = array.compactMap(\.string)
                return items.count == array.count ? .list(items) : nil
            }
        }
    }

    private static func name(of value: any TOMLValueConvertible) -> String {
        switch value.type {
        case .string: "a string"
        case .int: "an integer"
        case .double: "a float"
        case .bool: "a boolean"
        case .array: value.array?.allSatisfy({ $0.string != nil }) == false ? "an array holding more than strings" : "an array"
        case .table: "a table"
        default: "a date or time"
        }
    }

    private static func article(_ type: SettingFileType) -> String {
        type == .integer || type == .array ? "an \(type.rawValue)" : "a \(type.rawValue)"
    }

    /// The line (from 1) a top-level key is written on; TOMLKit keeps no positions of values.
    private static func line(of key: String, in text: String) -> Int {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let written = line[..<equals].trimmingCharacters(in: .whitespaces)
            if written == key || written == "\"\(key)\"" || written == "'\(key)'" { return index + 1 }
        }
        return 0
    }
}
