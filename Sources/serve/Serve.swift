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
}
