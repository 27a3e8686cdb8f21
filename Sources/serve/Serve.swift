import ArgumentParser

/// The one executable. With no subcommand it runs the server; every other tool is a subcommand,
/// one file each, holding argument parsing only.
@main
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "LoraServe: a CPU server for many LoRA adapters on one Llama-architecture GGUF base model.",
        subcommands: [
            ServerCommand.self,
            BenchCommand.self,
            MergeCommand.self,
            GenerateCommand.self,
            TemplateCommand.self,
            AdaptersCommand.self,
            TrainCommand.self,
        ],
        defaultSubcommand: ServerCommand.self)

    /// ArgumentParser's own entry point, after OpenBLAS's kernels are checked (this may restart the process).
    static func main() async {
        OpenBLASCore.restartIfGeneric()
        do {
            var command = try parseAsRoot()
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
