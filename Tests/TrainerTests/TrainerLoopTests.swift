import Adapters
import Foundation
import JSON
import Llama
import SafeTensors
import XCTest
@testable import Trainer

/// The training loop on a tiny random model: resume equality, determinism, step-level loss normalisation,
/// early stopping, the written adapter.
final class TrainerLoopTests: XCTestCase {
    var cleanup: [String] = []

    override func tearDown() {
        for p in cleanup { try? FileManager.default.removeItem(atPath: p) }
        cleanup = []
    }

    func temporaryPath(_ name: String) -> String {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)").path
        cleanup.append(p)
        return p
    }

    lazy var base: FrozenBase = {
        let path = try! TinyModel.write(TinyModel.config(), seed: 21)
        cleanup.append(path)
        return try! FrozenBase(path: path)
    }()

    func options() -> TrainingOptions {
        var o = TrainingOptions()
        o.rank = 4
        o.alpha = 8
        o.targets = Set(Projection.allCases)
        o.dropout = 0.1
        o.learningRate = 5e-3
        o.schedule = .cosine
        o.warmupRatio = 0.2
        o.batchSize = 3
        o.epochs = 3
        o.maxGradNorm = 0.5
        o.seed = 17
        return o
    }

    func makeTrainer(_ o: TrainingOptions, run: String, train: [TrainingSequence], eval: [TrainingSequence]) throws -> Trainer {
        let layout = LoRALayout(config: base.config, targets: o.targets, rank: o.rank, alpha: o.alpha, rsLoRA: o.rsLoRA)
        let model = LoRATrainingModel(base: base, layout: layout, threads: 2)
        model.initializeParameters(seed: o.seed)
        return try Trainer(model: model, options: o, train: train, eval: eval, runDirectory: run, fingerprint: "tiny")
    }

    var data: (train: [TrainingSequence], eval: [TrainingSequence]) {
        let all = TinyModel.sequences([12, 7, 15, 9, 11, 8, 14, 6, 10, 13, 9, 12], vocab: base.config.vocabSize, seed: 3)
        return (Array(all[0..<10]), Array(all[10...]))
    }

    func testResumeAfterKillGivesTheSameAdapter() throws {
        var o = options()
        o.checkpointEvery = 2
        o.patience = 3
        let (train, eval) = data
        let straight = try makeTrainer(o, run: temporaryPath("straight"), train: train, eval: eval)
        let full = try straight.run(resume: false)
        XCTAssertEqual(full.steps, 12)   // 3 epochs × ceil(10 / 3)

        let runDir = temporaryPath("killed")
        let first = try makeTrainer(o, run: runDir, train: train, eval: eval)
        first.interrupt = { $0 == 7 }    // killed after step 7; the last checkpoint is step 6
        XCTAssertThrowsError(try first.run(resume: false)) { XCTAssertTrue($0 is TrainingInterrupted) }
        // A fresh process: new model, different initial parameters, everything from the checkpoint.
        let second = try makeTrainer(o, run: runDir, train: train, eval: eval)
        second.model.initializeParameters(seed: 12345)
        let resumed = try second.run(resume: true)
        XCTAssertEqual(resumed.resumedFrom, 6)
        XCTAssertEqual(resumed.steps, 12)
        XCTAssertEqual(second.model.params.array, straight.model.params.array, "parameters after resume")
        XCTAssertEqual(resumed.stepRecords.map(\.loss), full.stepRecords.map(\.loss))
        XCTAssertEqual(resumed.stepRecords.map(\.gradNorm), full.stepRecords.map(\.gradNorm))
        XCTAssertEqual(resumed.evalRecords, full.evalRecords)
        // The log holds each step once.
        let lines = try String(contentsOfFile: runDir + "/train_log.jsonl", encoding: .utf8).split(separator: "\n")
        let steps = try lines.map { try JSONParser.parse(String($0)) }.filter { $0["type"]?.stringValue == "train" }
        XCTAssertEqual(steps.compactMap { $0["step"]?.intValue }, Array(1...12))

        // A checkpoint from other options is refused.
        var other = o
        other.learningRate = 1e-2
        let wrong = try makeTrainer(other, run: runDir, train: train, eval: eval)
        XCTAssertThrowsError(try wrong.run(resume: true)) { XCTAssertTrue("\($0)".contains("different run"), "\($0)") }
        // Starting fresh over a checkpoint is refused too.
        let fresh = try makeTrainer(o, run: runDir, train: train, eval: eval)
        XCTAssertThrowsError(try fresh.run(resume: false))
    }

    func testSameSeedSameAdapterOtherSeedOtherAdapter() throws {
        let (train, eval) = data
        let a = try makeTrainer(options(), run: temporaryPath("a"), train: train, eval: eval)
        _ = try a.run(resume: false)
        let b = try makeTrainer(options(), run: temporaryPath("b"), train: train, eval: eval)
        _ = try b.run(resume: false)
        XCTAssertEqual(a.model.params.array, b.model.params.array)
        var o = options()
        o.seed = 18
        let c = try makeTrainer(o, run: temporaryPath("c"), train: train, eval: eval)
        _ = try c.run(resume: false)
        XCTAssertNotEqual(a.model.params.array, c.model.params.array)
    }

    /// Loss and gradient of a step are Σ CE / N over the whole step, however it is cut into micro-batches and passes.
    func testStepLossDoesNotDependOnMicroBatching() throws {
        let (train, _) = data
        let examples = Array(train.prefix(6))
        func firstStep(batch: Int, accum: Int, passTokens: Int) throws -> (Double, [Float]) {
            var o = options()
            o.batchSize = batch
            o.gradientAccumulation = accum
            o.maxTokensPerPass = passTokens
            o.maxSteps = 1
            o.warmupRatio = 0
            o.maxGradNorm = nil
            let t = try makeTrainer(o, run: temporaryPath("mb"), train: examples, eval: [])
            let r = try t.run(resume: false)
            return (r.stepRecords[0].loss, t.model.params.array)
        }
        let (l1, p1) = try firstStep(batch: 6, accum: 1, passTokens: 4096)
        let (l2, p2) = try firstStep(batch: 2, accum: 3, passTokens: 4096)
        let (l3, p3) = try firstStep(batch: 6, accum: 1, passTokens: 16)
        XCTAssertEqual(l1, l2, accuracy: 1e-6 * l1)
        XCTAssertEqual(l1, l3, accuracy: 1e-6 * l1)
        for (a, b) in zip(p1, p2) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a))) }
        for (a, b) in zip(p1, p3) { XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(a))) }
    }

    func testEarlyStoppingKeepsTheBestEval() throws {
        var o = options()
        o.learningRate = 0.3        // far too high: the eval loss soon gets worse
        o.warmupRatio = 0
        o.schedule = .constant
        o.epochs = 12
        o.patience = 2
        o.maxGradNorm = nil
        let (train, eval) = data
        let t = try makeTrainer(o, run: temporaryPath("early"), train: train, eval: eval)
        let r = try t.run(resume: false)
        XCTAssertTrue(r.stoppedEarly)
        XCTAssertLessThan(r.steps, 12 * t.stepsPerEpoch)
        let best = try XCTUnwrap(r.bestEvalLoss)
        XCTAssertEqual(r.evalRecords.map(\.loss).min(), best)
        XCTAssertEqual(r.evalRecords.first { $0.loss == best }?.step, r.keptStep)
        // The kept parameters are the best ones: evaluating them gives the best eval loss again.
        XCTAssertEqual(t.evaluate().loss, best, accuracy: 1e-9)
    }

    func testWrittenAdapterLoadsBackWithProvenance() throws {
        let (train, _) = data
        var o = options()
        o.maxSteps = 2
        let t = try makeTrainer(o, run: temporaryPath("w"), train: train, eval: [])
        let r = try t.run(resume: false)
        let folder = temporaryPath("adapter")
        let adapter = t.model.adapterFile(name: "tiny", path: folder, alpha: o.alpha, rsLoRA: false, baseModelName: "tiny")
        let provenance = Provenance(baseSHA256: "b", baseName: "tiny", chatTemplate: "t", dataSHA256: "d", steps: r.steps,
                                    keptStep: r.keptStep, finalTrainLoss: r.finalTrainLoss, finalEvalLoss: nil, bestEvalLoss: nil,
                                    trainExamples: train.count, evalExamples: 0, options: o.canonicalText)
        try AdapterOutput.write(adapter, base: base.config.adapterShape, to: folder, provenance: provenance,
                                extraFiles: [("train_log.jsonl", Data("x\n".utf8))], overwrite: false)
        XCTAssertThrowsError(try AdapterOutput.write(adapter, base: base.config.adapterShape, to: folder, provenance: provenance,
                                                     extraFiles: [], overwrite: false))
        let loaded = try AdapterLoader.load(path: folder, name: "tiny", base: base.config.adapterShape)
        XCTAssertEqual(loaded.metadata["lora_serve.steps"], "2")
        XCTAssertEqual(loaded.metadata["lora_serve.data_sha256"], "d")
        XCTAssertEqual(loaded.metadata["lora_serve.final_train_loss"], r.finalTrainLoss.map { String($0) })
        XCTAssertEqual(loaded.rank, 4)
        XCTAssertEqual(loaded.alpha, 8)
        XCTAssertEqual(loaded.targets.count, 7)
        for m in loaded.modules {
            let slot = try XCTUnwrap(t.model.layout.slot(layer: m.layer, Projection(m.target)))
            XCTAssertEqual(m.a, t.model.params.slice(slot.offsetA, slot.countA))
            XCTAssertEqual(m.b, t.model.params.slice(slot.offsetB, slot.countB), "B rows back in GGUF order after the round trip")
        }
        // On disk, q/k lora_B rows are in Hugging Face order.
        let raw = try SafeTensorsFile(path: folder + "/adapter_model.safetensors")
        let slot = try XCTUnwrap(t.model.layout.slot(layer: 0, .q))
        let hf = try raw.floats(named: "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")
        XCTAssertEqual(RotaryPermutation.hfToGGUF(hf, columns: 4, heads: base.config.headCount),
                       t.model.params.slice(slot.offsetB, slot.countB))
        XCTAssertEqual(try String(contentsOfFile: folder + "/train_log.jsonl", encoding: .utf8), "x\n")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: URL(fileURLWithPath: folder).deletingLastPathComponent().path)
            .filter { $0.contains(URL(fileURLWithPath: folder).lastPathComponent + ".staging") }
        XCTAssertEqual(leftovers, [])
    }

    func testPEFTInitialisationBoundsAndZeroB() {
        let layout = LoRALayout(config: base.config, targets: [.q, .down], rank: 4, alpha: 8, rsLoRA: false)
        let model = LoRATrainingModel(base: base, layout: layout, threads: 1)
        model.initializeParameters(seed: 1)
        for slot in layout.slots {
            let a = model.params.slice(slot.offsetA, slot.countA)
            let bound = 1 / Float(slot.inFeatures).squareRoot()
            XCTAssertLessThanOrEqual(a.map(abs).max()!, bound)
            XCTAssertGreaterThan(a.map(abs).max()!, 0.8 * bound)
            XCTAssertEqual(model.params.slice(slot.offsetB, slot.countB), [Float](repeating: 0, count: slot.countB))
        }
        XCTAssertEqual(layout.slots[0].scale, 2)
        let rs = LoRALayout(config: base.config, targets: [.q], rank: 4, alpha: 8, rsLoRA: true)
        XCTAssertEqual(rs.slots[0].scale, 4)
    }
}

