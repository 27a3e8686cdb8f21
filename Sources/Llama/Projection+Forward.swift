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

        for g in batch.adapters {
            guard let d = g.adapter.delta(layer: layer, p) else { continue }
            precondition(d.inFeatures == inF && d.outFeatures == outF, "adapter '\(g.adapter.name)' was validated against another model")
            addLoRA(d, rows: g.rows, scales: g.scales, input: input, output: output, inF: inF, outF: outF, ws: ws)
        }
    }

    /// output[rows] = input[rows] · Wᵀ, gathering when the rows are not all of 0..<n.
    private func matmulRows(_ w: WeightMatrix, rows: [Int], input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                            n: Int, ws: Workspace) {
        let m = rows.count
        if m == 0 { return }
        if let first = rows.first, rows.last! - first + 1 == m {
            matmul(w, input: input + first * w.cols, output: output + first * w.rows, n: m)
            return
        }
        let gin = ws.buffer(.gatherIn, m * w.cols)
        let gout = ws.buffer(.gatherOut, m * w.rows)
        for (j, r) in rows.enumerated() { (gin + j * w.cols).update(from: input + r * w.cols, count: w.cols) }
        matmul(w, input: gin, output: gout, n: m)
        for (j, r) in rows.enumerated() { (output + r * w.rows).update(from: gout + j * w.rows, count: w.rows) }
    }

    /// output[rows] += scale_row · d.scale · (input[rows] · Aᵀ) · Bᵀ   (shrink, then expand).
    private func addLoRA(_ d: LoRADelta, rows: [Int], scales: [Float], input: UnsafePointer<Float>,
                         output: UnsafeMutablePointer<Float>, inF: Int, outF: Int, ws: Workspace) {
        let m = rows.count
        if m == 0 { return }
        let r = d.rank
        let contiguous = rows.last! - rows[0] + 1 == m
        let xin: UnsafePointer<Float>
        if contiguous {
            xin = input + rows[0] * inF
        } else {
            let g = ws.buffer(.gatherIn, m * inF)
            for (j, row) in rows.enumerated() { (g + j * inF).update(from: input + row * inF, count: inF) }
            xin = UnsafePointer(g)
        }
        // t[m, r] = x[m, in] · A[r, in]ᵀ
        let t = ws.buffer(.loraT, m * r)
        BLAS.sgemm(m: m, n: r, k: inF, a: xin, lda: inF, b: d.a.baseAddress!, ldb: inF, transposeB: true, c: t, ldc: r)
        for j in 0..<m {
            let s = d.scale * scales[j]
            for i in 0..<r { t[j * r + i] *= s }
        }
        if contiguous {
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
