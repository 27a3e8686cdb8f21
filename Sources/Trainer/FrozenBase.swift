import Foundation
import GGUF
import Llama
import Tensor

/// The base model as training sees it: frozen weights, never written, never given gradients.
///
/// Projection weights stay quantized in the memory-mapped GGUF and are dequantized one layer at a time into
/// `LayerBuffers` when a pass reaches that layer (forward, then again on the way back), so at most one layer of
/// f32 projection weights exists at once. The token embedding (also the output head when tied) is dequantized once,
/// because the cross-entropy chunks read all of it for every supervised position.
///
/// `@unchecked Sendable`: every stored buffer is written once in `init` and only read after.
public final class FrozenBase: @unchecked Sendable {
    public let config: LlamaConfiguration
    public let weights: LlamaWeights
    /// The GGUF the weights came from (nil for in-memory test models).
    public let file: GGUFFile?
    let embedding: UnsafeMutableBufferPointer<Float>    // [vocab, dim]
    let outputHead: UnsafeMutableBufferPointer<Float>   // [vocab, dim]; the embedding itself when tied
    let tiedOutput: Bool
    let invFreq: [Float]                                // [ropeDim / 2]

    /// Rows of the fused matrices built per layer: q, k, v rows stacked (`qkvDim`), gate and up stacked (`2·ffnDim`).
    public var qkvDim: Int { config.qDim + 2 * config.kvDim }

    public init(config: LlamaConfiguration, weights: LlamaWeights, file: GGUFFile? = nil) {
        self.config = config
        self.weights = weights
        self.file = file
        embedding = .allocate(capacity: config.vocabSize * config.dim)
        weights.tokenEmbedding.dequantizeRows(0..<config.vocabSize, into: embedding.baseAddress!)
        tiedOutput = weights.output === weights.tokenEmbedding
        if tiedOutput {
            outputHead = embedding
        } else {
            outputHead = .allocate(capacity: config.vocabSize * config.dim)
            weights.output.dequantizeRows(0..<config.vocabSize, into: outputHead.baseAddress!)
        }
        let half = config.ropeDim / 2
        // The formula of Llama's forward pass, so both round the same way.
        invFreq = (0..<half).map { i in
            Float(1 / pow(Double(config.ropeBase), Double(2 * i) / Double(config.ropeDim)))
        }
    }

    /// Loads a llama-architecture GGUF.
    public convenience init(path: String) throws(TrainerError) {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw TrainerError("cannot read model '\(path)': \(error.description)") }
        do {
            let config = try LlamaConfiguration(gguf: file)
            let weights = try LlamaWeights(file: file, config: config)
            self.init(config: config, weights: weights, file: file)
        } catch {
            throw TrainerError("cannot load model '\(path)': \(error.description)")
        }
    }

    deinit {
        embedding.deallocate()
        if !tiedOutput { outputHead.deallocate() }
    }

    /// Parameters of the base model (every weight, norms included), for the "% of base" figure.
    public var parameterCount: Int {
        let c = config
        var perLayer = 2 * c.dim
        for p in Projection.allCases {
            let f = p.features(c)
            perLayer += f.in * f.out
        }
        return c.layerCount * perLayer + c.vocabSize * c.dim * (tiedOutput ? 1 : 2) + c.dim
    }

    /// Writes layer `l`'s projections as f32 into `into` (fused layouts, see `LayerBuffers`), spread over `pool`.
    func dequantizeLayer(_ l: Int, into buffers: LayerBuffers, pool: ThreadPool) {
        let layer = weights.layers[l]
        let c = config
        // (matrix, destination) pairs; each split into row chunks so both threads share the work.
        let parts: [(WeightMatrix, UnsafeMutablePointer<Float>)] = [
            (layer.weight(.q), buffers.wqkv),
            (layer.weight(.k), buffers.wqkv + c.qDim * c.dim),
            (layer.weight(.v), buffers.wqkv + (c.qDim + c.kvDim) * c.dim),
            (layer.weight(.o), buffers.wo),
            (layer.weight(.gate), buffers.wgu),
            (layer.weight(.up), buffers.wgu + c.ffnDim * c.dim),
            (layer.weight(.down), buffers.wd),
        ]
        let chunkRows = 64
        var jobs: [(Int, Range<Int>)] = []
        for (i, (w, _)) in parts.enumerated() {
            var r = 0
            while r < w.rows {
                jobs.append((i, r..<min(w.rows, r + chunkRows)))
                r += chunkRows
            }
        }
        pool.parallelFor(jobs.count) { j in
            let (i, rows) = jobs[j]
            let (w, dst) = parts[i]
            w.dequantizeRows(rows, into: dst + rows.lowerBound * w.cols)
        }
    }
}

/// One layer's projection weights in f32, fused for fewer, larger products:
/// `wqkv` = [q; k; v] rows, `wgu` = [gate; up] rows. q and k rows stay in GGUF (interleaved-rotary) order.
final class LayerBuffers {
    let wqkv: UnsafeMutablePointer<Float>   // [qDim + 2·kvDim, dim]
    let wo: UnsafeMutablePointer<Float>     // [dim, qDim]
    let wgu: UnsafeMutablePointer<Float>    // [2·ffnDim, dim]
    let wd: UnsafeMutablePointer<Float>     // [dim, ffnDim]
    let count: Int

    init(config c: LlamaConfiguration) {
        let sizes = [(c.qDim + 2 * c.kvDim) * c.dim, c.dim * c.qDim, 2 * c.ffnDim * c.dim, c.dim * c.ffnDim]
        count = sizes.reduce(0, +)
        let base = UnsafeMutablePointer<Float>.allocate(capacity: count)
        wqkv = base
        wo = wqkv + sizes[0]
        wgu = wo + sizes[1]
        wd = wgu + sizes[2]
    }

    deinit { wqkv.deallocate() }
}
