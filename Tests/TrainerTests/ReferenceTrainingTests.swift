import Adapters
import Foundation
import JSON
import Llama
import TestSupport
import XCTest
@testable import Trainer

/// train_case.json's loss curve: 8 full-batch AdamW steps (lr 1e-3 constant, no warm-up, betas 0.9/0.999, eps 1e-8,
/// weight decay 0.01, dropout 0, no clipping, no eval split) from adapters/train-init. The gradients of the first step
/// are train_grads.safetensors (checked here rather than in a pass of their own, to keep the suite short).
final class ReferenceTrainingTests: XCTestCase {
    func testEightAdamWStepsReproduceReferenceLossesAndGradients() throws {
        let base = try ReferenceGradientTests.base()
        let ref = try ReferenceGradientTests.referenceCase()
        let adapter = try ReferenceGradientTests.trainInit(base)
        let model = LoRATrainingModel(base: base, layout: LoRALayout(config: base.config, adapter: adapter), threads: 2)
        try model.loadParameters(from: adapter)

        var options = TrainingOptions()
        options.learningRate = 1e-3
        options.schedule = .constant
        options.warmupRatio = 0
        options.optimizer = AdamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01)
        options.dropout = 0
        options.maxGradNorm = nil
        options.batchSize = ref.sequences.count
        options.maxSteps = 8
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-ref-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: run) }
        let trainer = try Trainer(model: model, options: options, train: ref.sequences, eval: [], runDirectory: run,
                                  fingerprint: "reference")
        var firstGradients: [String: [Float]] = [:]
        trainer.inspectGradients = { step, grads in
            if step == 0 { firstGradients = model.peftTensors(of: grads) }
        }
        let result = try trainer.run(resume: false)
        XCTAssertEqual(result.steps, 8)

        // The log, read back as a user would: one JSON object per line.
        let text = try String(contentsOfFile: run + "/train_log.jsonl", encoding: .utf8)
        let records = try text.split(separator: "\n").map { try JSONParser.parse(String($0)) }
        XCTAssertEqual(records.count, 8)
        for (k, record) in records.enumerated() {
            XCTAssertEqual(record["type"]?.stringValue, "train")
            XCTAssertEqual(record["step"]?.intValue, k + 1)
            XCTAssertEqual(record["lr"]?.doubleValue, 1e-3)
            let loss = try XCTUnwrap(record["loss"]?.doubleValue)
            XCTAssertEqual(loss, ref.losses[k], accuracy: 1e-3 * ref.losses[k], "loss before update \(k + 1)")
            print("step \(k + 1): loss \(loss) reference \(ref.losses[k])")
            XCTAssertNotNil(record["grad_norm"]?.doubleValue)
            XCTAssertEqual(record["tokens"]?.intValue, ref.sequences.reduce(0) { $0 + $1.tokens.count })
            XCTAssertNotNil(record["tokens_per_s"]?.doubleValue)
        }
        let worst = try ReferenceGradientTests.compareToReferenceGradients(firstGradients)
        print("worst relative gradient error at step 1: \(worst)")

        // losses[8]: after the eighth update, with the adapter as written to disk (PEFT, q/k B rows in HF order)
        // and loaded back the way the server loads adapters.
        let folder = run + "/adapter"
        let written = model.adapterFile(name: "trained", path: folder, alpha: 16, rsLoRA: false, baseModelName: nil)
        try AdapterOutput.write(written, base: base.config.adapterShape, to: folder,
                                provenance: Provenance(baseSHA256: "", baseName: nil, chatTemplate: "", dataSHA256: "", steps: 8,
                                                       keptStep: 8, finalTrainLoss: nil, finalEvalLoss: nil, bestEvalLoss: nil,
                                                       trainExamples: 4, evalExamples: 0, options: ""),
                                extraFiles: [], overwrite: false)
        let reloaded = try AdapterLoader.load(path: folder, name: "trained", base: base.config.adapterShape)
        let check = LoRATrainingModel(base: base, layout: LoRALayout(config: base.config, adapter: reloaded), threads: 2)
        try check.loadParameters(from: reloaded)
        let (sum, count) = check.run(ref.sequences, step: 0, gradientScale: nil, training: false)
        XCTAssertEqual(sum / Double(count), ref.losses[8], accuracy: 1e-3 * ref.losses[8], "loss after 8 updates")
        print("after 8: \(sum / Double(count)) reference \(ref.losses[8])")
    }
}
