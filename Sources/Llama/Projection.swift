/// The seven linear projections of a Llama block, the places a LoRA adapter can target.
public enum Projection: Int, CaseIterable, Sendable, Hashable {
    case q, k, v, o, gate, up, down

    /// The Hugging Face / PEFT module name.
    public var peftName: String {
        switch self {
        case .q: "q_proj"
        case .k: "k_proj"
        case .v: "v_proj"
        case .o: "o_proj"
        case .gate: "gate_proj"
        case .up: "up_proj"
        case .down: "down_proj"
        }
    }

    /// The GGUF tensor name stem (`blk.N.<stem>.weight`).
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

    public init?(peftName: String) {
        guard let p = Projection.allCases.first(where: { $0.peftName == peftName }) else { return nil }
        self = p
    }

    public init?(ggufName: String) {
        guard let p = Projection.allCases.first(where: { $0.ggufName == ggufName }) else { return nil }
        self = p
    }

    /// (in, out) features of this projection for `config`.
    public func features(_ c: LlamaConfiguration) -> (in: Int, out: Int) {
        switch self {
        case .q: (c.dim, c.qDim)
        case .k, .v: (c.dim, c.kvDim)
        case .o: (c.qDim, c.dim)
        case .gate, .up: (c.dim, c.ffnDim)
        case .down: (c.ffnDim, c.dim)
        }
    }
}
