import Foundation
import Tensor

/// Causal grouped-query attention over packed sequences, forward and backward, for one layer.
///
/// Work units are (sequence, kv-group) pairs: a unit owns its rows of dK and dV, so heads sharing a group accumulate
/// without races. Probabilities are never stored: the backward recomputes them from the saved rotated q and k.
struct AttentionOps {
    let heads: Int
    let kvHeads: Int
    let headDim: Int
    let qkvDim: Int       // row stride of the q | k | v buffer
    let qDim: Int
    let kvDim: Int

    /// Per-thread scratch for [L, L] score matrices.
    final class Scratch {
        private(set) var side = 0
        private var buffers: [UnsafeMutablePointer<Float>] = []
        let threads: Int
        init(threads: Int) { self.threads = threads }
        deinit { for b in buffers { b.deallocate() } }
        func reserve(_ l: Int) {
            guard l > side else { return }
            for b in buffers { b.deallocate() }
            side = l
            buffers = (0..<2 * threads).map { _ in .allocate(capacity: l * l) }
        }
        func s(_ thread: Int) -> UnsafeMutablePointer<Float> { buffers[2 * thread] }
        func dp(_ thread: Int) -> UnsafeMutablePointer<Float> { buffers[2 * thread + 1] }
    }

    /// p[L, L] = causal softmax(scale · Q_h K_gᵀ) for one sequence starting at row r0.
    private func probabilities(qkv: UnsafePointer<Float>, r0: Int, len: Int, head h: Int, group g: Int,
                               p: UnsafeMutablePointer<Float>) {
        let scale = 1 / Float(headDim).squareRoot()
        // p[L, L] = scale · Q_h[L, hd] · K_g[L, hd]ᵀ
        BLAS.sgemm(m: len, n: len, k: headDim, alpha: scale, a: qkv + r0 * qkvDim + h * headDim, lda: qkvDim,
                   b: qkv + r0 * qkvDim + qDim + g * headDim, ldb: qkvDim, transposeB: true, c: p, ldc: len)
        for i in 0..<len {
            let row = p + i * len
            Kernels.softmax(row, count: i + 1)
            if i + 1 < len { (row + i + 1).update(repeating: 0, count: len - i - 1) }
        }
    }

    /// out[n, qDim] = attention of every head; qkv [n, qkvDim] holds rotated q, rotated k and v.
    func forward(qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, pass: PackedPass, pool: ThreadPool, scratch: Scratch) {
        scratch.reserve(pass.maxLength)
        let units = pass.sequenceRows.count * kvHeads
        let perGroup = heads / kvHeads
        pool.parallelFor(units) { u, thread in
            let rows = pass.sequenceRows[u / kvHeads]
            let g = u % kvHeads
            let r0 = rows.lowerBound, len = rows.count
            if len == 0 { return }
            let p = scratch.s(thread)
            for h in g * perGroup..<(g + 1) * perGroup {
                probabilities(qkv: qkv, r0: r0, len: len, head: h, group: g, p: p)
                // out_h[L, hd] = p[L, L] · V_g[L, hd]
                BLAS.sgemm(m: len, n: headDim, k: len, a: p, lda: len,
                           b: qkv + r0 * qkvDim + qDim + kvDim + g * headDim, ldb: qkvDim, transposeB: false,
                           c: out + r0 * qDim + h * headDim, ldc: qDim)
            }
        }
    }

    /// dqkv[n, qkvDim] = gradients of rotated q, rotated k and v, given dOut[n, qDim] (written, not accumulated).
    func backward(qkv: UnsafePointer<Float>, dOut: UnsafePointer<Float>, dqkv: UnsafeMutablePointer<Float>,
                  pass: PackedPass, pool: ThreadPool, scratch: Scratch) {
        scratch.reserve(pass.maxLength)
        let units = pass.sequenceRows.count * kvHeads
        let perGroup = heads / kvHeads
        let scale = 1 / Float(headDim).squareRoot()
        pool.parallelFor(units) { u, thread in
            let rows = pass.sequenceRows[u / kvHeads]
            let g = u % kvHeads
            let r0 = rows.lowerBound, len = rows.count
            if len == 0 { return }
            let p = scratch.s(thread), dp = scratch.dp(thread)
            let kG = qkv + r0 * qkvDim + qDim + g * headDim
            let vG = qkv + r0 * qkvDim + qDim + kvDim + g * headDim
            let dkG = dqkv + r0 * qkvDim + qDim + g * headDim
            let dvG = dqkv + r0 * qkvDim + qDim + kvDim + g * headDim
            for (j, h) in (g * perGroup..<(g + 1) * perGroup).enumerated() {
                let beta: Float = j == 0 ? 0 : 1
                let qH = qkv + r0 * qkvDim + h * headDim
                let dO = dOut + r0 * qDim + h * headDim
                probabilities(qkv: qkv, r0: r0, len: len, head: h, group: g, p: p)
                // dp[L, L] = dO_h[L, hd] · V_g[L, hd]ᵀ
                BLAS.sgemm(m: len, n: len, k: headDim, a: dO, lda: qDim, b: vG, ldb: qkvDim, transposeB: true, c: dp, ldc: len)
                // dV_g[L, hd] (+)= p[L, L]ᵀ · dO_h[L, hd]
                BLAS.sgemm(m: len, n: headDim, k: len, a: p, lda: len, b: dO, ldb: qDim, transposeB: false,
                           beta: beta, c: dvG, ldc: qkvDim, transposeA: true)
                // ds = p ⊙ (dp − Σ_k dp·p), in place in dp
                for i in 0..<len {
                    let pr = p + i * len, dr = dp + i * len
                    var dot: Float = 0
                    for k in 0...i { dot += pr[k] * dr[k] }
                    for k in 0...i { dr[k] = pr[k] * (dr[k] - dot) }
                    if i + 1 < len { (dr + i + 1).update(repeating: 0, count: len - i - 1) }
                }
                // dQ_h[L, hd] = scale · ds[L, L] · K_g[L, hd]
                BLAS.sgemm(m: len, n: headDim, k: len, alpha: scale, a: dp, lda: len, b: kG, ldb: qkvDim,
                           transposeB: false, c: dqkv + r0 * qkvDim + h * headDim, ldc: qkvDim)
                // dK_g[L, hd] (+)= scale · ds[L, L]ᵀ · Q_h[L, hd]
                BLAS.sgemm(m: len, n: headDim, k: len, alpha: scale, a: dp, lda: len, b: qH, ldb: qkvDim,
                           transposeB: false, beta: beta, c: dkG, ldc: qkvDim, transposeA: true)
            }
        }
    }
}
