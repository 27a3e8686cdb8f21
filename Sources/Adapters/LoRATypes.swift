import GGUF

// MARK: - Targets

/// The seven linear projections of a Llama block that a LoRA adapter may target.
/// Raw values are the Hugging Face module names that PEFT uses.
public enum LoRATarget: String, CaseIterable, Sendable, Comparable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj"
    case gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// The submodule that holds the projection in Hugging Face's Llama: `self_attn` or `mlp`.
    public var hfGroup: String {
        switch self {
        case .q, .k, .v, .o: "self_attn"
        case .gate, .up, .down: "mlp"
        }
    }

    /// llama.cpp's tensor name stem (`blk.N.<stem>.weight`).
    public var ggufName: String {
        switch self {
        case .q: "attn_q"
        case .k: "attn_k"
        case .v: "attn_v"
        case .o: "attn_output"
        case .gate: "ffn_gate"
        case .up: "ffn_up"
        case .down: "ffn_down"
        }
    }

    public init?(ggufName: String) {
        guard let target = LoRATarget.allCases.first(where: { $0.ggufName == ggufName }) else { return nil }
        self = target
    }

    /// The PEFT module path relative to the causal-LM model: `model.layers.3.self_attn.q_proj`.
    public func hfModuleName(layer: Int) -> String { "model.layers.\(layer).\(hfGroup).\(rawValue)" }

    private var order: Int { LoRATarget.allCases.firstIndex(of: self) ?? 0 }
    public static func < (lhs: LoRATarget, rhs: LoRATarget) -> Bool { lhs.order < rhs.order }
}

// MARK: - Base model

/// The sizes of the base model that an adapter must fit.
public struct BaseModelShape: Sendable, Equatable {
    public var nLayers: Int
    /// Hidden size (the residual stream width).
    public var dim: Int
    /// Feed-forward width (gate/up output, down input).
    public var ffnDim: Int
    public var nHeads: Int
    public var nKVHeads: Int
    public var headDim: Int

    public init(nLayers: Int, dim: Int, ffnDim: Int, nHeads: Int, nKVHeads: Int, headDim: Int) {
        self.nLayers = nLayers
        self.dim = dim
        self.ffnDim = ffnDim
        self.nHeads = nHeads
        self.nKVHeads = nKVHeads
        self.headDim = headDim
    }

    /// Reads the `llama.*` hyperparameters of a base-model GGUF.
    /// Head size comes from `llama.attention.key_length` when present, else `dim / nHeads`.
    public init(gguf file: GGUFFile) throws(AdapterError) {
        let arch = file.string("general.architecture") ?? "llama"
        func key(_ suffix: String) throws(AdapterError) -> Int {
            guard let value = file.int("\(arch).\(suffix)") else {
                throw AdapterError(path: file.path, "base model lacks metadata key '\(arch).\(suffix)'")
            }
            return value
        }
        let dim = try key("embedding_length")
        let nHeads = try key("attention.head_count")
        let headDim = file.int("\(arch).attention.key_length") ?? (nHeads > 0 ? dim / nHeads : 0)
        self.init(nLayers: try key("block_count"), dim: dim, ffnDim: try key("feed_forward_length"),
                  nHeads: nHeads, nKVHeads: file.int("\(arch).attention.head_count_kv") ?? nHeads, headDim: headDim)
        try validate(path: file.path)
    }

    /// `(in, out)` features of a projection: LoRA A is `[rank, in]`, B is `[out, rank]`.
    public func features(of target: LoRATarget) -> (in: Int, out: Int) {
        switch target {
        case .q: (dim, nHeads * headDim)
        case .k, .v: (dim, nKVHeads * headDim)
        case .o: (nHeads * headDim, dim)
        case .gate, .up: (dim, ffnDim)
        case .down: (ffnDim, dim)
        }
    }

    /// Throws unless every size is positive, heads divide evenly and the head size is even (rotary pairs).
    public func validate(path: String) throws(AdapterError) {
        guard nLayers > 0, dim > 0, ffnDim > 0, nHeads > 0, nKVHeads > 0, headDim > 0,
              headDim % 2 == 0, nHeads % nKVHeads == 0 else {
            throw AdapterError(path: path, "implausible base model shape \(self)")
        }
    }
}

