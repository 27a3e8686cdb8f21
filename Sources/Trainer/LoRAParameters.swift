import Llama

/// Where one adapted projection's tensors live inside the flat parameter buffer.
public struct LoRAModuleSlot: Sendable, Equatable {
    public let layer: Int
    public let projection: Projection
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    /// `alpha / rank`, or `alpha / sqrt(rank)` with rsLoRA.
    public let scale: Float
    /// Offset of A `[rank, inFeatures]` in the flat buffer.
    public let offsetA: Int
    /// Offset of B `[outFeatures, rank]`; rows in GGUF order (q/k rows rotary-permuted).
    public let offsetB: Int

    public var countA: Int { rank * inFeatures }
    public var countB: Int { outFeatures * rank }
}

/// Which projections carry LoRA, with what rank and scale: the shape of the trainable parameters.
public struct LoRALayout: Sendable, Equatable {
    public let slots: [LoRAModuleSlot]
    /// Total floats (A and B of every module).
    public let parameterCount: Int
    /// `slotIndex[layer][projection.rawValue]`
    let slotIndex: [[Int?]]

    /// Every layer gets `targets`, each with `rank` and scale alpha/rank (alpha/sqrt(rank) with `rsLoRA`).
    public init(config: LlamaConfiguration, targets: Set<Projection>, rank: Int, alpha: Double, rsLoRA: Bool) {
        let scale = Float(rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
        var modules: [(Int, Projection, Int, Float)] = []
        for l in 0..<config.layerCount {
            for p in Projection.allCases where targets.contains(p) { modules.append((l, p, rank, scale)) }
        }
        self.init(config: config, modules: modules)
    }

    /// Explicit modules: (layer, projection, rank, scale), e.g. from an adapter with per-module ranks.
    public init(config: LlamaConfiguration, modules: [(layer: Int, projection: Projection, rank: Int, scale: Float)]) {
        var index = [[Int?]](repeating: [Int?](repeating: nil, count: Projection.allCases.count), count: config.layerCount)
        var slots: [LoRAModuleSlot] = []
        var offset = 0
        for m in modules.sorted(by: { ($0.layer, $0.projection.rawValue) < ($1.layer, $1.projection.rawValue) }) {
            let f = m.projection.features(config)
            let slot = LoRAModuleSlot(layer: m.layer, projection: m.projection, rank: m.rank, inFeatures: f.in,
                                      outFeatures: f.out, scale: m.scale, offsetA: offset, offsetB: offset + m.rank * f.in)
            offset += slot.countA + slot.countB
            index[m.layer][m.projection.rawValue] = slots.count
            slots.append(slot)
        }
        self.slots = slots
        self.slotIndex = index
        parameterCount = offset
    }

    public func slot(layer: Int, _ p: Projection) -> LoRAModuleSlot? {
        guard layer >= 0, layer < slotIndex.count, let i = slotIndex[layer][p.rawValue] else { return nil }
        return slots[i]
    }

    /// Sum of ranks of the layer's adapted projections (the width of its saved `x·Aᵀ` rows).
    func rankSum(layer: Int) -> Int {
        Projection.allCases.reduce(0) { $0 + (slot(layer: layer, $1)?.rank ?? 0) }
    }

    /// Column offset of projection `p` inside the layer's saved `x·Aᵀ` rows.
    func rankOffset(layer: Int, _ p: Projection) -> Int {
        Projection.allCases.prefix(while: { $0 != p }).reduce(0) { $0 + (slot(layer: layer, $1)?.rank ?? 0) }
    }
}

/// A flat, owned f32 buffer (parameters, gradients, optimiser moments): llm.c's one-allocation habit.
///
/// `@unchecked Sendable`: the trainer owns it and uses it from one thread at a time (kernels split disjoint ranges).
public final class FlatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
    }

    deinit { pointer.deallocate() }

    public func zero() { pointer.update(repeating: 0, count: count) }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }

    public func copy(from other: FlatBuffer) {
        precondition(other.count == count, "FlatBuffer.copy: \(other.count) floats into \(count)")
        pointer.update(from: other.pointer, count: count)
    }

    public func load(_ values: [Float], at offset: Int) {
        precondition(offset >= 0 && offset + values.count <= count, "FlatBuffer.load out of range")
        values.withUnsafeBufferPointer { (pointer + offset).update(from: $0.baseAddress!, count: values.count) }
    }

    public func slice(_ offset: Int, _ n: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: pointer + offset, count: n))
    }
}
