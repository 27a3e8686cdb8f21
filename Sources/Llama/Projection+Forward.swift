import Tensor

// MARK: - The one projection function

extension LlamaModel {
    /// output[n, out] = input[n, in] · Wᵀ for the base weight of (`layer`, `p`), with the rows
    /// of merged adapters using their own weights, then + scale · (input · Aᵀ) · Bᵀ for the
    /// rows of every unmerged adapter that targets (`layer`, `p`). Every matmul and every
    /// LoRA delta of the forward pass goes through here.
    func project(_ p: Projection, layer: Int, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                 n: Int, batch: Batch, ws: Workspace) {
        let base = weights.layers[layer].weight(p)
        let inF = base.cols, outF = base.rows

        var overridden: [(WeightMatrix, [Int])] = []
        for g in batch.merged {
            if let w = g.weights.overrides[layer][p.rawValue] { overridden.append((w, g.rows)) }
        }
        if overridden.isEmpty {
            matmul(base, input: input, output: output, n: n)
        } else {
            var isOverridden = [Bool](repeating: false, count: n)
            for (_, rows) in overridden { for r in rows { isOverridden[r] = true } }
            let baseRows = (0..<n).filter { !isOverridden[$0] }
            matmulRows(base, rows: baseRows, input: input, output: output, n: n, ws: ws)
            for (w, rows) in overridden { matmulRows(w, rows: rows, input: input, output: output, n: n, ws: ws) }
        }

        if !batch.adapters.isEmpty {
            addLoRA(p, layer: layer, groups: batch.adapters, input: input, output: output, inF: inF, outF: outF, ws: ws)
        }
    }

    /// output[rows] = input[rows] · Wᵀ, gathering when the rows are not all of 0..<n.
    private func matmulRows(_ w: WeightMatrix, rows: [Int], input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                            n: Int, ws: Workspace) {
        let m = rows.count
        if m == 0 { return }
        if Self.isRun(rows) {
            matmul(w, input: input + rows[0] * w.cols, output: output + rows[0] * w.rows, n: m)
            return
        }
        let gout = ws.buffer(.gatherOut, m * w.rows)
        matmul(w, input: gatherRows(rows, from: input, width: w.cols, ws: ws), output: gout, n: m)
        for (j, r) in rows.enumerated() { (output + r * w.rows).update(from: gout + j * w.rows, count: w.rows) }
    }

    /// Whether `rows` are first, first + 1, …: one block of the batch, used in place. (A group
    /// can list a row twice, when a request names an adapter twice, so first and last alone
    /// do not tell.)
    static func isRun(_ rows: [Int]) -> Bool {
        rows.indices.allSatisfy { rows[$0] == rows[0] + $0 }
    }

    /// Rows `rows` of `input` (`width` floats each) as one block: in place when they are a
    /// run, else copied into the workspace's gather buffer.
    private func gatherRows(_ rows: [Int], from input: UnsafePointer<Float>, width: Int, ws: Workspace) -> UnsafePointer<Float> {
        if Self.isRun(rows) { return input + rows[0] * width }
        let g = ws.buffer(.gatherIn, rows.count * width)
        for (j, r) in rows.enumerated() { (g + j * width).update(from: input + r * width, count: width) }
        return UnsafePointer(g)
    }

