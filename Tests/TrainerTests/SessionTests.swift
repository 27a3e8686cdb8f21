import Adapters
import Foundation
import GGUF
import JSON
import Llama
import TestSupport
import XCTest
@testable import Trainer
#if canImport(Glibc)
import Glibc
#endif

/// Accepts one HTTP request on 127.0.0.1 (port 0) and answers it with `status`; keeps what it received.
final class OneRequestServer: @unchecked Sendable {   // `received` is written by the accept thread before `done` signals
    let port: Int
    private let fd: Int32
    private(set) var received = ""
    private let done = DispatchSemaphore(value: 0)

    init(status: Int, body: String) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard ok == 0, listen(fd, 1) == 0 else { throw TrainerError("cannot listen") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        self.fd = fd
        Thread.detachNewThread { [self] in
            let c = accept(fd, nil, nil)
            var data: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(c, &buffer, buffer.count)
                if n <= 0 { break }
                data += buffer[0..<n]
                let text = String(decoding: data, as: UTF8.self)
                if let headerEnd = text.range(of: "\r\n\r\n") {
                    let head = text[..<headerEnd.lowerBound].lowercased()
                    let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                    if text.utf8.count - text[..<headerEnd.upperBound].utf8.count >= length { break }
                }
            }
            received = String(decoding: data, as: UTF8.self)
            let reply = "HTTP/1.1 \(status) X\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            _ = reply.withCString { write(c, $0, strlen($0)) }
            close(c)
            done.signal()
        }
    }

    func wait() { done.wait() }
    deinit { close(fd) }
}

final class Silent: TrainingReporter {
    var notes: [String] = []
    var steps: [StepRecord] = []
    func note(_ text: String) { notes.append(text) }
    func started(totalSteps: Int, completedSteps: Int) {}
    func step(_ record: StepRecord, totalSteps: Int) { steps.append(record) }
    func eval(_ record: EvalRecord) {}
}

/// `serve train`'s whole path on a tiny model with tokenized data: output folder, log, provenance, registration.
final class SessionTests: XCTestCase {
    func testSessionWritesAdapterFolderAndRegistersIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("session-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = TinyModel.config()
        let modelPath = try TinyModel.write(c, seed: 8)
        defer { try? FileManager.default.removeItem(atPath: modelPath) }
        let sequences = TinyModel.sequences([10, 12, 8, 9, 14, 11], vocab: c.vocabSize, seed: 2)
        var lines = sequences.map { s -> String in
            let labels = zip(s.tokens, s.supervised).map { $1 ? Int($0) : -100 }
            return "{\"input_ids\": \(s.tokens.map(Int.init)), \"labels\": \(labels)}"
        }
        lines.insert("{\"broken\": ", at: 2)
        let dataPath = dir.appendingPathComponent("data.jsonl").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: dataPath, atomically: true, encoding: .utf8)

        let server = try OneRequestServer(status: 200, body: "{\"name\":\"tiny\"}")
        var config = TrainRunConfiguration(dataPath: dataPath, outputPath: dir.appendingPathComponent("tiny").path, modelPath: modelPath)
        config.options.targets = Set(Projection.allCases)
        config.options.rank = 2
        config.options.maxSteps = 3
        config.options.batchSize = 2
        config.data.evalSplit = 0.2
        config.registerURL = "http://127.0.0.1:\(server.port)"
        config.registerKey = "secret"

        // A bad line is an error naming it, unless skipping was asked for.
        XCTAssertThrowsError(try TrainingSession.run(config, reporter: Silent())) { XCTAssertTrue("\($0)".contains("line 3"), "\($0)") }
        config.data.skipBadLines = true
        let reporter = Silent()
        let summary = try TrainingSession.run(config, reporter: reporter)
        server.wait()

