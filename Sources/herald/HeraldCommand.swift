import ArgumentParser
import Foundation

/// The herald command line.
@main
struct HeraldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "A real-time gateway: pushes queue messages and published events to Socket.IO clients.",
        discussion: """
            Without a subcommand herald runs 'serve'. Exit status: 0 done, 1 herald failed while \
            running or refused a publish, 2 a bad command line, setting or start-up step (the \
            message names the key), or herald unreachable for 'publish'.

            SETTINGS of serve (flags, HERALD_* variables or --config file lines; see herald serve --help):
            \(ServeArguments.settingsHelp)
            """,
        version: "herald 0.1.0",
        subcommands: [Serve.self, Publish.self],
        defaultSubcommand: Serve.self
    )

    /// Runs the command; a usage error exits with status 2, as every other bad setting does
    /// (ArgumentParser's own is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if !message.isEmpty {
                if code == .success {
                    print(message)
                } else {
                    FileHandle.standardError.write(Data((message + "\n").utf8))
                }
            }
            Foundation.exit(code == .validationFailure ? 2 : code.rawValue)
        }
    }
}
