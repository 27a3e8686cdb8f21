import GGUF

/// Hyper-parameters of a Llama-architecture model, read from GGUF keys (`llama.*`).
/// Every default is resolved here, in one place.
public struct LlamaConfiguration: Sendable, Equatable {
    public var layerCount: Int          // llama.block_count
    public var dim: Int                 // llama.embedding_length
    public var ffnDim: Int              // llama.feed_forward_length
    public var headCount: Int           // llama.attention.head_count
    public var kvHeadCount: Int         // llama.attention.head_count_kv (defaults to head_count)
    public var headDim: Int             // llama.attention.key_length (defaults to dim / heads)
    public var vocabSize: Int           // llama.vocab_size or the token list length
    public var contextLength: Int       // llama.context_length
    public var ropeBase: Float          // llama.rope.freq_base (default 10000)
    public var ropeDim: Int             // llama.rope.dimension_count (defaults to headDim)
    public var rmsEps: Float            // llama.attention.layer_norm_rms_epsilon (default 1e-5)

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    public init(layerCount: Int, dim: Int, ffnDim: Int, headCount: Int, kvHeadCount: Int, headDim: Int? = nil,
                vocabSize: Int, contextLength: Int = 2048, ropeBase: Float = 10000, ropeDim: Int? = nil, rmsEps: Float = 1e-5) {
        self.layerCount = layerCount
        self.dim = dim
        self.ffnDim = ffnDim
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim ?? dim / headCount
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.ropeBase = ropeBase
        self.ropeDim = ropeDim ?? self.headDim
        self.rmsEps = rmsEps
    }

    /// Reads the configuration of `file`, which must be a llama-architecture model.
    public init(gguf file: GGUFFile) throws(LlamaError) {
        let arch = file.string("general.architecture") ?? "?"
        guard arch == "llama" else {
            throw LlamaError("'\(file.path)' has architecture '\(arch)'; only 'llama' is supported")
        }
        func need(_ key: String) throws(LlamaError) -> Int {
            guard let v = file.int("llama." + key), v > 0 else { throw LlamaError("'\(file.path)' lacks llama.\(key)") }
            return v
        }
        let heads = try need("attention.head_count")
        let dim = try need("embedding_length")
        let vocab = file.int("llama.vocab_size") ?? file.metadata["tokenizer.ggml.tokens"]?.array?.count ?? 0
        guard vocab > 0 else { throw LlamaError("'\(file.path)' has no vocabulary size") }
        self.init(
            layerCount: try need("block_count"), dim: dim, ffnDim: try need("feed_forward_length"),
            headCount: heads, kvHeadCount: file.int("llama.attention.head_count_kv") ?? heads,
            headDim: file.int("llama.attention.key_length") ?? dim / heads,
            vocabSize: vocab, contextLength: file.int("llama.context_length") ?? 2048,
            ropeBase: Float(file.double("llama.rope.freq_base") ?? 10000),
            ropeDim: file.int("llama.rope.dimension_count"),
            rmsEps: Float(file.double("llama.attention.layer_norm_rms_epsilon") ?? 1e-5))
        try validate()
    }

    func validate() throws(LlamaError) {
        guard headCount > 0, kvHeadCount > 0, headCount % kvHeadCount == 0 else {
            throw LlamaError("head_count \(headCount) is not a multiple of head_count_kv \(kvHeadCount)")
        }
        guard headDim > 0, headDim % 2 == 0, ropeDim <= headDim, ropeDim % 2 == 0 else {
            throw LlamaError("unsupported head size \(headDim) / rope dimension \(ropeDim)")
        }
        guard layerCount <= 1024, dim <= 1 << 16, ffnDim <= 1 << 18, vocabSize <= 1 << 22 else {
            throw LlamaError("absurd model dimensions")
        }
    }
}

/// Errors of model loading and use; the message names the thing at fault.
public struct LlamaError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
