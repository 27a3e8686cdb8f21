import Foundation
import Tensor

/// Causal grouped-query attention over packed sequences, forward and backward, for one layer.
///
/// Work units are (sequence, kv-group) pairs: a unit owns its rows of dK and dV, so heads sharing a group accumulate
/// without races. Queries go in blocks of `blockRows`: a block only looks at the keys up to its last row, so long
/// sequences skip most of the masked triangle, and scratch is `blockRows × L` per thread. Probabilities are never
/// stored: the backward recomputes them from the saved rotated q and k.
struct AttentionOps {
    let heads: Int
    let kvHeads: Int
    let headDim: Int
    let qkvDim: Int       // row stride of the q | k | v buffer
    let qDim: Int
    let kvDim: Int
    /// 64: a 128-token sequence then computes 3/4 of its score square instead of all of it; attention took 7.4-7.7%
    /// of a training step's time against 8.6-9.0% with 128 (timed inside the step, bench/README "Training"); 32
    /// skips more of the triangle but its smaller products run slower, and came out the same as 64.
    static let blockRows = 64

    /// Per-thread scratch for [blockRows, L] score matrices.
    final class Scratch {
        private(set) var length = 0
        private var buffers: [UnsafeMutablePointer<Float>] = []
        let threads: Int
        init(threads: Int) { self.threads = threads }
        deinit { for b in buffers { b.deallocate() } }
        func reserve(_ l: Int) {
            guard l > length else { return }
            for b in buffers { b.deallocate() }
            length = l
            buffers = (0..<2 * threads).map { _ in .allocate(capacity: AttentionOps.blockRows * l) }
        }
        func s(_ thread: Int) -> UnsafeMutablePointer<Float> { buffers[2 * thread] }
        func dp(_ thread: Int) -> UnsafeMutablePointer<Float> { buffers[2 * thread + 1] }
    }

    /// p[rows, keys] = causal softmax(scale · Q_h[rows] · K_g[0..<keys]ᵀ) for query rows `b0..<b0+rows` of the
    /// sequence starting at row r0 (keys = b0 + rows: a query never sees later keys).
    private func probabilities(qkv: UnsafePointer<Float>, r0: Int, b0: Int, rows: Int, head h: Int, group g: Int,
                               p: UnsafeMutablePointer<Float>) {
        let keys = b0 + rows
        let scale = 1 / Float(headDim).squareRoot()
        // p[rows, keys] = scale · Q_h[rows, hd] · K_g[keys, hd]ᵀ
        BLAS.sgemm(m: rows, n: keys, k: headDim, alpha: scale, a: qkv + (r0 + b0) * qkvDim + h * headDim, lda: qkvDim,
                   b: qkv + r0 * qkvDim + qDim + g * headDim, ldb: qkvDim, transposeB: true, c: p, ldc: keys)
        for i in 0..<rows {
            let row = p + i * keys
            let visible = b0 + i + 1
            Kernels.softmax(row, count: visible)
            if visible < keys { (row + visible).update(repeating: 0, count: keys - visible) }
        }
    }

    /// out[n, qDim] = attention of every head; qkv [n, qkvDim] holds rotated q, rotated k and v.
    func forward(qkv: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, pass: PackedPass, pool: ThreadPool, scratch: Scratch) {
        scratch.reserve(pass.maxLength)
        let units = pass.sequenceRows.count * kvHeads
        let perGroup = heads / kvHeads
        pool.parallelFor(units) { u, thread in
            let seq = pass.sequenceRows[u / kvHeads]
            let g = u % kvHeads
            let r0 = seq.lowerBound, len = seq.count
            let p = scratch.s(thread)
            let vG = qkv + r0 * qkvDim + qDim + kvDim + g * headDim
            for h in g * perGroup..<(g + 1) * perGroup {
                var b0 = 0
                while b0 < len {
                    let rows = min(Self.blockRows, len - b0)
                    probabilities(qkv: qkv, r0: r0, b0: b0, rows: rows, head: h, group: g, p: p)
                    // out_h[rows, hd] = p[rows, keys] · V_g[keys, hd]
                    BLAS.sgemm(m: rows, n: headDim, k: b0 + rows, a: p, lda: b0 + rows, b: vG, ldb: qkvDim, transposeB: false,
                               c: out + (r0 + b0) * qDim + h * headDim, ldc: qDim)
                    b0 += rows
                }
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
            let seq = pass.sequenceRows[u / kvHeads]
            let g = u % kvHeads
            let r0 = seq.lowerBound, len = seq.count
            let p = scratch.s(thread), dp = scratch.dp(thread)
            let kG = qkv + r0 * qkvDim + qDim + g * headDim
            let vG = qkv + r0 * qkvDim + qDim + kvDim + g * headDim
            let dkG = dqkv + r0 * qkvDim + qDim + g * headDim
            let dvG = dqkv + r0 * qkvDim + qDim + kvDim + g * headDim
            for i in 0..<len {
                (dkG + i * qkvDim).update(repeating: 0, count: headDim)
                (dvG + i * qkvDim).update(repeating: 0, count: headDim)
            }
            for h in g * perGroup..<(g + 1) * perGroup {
                var b0 = 0
                while b0 < len {
                    let rows = min(Self.blockRows, len - b0)
                    let keys = b0 + rows
                    let qH = qkv + (r0 + b0) * qkvDim + h * headDim
                    let dO = dOut + (r0 + b0) * qDim + h * headDim
                    probabilities(qkv: qkv, r0: r0, b0: b0, rows: rows, head: h, group: g, p: p)
                    // dp[rows, keys] = dO_h[rows, hd] · V_g[keys, hd]ᵀ
                    BLAS.sgemm(m: rows, n: keys, k: headDim, a: dO, lda: qDim, b: vG, ldb: qkvDim, transposeB: true,
                               c: dp, ldc: keys)
                    // dV_g[keys, hd] += p[rows, keys]ᵀ · dO_h[rows, hd]
                    BLAS.sgemm(m: keys, n: headDim, k: rows, a: p, lda: keys, b: dO, ldb: qDim, transposeB: false,
                               beta: 1, c: dvG, ldc: qkvDim, transposeA: true)
                    // ds = p ⊙ (dp − Σ_k dp·p), in place in dp
                    for i in 0..<rows {
                        let pr = p + i * keys, dr = dp + i * keys
                        let visible = b0 + i + 1
                        var dot: Float = 0
                        for k in 0..<visible { dot += pr[k] * dr[k] }
                        for k in 0..<visible { dr[k] = pr[k] * (dr[k] - dot) }
                        if visible < keys { (dr + visible).update(repeating: 0, count: keys - visible) }
                    }
                    // dQ_h[rows, hd] = scale · ds[rows, keys] · K_g[keys, hd]
                    BLAS.sgemm(m: rows, n: headDim, k: keys, alpha: scale, a: dp, lda: keys, b: kG, ldb: qkvDim,
                               transposeB: false, c: dqkv + (r0 + b0) * qkvDim + h * headDim, ldc: qkvDim)
                    // dK_g[keys, hd] += scale · ds[rows, keys]ᵀ · Q_h[rows, hd]
                    BLAS.sgemm(m: keys, n: headDim, k: rows, alpha: scale, a: dp, lda: keys, b: qH, ldb: qkvDim,
                               transposeB: false, beta: 1, c: dkG, ldc: qkvDim, transposeA: true)
                    b0 += rows
                }
            }
        }
    }
}
