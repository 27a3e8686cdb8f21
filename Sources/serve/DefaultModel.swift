import Foundation

/// Finds the model a command should load: `--model PATH` when given, else the default model that
/// scripts/install.sh unpacks into `models/` (looked up from the working directory, then beside the executable's
/// package checkout).
enum DefaultModel {
    static let fileName = "SmolLM2-135M-Instruct.Q4_1.gguf"

    static func resolve(_ explicit: String?) throws -> String {
        if let explicit {
            guard FileManager.default.fileExists(atPath: explicit) else {
                throw CommandError("model file not found: \(explicit)")
            }
            return explicit
        }
        var candidates = [FileManager.default.currentDirectoryPath + "/models/" + fileName]
        // .build/<config>/serve → package root is three levels up.
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        candidates.append(exe.deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("models/" + fileName).path)
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        throw CommandError("no model given and \(fileName) not found in models/ (run scripts/install.sh, or pass --model PATH)")
    }
}

/// A one-line error for the terminal; ArgumentParser prints `Error: <description>` and exits 1.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