    /// output[row] += s · B · (A · input[row]) for every row of every unmerged adapter group
    /// that targets (`layer`, `p`), s = the adapter's scale times the row's. A decode step
    /// with 32 distinct adapters has 32 one-row deltas per projection: each is a few thousand
    /// multiply-adds, so they are spread over the thread pool rather than made 64 small
    /// sgemm calls in a row on one thread (whose fixed cost was 10% of the step at 2 threads).
    /// Work units by row: each takes every (group, row) pair of its rows, shrinks it into its own
    /// slice of t and expands it into the row at once (one pool dispatch a projection, not two,
    /// and no two units write one row even when a row has several adapters). Groups of
    /// `loraGEMMRows` rows or more (a prompt chunk, many streams on one adapter) are two sgemm
    /// calls instead, done first, on the calling thread.
    private func addLoRA(_ p: Projection, layer: Int, groups: [AdapterGroup], input: UnsafePointer<Float>,
                         output: UnsafeMutablePointer<Float>, inF: Int, outF: Int, ws: Workspace) {
        var deltas: [LoRADelta] = []
        var pairs: [(delta: Int, row: Int, scale: Float, t: Int)] = []
        var tCount = 0
        for g in groups {
            guard let d = g.adapter.delta(layer: layer, p) else { continue }
            precondition(d.inFeatures == inF && d.outFeatures == outF, "adapter '\(g.adapter.name)' was validated against another model")
            if g.rows.count >= Self.loraGEMMRows {
                addLoRAByGEMM(d, rows: g.rows, scales: g.scales, input: input, output: output, inF: inF, outF: outF, ws: ws)
                continue
            }
            deltas.append(d)
            for (j, row) in g.rows.enumerated() {
                pairs.append((deltas.count - 1, row, d.scale * g.scales[j], tCount))
                tCount += d.rank
            }
        }
        if pairs.isEmpty { return }
        let t = ws.buffer(.loraT, tCount)
        func shrink(_ i: Int) {
            let pr = pairs[i], d = deltas[pr.delta], x = input + pr.row * inF, a = d.a.baseAddress!
            for k in 0..<d.rank { t[pr.t + k] = pr.scale * Kernels.dot(a + k * inF, x, count: inF) }
        }
        func expand(_ i: Int) {
            let pr = pairs[i], d = deltas[pr.delta], r = d.rank, y = output + pr.row * outF, tp = t + pr.t, b = d.b.baseAddress!
            for o in 0..<outF { y[o] += Kernels.shortDot(b + o * r, tp, count: r) }
        }
        if pairs.count == 1 {
            // One row: not worth waking the pool for.
            shrink(0)
            expand(0)
            return
        }
        // By row, then in group order (a row's adapters add up in the same order as when it runs alone).
        let order = pairs.indices.sorted { (pairs[$0].row, $0) < (pairs[$1].row, $1) }
        let perUnit = max(1, (order.count + 4 * runner.pool.threadCount - 1) / (4 * runner.pool.threadCount))
        var starts = [0]
        for i in 1..<order.count where pairs[order[i]].row != pairs[order[i - 1]].row && i - starts.last! >= perUnit {
            starts.append(i)
        }
        starts.append(order.count)
        runner.pool.parallelFor(starts.count - 1) { u in
            for i in starts[u]..<starts[u + 1] {
                shrink(order[i])
                expand(order[i])
            }
        }
    }

    /// Rows of one adapter group from which two sgemm calls beat per-row dot products.
    static let loraGEMMRows = 8

    /// output[rows] += scale_row · d.scale · (input[rows] · Aᵀ) · Bᵀ   (shrink, then expand).
    private func addLoRAByGEMM(_ d: LoRADelta, rows: [Int], scales: [Float], input: UnsafePointer<Float>,
                               output: UnsafeMutablePointer<Float>, inF: Int, outF: Int, ws: Workspace) {
        let m = rows.count, r = d.rank
        let xin = gatherRows(rows, from: input, width: inF, ws: ws)
        // t[m, r] = x[m, in] · A[r, in]ᵀ, each row times its scale
        let t = ws.buffer(.loraGEMMT, m * r)
        BLAS.sgemm(m: m, n: r, k: inF, a: xin, lda: inF, b: d.a.baseAddress!, ldb: inF, transposeB: true, c: t, ldc: r)
        for j in 0..<m {
            let s = d.scale * scales[j]
            for i in 0..<r { t[j * r + i] *= s }
        }
        if Self.isRun(rows) {
            // y[m, out] += t[m, r] · B[out, r]ᵀ
            BLAS.sgemm(m: m, n: outF, k: r, a: t, lda: r, b: d.b.baseAddress!, ldb: r, transposeB: true,
                       beta: 1, c: output + rows[0] * outF, ldc: outF)
        } else {
            let u = ws.buffer(.loraU, m * outF)
            BLAS.sgemm(m: m, n: outF, k: r, a: t, lda: r, b: d.b.baseAddress!, ldb: r, transposeB: true, c: u, ldc: outF)
            for (j, row) in rows.enumerated() { Kernels.add(u + j * outF, into: output + row * outF, count: outF) }
        }
    }

    func matmul(_ w: WeightMatrix, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, n: Int) {
        runner.matmul(w, input: input, output: output, n: n)
    }
}
