import Foundation
import Tensor

extension LlamaModel {
    /// Causal grouped-query attention for every sequence of the batch over its KV cache
    /// (which already holds this step's keys and values). `q` is `[n, qDim]`, `out` `[n, qDim]`.
    func attention(layer l: Int, q: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, batch: Batch, ws: Workspace) {
        let c = config
        // Runs: maximal row ranges of one sequence.
        var runs: [Range<Int>] = []
        var start = 0
        for i in 1...batch.count where i == batch.count || batch.caches[i] !== batch.caches[start] {
            runs.append(start..<i)
            start = i
        }
        let scale = 1 / Float(c.headDim).squareRoot()

        // Small runs (decode tokens, short chunks). One or two long decode rows: their keys split over the threads
        // (`splitKeysDecode`). Else one work unit per (run, KV head) when that gives every thread a few, so the
        // query heads sharing a KV head read its keys and values together (each key row once from memory, then
        // from L1), or one per (run, query head), so that one stream still spreads over the threads.
        let small = runs.filter { $0.count < 8 }
        let keysSplit = splitKeysDecode(layer: l, q: q, out: out, rows: small, batch: batch, ws: ws, scale: scale)
        if !keysSplit, !small.isEmpty {
            let maxKeys = small.map { batch.positions[$0.upperBound - 1] + 1 }.max()!
            let groupSize = c.headCount / c.kvHeadCount
            let perGroup = small.count * c.kvHeadCount >= 4 * pool.threadCount
            let headsPerUnit = perGroup ? groupSize : 1
            let unitsPerRun = c.headCount / headsPerUnit
            let scratch = ws.buffer(.scores, small.count * c.headCount * maxKeys)
            pool.parallelFor(small.count * unitsPerRun) { u in
                let run = small[u / unitsPerRun]
                let h0 = (u % unitsPerRun) * headsPerUnit
                let g = h0 / groupSize
                let cache = batch.caches[run.lowerBound]
                let kBase = UnsafePointer(cache.k[l]) + g * c.headDim
                let vBase = UnsafePointer(cache.v[l]) + g * c.headDim
                let s = scratch + u * headsPerUnit * maxKeys    // one row of maxKeys scores per head
                for row in run {
                    let keys = batch.positions[row] + 1
                    let q0 = UnsafePointer(q + row * c.qDim + h0 * c.headDim)
                    AttentionKernels.scores(q0, heads: headsPerUnit, dim: c.headDim, keys: kBase, stride: c.kvDim, count: keys,
                                            scale: scale, into: s, ldS: maxKeys)
                    for j in 0..<headsPerUnit { Kernels.softmax(s + j * maxKeys, count: keys) }
                    AttentionKernels.weightedSum(s, ldW: maxKeys, heads: headsPerUnit, values: vBase, stride: c.kvDim, count: keys,
                                                 dim: c.headDim, into: out + row * c.qDim + h0 * c.headDim)
                }
            }
        }

        // Long runs (prefill chunks): per (run, head, block of up to `blockRows` rows), two sgemm with a masked
        // softmax between. A block's rows see keys only up to its last row, so the products skip the masked
        // triangle above the diagonal (half of a long prompt's attention arithmetic), and the blocks, largest
        // first, balance over the threads where one unit per head (9 heads, 2 threads) left a thread idle.
        let long = runs.filter { $0.count >= 8 }
        if long.isEmpty { return }
        let blockRows = 64
        var units: [(run: Int, head: Int, rows: Range<Int>)] = []
        for (r, run) in long.enumerated() {
            for h in 0..<c.headCount {
                for start in stride(from: run.lowerBound, to: run.upperBound, by: blockRows) {
                    units.append((r, h, start..<min(run.upperBound, start + blockRows)))
                }
            }
        }
        // Work per block grows with its last key; hand out the largest first.
        units.sort { batch.positions[$0.rows.upperBound - 1] > batch.positions[$1.rows.upperBound - 1] }
        let maxScores = min(blockRows, long.map(\.count).max()!) * (long.map { batch.positions[$0.upperBound - 1] + 1 }.max()!)
        let scratch = ws.buffer(.scores, maxScores * pool.threadCount)
        pool.parallelFor(units.count) { u, thread in
            let unit = units[u]
            let run = long[unit.run]
            let h = unit.head
            let g = h / (c.headCount / c.kvHeadCount)
            let m = unit.rows.count
            let p0 = batch.positions[unit.rows.lowerBound]
            let keys = p0 + m
            let cache = batch.caches[run.lowerBound]
            let s = scratch + thread * maxScores
            // s[m, keys] = scale · Q_h[rows, hd] · K_g[keys, hd]ᵀ
            BLAS.sgemm(m: m, n: keys, k: c.headDim, alpha: scale,
                       a: q + unit.rows.lowerBound * c.qDim + h * c.headDim, lda: c.qDim,
                       b: cache.k[l] + g * c.headDim, ldb: c.kvDim, transposeB: true, c: s, ldc: keys)
            for i in 0..<m {
                let row = s + i * keys
                let visible = p0 + i + 1
                Kernels.softmax(row, count: visible)
                if visible < keys { (row + visible).initialize(repeating: 0, count: keys - visible) }
            }
            // out_h[rows, hd] = s[m, keys] · V_g[keys, hd]
            BLAS.sgemm(m: m, n: c.headDim, k: keys, a: s, lda: keys,
                       b: cache.v[l] + g * c.headDim, ldb: c.kvDim, transposeB: false,
                       c: out + unit.rows.lowerBound * c.qDim + h * c.headDim, ldc: c.qDim)
        }
    }

