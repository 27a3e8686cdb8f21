import ArgumentParser
import Foundation
import Server

/// `serve [--port N] …`: the OpenAI-compatible HTTP server (the default subcommand).
struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server", abstract: "Start the OpenAI-compatible server (the default subcommand).")

    @Option(help: "A JSON configuration file (see config/README.md); flags override it.") var config: String?
    @Option(help: "Path to a Llama-architecture GGUF model (default: the one in models/).") var model: String?
    @Option(help: "Address to listen on.") var host: String?
    @Option(help: "TCP port (0: any free port).") var port: Int?
    @Option(help: "Threads of the forward pass.") var threads: Int?
    @Option(name: .customLong("adapters-dir"), help: "Folder whose adapters are registered at start-up.") var adaptersDir: String?
    @Option(name: .customLong("adapter-root"), help: "A further folder runtime adapter loads may read from (repeatable).")
    var adapterRoots: [String] = []
    @Option(help: "Tokens per engine step.") var batchTokenBudget: Int?
    @Option(help: "Sequences decoded together.") var maxRunningSequences: Int?
    @Option(help: "Requests that may wait; past it 429.") var maxQueuedRequests: Int?
    @Option(help: "MB of keys and values kept from recent prompts for prompts that start the same way (0: off).")
    var prefixCacheMb: Int?
    @Option(help: "Longest sequence in tokens (0: the model's).") var contextSize: Int?
    @Option(name: .customLong("api-key"), help: "Require this key for inference (repeatable).") var apiKeys: [String] = []
    @Option(name: .customLong("admin-key"), help: "Require this key for adapter management (repeatable).") var adminKeys: [String] = []
    @Option(help: "debug, info, warning or error.") var logLevel: String?

    func run() throws {
        var c = ServerConfiguration()
        if let config {
            do { c = try ServerConfiguration(file: config) } catch { throw CommandError(error.description) }
        }
        if let host { c.host = host }
        if let port { c.port = port }
        if let threads { c.threads = threads }
        if let adaptersDir { c.adaptersDirectory = adaptersDir }
        c.adapterRoots += adapterRoots
        if let batchTokenBudget { c.batchTokenBudget = batchTokenBudget }
        if let maxRunningSequences { c.maxRunningSequences = maxRunningSequences }
        if let maxQueuedRequests { c.maxQueuedRequests = maxQueuedRequests }
        if let prefixCacheMb { c.prefixCacheMB = prefixCacheMb }
        if let contextSize { c.contextSize = contextSize }
        if !apiKeys.isEmpty { c.apiKeys = apiKeys }
        if !adminKeys.isEmpty { c.adminKeys = adminKeys }
        if let logLevel { c.logLevel = logLevel }
        if let model { c.model = model }
        do { try c.validate() } catch { throw CommandError(error.description) }
        let path = try DefaultModel.resolve(c.model)
        let logger = Logger(level: c.logLevel)
        let server: APIServer
        do {
            server = try APIServer(configuration: c, modelPath: path, logger: logger)
            try server.start()
        } catch {
            throw CommandError("\(error)")
        }
        server.waitForShutdown()
    }
}
