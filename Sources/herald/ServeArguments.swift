/// The command line of `herald serve`, parsed from the settings table: `--key value` and
/// `--key=value` (a value may start with `-`), a boolean's flag alone meaning `true`, and
/// `--help` and `--version`.
enum ServeArguments: Equatable {
    /// Run with these flag values, by key.
    case run(flags: [String: String])
    /// Print the help.
    case help
    /// Print the version.
    case version

    /// Parses `arguments` (without the command's name).
    static func parse(_ arguments: [String]) throws(HeraldSettings.Problem) -> Self {
        var flags: [String: String] = [:]
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            switch argument {
            case "--help", "-h": return .help
            case "--version": return .version
            default: break
            }
            guard argument.hasPrefix("--") else {
                throw HeraldSettings.Problem(
                    description: argument.hasPrefix("-")
                        ? "unknown flag '\(argument)': settings are given as --key value (herald serve --help lists them)"
                        : "unexpected argument '\(argument)': settings are given as --key value (herald serve --help lists them)"
                )
            }
            let body = argument.dropFirst(2)
            let name = String(body.prefix { $0 != "=" })
            guard let setting = HeraldSettings.declaration(named: name) else {
                throw HeraldSettings.Problem(description: "unknown flag '--\(name)' (herald serve --help lists every setting)")
            }
            if let equals = body.firstIndex(of: "=") {
                flags[name] = String(body[body.index(after: equals)...])
            } else if setting.isSwitch {
                if let next = remaining.first, next == "true" || next == "false" {
                    flags[name] = remaining.removeFirst()
                } else {
                    flags[name] = "true"
                }
            } else if let value = remaining.popFirst() {
                flags[name] = value
            } else {
                throw HeraldSettings.Problem(description: "\(name) (from \(setting.flag)): needs a value, \(setting.placeholder)")
            }
        }
        return .run(flags: flags)
    }

    /// The settings as `--help` lists them: a line with the flag, its value and its default, then
    /// its help, indented and wrapped to fit 80 columns (so that ArgumentParser keeps it as is).
    static var settingsHelp: String {
        HeraldSettings.all.map { setting in
            let shown = setting.defaultText.map { "  (default: \($0.isEmpty ? "none" : $0))" } ?? ""
            return "  \(setting.flag) \(setting.placeholder)\(shown)\n" + wrapped(setting.help, indent: 6, width: 78)
        }.joined(separator: "\n")
    }

    private static func wrapped(_ text: String, indent: Int, width: Int) -> String {
        let margin = String(repeating: " ", count: indent)
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, margin.count + line.count + 1 + word.count > width {
                lines.append(margin + line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        if !line.isEmpty { lines.append(margin + line) }
        return lines.joined(separator: "\n")
    }
}