/// Schedules and AdamW against hand-computed values.
final class OptimizerTests: XCTestCase {
    func testSchedules() {
        // 100 steps, 10 warm-up: factor for the update after `completed` updates.
        XCTAssertEqual(LearningRateSchedule.warmupSteps(ratio: 0.05, totalSteps: 30), 2)   // ceil(1.5)
        XCTAssertEqual(LearningRateSchedule.cosine.factor(completed: 0, warmupSteps: 10, totalSteps: 100), 0)
        XCTAssertEqual(LearningRateSchedule.cosine.factor(completed: 5, warmupSteps: 10, totalSteps: 100), 0.5)
        XCTAssertEqual(LearningRateSchedule.cosine.factor(completed: 10, warmupSteps: 10, totalSteps: 100), 1)
        XCTAssertEqual(LearningRateSchedule.cosine.factor(completed: 55, warmupSteps: 10, totalSteps: 100), 0.5, accuracy: 1e-12)
        XCTAssertEqual(LearningRateSchedule.linear.factor(completed: 55, warmupSteps: 10, totalSteps: 100), 0.5, accuracy: 1e-12)
        XCTAssertEqual(LearningRateSchedule.linear.factor(completed: 100, warmupSteps: 10, totalSteps: 100), 0)
        XCTAssertEqual(LearningRateSchedule.constant.factor(completed: 99, warmupSteps: 10, totalSteps: 100), 1)
    }

