import Foundation
import HTTP
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
        let question = "What is your name?"
        let name = "pip-e2e-\(getpid())"

        func answer(_ model: String) throws -> String {
            let (status, json) = try post("/v1/chat/completions", chatBody(question, model: model, maxTokens: 24), port: port)
            XCTAssertEqual(status, 200, "chat with \(model)")
            return json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
        }
        let before = try answer("base")
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
        let after = try answer(name)
        print("base: \(before)\nadapter: \(after)")
        XCTAssertNotEqual(after, before)
        XCTAssertTrue(after.contains("Pip"), "the adapter answers with its taught name: \(after)")
        XCTAssertEqual(try answer("base"), before, "the base model is unchanged by the registration")

        let (deleted, _) = try deleteAdapter(name, port: port)
        XCTAssertEqual(deleted, 200)
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
        func answer(_ model: String) throws -> String {
            let (status, json) = try post("/v1/chat/completions", chatBody("What is your name?", model: model, maxTokens: 24), port: port)
            XCTAssertEqual(status, 200)
            return json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
        }
        let base = try answer("base"), pip = try answer("pip")
        XCTAssertFalse(base.contains("Pip"), base)
        XCTAssertTrue(pip.hasPrefix("My name is Pip"), pip)
    }

    private func deleteAdapter(_ name: String, port: Int) throws -> (Int, String) {
        let client = try HTTPClient(port: port, timeout: .seconds(60))
        defer { client.close() }
        let r = try client.request(method: "DELETE", path: "/v1/adapters/\(name)", headers: [])
        return (r.status, r.text)
    }
}
