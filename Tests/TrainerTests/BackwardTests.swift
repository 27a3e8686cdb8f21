import Adapters
import Foundation
import Llama
import XCTest
@testable import Trainer

/// The backward pass against central finite differences of `NaiveReference` (Double, plain loops) on a tiny
/// random model: every projection type, A and B, with and without dropout.
final class BackwardTests: XCTestCase {
    func makeModel(dropout: Float, rsLoRA: Bool = false, tied: Bool = false) throws -> (LoRATrainingModel, String) {
        let c = TinyModel.config()
        let path = try TinyModel.write(c, seed: 7, tied: tied)
        let base = try FrozenBase(path: path)
        let layout = LoRALayout(config: c, targets: Set(Projection.allCases), rank: 3, alpha: 6, rsLoRA: rsLoRA)
        let model = LoRATrainingModel(base: base, layout: layout, threads: 2, dropout: dropout, seed: 99)
        var rng = SplitMix64(seed: 5)
        for i in 0..<model.params.count { model.params.pointer[i] = (2 * rng.nextUnitFloat() - 1) * 0.3 }
        return (model, path)
    }

    func check(dropout: Float, rsLoRA: Bool = false, tied: Bool = false) throws {
        let (model, path) = try makeModel(dropout: dropout, rsLoRA: rsLoRA, tied: tied)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sequences = TinyModel.sequences([9, 14, 6], vocab: model.base.config.vocabSize, seed: 11)
        let step = 3
        model.grads.zero()
        let supervised = sequences.reduce(0) { $0 + $1.supervisedCount }
        let (sum, count) = model.run(sequences, step: step, gradientScale: 1 / Float(supervised), training: true)
        XCTAssertEqual(count, supervised)

        let naive = NaiveReference(base: model.base)
        var theta = model.params.array.map(Double.init)
        let mask = model.dropout
        func loss(_ p: [Double]) -> Double {
            let r = naive.loss(sequences, layout: model.layout, params: p, dropout: mask, seed: model.seed, step: step)
            return r.sum / Double(r.count)
        }
        let reference = loss(theta)
        XCTAssertEqual(sum / Double(count), reference, accuracy: 1e-5 * reference, "forward loss vs naive reference")

        var rng = SplitMix64(seed: 1)
        let h = 1e-3
        for slot in model.layout.slots {
            for (name, offset, n) in [("A", slot.offsetA, slot.countA), ("B", slot.offsetB, slot.countB)] {
                var diff = 0.0, norm = 0.0
                for _ in 0..<5 {
                    let i = offset + rng.nextIndex(below: n)
                    let saved = theta[i]
                    theta[i] = saved + h
                    let up = loss(theta)
                    theta[i] = saved - h
                    let down = loss(theta)
                    theta[i] = saved
                    let fd = (up - down) / (2 * h)
                    let g = Double(model.grads.pointer[i])
                    diff += (g - fd) * (g - fd)
                    norm += fd * fd
                }
                let rel = (diff / max(norm, 1e-30)).squareRoot()
                XCTAssertLessThan(rel, 1e-3, "layer \(slot.layer) \(slot.projection.peftName) \(name): relative error \(rel)")
            }
        }
    }

    func testGradientsMatchFiniteDifferences() throws { try check(dropout: 0) }

    /// Sequences longer than one block of attention queries (128 rows): the blocked causal path.
    func testLongSequenceLossAndGradientDirection() throws {
        let (model, path) = try makeModel(dropout: 0)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let sequences = TinyModel.sequences([200, 131], vocab: model.base.config.vocabSize, seed: 21)
        let supervised = sequences.reduce(0) { $0 + $1.supervisedCount }
        model.grads.zero()
        let (sum, count) = model.run(sequences, step: 0, gradientScale: 1 / Float(supervised), training: false)
        let naive = NaiveReference(base: model.base)
        let theta = model.params.array.map(Double.init)
        func loss(_ p: [Double]) -> Double {
            let r = naive.loss(sequences, layout: model.layout, params: p, dropout: DropoutMask(probability: 0), seed: 0, step: 0)
            return r.sum / Double(r.count)
        }
        let reference = loss(theta)
        XCTAssertEqual(sum / Double(count), reference, accuracy: 1e-5 * reference)
        // Directional derivative along a random direction over all parameters.
        var rng = SplitMix64(seed: 2)
        let direction = theta.map { _ in Double(2 * rng.nextUnitFloat() - 1) }
        let h = 1e-3
        let fd = (loss(zip(theta, direction).map { $0 + h * $1 }) - loss(zip(theta, direction).map { $0 - h * $1 })) / (2 * h)
        let analytic = zip(model.grads.array, direction).reduce(0.0) { $0 + Double($1.0) * $1.1 }
        XCTAssertEqual(analytic, fd, accuracy: 1e-3 * abs(fd))
    }

    func testGradientsMatchFiniteDifferencesWithDropout() throws { try check(dropout: 0.3) }