    func testAdamWMatchesHandComputedSteps() {
        let p = FlatBuffer(count: 2), g = FlatBuffer(count: 2), m = FlatBuffer(count: 2), v = FlatBuffer(count: 2)
        p.load([1, -2], at: 0)
        g.load([0.5, 0], at: 0)
        let opt = AdamW(beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1)
        opt.update(params: p, grads: g, m: m, v: v, t: 1, lr: 0.01)
        // p0: decay 1·(1 − 0.001) = 0.999; m̂ = 0.5, v̂ = 0.25 → step 0.01 · 0.5 / (0.5 + 1e-8)
        XCTAssertEqual(Double(p.pointer[0]), 0.999 - 0.01 * 0.5 / (0.5 + 1e-8), accuracy: 1e-7)
        // p1: zero gradient, only decay
        XCTAssertEqual(Double(p.pointer[1]), -2 * 0.999, accuracy: 1e-7)
        g.load([0.5, 0], at: 0)
        let before = Double(p.pointer[0])
        opt.update(params: p, grads: g, m: m, v: v, t: 2, lr: 0.01)
        let mHat = (0.9 * 0.05 + 0.1 * 0.5) / (1 - 0.81)
        let vHat = (0.999 * 0.00025 + 0.001 * 0.25) / (1 - 0.999 * 0.999)
        XCTAssertEqual(Double(p.pointer[0]), before * 0.999 - 0.01 * mHat / (vHat.squareRoot() + 1e-8), accuracy: 1e-6)
    }
}

