import Foundation
import GGUF
import Tensor

/// A Llama model ready to run: configuration, weights, rotary tables and the threads of
/// its kernels. One engine thread calls `forward`; the weights are shared read-only.
///
/// `@unchecked Sendable`: all stored state is immutable after init; `forward` mutates
/// only the batch's KV caches and the caller's workspace, which the caller owns.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfiguration
    public let weights: LlamaWeights
    public let file: GGUFFile?
    public let pool: ThreadPool
    let runner: MatmulRunner
    let invFreq: [Float]   // [ropeDim / 2]

    public init(config: LlamaConfiguration, weights: LlamaWeights, file: GGUFFile? = nil, threads: Int = 2) {
        self.config = config
        self.weights = weights
        self.file = file
        self.pool = ThreadPool(threads: threads)
        // The pool splits every product; OpenBLAS runs single-threaded inside each unit.
        BLAS.setThreads(1)
        self.runner = MatmulRunner(pool: pool, maxCols: max(config.dim, config.ffnDim, config.qDim))
        let half = config.ropeDim / 2
        invFreq = (0..<half).map { i in Float(1 / pow(Double(config.ropeBase), Double(2 * i) / Double(config.ropeDim))) }
    }

    /// Loads a llama-architecture GGUF model.
    public convenience init(path: String, threads: Int = 2, progress: ((Int, Int) -> Void)? = nil) throws(LlamaError) {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw LlamaError(error.description) }
        let config = try LlamaConfiguration(gguf: file)
        let weights = try LlamaWeights(file: file, config: config, progress: progress)
        self.init(config: config, weights: weights, file: file, threads: threads)
    }

    /// Repacks every matrix the AMX tile kernel reads into its tile layout now, so that the first batched step does
    /// not pay for it (~70 ms for the default model). Engines call it at start; without AMX it does nothing.
    public func prepareTileWeights() {
        guard runner.usesTiles else { return }
        let matrices = weights.layers.flatMap { layer in Projection.allCases.map { layer.weight($0) } } + [weights.output]
        for w in matrices where w.hasTileKernel { _ = w.tileWeights(pool: pool) }
    }

    /// A fresh KV cache for one sequence of up to `maxLength` tokens.
    public func makeCache(maxLength: Int? = nil) -> KVCache {
        KVCache(config: config, maxLength: min(maxLength ?? config.contextLength, config.contextLength))
    }

    // MARK: - Forward

    /// Runs one batch: writes each token's keys and values into its sequence's cache and
    /// returns the logits of `batch.logitRows`, `[logitRows.count, vocab]` row-major, in `logits`.
    public func forward(_ batch: Batch, workspace ws: Workspace, logits: inout [Float]) throws(LlamaError) {
        let n = batch.count
        guard n > 0 else { logits.removeAll(keepingCapacity: true); return }
        try validate(batch)
        let c = config
        let x = ws.buffer(.x, n * c.dim)
        let xb = ws.buffer(.xb, n * c.dim)
        let q = ws.buffer(.q, n * c.qDim)
        let k = ws.buffer(.k, n * c.kvDim)
        let v = ws.buffer(.v, n * c.kvDim)
        let att = ws.buffer(.att, n * c.qDim)
        let proj = ws.buffer(.proj, n * c.dim)
        let hidden = ws.buffer(.hidden, n * c.ffnDim)
        let hidden2 = ws.buffer(.hidden2, n * c.ffnDim)

        for (i, t) in batch.tokens.enumerated() {
            weights.tokenEmbedding.dequantizeRows(Int(t)..<Int(t) + 1, into: x + i * c.dim)
        }
        for i in 0..<n { batch.caches[i].reserve(batch.positions[i] + 1) }

        for (l, layer) in weights.layers.enumerated() {
            layer.attentionNorm.withUnsafeBufferPointer { w in
                for i in 0..<n { Kernels.rmsNorm(x + i * c.dim, weight: w.baseAddress!, out: xb + i * c.dim, count: c.dim, eps: c.rmsEps) }
            }
            project(.q, layer: l, input: xb, output: q, n: n, batch: batch, ws: ws)
            project(.k, layer: l, input: xb, output: k, n: n, batch: batch, ws: ws)
            project(.v, layer: l, input: xb, output: v, n: n, batch: batch, ws: ws)
            invFreq.withUnsafeBufferPointer { f in
                for i in 0..<n {
                    let pos = batch.positions[i]
                    Kernels.rope(q + i * c.qDim, heads: c.headCount, headDim: c.headDim, position: pos, invFreq: f.baseAddress!)
                    Kernels.rope(k + i * c.kvDim, heads: c.kvHeadCount, headDim: c.headDim, position: pos, invFreq: f.baseAddress!)
                    let cache = batch.caches[i]
                    (cache.k[l] + pos * c.kvDim).update(from: k + i * c.kvDim, count: c.kvDim)
                    (cache.v[l] + pos * c.kvDim).update(from: v + i * c.kvDim, count: c.kvDim)
                }
            }
            attention(layer: l, q: q, out: att, batch: batch, ws: ws)
            project(.o, layer: l, input: att, output: proj, n: n, batch: batch, ws: ws)
            Kernels.add(proj, into: x, count: n * c.dim)

            layer.ffnNorm.withUnsafeBufferPointer { w in
                for i in 0..<n { Kernels.rmsNorm(x + i * c.dim, weight: w.baseAddress!, out: xb + i * c.dim, count: c.dim, eps: c.rmsEps) }
            }
            project(.gate, layer: l, input: xb, output: hidden, n: n, batch: batch, ws: ws)
            project(.up, layer: l, input: xb, output: hidden2, n: n, batch: batch, ws: ws)
            Kernels.swiGLU(gate: hidden, up: hidden2, count: n * c.ffnDim)
            project(.down, layer: l, input: hidden, output: proj, n: n, batch: batch, ws: ws)
            Kernels.add(proj, into: x, count: n * c.dim)
        }
        // Rows of a sequence come in increasing positions, so its last row sets its length.
        for i in 0..<n { batch.caches[i].length = batch.positions[i] + 1 }

        let m = batch.logitRows.count
        let rowsIn = ws.buffer(.logitsIn, max(1, m) * c.dim)
        weights.outputNorm.withUnsafeBufferPointer { w in
            for (j, row) in batch.logitRows.enumerated() {
                Kernels.rmsNorm(x + row * c.dim, weight: w.baseAddress!, out: rowsIn + j * c.dim, count: c.dim, eps: c.rmsEps)
            }
        }
        if logits.count != m * c.vocabSize { logits = [Float](repeating: 0, count: m * c.vocabSize) }
        logits.withUnsafeMutableBufferPointer { out in
            runner.matmul(weights.output, input: rowsIn, output: out.baseAddress!, n: m)
        }
    }

    private func validate(_ batch: Batch) throws(LlamaError) {
        let n = batch.count
        guard batch.positions.count == n, batch.caches.count == n else { throw LlamaError("batch arrays disagree in length") }
        for i in 0..<n {
            guard batch.tokens[i] >= 0, Int(batch.tokens[i]) < config.vocabSize else {
                throw LlamaError("token id \(batch.tokens[i]) is outside the vocabulary (0..<\(config.vocabSize))")
            }
            guard batch.positions[i] >= 0, batch.positions[i] < batch.caches[i].maxLength else {
                throw LlamaError("position \(batch.positions[i]) is beyond the context of \(batch.caches[i].maxLength) tokens")
            }
            if i > 0, batch.caches[i] === batch.caches[i - 1] {
                guard batch.positions[i] == batch.positions[i - 1] + 1 else {
                    throw LlamaError("rows \(i - 1) and \(i) of one sequence are not at consecutive positions")
                }
            }
            guard batch.positions[i] <= batch.caches[i].length || (i > 0 && batch.caches[i] === batch.caches[i - 1]) else {
                throw LlamaError("position \(batch.positions[i]) leaves a gap after \(batch.caches[i].length) cached tokens")
            }
        }
        for r in batch.logitRows where r < 0 || r >= n { throw LlamaError("logit row \(r) is not in the batch") }
        for g in batch.adapters where g.rows.contains(where: { $0 < 0 || $0 >= n }) || g.rows.count != g.scales.count {
            throw LlamaError("adapter '\(g.adapter.name)' names rows outside the batch")
        }
        for g in batch.merged where g.rows.contains(where: { $0 < 0 || $0 >= n }) {
            throw LlamaError("merged adapter '\(g.weights.name)' names rows outside the batch")
        }
    }
}
