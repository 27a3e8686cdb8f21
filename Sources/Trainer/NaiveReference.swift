import Foundation
import Llama

/// The whole training loss written the plain way, in Double, one sequence and one token at a time, with no fused
/// matrices, no BLAS, no saved activations: the algorithmic reference that tests differentiate numerically to
/// check `LoRATrainingModel`'s backward pass. Too slow for anything but tiny models.
public struct NaiveReference {
    let config: LlamaConfiguration
    let embedding: [Double]          // [vocab, dim]
    let output: [Double]             // [vocab, dim]
    let outputNorm: [Double]         // [dim]
    let attentionNorms: [[Double]]   // [layer][dim]
    let ffnNorms: [[Double]]         // [layer][dim]
    let projections: [[[Double]]]    // [layer][projection.rawValue] = W [out, in], q/k rows in GGUF order

    public init(base: FrozenBase) {
        config = base.config
        embedding = base.weights.tokenEmbedding.dense().map(Double.init)
        output = base.weights.output.dense().map(Double.init)
        outputNorm = base.weights.outputNorm.map(Double.init)
        attentionNorms = base.weights.layers.map { $0.attentionNorm.map(Double.init) }
        ffnNorms = base.weights.layers.map { $0.ffnNorm.map(Double.init) }
        projections = base.weights.layers.map { layer in Projection.allCases.map { layer.weight($0).dense().map(Double.init) } }
    }

    /// Σ cross-entropy over supervised tokens and their count, with `params` laid out as `layout` says and dropout
    /// masks keyed like the training model's (`seed`, `step`).
    public func loss(_ sequences: [TrainingSequence], layout: LoRALayout, params: [Double],
                     dropout: DropoutMask, seed: UInt64, step: Int) -> (sum: Double, count: Int) {
        var total = 0.0, count = 0
        for s in sequences {
            let r = sequenceLoss(s, layout: layout, params: params, dropout: dropout, seed: seed, step: step)
            total += r.0
            count += r.1
        }
        return (total, count)
    }

    private func matvec(_ w: [Double], _ x: [Double], out: Int) -> [Double] {
        let n = x.count
        return (0..<out).map { r in
            var s = 0.0
            for c in 0..<n { s += w[r * n + c] * x[c] }
            return s
        }
    }

    private func rmsNorm(_ x: [Double], _ w: [Double]) -> [Double] {
        let ms = x.reduce(0) { $0 + $1 * $1 } / Double(x.count)
        let r = 1 / (ms + Double(config.rmsEps)).squareRoot()
        return zip(x, w).map { $0 * r * $1 }
    }

    /// W·x + s·B·A·dropout(x) for one token.
    private func project(_ p: Projection, layer: Int, _ x: [Double], layout: LoRALayout, params: [Double],
                         dropout: DropoutMask, key: UInt64?) -> [Double] {
        let f = p.features(config)
        var y = matvec(projections[layer][p.rawValue], x, out: f.out)
        guard let slot = layout.slot(layer: layer, p) else { return y }
        var xd = x
        if let key, dropout.isActive {
            var ones = [Float](repeating: 1, count: f.in), mask = [Float](repeating: 0, count: f.in)
            ones.withUnsafeMutableBufferPointer { o in
                mask.withUnsafeMutableBufferPointer { m in dropout.apply(o.baseAddress!, m.baseAddress!, count: f.in, key: key) }
            }
            xd = zip(x, mask).map { $0 * Double($1) }
        }
        let a = Array(params[slot.offsetA..<slot.offsetA + slot.countA])
        let b = Array(params[slot.offsetB..<slot.offsetB + slot.countB])
        let t = matvec(a, xd, out: slot.rank)
        let u = matvec(b, t, out: f.out)
        for i in 0..<f.out { y[i] += Double(slot.scale) * u[i] }
        return y
    }