final class DropoutMaskTests: XCTestCase {
    func testKeepRateScaleAndDeterminism() {
        let mask = DropoutMask(probability: 0.25)
        let n = 40_000
        let ones = [Float](repeating: 1, count: n)
        var out = [Float](repeating: 0, count: n)
        var again = [Float](repeating: 0, count: n)
        let key = DropoutMask.rowKey(seed: 1, step: 2, example: 3, position: 4, layer: 5, projection: 6)
        ones.withUnsafeBufferPointer { x in
            out.withUnsafeMutableBufferPointer { mask.apply(x.baseAddress!, $0.baseAddress!, count: n, key: key) }
            again.withUnsafeMutableBufferPointer { mask.apply(x.baseAddress!, $0.baseAddress!, count: n, key: key) }
        }
        XCTAssertEqual(out, again)
        let kept = out.filter { $0 != 0 }
        XCTAssertEqual(Double(kept.count) / Double(n), 0.75, accuracy: 0.01)
        XCTAssertEqual(Set(kept), [Float(4.0 / 3.0)])
        let otherKey = DropoutMask.rowKey(seed: 1, step: 2, example: 3, position: 4, layer: 5, projection: 5)
        ones.withUnsafeBufferPointer { x in
            again.withUnsafeMutableBufferPointer { mask.apply(x.baseAddress!, $0.baseAddress!, count: n, key: otherKey) }
        }
        XCTAssertNotEqual(out, again)
        XCTAssertFalse(DropoutMask(probability: 0).isActive)
    }

    /// The mask as documented, element by element: draw d (d = 0, 1, …) is SplitMix64's finaliser of
    /// key + (d + 1)·0x9E3779B97F4A7C15, and element 4d + k is kept when bits 16k..<16k+16 of it are at least
    /// p·65536. The four-lane path and the scalar tail must give exactly this, also in place.
    func testMaskMatchesItsDefinitionElementByElement() {
        func mix(_ z0: UInt64) -> UInt64 {
            var z = z0
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let mask = DropoutMask(probability: 0.1)
        let threshold = UInt64((0.1 * 65536.0).rounded())
        let key = DropoutMask.rowKey(seed: 7, step: 1, example: 0, position: 9, layer: 2, projection: 3)
        for n in [1, 3, 4, 5, 7, 8, 13, 576] {
            let x = (0..<n).map { Float($0) - 2.5 }
            let expected = (0..<n).map { i -> Float in
                let r = mix(key &+ UInt64(i / 4 + 1) &* 0x9E37_79B9_7F4A_7C15)
                return (r >> (16 * UInt64(i % 4))) & 0xFFFF >= threshold ? x[i] * Float(65536 / (65536 - Double(threshold))) : 0
            }
            var out = [Float](repeating: .nan, count: n)
            x.withUnsafeBufferPointer { xp in out.withUnsafeMutableBufferPointer { mask.apply(xp.baseAddress!, $0.baseAddress!, count: n, key: key) } }
            XCTAssertEqual(out, expected, "n=\(n)")
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { mask.apply($0.baseAddress!, $0.baseAddress!, count: n, key: key) }
            XCTAssertEqual(inPlace, expected, "in place, n=\(n)")
        }
    }
}
