import Adapters
import Foundation
import Llama
import SafeTensors
import TestSupport
import XCTest
@testable import Trainer

/// The training reference (../shared/reference/train_case.json, train_grads.safetensors): the default model with
/// adapters/train-init on the four alpaca records, rendered and masked by the reference itself.
final class ReferenceGradientTests: XCTestCase {
    struct Case {
        var sequences: [TrainingSequence]
        var initialLoss: Double
        var losses: [Double]
    }

    static func referenceCase() throws -> Case {
        let json = try XCTUnwrap(TestPaths.loadJSON("train_case.json") as? [String: Any])
        let examples = try XCTUnwrap(json["examples"] as? [[String: Any]])
        var sequences: [TrainingSequence] = []
        for (i, e) in examples.enumerated() {
            let ids = try XCTUnwrap(e["input_ids"] as? [Int]).map(Int32.init)
            let labels = try XCTUnwrap(e["labels"] as? [Int])
            XCTAssertEqual(ids.count, labels.count)
            // HF labels are unshifted: labels[i] = ids[i] where trained, -100 elsewhere.
            for (id, label) in zip(ids, labels) where label != -100 { XCTAssertEqual(Int32(label), id) }
            sequences.append(TrainingSequence(tokens: ids, supervised: labels.map { $0 != -100 }, exampleID: i))
        }
        return Case(sequences: sequences, initialLoss: try XCTUnwrap(json["initial_loss"] as? Double),
                    losses: try XCTUnwrap(json["losses"] as? [Double]))
    }

    /// Loaded once per test process: model loading and dequantizing the embedding take a moment.
    nonisolated(unsafe) static var sharedBase: FrozenBase?   // tests run serially; only they touch it

    static func base() throws -> FrozenBase {
        if let b = sharedBase { return b }
        let path = TestPaths.defaultModel.path
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path), "model not installed")
        let b = try FrozenBase(path: path)
        sharedBase = b
        return b
    }

    static func trainInit(_ base: FrozenBase) throws -> LoRAAdapterFile {
        try AdapterLoader.load(path: TestPaths.referenceFile("adapters/train-init").path, name: "train-init",
                               base: base.config.adapterShape)
    }

    /// ‖g − g_ref‖ / ‖g_ref‖ for every tensor of train_grads.safetensors (asserted < 1e-3); returns the worst.
    static func compareToReferenceGradients(_ ours: [String: [Float]], file: StaticString = #filePath,
                                            line: UInt = #line) throws -> Double {
        let reference = try SafeTensorsFile(path: TestPaths.referenceFile("train_grads.safetensors").path)
        XCTAssertEqual(reference.tensors.count, ours.count, file: file, line: line)
        var worst = 0.0
        for info in reference.tensors {
            let name = String(info.name.dropLast(".grad".count))
            let g = try XCTUnwrap(ours[name], name, file: file, line: line)
            let r = try reference.floats(info)
            XCTAssertEqual(g.count, r.count, name, file: file, line: line)
            var diff = 0.0, norm = 0.0
            for (a, b) in zip(g, r) { diff += Double(a - b) * Double(a - b); norm += Double(b) * Double(b) }
            let rel = (diff / max(norm, 1e-30)).squareRoot()
            worst = max(worst, rel)
            XCTAssertLessThan(rel, 1e-3, "relative gradient error of \(name)", file: file, line: line)
        }
        return worst
    }

    func testReferenceDataIsWhatTheNoteSays() throws {
        let ref = try Self.referenceCase()
        XCTAssertEqual(ref.sequences.reduce(0) { $0 + $1.supervisedCount }, 14 + 3 + 26 + 8)
        XCTAssertEqual(ref.losses.count, 9)
        XCTAssertEqual(ref.losses[0], ref.initialLoss)
    }

    /// Without LoRA, the mean cross-entropy of every next token equals the one computed from the reference logits.
    func testBaseLossMatchesReferenceLogits() throws {
        let base = try Self.base()
        let file = try SafeTensorsFile(path: TestPaths.referenceFile("logits_base.safetensors").path)
        let vocab = base.config.vocabSize
        let model = LoRATrainingModel(base: base, layout: LoRALayout(config: base.config, modules: []), threads: 2)
        for index in 0..<2 {
            let ids = try file.ints(named: "input_ids.\(index)").map(Int32.init)
            let logits = try file.floats(named: "logits.\(index)")
            var expected = 0.0
            for i in 0..<ids.count - 1 {
                let row = logits[i * vocab..<(i + 1) * vocab]
                let mx = Double(row.max()!)
                let lse = mx + log(row.reduce(0.0) { $0 + exp(Double($1) - mx) })
                expected += lse - Double(row[row.startIndex + Int(ids[i + 1])])
            }
            let sequence = TrainingSequence(tokens: ids, supervised: [false] + Array(repeating: true, count: ids.count - 1),
                                            exampleID: 0)
            let (sum, count) = model.run([sequence], step: 0, gradientScale: nil, training: false)
            XCTAssertEqual(count, ids.count - 1)
            print("sequence \(index): loss sum \(sum), from reference logits \(expected)")
            XCTAssertEqual(sum, expected, accuracy: 1e-5 * expected)
        }
    }
}