    private func sequenceLoss(_ s: TrainingSequence, layout: LoRALayout, params: [Double], dropout: DropoutMask,
                              seed: UInt64, step: Int) -> (Double, Int) {
        let c = config
        let n = s.tokens.count
        let hd = c.headDim
        var x = (0..<n).map { i in Array(embedding[Int(s.tokens[i]) * c.dim..<(Int(s.tokens[i]) + 1) * c.dim]) }
        func key(_ layer: Int, _ p: Projection, _ pos: Int) -> UInt64? {
            dropout.isActive
                ? DropoutMask.rowKey(seed: seed, step: step, example: s.exampleID, position: pos, layer: layer, projection: p.rawValue)
                : nil
        }
        func rope(_ v: inout [Double], heads: Int, pos: Int) {
            for h in 0..<heads {
                for i in 0..<c.ropeDim / 2 {
                    let theta = Double(pos) * pow(Double(c.ropeBase), -Double(2 * i) / Double(c.ropeDim))
                    let a = v[h * hd + 2 * i], b = v[h * hd + 2 * i + 1]
                    v[h * hd + 2 * i] = a * cos(theta) - b * sin(theta)
                    v[h * hd + 2 * i + 1] = a * sin(theta) + b * cos(theta)
                }
            }
        }
        for l in 0..<c.layerCount {
            var qs: [[Double]] = [], ks: [[Double]] = [], vs: [[Double]] = []
            for i in 0..<n {
                let xn = rmsNorm(x[i], attentionNorms[l])
                var q = project(.q, layer: l, xn, layout: layout, params: params, dropout: dropout, key: key(l, .q, i))
                var k = project(.k, layer: l, xn, layout: layout, params: params, dropout: dropout, key: key(l, .k, i))
                let v = project(.v, layer: l, xn, layout: layout, params: params, dropout: dropout, key: key(l, .v, i))
                rope(&q, heads: c.headCount, pos: i)
                rope(&k, heads: c.kvHeadCount, pos: i)
                qs.append(q); ks.append(k); vs.append(v)
            }
            for i in 0..<n {
                var att = [Double](repeating: 0, count: c.qDim)
                for h in 0..<c.headCount {
                    let g = h / (c.headCount / c.kvHeadCount)
                    var scores = (0...i).map { j in
                        (0..<hd).reduce(0.0) { $0 + qs[i][h * hd + $1] * ks[j][g * hd + $1] } / Double(hd).squareRoot()
                    }
                    let mx = scores.max()!
                    scores = scores.map { exp($0 - mx) }
                    let z = scores.reduce(0, +)
                    for j in 0...i { for d in 0..<hd { att[h * hd + d] += scores[j] / z * vs[j][g * hd + d] } }
                }
                let o = project(.o, layer: l, att, layout: layout, params: params, dropout: dropout, key: key(l, .o, i))
                for d in 0..<c.dim { x[i][d] += o[d] }
                let xn = rmsNorm(x[i], ffnNorms[l])
                let g = project(.gate, layer: l, xn, layout: layout, params: params, dropout: dropout, key: key(l, .gate, i))
                let u = project(.up, layer: l, xn, layout: layout, params: params, dropout: dropout, key: key(l, .up, i))
                let h = (0..<c.ffnDim).map { g[$0] / (1 + exp(-g[$0])) * u[$0] }
                let d = project(.down, layer: l, h, layout: layout, params: params, dropout: dropout, key: key(l, .down, i))
                for j in 0..<c.dim { x[i][j] += d[j] }
            }
        }
        var total = 0.0, count = 0
        for i in 1..<max(1, n) where s.supervised[i] {
            let hidden = rmsNorm(x[i - 1], outputNorm)
            let logits = matvec(output, hidden, out: c.vocabSize)
            let mx = logits.max()!
            let lse = mx + log(logits.reduce(0) { $0 + exp($1 - mx) })
            total += lse - logits[Int(s.tokens[i])]
            count += 1
        }
        return (total, count)
    }
}