    func testGradientsMatchFiniteDifferencesWithRSLoRAAndTiedHead() throws { try check(dropout: 0, rsLoRA: true, tied: true) }

    /// Llama's own forward pass (its projection function with the adapter unmerged) gives the same loss.
    func testLossEqualsLlamaForwardWithAdapter() throws {
        let (model, path) = try makeModel(dropout: 0)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let c = model.base.config
        let sequences = TinyModel.sequences([10, 17], vocab: c.vocabSize, seed: 4)
        let (sum, count) = model.run(sequences, step: 0, gradientScale: nil, training: false)

        let llama = LlamaModel(config: c, weights: model.base.weights, threads: 1)
        var deltas = [[LoRADelta?]](repeating: [LoRADelta?](repeating: nil, count: 7), count: c.layerCount)
        for slot in model.layout.slots {
            deltas[slot.layer][slot.projection.rawValue] = LoRADelta(
                rank: slot.rank, inFeatures: slot.inFeatures, outFeatures: slot.outFeatures, scale: slot.scale,
                a: model.params.slice(slot.offsetA, slot.countA), b: model.params.slice(slot.offsetB, slot.countB))
        }
        let adapter = LoRAAdapter(name: "t", deltas: deltas)
        var expected = 0.0, expectedCount = 0
        for s in sequences {
            var batch = Batch()
            let rows = batch.add(s.tokens, startingAt: 0, cache: llama.makeCache(maxLength: 64), logits: false)
            batch.logitRows = Array(rows)
            batch.apply(adapter, rows: rows)
            var logits: [Float] = []
            try llama.forward(batch, workspace: Workspace(), logits: &logits)
            for i in 1..<s.tokens.count where s.supervised[i] {
                let row = logits[(i - 1) * c.vocabSize..<i * c.vocabSize]
                let mx = Double(row.max()!)
                expected += mx + log(row.reduce(0.0) { $0 + exp(Double($1) - mx) }) - Double(row[row.startIndex + Int(s.tokens[i])])
                expectedCount += 1
            }
        }
        XCTAssertEqual(count, expectedCount)
        XCTAssertEqual(sum, expected, accuracy: 1e-5 * expected)
    }
}

final class DeterminismTests: XCTestCase {
    /// Recomputing layers in the backward pass (long passes) gives the very same loss and gradients as keeping them.
    func testRecomputedLayersGiveIdenticalGradients() throws {
        let c = TinyModel.config(layers: 3)
        let path = try TinyModel.write(c, seed: 12)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let base = try FrozenBase(path: path)
        let layout = LoRALayout(config: c, targets: [.q, .v, .o, .down], rank: 2, alpha: 4, rsLoRA: false)
        let sequences = TinyModel.sequences([9, 20, 5], vocab: c.vocabSize, seed: 8)
        func gradients(recomputeAbove: Int, threads: Int = 2) -> (Double, [Float]) {
            let model = LoRATrainingModel(base: base, layout: layout, threads: threads, dropout: 0.2, seed: 4)
            var rng = SplitMix64(seed: 9)
            for i in 0..<model.params.count { model.params.pointer[i] = (2 * rng.nextUnitFloat() - 1) * 0.2 }
            model.recomputeAbove = recomputeAbove
            model.grads.zero()
            let (sum, _) = model.run(sequences, step: 2, gradientScale: 0.1, training: true)
            return (sum, model.grads.array)
        }
        let kept = gradients(recomputeAbove: 1000)
        let recomputed = gradients(recomputeAbove: 10)
        XCTAssertEqual(kept.0, recomputed.0)
        XCTAssertEqual(kept.1, recomputed.1)
        XCTAssertTrue(kept.1.contains { $0 != 0 })
    }

    /// Products are split by shape, not by thread: one thread or three give the same bits (model wide enough
    /// for the products to be split).
    func testThreadCountDoesNotChangeResults() throws {
        let c = TinyModel.config(layers: 2, dim: 256)
        let path = try TinyModel.write(c, seed: 13)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let base = try FrozenBase(path: path)
        let layout = LoRALayout(config: c, targets: Set(Projection.allCases), rank: 4, alpha: 8, rsLoRA: false)
        let sequences = TinyModel.sequences([40, 30], vocab: c.vocabSize, seed: 8)
        func gradients(threads: Int) -> (Double, [Float]) {
            let model = LoRATrainingModel(base: base, layout: layout, threads: threads, dropout: 0.1, seed: 4)
            var rng = SplitMix64(seed: 9)
            for i in 0..<model.params.count { model.params.pointer[i] = (2 * rng.nextUnitFloat() - 1) * 0.1 }
            model.grads.zero()
            let (sum, _) = model.run(sequences, step: 2, gradientScale: 0.1, training: true)
            return (sum, model.grads.array)
        }
        let two = gradients(threads: 2)
        let one = gradients(threads: 1)
        let three = gradients(threads: 3)
        XCTAssertEqual(one.0, two.0)
        XCTAssertEqual(one.1, two.1)
        XCTAssertEqual(three.1, two.1)
    }
}
