import GGUF

/// The weights of one transformer block.
public struct LayerWeights: Sendable {
    public let attentionNorm: [Float]           // [dim]
    public let ffnNorm: [Float]                 // [dim]
    /// Indexed by `Projection.rawValue`: q [qDim, dim], k/v [kvDim, dim], o [dim, qDim],
    /// gate/up [ffnDim, dim], down [dim, ffnDim]; q and k rows in GGUF (interleaved-RoPE) order.
    public let projections: [WeightMatrix]

    public func weight(_ p: Projection) -> WeightMatrix { projections[p.rawValue] }
}

/// All weights of a Llama model.
public struct LlamaWeights: Sendable {
    public let tokenEmbedding: WeightMatrix     // [vocab, dim]
    public let output: WeightMatrix             // [vocab, dim]; the embedding itself when tied
    public let outputNorm: [Float]              // [dim]
    public let layers: [LayerWeights]

    public init(tokenEmbedding: WeightMatrix, output: WeightMatrix, outputNorm: [Float], layers: [LayerWeights]) {
        self.tokenEmbedding = tokenEmbedding
        self.output = output
        self.outputNorm = outputNorm
        self.layers = layers
    }

    /// Loads every tensor of a llama GGUF, checking names and shapes against `config`.
    public init(file: GGUFFile, config c: LlamaConfiguration, progress: ((Int, Int) -> Void)? = nil) throws(LlamaError) {
        func info(_ name: String) throws(LlamaError) -> GGUFTensorInfo {
            guard let t = file.tensor(named: name) else {
                throw LlamaError("'\(file.path)' has no tensor '\(name)' (is it a llama model?)")
            }
            return t
        }
        func matrix(_ name: String, rows: Int, cols: Int) throws(LlamaError) -> WeightMatrix {
            let t = try info(name)
            guard t.shape == [cols, rows] else {
                throw LlamaError("tensor '\(name)' has shape \(t.shape), expected [\(cols), \(rows)]")
            }
            return try WeightMatrix(file: file, tensor: t)
        }
        func vector(_ name: String, _ n: Int) throws(LlamaError) -> [Float] {
            let t = try info(name)
            guard t.shape == [n] else { throw LlamaError("tensor '\(name)' has shape \(t.shape), expected [\(n)]") }
            do { return try file.dequantize(t) } catch { throw LlamaError(error.description) }
        }

        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabSize, cols: c.dim)
        output = file.tensor(named: "output.weight") != nil
            ? try matrix("output.weight", rows: c.vocabSize, cols: c.dim) : tokenEmbedding
        outputNorm = try vector("output_norm.weight", c.dim)
        var layers: [LayerWeights] = []
        for l in 0..<c.layerCount {
            var ps: [WeightMatrix] = []
            for p in Projection.allCases {
                let (inF, outF) = p.features(c)
                ps.append(try matrix("blk.\(l).\(p.ggufName).weight", rows: outF, cols: inF))
            }
            layers.append(LayerWeights(attentionNorm: try vector("blk.\(l).attn_norm.weight", c.dim),
                                       ffnNorm: try vector("blk.\(l).ffn_norm.weight", c.dim), projections: ps))
            progress?(l + 1, c.layerCount)
        }
        self.layers = layers
    }
}
