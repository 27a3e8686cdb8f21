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

extension TestPaths {
    /// The release `serve` that scripts/test.sh builds before the tests, or nil when it is not there.
    public static var releaseServe: String? {
        let path = packageRoot.appendingPathComponent(".build/release/serve").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }
}

/// Runs `executable` to the end; its exit status and everything it wrote to stdout and stderr, interleaved.
/// `environment` replaces the test process's own when given.
public func runToEnd(_ executable: String, _ arguments: [String],
                     environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = environment }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, text)
}
