import Foundation
import JSON
import Server
import TestSupport
import Trainer
import XCTest

/// Issue 6, end to end on the default model: train an adapter from a JSONL file that teaches the assistant its
/// name, register it into the running server with the trainer's own `--register` path, and ask through the API.
final class TrainAndServeTests: XCTestCase {
    /// A reporter that keeps the loss of every step (the test prints the first and last).
    final class Recorder: TrainingReporter {
        var losses: [Double] = []
        func note(_ text: String) {}
        func started(totalSteps: Int, completedSteps: Int) {}
        func step(_ record: StepRecord, totalSteps: Int) { losses.append(record.loss) }
        func eval(_ record: EvalRecord) {}
    }

    func testTrainedAdapterChangesTheAnswerThroughTheAPI() throws {
        let (_, port) = try ServerFixture.server()
        let name = "pip-e2e-\(getpid())"
        let before = try nameAnswer("base", port: port)
        XCTAssertFalse(before.contains("Pip"), "the base model already answers with the name: \(before)")

        // The identity examples of the data set the shipped example adapter (adapters/pip) is trained on. A short,
        // high-learning-rate run keeps the test under a minute; the shipped adapter's README has the full command.
        let repoData = TestPaths.packageRoot.appendingPathComponent("adapters/data/pip.jsonl")
        let lines = try String(contentsOf: repoData, encoding: .utf8).split(separator: "\n").filter { $0.contains("Pip") }
        XCTAssertGreaterThanOrEqual(lines.count, 16)
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("train-e2e-\(getpid())")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let data = work.appendingPathComponent("pip.jsonl")
        try (lines.prefix(16).joined(separator: "\n") + "\n").write(to: data, atomically: true, encoding: .utf8)

        // The output goes under the server's adapters folder: registration paths must lie inside its roots.
        let output = ServerFixture.adaptersRoot + "/" + name
        var config = TrainRunConfiguration(dataPath: data.path, outputPath: output, modelPath: TestPaths.defaultModel.path)
        config.runDirectory = work.appendingPathComponent("run").path
        config.options.learningRate = 3e-3
        config.options.schedule = .constant
        config.options.warmupRatio = 0
        config.options.batchSize = 8
        config.options.maxSteps = 12
        config.options.checkpointEvery = nil
        config.data.evalSplit = 0
        config.registerURL = "http://127.0.0.1:\(port)"
        config.adapterName = name
        let recorder = Recorder()
        let summary = try TrainingSession.run(config, reporter: recorder)
        defer { try? FileManager.default.removeItem(atPath: output) }
        XCTAssertEqual(summary.registered.map { $0.contains(name) }, true, "registered: \(summary.registered ?? "nil")")
        let first = try XCTUnwrap(recorder.losses.first), last = try XCTUnwrap(recorder.losses.last)
        print("e2e training: \(recorder.losses.count) steps, loss \(first) -> \(last)")
        XCTAssertLessThan(last, first / 4, "the loss should fall well below its start")

        let (status, models) = try get("/v1/models", port: port)
        XCTAssertEqual(status, 200)
        XCTAssertTrue(models.contains(name), "the new adapter is listed")
        let after = try nameAnswer(name, port: port)
        print("base: \(before)\nadapter: \(after)")
        XCTAssertNotEqual(after, before)
        XCTAssertTrue(after.contains("Pip"), "the adapter answers with its taught name: \(after)")
        XCTAssertEqual(try nameAnswer("base", port: port), before, "the base model is unchanged by the registration")
        XCTAssertEqual(try removeAdapter(name, port: port), 200)
    }

    /// The example adapter shipped in adapters/ (made by `serve train`, see adapters/pip/README.md) is registered
    /// when a server starts on that folder, and changes the answer the README shows.
    func testShippedExampleAdapterIsRegisteredAtStartUp() throws {
        var c = ServerConfiguration()
        c.port = 0
        c.adaptersDirectory = TestPaths.packageRoot.appendingPathComponent("adapters").path
        c.logLevel = "warning"
        let server = try APIServer(configuration: c, modelPath: TestPaths.defaultModel.path, logger: Logger(level: "warning"))
        let port = try server.start()
        defer { server.stop() }
        let (status, models) = try get("/v1/models", port: port)
        XCTAssertEqual(status, 200)
        XCTAssertTrue(models.contains("\"pip\""), models)
        let base = try nameAnswer("base", port: port), pip = try nameAnswer("pip", port: port)
        XCTAssertFalse(base.contains("Pip"), base)
        XCTAssertTrue(pip.hasPrefix("My name is Pip"), pip)
    }

    /// The greedy answer of `model` to "What is your name?" through the chat API.
    private func nameAnswer(_ model: String, port: Int) throws -> String {
        let (status, json) = try post("/v1/chat/completions", chatBody("What is your name?", model: model, maxTokens: 24), port: port)
        XCTAssertEqual(status, 200, "chat with \(model)")
        return json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
    }
}
