import ArgumentParser

/// The herald command line.
@main
struct HeraldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "A real-time gateway: pushes queue messages and published events to Socket.IO clients.",
        subcommands: [Serve.self, Publish.self],
        defaultSubcommand: Serve.self
    )
}
