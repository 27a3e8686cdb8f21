import Tensor

/// The low-rank update of one projection: ΔW = scale · B · A.
///
/// `@unchecked Sendable`: the buffers are filled once at construction and only read after.
public final class LoRADelta: @unchecked Sendable {
    public let rank: Int
    public let inFeatures: Int
    public let outFeatures: Int
    public let scale: Float
    public let a: UnsafeMutableBufferPointer<Float>   // [rank, inFeatures]
    public let b: UnsafeMutableBufferPointer<Float>   // [outFeatures, rank], rows in GGUF (llama.cpp) order

    public init(rank: Int, inFeatures: Int, outFeatures: Int, scale: Float, a: [Float], b: [Float]) {
        precondition(rank > 0 && a.count == rank * inFeatures && b.count == outFeatures * rank, "LoRADelta: shape mismatch")
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.scale = scale
        self.a = .allocate(capacity: a.count)
        _ = self.a.initialize(from: a)
        self.b = .allocate(capacity: b.count)
        _ = self.b.initialize(from: b)
    }

    deinit {
        a.deallocate()
        b.deallocate()
    }

    public var byteCount: Int { (a.count + b.count) * MemoryLayout<Float>.size }

    /// scale · B · A as a dense `[out, in]` matrix (for merging).
    public func dense() -> [Float] {
        var out = [Float](repeating: 0, count: outFeatures * inFeatures)
        out.withUnsafeMutableBufferPointer { o in
            for row in 0..<outFeatures {
                for r in 0..<rank {
                    let coef = scale * b[row * rank + r]
                    if coef == 0 { continue }
                    let aRow = a.baseAddress! + r * inFeatures
                    let oRow = o.baseAddress! + row * inFeatures
                    for c in 0..<inFeatures { oRow[c] += coef * aRow[c] }
                }
            }
        }
        return out
    }
}

/// An adapter as the forward pass uses it: `deltas[layer][projection.rawValue]`.
public final class LoRAAdapter: Sendable {
    public let name: String
    public let deltas: [[LoRADelta?]]

    public init(name: String, deltas: [[LoRADelta?]]) {
        self.name = name
        self.deltas = deltas
    }

    public var byteCount: Int { deltas.joined().reduce(0) { $0 + ($1?.byteCount ?? 0) } }

    public func delta(layer: Int, _ p: Projection) -> LoRADelta? {
        guard layer < deltas.count else { return nil }
        return deltas[layer][p.rawValue]
    }
}

/// Weights that replace base matrices for requests of a merged adapter:
/// `overrides[layer][projection.rawValue]` is W + s·BA where the adapter targets it.
public final class MergedWeights: Sendable {
    public let name: String
    public let overrides: [[WeightMatrix?]]

    /// Where the CPU has AMX tiles, each matrix's tile layout is made here, on the caller's thread (an adapter load,
    /// not the engine's step), which doubles the bytes.
    public init(name: String, overrides: [[WeightMatrix?]]) {
        self.name = name
        self.overrides = overrides
        if AMXTiles.available {
            for case let w? in overrides.joined() where w.hasTileKernel { _ = w.tileWeights(pool: nil) }
        }
    }

    public var byteCount: Int { overrides.joined().reduce(0) { $0 + ($1.map { $0.byteCount + $0.tileLayoutBytes } ?? 0) } }
}
