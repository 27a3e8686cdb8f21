import Foundation
import TestSupport
import XCTest
@testable import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// The real thing: `serve train` killed with SIGKILL mid-run, then `--resume`d, writes the same adapter bytes as a
/// run that was never interrupted.
final class KillResumeTests: XCTestCase {
    func testKilledAndResumedRunWritesTheSameAdapter() throws {
        let serve = TestPaths.packageRoot.appendingPathComponent(".build/release/serve").path
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: serve), "serve not built (swift build -c release)")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = TinyModel.config(layers: 4, dim: 64)
        let model = try TinyModel.write(c, seed: 31)
        defer { try? FileManager.default.removeItem(atPath: model) }
        let sequences = TinyModel.sequences((0..<40).map { 24 + $0 % 17 }, vocab: c.vocabSize, seed: 6)
        let data = dir.appendingPathComponent("data.jsonl").path
        try sequences.map { s in
            "{\"input_ids\": \(s.tokens.map(Int.init)), \"labels\": \(zip(s.tokens, s.supervised).map { $1 ? Int($0) : -100 })}"
        }.joined(separator: "\n").write(toFile: data, atomically: true, encoding: .utf8)

        func arguments(_ output: String) -> [String] {
            ["train", "--data", data, "--output", output, "--model", model, "--targets", "all", "--rank", "4",
             "--batch-size", "4", "--max-steps", "150", "--checkpoint-every", "5", "--dropout", "0.1", "--lr", "1e-3",
             "--eval-split", "0.1", "--threads", "2"]
        }
        func start(_ args: [String]) throws -> Process {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: serve)
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        let straight = dir.appendingPathComponent("straight").path
        let a = try start(arguments(straight))
        a.waitUntilExit()
        XCTAssertEqual(a.terminationStatus, 0)

        let killed = dir.appendingPathComponent("killed").path
        let b = try start(arguments(killed))
        let log = killed + ".run/train_log.jsonl"
        var steps = 0
        while b.isRunning && steps < 23 {
            usleep(1000)
            steps = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { $0.contains("\"type\":\"train\"") }.count
        }
        XCTAssertTrue(b.isRunning, "the run finished before it could be killed")
        kill(b.processIdentifier, SIGKILL)
        b.waitUntilExit()
        XCTAssertEqual(b.terminationReason, .uncaughtSignal)
        XCTAssertFalse(FileManager.default.fileExists(atPath: killed + "/adapter_model.safetensors"))

        let resumed = try start(arguments(killed) + ["--resume"])
        resumed.waitUntilExit()
        XCTAssertEqual(resumed.terminationStatus, 0)
        let expected = try Data(contentsOf: URL(fileURLWithPath: straight + "/adapter_model.safetensors"))
        let actual = try Data(contentsOf: URL(fileURLWithPath: killed + "/adapter_model.safetensors"))
        XCTAssertEqual(actual, expected, "adapter after kill + resume differs from the uninterrupted run")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: killed + "/adapter_config.json")),
                       try Data(contentsOf: URL(fileURLWithPath: straight + "/adapter_config.json")))
        // Each step is logged once, with the same losses.
        func losses(_ path: String) throws -> [String] {
            try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter { $0.contains("\"type\":\"train\"") }
                .map { String($0.split(separator: ",").prefix(4).joined(separator: ",")) }
        }
        XCTAssertEqual(try losses(log), try losses(straight + ".run/train_log.jsonl"))
        XCTAssertEqual(try losses(log).count, 150)
    }
}
