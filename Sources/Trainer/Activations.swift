import Llama

/// What the forward pass keeps for the backward pass, per layer, for `capacity` rows. Everything cheap to rebuild
/// (normalised inputs, attention probabilities and output, the SwiGLU product, dropout masks) is recomputed instead.
///
/// Per row and layer: input x, rstd of both norms, rotated q/k and v, the residual after attention, gate/up
/// pre-activations and the LoRA `x·Aᵀ` rows — for SmolLM2-135M about 21 KB. With `recompute` only each layer's
/// input x is kept (2.3 KB) and the rest lives in one shared layer block that the backward pass refills by running
/// the layer's forward again (about 40% more arithmetic, a tenth of the memory).
final class ActivationStore {
    private(set) var capacity = 0
    private(set) var recompute = false
    private var storage: UnsafeMutablePointer<Float>?
    private let c: LlamaConfiguration
    private let qkvDim: Int
    private let ranks: [Int]                // rank sum per layer
    private var offsets: [Int] = []         // [rstd1, qkv, x2, rstd2, gu, att, t] within a layer block
    private var blockStarts: [Int] = []     // per layer (or one shared block)
    private var xStarts: [Int] = []         // per layer and the final output

    /// Whether each layer's attention output is kept: the o projection's LoRA needs it in the backward pass, where
    /// recomputing it was 3-4% of a training step (qDim floats a token and layer: 70 MB for 1024 tokens of SmolLM2).
    let keepsAttention: Bool

    init(config: LlamaConfiguration, layout: LoRALayout) {
        c = config
        qkvDim = config.qDim + 2 * config.kvDim
        ranks = (0..<config.layerCount).map { layout.rankSum(layer: $0) }
        keepsAttention = layout.slots.contains { $0.projection == .o }
    }

    deinit { storage?.deallocate() }

    private var attentionWidth: Int { keepsAttention ? c.qDim : 0 }
    private var blockWidth: Int { 1 + qkvDim + c.dim + 1 + 2 * c.ffnDim + attentionWidth }

    /// Floats kept per row, all layers together, in either mode.
    func floatsPerRow(recompute: Bool) -> Int {
        let maxRank = ranks.max() ?? 0
        if recompute { return (c.layerCount + 1) * c.dim + blockWidth + maxRank }
        return (c.layerCount + 1) * c.dim + ranks.reduce(c.layerCount * blockWidth, +)
    }

    func reserve(_ n: Int, recompute: Bool) {
        guard n > capacity || recompute != self.recompute else { return }
        storage?.deallocate()
        storage = nil
        capacity = max(n, recompute == self.recompute ? capacity : 0)
        self.recompute = recompute
        let cap = capacity
        var total = 0
        xStarts = (0...c.layerCount).map { _ in defer { total += cap * c.dim }; return total }
        offsets = []
        var o = 0
        for w in [1, qkvDim, c.dim, 1, 2 * c.ffnDim, attentionWidth] { offsets.append(o); o += cap * w }
        offsets.append(o)
        let blocks = recompute ? [ranks.max() ?? 0] : ranks
        blockStarts = blocks.map { r in defer { total += cap * (blockWidth + r) }; return total }
        storage = .allocate(capacity: max(1, total))
        storage!.initialize(repeating: 0, count: max(1, total))
    }

    private func at(_ l: Int, _ k: Int) -> UnsafeMutablePointer<Float> {
        storage! + blockStarts[recompute ? 0 : l] + offsets[k]
    }

    func x(_ l: Int) -> UnsafeMutablePointer<Float> { storage! + xStarts[l] }   // [n, dim] input of layer l (l = L: output)
    func rstd1(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 0) }   // [n]
    func qkv(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 1) }     // [n, qkvDim]: rotated q | rotated k | v
    func x2(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 2) }      // [n, dim] residual after attention
    func rstd2(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 3) }   // [n]
    func gu(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 4) }      // [n, 2·ffn]: gate | up pre-activations
    func att(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 5) }     // [n, qDim] attention output (keepsAttention)
    func t(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 6) }       // [n, rankSum(l)]: dropout(x)·Aᵀ per module
}

/// Working memory of one pass, reused layer after layer (contents undefined between uses).
final class PassScratch {
    private(set) var capacity = 0
    private var storage: UnsafeMutablePointer<Float>?
    private let widths: [Int]
    private var starts: [Int] = []

    // slot indices
    static let xn = 0, att = 1, proj = 2, h = 3, dx = 4, dxn = 5, dh = 6, dgu = 7, dqkv = 8, datt = 9,
               dropIn = 10, dropGrad = 11, dt = 12

    init(config c: LlamaConfiguration, layout: LoRALayout, dropout: Bool) {
        let maxIn = max(c.dim, c.qDim, c.ffnDim)
        let maxRank = layout.slots.map(\.rank).max() ?? 1
        let qkv = c.qDim + 2 * c.kvDim
        widths = [c.dim, c.qDim, c.dim, c.ffnDim, c.dim, c.dim, c.ffnDim, 2 * c.ffnDim, qkv, c.qDim,
                  dropout ? maxIn : 0, dropout ? maxIn : 0, maxRank]
    }

    deinit { storage?.deallocate() }

    func reserve(_ n: Int) {
        guard n > capacity else { return }
        storage?.deallocate()
        capacity = n
        starts = []
        var total = 0
        for w in widths { starts.append(total); total += n * w }
        storage = .allocate(capacity: max(1, total))
        storage!.initialize(repeating: 0, count: max(1, total))
    }

    subscript(_ slot: Int) -> UnsafeMutablePointer<Float> { storage! + starts[slot] }
}
