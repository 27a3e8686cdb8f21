import ArgumentParser

/// `serve [--port N] …`: the OpenAI-compatible HTTP server (the default subcommand).
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server", abstract: "Start the OpenAI-compatible server (the default).")

    @Option(help: "Path to a Llama-architecture GGUF model (default: the one in models/).")
    var model: String?

    func run() async throws {
        throw ValidationError("the server is not built yet")
    }
}
