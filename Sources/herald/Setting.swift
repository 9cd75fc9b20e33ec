import Foundation

/// What every setting of `herald serve` declares once: its key, its help, what its values look
/// like and its default. The flags, the `HERALD_*` environment variables, the configuration file
/// and the help text are all derived from it.
protocol SettingDeclaration: Sendable {
    /// The key, as written in the file and (after `--`) as a flag.
    var name: String { get }
    /// One sentence for `--help`.
    var help: String { get }
    /// What a value looks like, for `--help` (`<1...64>`, `<jwt|none>`).
    var placeholder: String { get }
    /// The default as `--help` shows it, or `nil` for none.
    var defaultText: String? { get }
    /// Whether the flag may be given without a value (then it means `true`).
    var isSwitch: Bool { get }
    /// The TOML type of the setting's values in the configuration file.
    var fileType: SettingFileType { get }
    /// Why `input` is not a value of this setting, or `nil` when it is one.
    func problem(with input: SettingInput) -> String?
}

/// A setting's value as given: text (a flag, an environment variable, a TOML string, integer or
/// boolean), or a list (a TOML array of strings, whose items may hold commas).
enum SettingInput: Sendable, Equatable {
    case text(String)
    case list([String])
}

/// What a setting's value is in the TOML file.
enum SettingFileType: String, Sendable {
    case string
    case integer
    case boolean
    case array = "array of strings"
}

extension SettingDeclaration {
    /// The environment variable: `HERALD_` and the key in upper case, `-` as `_`.
    var environment: String { "HERALD_" + name.uppercased().replacingOccurrences(of: "-", with: "_") }
    /// The flag.
    var flag: String { "--" + name }
}

/// How a setting's text becomes a value, and how `--help` shows such values.
struct SettingKind<Value: Sendable>: Sendable {
    /// What a value looks like, for `--help`.
    let placeholder: String
    /// The value of `text`, or why it is not one (a phrase that follows the quoted text).
    let parse: @Sendable (String) -> Result<Value, SettingKindMismatch>
    /// The value of a list (a TOML array), for kinds that take one.
    var parseList: (@Sendable ([String]) -> Value)? = nil

    /// The value of `input`, or why it is not one.
    func value(of input: SettingInput) -> Result<Value, SettingKindMismatch> {
        switch input {
        case .text(let text): parse(text)
        case .list(let items):
            if let parseList { .success(parseList(items)) } else { .failure(.init(reason: "is a list, but this setting takes one value")) }
        }
    }
}

/// Why a text is not a value of a setting's kind: a phrase such as "is not a whole number in 1...64".
struct SettingKindMismatch: Error {
    let reason: String
}

extension SettingKind where Value == String {
    /// Any text.
    static func text(_ placeholder: String = "<text>") -> Self {
        Self(placeholder: placeholder) { .success($0) }
    }

    /// One of a few words.
    static func choice(_ choices: [String]) -> Self {
        Self(placeholder: "<" + choices.joined(separator: "|") + ">") { text in
            choices.contains(text) ? .success(text) : .failure(.init(reason: "is not one of \(choices.joined(separator: ", "))"))
        }
    }

    /// An http or https URL with a host.
    static let url = Self(placeholder: "<url>") { text in
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host?.isEmpty == false else {
            return .failure(.init(reason: "is not an http(s) URL"))
        }
        return .success(text)
    }
}

extension SettingKind where Value == Int {
    /// A whole number in `range`.
    static func whole(_ range: ClosedRange<Int>, unit: String? = nil) -> Self {
        Self(placeholder: "<\(unit ?? "\(range.lowerBound)...\(range.upperBound)")>") { text in
            guard let value = Int(text), range.contains(value) else {
                return .failure(.init(reason: "is not a whole number in \(range.lowerBound)...\(range.upperBound)"))
            }
            return .success(value)
        }
    }
}

extension SettingKind where Value == Bool {
    /// `true` or `false`.
    static let bool = Self(placeholder: "<true|false>") { text in
        switch text {
        case "true": .success(true)
        case "false": .success(false)
        default: .failure(.init(reason: "is not true or false"))
        }
    }
}

extension SettingKind where Value == [String] {
    /// A comma-separated list; blanks around items are dropped, and so are empty items.
    static func list(_ placeholder: String) -> Self {
        Self(
            placeholder: placeholder,
            parse: { text in .success(text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }) },
            parseList: { $0 })
    }
}

/// One setting of `herald serve`, declared once in ``HeraldSettings``.
struct Setting<Value: Sendable>: SettingDeclaration {
    let name: String
    let help: String
    let kind: SettingKind<Value>
    /// The value when nothing sets it; `nil` when the setting has none.
    let defaultValue: Value?
    /// The default as `--help` and the README show it, when it is not simply `defaultValue`.
    private let shownDefault: String?

    /// Declares a setting.
    ///
    /// - Parameters:
    ///   - name: The key.
    ///   - kind: What its values look like.
    ///   - default: Its value when nothing sets it.
    ///   - shownDefault: What `--help` shows as the default, when the default depends on
    ///     something else (`AWS_REGION, else us-east-1`).
    ///   - help: One sentence for `--help`.
    init(_ name: String, _ kind: SettingKind<Value>, default: Value? = nil, shownDefault: String? = nil, help: String) {
        self.name = name
        self.help = help
        self.kind = kind
        self.defaultValue = `default`
        self.shownDefault = shownDefault
    }

    var placeholder: String { kind.placeholder }

    var defaultText: String? {
        if let shownDefault { return shownDefault }
        guard let defaultValue else { return nil }
        switch defaultValue {
        case let list as [String]: return list.joined(separator: ",")
        default: return "\(defaultValue)"
        }
    }

    var isSwitch: Bool { Value.self == Bool.self }

    var fileType: SettingFileType {
        switch Value.self {
        case is Int.Type: .integer
        case is Bool.Type: .boolean
        case is [String].Type: .array
        default: .string
        }
    }

    func problem(with input: SettingInput) -> String? {
        switch kind.value(of: input) {
        case .success: nil
        case .failure(let mismatch): mismatch.reason
        }
    }
}