    /// Keys per unit below which `splitKeysDecode` does not split: shorter contexts are cheap, and every unit
    /// costs a combine.
    public static let splitKeysChunk = 256

    /// Decode rows alone in their runs (one token of a few sequences) whose contexts are long: there are too few
    /// (run, KV head) units to keep the threads busy (one stream, three KV heads, two threads), so each unit takes
    /// a range of the keys for one KV head's query heads and leaves unnormalised partial results (its own maximum
    /// score, Σ e^(s - max), and Σ e^(s - max)·V), which are then combined per head (flash-decoding). Returns false,
    /// doing nothing, when the rows do not qualify.
    func splitKeysDecode(layer l: Int, q: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, rows runs: [Range<Int>],
                         batch: Batch, ws: Workspace, scale: Float) -> Bool {
        let c = config
        let units = runs.count * c.kvHeadCount
        guard !runs.isEmpty, units < 4 * pool.threadCount, runs.allSatisfy({ $0.count == 1 }), c.headCount % c.kvHeadCount == 0
        else { return false }
        let maxKeys = runs.map { batch.positions[$0.lowerBound] + 1 }.max()!
        let wanted = (4 * pool.threadCount + units - 1) / units
        let chunks = min(wanted, maxKeys / Self.splitKeysChunk)
        guard chunks >= 2 else { return false }
        let chunkKeys = (maxKeys + chunks - 1) / chunks
        let groupSize = c.headCount / c.kvHeadCount, hd = c.headDim
        // Per unit: scores [groupSize, chunkKeys]; partial results: each head's maximum score, each head's sum, then
        // the heads' partial outputs [groupSize, hd].
        let perUnit = groupSize * (2 + hd)
        let scores = ws.buffer(.scores, units * chunks * groupSize * chunkKeys)
        let partials = ws.buffer(.partials, units * chunks * perUnit)
        pool.parallelFor(units * chunks) { u in
            let r = u / (c.kvHeadCount * chunks), g = (u / chunks) % c.kvHeadCount, chunk = u % chunks
            let row = runs[r].lowerBound
            let keys = batch.positions[row] + 1
            let t0 = min(keys, chunk * chunkKeys), t1 = min(keys, t0 + chunkKeys)
            let p = partials + u * perUnit
            guard t1 > t0 else {
                for j in 0..<groupSize { p[j] = -.infinity; p[groupSize + j] = 0 }
                return
            }
            let cache = batch.caches[row]
            let s = scores + u * groupSize * chunkKeys
            let kBase = UnsafePointer(cache.k[l]) + t0 * c.kvDim + g * hd
            let vBase = UnsafePointer(cache.v[l]) + t0 * c.kvDim + g * hd
            AttentionKernels.scores(UnsafePointer(q + row * c.qDim + g * groupSize * hd), heads: groupSize, dim: hd, keys: kBase,
                                    stride: c.kvDim, count: t1 - t0, scale: scale, into: s, ldS: chunkKeys)
            for j in 0..<groupSize {
                let (m, sum) = Kernels.exponentiateFromMaximum(s + j * chunkKeys, count: t1 - t0)
                p[j] = m
                p[groupSize + j] = Float(sum)
            }
            AttentionKernels.weightedSum(s, ldW: chunkKeys, heads: groupSize, values: vBase, stride: c.kvDim, count: t1 - t0,
                                         dim: hd, into: p + 2 * groupSize)
        }
        // Combine: out = Σ_c e^(m_c - M) · o_c / Σ_c e^(m_c - M) · l_c, M the largest m_c.
        for (r, run) in runs.enumerated() {
            let row = run.lowerBound
            for h in 0..<c.headCount {
                let g = h / groupSize, j = h % groupSize
                let first = partials + (r * c.kvHeadCount + g) * chunks * perUnit
                var m = -Float.infinity
                for chunk in 0..<chunks { m = max(m, first[chunk * perUnit + j]) }
                let o = out + row * c.qDim + h * hd
                o.initialize(repeating: 0, count: hd)
                var total: Float = 0
                for chunk in 0..<chunks {
                    let p = first + chunk * perUnit
                    // An empty range left a zero sum (a non-empty one sums to at least 1, its maximum's e^0), and
                    // its outputs unwritten; a NaN sum is not skipped, so NaN spreads as on the other paths.
                    if p[groupSize + j] == 0 { continue }
                    let w = expf(p[j] - m)
                    total += w * p[groupSize + j]
                    Kernels.axpy(w, p + 2 * groupSize + j * hd, o, count: hd)
                }
                let inv = 1 / total
                for d in 0..<hd { o[d] *= inv }
            }
        }
        return true
    }
}
