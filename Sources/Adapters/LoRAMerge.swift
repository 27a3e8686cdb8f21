import Tensor

/// Folding a LoRA module into a dense weight: `W ← W + scale · B · A`.
///
/// `weight` is `[out, in]` row-major (rows in GGUF order), `a` is `[rank, in]`, `b` is `[out, rank]`.
public enum LoRAMerge {
    /// The fast version: one sgemm with beta 1.
    public static func addDelta(to weight: inout [Float], out: Int, in inF: Int, module: LoRAModuleWeights) {
        let r = module.rank
        precondition(r > 0 && weight.count == out * inF && module.a.count == r * inF && module.b.count == out * r,
                     "LoRAMerge: sizes disagree")
        weight.withUnsafeMutableBufferPointer { w in
            module.a.withUnsafeBufferPointer { a in
                module.b.withUnsafeBufferPointer { b in
                    // W[out, in] += scale · B[out, r] · A[r, in]   (A stored [k = r, n = in], not transposed)
                    BLAS.sgemm(m: out, n: inF, k: r, alpha: module.scale, a: b.baseAddress!, lda: r,
                               b: a.baseAddress!, ldb: inF, transposeB: false, beta: 1, c: w.baseAddress!, ldc: inF)
                }
            }
        }
    }

    /// The naive reference: three loops, accumulated in Double.
    public static func addDeltaNaive(to weight: inout [Float], out: Int, in inF: Int, module: LoRAModuleWeights) {
        let r = module.rank
        precondition(r > 0 && weight.count == out * inF && module.a.count == r * inF && module.b.count == out * r,
                     "LoRAMerge: sizes disagree")
        for row in 0 ..< out {
            for col in 0 ..< inF {
                var sum = 0.0
                for k in 0 ..< r { sum += Double(module.b[row * r + k]) * Double(module.a[k * inF + col]) }
                weight[row * inF + col] += Float(Double(module.scale) * sum)
            }
        }
    }
}