        XCTAssertEqual(summary.result?.steps, 3)
        XCTAssertEqual(reporter.steps.map(\.step), [1, 2, 3])
        XCTAssertEqual(summary.stats.badLines.map(\.line), [3])
        XCTAssertEqual(summary.stats.trainExamples + summary.stats.evalExamples, 6)
        let files = try FileManager.default.contentsOfDirectory(atPath: config.outputPath).sorted()
        XCTAssertEqual(files, ["adapter_config.json", "adapter_model.safetensors", "loss_curve.svg", "train_log.jsonl"])
        XCTAssertTrue(try String(contentsOfFile: config.outputPath + "/loss_curve.svg", encoding: .utf8).hasPrefix("<svg"))
        let adapter = try AdapterLoader.load(path: config.outputPath, name: "tiny", base: c.adapterShape)
        XCTAssertEqual(adapter.metadata["lora_serve.base_sha256"], try Provenance.sha256(ofFile: modelPath))
        XCTAssertEqual(adapter.metadata["lora_serve.data_sha256"],
                       SHA256.hex(Array(try Data(contentsOf: URL(fileURLWithPath: dataPath)))))
        XCTAssertEqual(adapter.metadata["lora_serve.steps"], "3")
        XCTAssertNotNil(adapter.metadata["lora_serve.final_train_loss"])

        // The registration request.
        XCTAssertTrue(server.received.hasPrefix("POST /v1/adapters HTTP/1.1\r\n"), server.received)
        XCTAssertTrue(server.received.contains("Authorization: Bearer secret"), server.received)
        let body = try XCTUnwrap(server.received.components(separatedBy: "\r\n\r\n").last)
        let json = try JSONParser.parse(body)
        XCTAssertEqual(json["name"]?.stringValue, "tiny")
        XCTAssertEqual(json["path"]?.stringValue, URL(fileURLWithPath: config.outputPath).standardizedFileURL.path)

        // The same output again is refused without --overwrite.
        config.registerURL = nil
        XCTAssertThrowsError(try TrainingSession.run(config, reporter: Silent())) { XCTAssertTrue("\($0)".contains("already exists")) }

        // --init-adapter: starts from that adapter, takes its rank and targets; a vanishing learning rate leaves it as it was.
        var next = config
        next.outputPath = dir.appendingPathComponent("continued").path
        next.initAdapter = config.outputPath
        next.options.rank = 16
        next.options.targets = [.q]
        next.options.learningRate = 1e-30
        next.options.optimizer.weightDecay = 0
        next.options.maxSteps = 1
        _ = try TrainingSession.run(next, reporter: Silent())
        let continued = try AdapterLoader.load(path: next.outputPath, name: "c", base: c.adapterShape)
        XCTAssertEqual(continued.rank, 2)
        XCTAssertEqual(continued.targets, adapter.targets)
        XCTAssertEqual(continued.modules.map(\.a), adapter.modules.map(\.a))
        XCTAssertEqual(continued.modules.map(\.b), adapter.modules.map(\.b))
    }

    /// base_model_name_or_path must be a Hugging Face id PEFT can load, or null: never a display name.
    func testBaseModelIDComesOnlyFromSourceMetadata() throws {
        func id(_ metadata: [String: String]) throws -> String? {
            var w = GGUFWriter()
            w.set("general.architecture", .string("llama"))
            w.set("general.name", .string("Smollm2 135M 8k Lc100K Mix1 Ep2"))
            for (k, v) in metadata { w.set(k, .string(v)) }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("meta-\(UUID().uuidString).gguf").path
            try w.write(to: path)
            defer { try? FileManager.default.removeItem(atPath: path) }
            return TrainingSession.huggingFaceID(of: try GGUFFile(path: path))
        }
        XCTAssertNil(try id([:]))
        XCTAssertEqual(try id(["general.source.huggingface.repository": "HuggingFaceTB/SmolLM2-135M-Instruct"]),
                       "HuggingFaceTB/SmolLM2-135M-Instruct")
        XCTAssertEqual(try id(["general.source.url": "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct/tree/main"]),
                       "HuggingFaceTB/SmolLM2-135M-Instruct")
        XCTAssertNil(try id(["general.source.url": "https://example.com/model"]))
    }

    func testRegistrationFailureIsReported() throws {
        let server = try OneRequestServer(status: 400, body: "{\"error\":{\"message\":\"no such file\"}}")
        XCTAssertThrowsError(try AdapterRegistration.register(url: "http://127.0.0.1:\(server.port)", name: "x", path: "/nope")) {
            XCTAssertTrue("\($0)".contains("400"), "\($0)")
            XCTAssertTrue("\($0)".contains("no such file"), "\($0)")
        }
        server.wait()
        XCTAssertThrowsError(try AdapterRegistration.register(url: "https://example.com", name: "x", path: "/p"))
    }
}
