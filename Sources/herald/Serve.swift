import ArgumentParser
import Foundation

/// `herald serve`: the gateway in one process.
///
/// Its flags are not declared to ArgumentParser: they are parsed from the settings table
/// (``HeraldSettings/all``), so that each setting is declared once and a value may start with `-`.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway: Socket.IO server, publish API, health endpoints.",
        usage: "herald serve [--<key> <value> | --<key>=<value>] ...",
        discussion: """
            Every setting is a flag (--key value or --key=value), an environment variable (HERALD_ \
            and the key in upper case with underscores, e.g. HERALD_API_KEY), or a key of the \
            TOML configuration file given with --config (its top-level keys). Flags win over \
            the environment, which wins over the file. A bad value or an unknown flag stops herald \
            with exit status 2 and a message naming the key.

            SETTINGS:
            \(ServeArguments.settingsHelp)
            """
    )

    @Argument(parsing: .captureForPassthrough, help: .hidden) var arguments: [String] = []

    func run() async throws {
        do {
            switch try ServeArguments.parse(arguments) {
            case .help:
                print(Serve.helpMessage())
            case .version:
                print(HeraldCommand.configuration.version)
            case .run(let flags):
                let settings = try HeraldSettings(flags: flags, environment: ProcessInfo.processInfo.environment)
                try await ServePlan(settings).run()
            }
        } catch {
            FileHandle.standardError.write(Data("herald: \(error.description)\n".utf8))
            throw ExitCode(error.status)
        }
    }
}