// MARK: - Weights

/// One adapted projection: `W x + scale · B (A x)`.
public struct LoRAModuleWeights: Sendable, Equatable {
    public var layer: Int
    public var target: LoRATarget
    public var rank: Int
    /// The module's own alpha (after `alpha_pattern`).
    public var alpha: Double
    /// `alpha / rank`, or `alpha / sqrt(rank)` with rsLoRA.
    public var scale: Float
    /// `[rank, inFeatures]`, row-major.
    public var a: [Float]
    /// `[outFeatures, rank]`, row-major; rows in GGUF (llama.cpp) order, i.e. q/k rows rotary-permuted.
    public var b: [Float]

    public var inFeatures: Int { rank > 0 ? a.count / rank : 0 }
    public var outFeatures: Int { rank > 0 ? b.count / rank : 0 }

    public init(layer: Int, target: LoRATarget, rank: Int, alpha: Double, scale: Float, a: [Float], b: [Float]) {
        self.layer = layer
        self.target = target
        self.rank = rank
        self.alpha = alpha
        self.scale = scale
        self.a = a
        self.b = b
    }
}

/// Where an adapter came from.
public enum AdapterFormat: String, Sendable {
    /// A folder with `adapter_config.json` and `adapter_model.safetensors`.
    case peft
    /// A llama.cpp GGUF LoRA file (`general.type = adapter`).
    case gguf
}

/// A loaded, validated LoRA adapter. Nothing in it refers back to the file.
public struct LoRAAdapterFile: Sendable {
    public var name: String
    public var path: String
    public var format: AdapterFormat
    /// The adapter's rank (`r` of the PEFT config; the rank of the first module for GGUF).
    public var rank: Int
    /// `lora_alpha` (PEFT) or `adapter.lora.alpha` (GGUF).
    public var alpha: Double
    public var useRSLoRA: Bool
    /// The projections that carry at least one module.
    public var targets: Set<LoRATarget>
    /// Sorted by layer, then target.
    public var modules: [LoRAModuleWeights]
    /// Bytes on disk (config plus weights).
    public var byteSize: Int
    /// The safetensors `__metadata__` (empty for GGUF).
    public var metadata: [String: String]
    /// `base_model_name_or_path` (PEFT) or `adapter.base_model...`/`general.basename` hints, when present.
    public var baseModelName: String?

    public init(name: String, path: String, format: AdapterFormat, rank: Int, alpha: Double, useRSLoRA: Bool,
                modules: [LoRAModuleWeights], byteSize: Int, metadata: [String: String], baseModelName: String?) {
        self.name = name
        self.path = path
        self.format = format
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        self.modules = modules.sorted { ($0.layer, $0.target) < ($1.layer, $1.target) }
        self.targets = Set(modules.map(\.target))
        self.byteSize = byteSize
        self.metadata = metadata
        self.baseModelName = baseModelName
    }

    /// The module for `layer` and `target`, if the adapter has one.
    public func module(layer: Int, target: LoRATarget) -> LoRAModuleWeights? {
        modules.first { $0.layer == layer && $0.target == target }
    }

    /// Float parameters held (A and B of every module).
    public var parameterCount: Int { modules.reduce(0) { $0 + $1.a.count + $1.b.count } }
}

// MARK: - Errors

/// Why an adapter could not be loaded or written. The description names the file, the tensor or config key,
/// what is wrong, and where it helps a hint.
public struct AdapterError: Error, CustomStringConvertible, Sendable {
    public var path: String
    /// The tensor (or config key) at fault, if any.
    public var tensor: String?
    public var message: String
    public var hint: String?

    public init(path: String, tensor: String? = nil, _ message: String, hint: String? = nil) {
        self.path = path
        self.tensor = tensor
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var text = "LoRA adapter '\(path)': "
        if let tensor { text += "tensor '\(tensor)': " }
        text += message
        if let hint { text += " (hint: \(hint))" }
        return text
    }

    static let wrongBaseHint = "maybe wrong base model?"
}
