import Llama

/// What the forward pass keeps for the backward pass, per layer, for `capacity` rows. Everything cheap to rebuild
/// (normalised inputs, attention probabilities and output, the SwiGLU product, dropout masks) is recomputed instead.
///
/// Per row and layer: input x, rstd of both norms, rotated q/k and v, the residual after attention, gate/up
/// pre-activations and the LoRA `x·Aᵀ` rows — for SmolLM2-135M about 21 KB.
final class ActivationStore {
    private(set) var capacity = 0
    private var storage: UnsafeMutablePointer<Float>?
    private let c: LlamaConfiguration
    private let qkvDim: Int
    private let ranks: [Int]                // rank sum per layer
    private var layerStride = 0
    private var offsets: [Int] = []         // [x, rstd1, qkv, x2, rstd2, gu, t] within a layer block

    init(config: LlamaConfiguration, layout: LoRALayout) {
        c = config
        qkvDim = config.qDim + 2 * config.kvDim
        ranks = (0..<config.layerCount).map { layout.rankSum(layer: $0) }
    }

    deinit { storage?.deallocate() }

    /// Floats kept per row, all layers together.
    var floatsPerRow: Int {
        (0..<c.layerCount).reduce(c.dim) { $0 + 2 * c.dim + 2 + qkvDim + 2 * c.ffnDim + ranks[$1] }
    }

    func reserve(_ n: Int) {
        guard n > capacity else { return }
        storage?.deallocate()
        capacity = n
        let widths = [c.dim, 1, qkvDim, c.dim, 1, 2 * c.ffnDim]
        var layerStarts: [Int] = []
        var total = 0
        for l in 0..<c.layerCount {
            layerStarts.append(total)
            total += n * (widths.reduce(0, +) + ranks[l])
        }
        offsets = []
        var o = 0
        for w in widths { offsets.append(o); o += n * w }
        offsets.append(o)
        self.layerStarts = layerStarts
        finalOffset = total
        total += n * c.dim
        storage = .allocate(capacity: total)
        storage!.initialize(repeating: 0, count: total)
    }

    private var layerStarts: [Int] = []
    private var finalOffset = 0

    private func at(_ l: Int, _ k: Int) -> UnsafeMutablePointer<Float> { storage! + layerStarts[l] + offsets[k] }

    func x(_ l: Int) -> UnsafeMutablePointer<Float> { l == c.layerCount ? storage! + finalOffset : at(l, 0) }  // [n, dim]
    func rstd1(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 1) }   // [n]
    func qkv(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 2) }     // [n, qkvDim]: rotated q | rotated k | v
    func x2(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 3) }      // [n, dim] residual after attention
    func rstd2(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 4) }   // [n]
    func gu(_ l: Int) -> UnsafeMutablePointer<Float> { at(l, 5) }      // [n, 2·ffn]: gate | up pre-activations
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
