import Foundation

/// Locations of the shared reference vectors and the default model, found from this
/// file's path so tests run from any working directory and from git worktrees.
public enum TestPaths {
    /// The package root (the folder holding Package.swift).
    public static let packageRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// `../shared/reference` beside the package root.
    public static let reference: URL = packageRoot
        .deletingLastPathComponent().appendingPathComponent("shared/reference")

    /// The default model that scripts/install.sh unpacks into models/.
    public static let defaultModel: URL = packageRoot
        .appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")

    public static func referenceFile(_ name: String) -> URL { reference.appendingPathComponent(name) }

    /// Parses a JSON reference file into Foundation objects.
    public static func loadJSON(_ name: String) throws -> Any {
        let data = try Data(contentsOf: referenceFile(name))
        return try JSONSerialization.jsonObject(with: data)
    }
}
