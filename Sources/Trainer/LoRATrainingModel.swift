import Foundation
import Llama
import Tensor

/// A frozen base model with trainable LoRA modules: the forward pass, the cross-entropy at supervised positions and
/// the backward pass that produces gradients for the LoRA parameters only (the base weights get none; their
/// products are only used to carry gradients down to lower layers).
///
/// Parameters and gradients each live in one flat buffer (`params`, `grads`) described by `layout`; B rows of q/k
/// modules are in GGUF order, like the weights they are added to.
public final class LoRATrainingModel {
    public let base: FrozenBase
    public let layout: LoRALayout
    public let params: FlatBuffer          // [layout.parameterCount]: A [r, in] then B [out, r] of every module
    public let grads: FlatBuffer           // [layout.parameterCount], same layout; accumulated by `run`
    public let pool: ThreadPool
    /// Dropout on every LoRA input during training passes (never in evaluation).
    public var dropout: DropoutMask
    /// Keys the dropout masks (with step, example, position, layer, projection).
    public var seed: UInt64
    /// Rows of logits computed at once in the cross-entropy: bounds that buffer to `chunk × vocab` floats (50 MB
    /// for 256 rows of SmolLM2's 49152). Fewer rows make the two products with the output head slow: 64 ran
    /// at 50-60 GFLOP/s a core, 256 at ~80 (bench/README, "Training"). At most `maxLogitChunk`.
    public var logitChunk = LoRATrainingModel.maxLogitChunk
    public static let maxLogitChunk = 256
    /// Passes with more rows than this keep only each layer's input and recompute the layer in the backward pass.
    public var recomputeAbove = 1024

    let gemm: Gemm
    let store: ActivationStore
    let scratch: PassScratch
    let layerWeights: LayerBuffers
    let attention: AttentionOps
    let attentionScratch: AttentionOps.Scratch
    private var ropeCos: [Float] = []    // [positions, ropeDim/2]
    private var ropeSin: [Float] = []
    private var ropePositions = 0
    /// Prediction rows of the output head: x [m, dim] normalised, rstd [m], dx [m, dim].
    private var headBuffers: (x: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>,
                              dx: UnsafeMutablePointer<Float>, capacity: Int)?
    private let logits: UnsafeMutablePointer<Float>    // [maxLogitChunk, vocab]
    /// The lowest layer with a LoRA module: nothing below it needs a backward pass.
    private let lowestAdaptedLayer: Int
    /// The output head packed for the AMX tiles once, both ways round (for the logits, and for their gradient):
    /// 2 × 113 MB for SmolLM2, instead of packing 28M weights twice in every pass. nil without tiles.
    private lazy var packedHead: (logits: TileProducts.PackedOperand, gradient: TileProducts.PackedOperand)? = {
        guard gemm.tiles != nil else { return nil }
        let c = base.config
        let e = UnsafePointer(base.outputHead.baseAddress!)
        return (TileProducts.PackedOperand(b: e, ldb: c.dim, transposed: true, n: c.vocabSize, k: c.dim, pool: pool),
                TileProducts.PackedOperand(b: e, ldb: c.dim, transposed: false, n: c.dim, k: c.vocabSize, pool: pool))
    }()

    public init(base: FrozenBase, layout: LoRALayout, threads: Int, dropout: Float = 0, seed: UInt64 = 0) {
        self.base = base
        self.layout = layout
        params = FlatBuffer(count: layout.parameterCount)
        grads = FlatBuffer(count: layout.parameterCount)
        // The pool splits every product; OpenBLAS runs single-threaded inside each part.
        BLAS.setThreads(1)
        pool = ThreadPool(threads: threads)
        gemm = Gemm(pool: pool)
        self.dropout = DropoutMask(probability: dropout)
        self.seed = seed
        let c = base.config
        store = ActivationStore(config: c, layout: layout)
        scratch = PassScratch(config: c, layout: layout, dropout: true)
        layerWeights = LayerBuffers(config: c)
        attention = AttentionOps(heads: c.headCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                                 qkvDim: c.qDim + 2 * c.kvDim, qDim: c.qDim, kvDim: c.kvDim)
        attentionScratch = AttentionOps.Scratch(threads: pool.threadCount)
        logits = .allocate(capacity: Self.maxLogitChunk * c.vocabSize)
        lowestAdaptedLayer = layout.slots.map(\.layer).min() ?? c.layerCount
    }

    deinit {
        logits.deallocate()
        if let h = headBuffers { h.x.deallocate(); h.rstd.deallocate(); h.dx.deallocate() }
    }

    /// Floats of activations kept per token (all layers), for memory estimates.
    public func activationFloatsPerToken(recompute: Bool) -> Int { store.floatsPerRow(recompute: recompute) }

    // MARK: - Public entry

    /// Sum of token cross-entropies over the supervised positions of `sequences`, and their count.
    /// With `gradientScale`, also adds `gradientScale · d(sum)/d(parameter)` into `grads` (pass 1/N, N the
    /// supervised tokens of the whole optimiser step, to get the gradient of the step's mean loss).
    /// `training` turns dropout on; `step` keys its masks.
    public func run(_ sequences: [TrainingSequence], step: Int, gradientScale: Float?, training: Bool) -> (lossSum: Double, count: Int) {
        let pass = PackedPass(sequences)
        if pass.n == 0 { return (0, 0) }
        store.reserve(pass.n, recompute: pass.n > recomputeAbove)
        scratch.reserve(pass.n)
        prepareRope(upTo: pass.maxLength)
        let useDropout = training && dropout.isActive
        forward(pass, step: step, dropout: useDropout)
        let result = head(pass, gradientScale: gradientScale)
        if gradientScale != nil {
            let c = base.config
            for l in stride(from: c.layerCount - 1, through: lowestAdaptedLayer, by: -1) {
                layerBackward(l, pass, step: step, dropout: useDropout)
            }
        }
        return result
    }

    // MARK: - Forward

    private func forward(_ pass: PackedPass, step: Int, dropout useDropout: Bool) {
        let c = base.config
        let n = pass.n
        let x0 = store.x(0)
        let emb = base.embedding.baseAddress!
        for (i, t) in pass.tokens.enumerated() {
            (x0 + i * c.dim).update(from: emb + Int(t) * c.dim, count: c.dim)
        }
        for l in 0..<c.layerCount {
            base.dequantizeLayer(l, into: layerWeights, pool: pool)
            layerForward(l, pass, n: n, step: step, dropout: useDropout)
        }
    }

    private func layerForward(_ l: Int, _ pass: PackedPass, n: Int, step: Int, dropout useDropout: Bool) {
        let c = base.config
        let qkvDim = base.qkvDim
        let lw = layerWeights
        let layer = base.weights.layers[l]
        let xIn = store.x(l), qkv = store.qkv(l), x2 = store.x2(l), gu = store.gu(l)
        let xn = scratch[PassScratch.xn], att = store.keepsAttention ? store.att(l) : scratch[PassScratch.att]
        let proj = scratch[PassScratch.proj], h = scratch[PassScratch.h]

        // Attention block.
        layer.attentionNorm.withUnsafeBufferPointer { w in
            forRows(n) { Ops.rmsNorm(xIn, ldx: c.dim, weight: w.baseAddress!, out: xn, ldo: c.dim, rstd: store.rstd1(l),
                                     rows: $0, dim: c.dim, eps: c.rmsEps) }
        }
        // qkv[n, qkvDim] = xn[n, dim] · Wqkv[qkvDim, dim]ᵀ
        gemm(m: n, n: qkvDim, k: c.dim, a: xn, lda: c.dim, b: lw.wqkv, ldb: c.dim, transB: true, c: qkv, ldc: qkvDim)
        loraForward(l, .q, input: xn, ldi: c.dim, output: qkv, ldo: qkvDim, pass: pass, step: step, dropout: useDropout)
        loraForward(l, .k, input: xn, ldi: c.dim, output: qkv + c.qDim, ldo: qkvDim, pass: pass, step: step, dropout: useDropout)
        loraForward(l, .v, input: xn, ldi: c.dim, output: qkv + c.qDim + c.kvDim, ldo: qkvDim, pass: pass, step: step,
                    dropout: useDropout)
        applyRope(qkv, ld: qkvDim, pass: pass, backward: false)
        attention.forward(qkv: qkv, out: att, pass: pass, pool: pool, scratch: attentionScratch)
        // proj[n, dim] = att[n, qDim] · Wo[dim, qDim]ᵀ
        gemm(m: n, n: c.dim, k: c.qDim, a: att, lda: c.qDim, b: lw.wo, ldb: c.qDim, transB: true, c: proj, ldc: c.dim)
        loraForward(l, .o, input: att, ldi: c.qDim, output: proj, ldo: c.dim, pass: pass, step: step, dropout: useDropout)
        forRows(n) { rows in
            for i in rows { for j in 0..<c.dim { x2[i * c.dim + j] = xIn[i * c.dim + j] + proj[i * c.dim + j] } }
        }

        // Feed-forward block.
        layer.ffnNorm.withUnsafeBufferPointer { w in
            forRows(n) { Ops.rmsNorm(x2, ldx: c.dim, weight: w.baseAddress!, out: xn, ldo: c.dim, rstd: store.rstd2(l),
                                     rows: $0, dim: c.dim, eps: c.rmsEps) }
        }
        // gu[n, 2ffn] = xn[n, dim] · Wgu[2ffn, dim]ᵀ
        gemm(m: n, n: 2 * c.ffnDim, k: c.dim, a: xn, lda: c.dim, b: lw.wgu, ldb: c.dim, transB: true, c: gu, ldc: 2 * c.ffnDim)
        loraForward(l, .gate, input: xn, ldi: c.dim, output: gu, ldo: 2 * c.ffnDim, pass: pass, step: step, dropout: useDropout)
        loraForward(l, .up, input: xn, ldi: c.dim, output: gu + c.ffnDim, ldo: 2 * c.ffnDim, pass: pass, step: step,
                    dropout: useDropout)
        forRows(n) { rows in
            for i in rows { Ops.swiGLU(gu: gu + i * 2 * c.ffnDim, h: h + i * c.ffnDim, ffn: c.ffnDim) }
        }
        // proj[n, dim] = h[n, ffn] · Wd[dim, ffn]ᵀ
        gemm(m: n, n: c.dim, k: c.ffnDim, a: h, lda: c.ffnDim, b: lw.wd, ldb: c.ffnDim, transB: true, c: proj, ldc: c.dim)
        loraForward(l, .down, input: h, ldi: c.ffnDim, output: proj, ldo: c.dim, pass: pass, step: step, dropout: useDropout)
        let xOut = store.x(l + 1)
        forRows(n) { rows in
            for i in rows { for j in 0..<c.dim { xOut[i * c.dim + j] = x2[i * c.dim + j] + proj[i * c.dim + j] } }
        }
    }

    // MARK: - Backward

    /// On entry scratch.dx holds d(loss)/d(output of layer l); on return, d(loss)/d(input of layer l).
    private func layerBackward(_ l: Int, _ pass: PackedPass, step: Int, dropout useDropout: Bool) {
        let c = base.config
        let n = pass.n
        let qkvDim = base.qkvDim
        let ffn2 = 2 * c.ffnDim
        let lw = layerWeights
        let layer = base.weights.layers[l]
        base.dequantizeLayer(l, into: lw, pool: pool)
        let xIn = store.x(l), qkv = store.qkv(l), x2 = store.x2(l), gu = store.gu(l)
        let xn = scratch[PassScratch.xn], h = scratch[PassScratch.h]
        let att = store.keepsAttention ? store.att(l) : scratch[PassScratch.att]
        let dx = scratch[PassScratch.dx], dxn = scratch[PassScratch.dxn], dh = scratch[PassScratch.dh]
        let dgu = scratch[PassScratch.dgu], dqkv = scratch[PassScratch.dqkv], datt = scratch[PassScratch.datt]
        let needInputGradient = l > lowestAdaptedLayer
        if store.recompute {
            // Refill the shared layer block from the saved input (same weights, same dropout masks, same bits).
            layerForward(l, pass, n: n, step: step, dropout: useDropout)
        }

        // Feed-forward block: recompute its normalised input and the SwiGLU product.
        layer.ffnNorm.withUnsafeBufferPointer { w in
            forRows(n) { Ops.rmsNormApply(x2, ldx: c.dim, weight: w.baseAddress!, rstd: store.rstd2(l), out: xn, ldo: c.dim,
                                          rows: $0, dim: c.dim) }
        }
        forRows(n) { rows in
            for i in rows { Ops.swiGLU(gu: gu + i * ffn2, h: h + i * c.ffnDim, ffn: c.ffnDim) }
        }
        // dh[n, ffn] = dx[n, dim] · Wd[dim, ffn]
        gemm(m: n, n: c.ffnDim, k: c.dim, a: dx, lda: c.dim, b: lw.wd, ldb: c.ffnDim, c: dh, ldc: c.ffnDim)
        loraBackward(l, .down, dy: dx, ldy: c.dim, input: h, ldi: c.ffnDim, dInput: dh, pass: pass, step: step, dropout: useDropout)
        forRows(n) { rows in
            for i in rows { Ops.swiGLUBackward(dh: dh + i * c.ffnDim, gu: gu + i * ffn2, dgu: dgu + i * ffn2, ffn: c.ffnDim) }
        }
        // dxn[n, dim] = dgu[n, 2ffn] · Wgu[2ffn, dim]
        gemm(m: n, n: c.dim, k: ffn2, a: dgu, lda: ffn2, b: lw.wgu, ldb: c.dim, c: dxn, ldc: c.dim)
        loraBackward(l, .gate, dy: dgu, ldy: ffn2, input: xn, ldi: c.dim, dInput: dxn, pass: pass, step: step, dropout: useDropout)
        loraBackward(l, .up, dy: dgu + c.ffnDim, ldy: ffn2, input: xn, ldi: c.dim, dInput: dxn, pass: pass, step: step,
                     dropout: useDropout)
        layer.ffnNorm.withUnsafeBufferPointer { w in
            forRows(n) { Ops.rmsNormBackward(dy: dxn, x: x2, weight: w.baseAddress!, rstd: store.rstd2(l), dx: dx,
                                             rows: $0, dim: c.dim) }
        }

        // Attention block. dx now holds d(loss)/d(x2).
        // The o projection's LoRA needs its input: kept by the forward pass (store.keepsAttention, which any o module
        // turns on), or just recomputed with the layer.
        // datt[n, qDim] = dx[n, dim] · Wo[dim, qDim]
        gemm(m: n, n: c.qDim, k: c.dim, a: dx, lda: c.dim, b: lw.wo, ldb: c.qDim, c: datt, ldc: c.qDim)
        loraBackward(l, .o, dy: dx, ldy: c.dim, input: att, ldi: c.qDim, dInput: datt, pass: pass, step: step, dropout: useDropout)
        attention.backward(qkv: qkv, dOut: datt, dqkv: dqkv, pass: pass, pool: pool, scratch: attentionScratch)
        applyRope(dqkv, ld: qkvDim, pass: pass, backward: true)
        layer.attentionNorm.withUnsafeBufferPointer { w in
            forRows(n) { Ops.rmsNormApply(xIn, ldx: c.dim, weight: w.baseAddress!, rstd: store.rstd1(l), out: xn, ldo: c.dim,
                                          rows: $0, dim: c.dim) }
        }
        if needInputGradient {
            // dxn[n, dim] = dqkv[n, qkvDim] · Wqkv[qkvDim, dim]
            gemm(m: n, n: c.dim, k: qkvDim, a: dqkv, lda: qkvDim, b: lw.wqkv, ldb: c.dim, c: dxn, ldc: c.dim)
        }
        let dIn: UnsafeMutablePointer<Float>? = needInputGradient ? dxn : nil
        loraBackward(l, .q, dy: dqkv, ldy: qkvDim, input: xn, ldi: c.dim, dInput: dIn, pass: pass, step: step, dropout: useDropout)
        loraBackward(l, .k, dy: dqkv + c.qDim, ldy: qkvDim, input: xn, ldi: c.dim, dInput: dIn, pass: pass, step: step,
                     dropout: useDropout)
        loraBackward(l, .v, dy: dqkv + c.qDim + c.kvDim, ldy: qkvDim, input: xn, ldi: c.dim, dInput: dIn, pass: pass,
                     step: step, dropout: useDropout)
        if needInputGradient {
            layer.attentionNorm.withUnsafeBufferPointer { w in
                forRows(n) { Ops.rmsNormBackward(dy: dxn, x: xIn, weight: w.baseAddress!, rstd: store.rstd1(l), dx: dx,
                                                 rows: $0, dim: c.dim) }
            }
        }
    }

    // MARK: - LoRA

    /// output[n, out] += s · (dropout(input) · Aᵀ) · Bᵀ; saves t = dropout(input) · Aᵀ.
    private func loraForward(_ l: Int, _ p: Projection, input: UnsafeMutablePointer<Float>, ldi: Int,
                             output: UnsafeMutablePointer<Float>, ldo: Int, pass: PackedPass, step: Int, dropout useDropout: Bool) {
        guard let slot = layout.slot(layer: l, p) else { return }
        let n = pass.n, r = slot.rank
        let ldt = layout.rankSum(layer: l)
        let t = store.t(l) + layout.rankOffset(layer: l, p)
        let a = params.pointer + slot.offsetA, b = params.pointer + slot.offsetB
        let (xd, ldx) = droppedInput(slot, input: input, ldi: ldi, pass: pass, step: step, dropout: useDropout)
        // t[n, r] = xd[n, in] · A[r, in]ᵀ
        gemm(m: n, n: r, k: slot.inFeatures, a: xd, lda: ldx, b: a, ldb: slot.inFeatures, transB: true, c: t, ldc: ldt)
        // output[n, out] += s · t[n, r] · B[out, r]ᵀ
        gemm(m: n, n: slot.outFeatures, k: r, alpha: slot.scale, a: t, lda: ldt, b: b, ldb: r, transB: true,
             beta: 1, c: output, ldc: ldo)
    }

    /// gB += s·dyᵀ·t, gA += (s·dy·B)ᵀ·dropout(input), dInput += dropoutᵀ((s·dy·B)·A) (all scaled by what dy carries).
    private func loraBackward(_ l: Int, _ p: Projection, dy: UnsafeMutablePointer<Float>, ldy: Int,
                              input: UnsafeMutablePointer<Float>, ldi: Int, dInput: UnsafeMutablePointer<Float>?,
                              pass: PackedPass, step: Int, dropout useDropout: Bool) {
        guard let slot = layout.slot(layer: l, p) else { return }
        let n = pass.n, r = slot.rank
        let ldt = layout.rankSum(layer: l)
        let t = store.t(l) + layout.rankOffset(layer: l, p)
        let a = params.pointer + slot.offsetA, b = params.pointer + slot.offsetB
        let gA = grads.pointer + slot.offsetA, gB = grads.pointer + slot.offsetB
        let dt = scratch[PassScratch.dt]
        // gB[out, r] += s · dy[n, out]ᵀ · t[n, r]
        gemm(m: slot.outFeatures, n: r, k: n, alpha: slot.scale, a: dy, lda: ldy, transA: true, b: t, ldb: ldt,
             beta: 1, c: gB, ldc: r)
        // dt[n, r] = s · dy[n, out] · B[out, r]
        gemm(m: n, n: r, k: slot.outFeatures, alpha: slot.scale, a: dy, lda: ldy, b: b, ldb: r, c: dt, ldc: r)
        let (xd, ldx) = droppedInput(slot, input: input, ldi: ldi, pass: pass, step: step, dropout: useDropout)
        // gA[r, in] += dt[n, r]ᵀ · xd[n, in]
        gemm(m: r, n: slot.inFeatures, k: n, a: dt, lda: r, transA: true, b: xd, ldb: ldx, beta: 1, c: gA, ldc: slot.inFeatures)
        guard let dInput else { return }
        if useDropout {
            // dxd[n, in] = dt[n, r] · A[r, in]; dInput += mask ⊙ dxd / (1 − p)
            let dxd = scratch[PassScratch.dropGrad]
            gemm(m: n, n: slot.inFeatures, k: r, a: dt, lda: r, b: a, ldb: slot.inFeatures, c: dxd, ldc: slot.inFeatures)
            let inF = slot.inFeatures
            forRows(n) { rows in
                for i in rows {
                    let row = dxd + i * inF
                    dropout.apply(row, row, count: inF, key: maskKey(slot, pass: pass, row: i, step: step))
                    let d = dInput + i * ldi
                    for j in 0..<inF { d[j] += row[j] }
                }
            }
        } else {
            // dInput[n, in] += dt[n, r] · A[r, in]
            gemm(m: n, n: slot.inFeatures, k: r, a: dt, lda: r, b: a, ldb: slot.inFeatures, beta: 1, c: dInput, ldc: ldi)
        }
    }

    private func maskKey(_ slot: LoRAModuleSlot, pass: PackedPass, row: Int, step: Int) -> UInt64 {
        DropoutMask.rowKey(seed: seed, step: step, example: pass.rowExample[row], position: pass.positions[row],
                           layer: slot.layer, projection: slot.projection.rawValue)
    }

    /// The LoRA input after dropout (a scratch copy), or the input itself when dropout is off.
    private func droppedInput(_ slot: LoRAModuleSlot, input: UnsafeMutablePointer<Float>, ldi: Int, pass: PackedPass,
                              step: Int, dropout useDropout: Bool) -> (UnsafeMutablePointer<Float>, Int) {
        guard useDropout else { return (input, ldi) }
        let inF = slot.inFeatures
        let xd = scratch[PassScratch.dropIn]
        forRows(pass.n) { rows in
            for i in rows {
                dropout.apply(input + i * ldi, xd + i * inF, count: inF, key: maskKey(slot, pass: pass, row: i, step: step))
            }
        }
        return (xd, inF)
    }

    // MARK: - Output head and cross-entropy

    /// Loss at the prediction rows, in chunks of `logitChunk` rows (never a full [tokens, vocab] matrix); with a
    /// gradient scale, leaves d(scale·loss)/d(final hidden state) in scratch.dx (zero on rows without a label).
    private func head(_ pass: PackedPass, gradientScale: Float?) -> (lossSum: Double, count: Int) {
        let c = base.config
        let m = pass.predictions.count
        let dx = scratch[PassScratch.dx]
        if gradientScale != nil { dx.update(repeating: 0, count: pass.n * c.dim) }
        if m == 0 { return (0, 0) }
        if headBuffers == nil || headBuffers!.capacity < m {
            if let h = headBuffers { h.x.deallocate(); h.rstd.deallocate(); h.dx.deallocate() }
            headBuffers = (.allocate(capacity: m * c.dim), .allocate(capacity: m), .allocate(capacity: m * c.dim), m)
        }
        let hx = headBuffers!.x, hr = headBuffers!.rstd, hdx = headBuffers!.dx
        let xL = store.x(c.layerCount)
        let rows = pass.predictions.map(\.row)
        let targets = pass.predictions.map { Int($0.target) }
        // hx[m, dim] = rmsnorm(xL[rows]) ⊙ w_out
        base.weights.outputNorm.withUnsafeBufferPointer { w in
            forRows(m) { range in
                for j in range {
                    Ops.rmsNorm(xL + rows[j] * c.dim, ldx: c.dim, weight: w.baseAddress!, out: hx + j * c.dim, ldo: c.dim,
                                rstd: hr + j, rows: 0..<1, dim: c.dim, eps: c.rmsEps)
                }
            }
        }
        let vocab = c.vocabSize
        let chunk = max(1, min(logitChunk, Self.maxLogitChunk))
        var losses = [Double](repeating: 0, count: m)
        let e = UnsafePointer(base.outputHead.baseAddress!)
        var start = 0
        while start < m {
            let len = min(chunk, m - start)
            // logits[len, vocab] = hx[len, dim] · E[vocab, dim]ᵀ
            if let tiles = gemm.tiles, let head = packedHead, gemm.onTiles(m: len, n: vocab, k: c.dim, alpha: 1, transA: false, beta: 0) {
                tiles.multiply(m: len, a: hx + start * c.dim, lda: c.dim, b: head.logits, c: logits, ldc: vocab)
            } else {
                gemm(m: len, n: vocab, k: c.dim, a: hx + start * c.dim, lda: c.dim, b: e, ldb: c.dim, transB: true,
                     c: logits, ldc: vocab)
            }
            losses.withUnsafeMutableBufferPointer { lossOut in
                pool.parallelFor(len) { j in
                    let row = logits + j * vocab
                    let target = targets[start + j]
                    let targetLogit = row[target]
                    // Summed in Double: a Float running sum of ~50k terms drops the small ones and biases the loss low.
                    let (mx, sum) = Kernels.exponentiateFromMaximum(row, count: vocab)
                    lossOut[start + j] = Double(mx) + log(sum) - Double(targetLogit)
                    if let s = gradientScale {
                        // d loss / d logits = softmax − onehot, times s
                        let k = Float(Double(s) / sum)
                        for v in 0..<vocab { row[v] *= k }
                        row[target] -= s
                    }
                }
            }
            if gradientScale != nil {
                // hdx[len, dim] = G[len, vocab] · E[vocab, dim]
                if let tiles = gemm.tiles, let head = packedHead, gemm.onTiles(m: len, n: c.dim, k: vocab, alpha: 1, transA: false, beta: 0) {
                    tiles.multiply(m: len, a: logits, lda: vocab, b: head.gradient, c: hdx + start * c.dim, ldc: c.dim)
                } else {
                    gemm(m: len, n: c.dim, k: vocab, a: logits, lda: vocab, b: e, ldb: c.dim, c: hdx + start * c.dim, ldc: c.dim)
                }
            }
            start += len
        }
        if gradientScale != nil {
            base.weights.outputNorm.withUnsafeBufferPointer { w in
                // Rows are distinct (one prediction per row), so the scatter has no conflicts.
                forRows(m) { range in
                    for j in range {
                        Ops.rmsNormBackward(dy: hdx + j * c.dim, x: xL + rows[j] * c.dim, weight: w.baseAddress!, rstd: hr + j,
                                            dx: dx + rows[j] * c.dim, rows: 0..<1, dim: c.dim)
                    }
                }
            }
        }
        return (losses.reduce(0, +), m)
    }

    // MARK: - Helpers

    /// Runs `body` over row ranges of 0..<n, spread over the pool.
    @inline(__always)
    private func forRows(_ n: Int, _ body: (Range<Int>) -> Void) {
        let chunk = 16
        let parts = (n + chunk - 1) / chunk
        pool.parallelFor(parts) { p in body(p * chunk..<min(n, (p + 1) * chunk)) }
    }

    private func prepareRope(upTo positions: Int) {
        guard positions > ropePositions else { return }
        let pairs = base.config.ropeDim / 2
        ropeCos = [Float](repeating: 0, count: positions * pairs)
        ropeSin = [Float](repeating: 0, count: positions * pairs)
        for p in 0..<positions {
            for i in 0..<pairs {
                let angle = Float(p) * base.invFreq[i]
                ropeCos[p * pairs + i] = cos(angle)
                ropeSin[p * pairs + i] = sin(angle)
            }
        }
        ropePositions = positions
    }

    /// Rotates (or, backward, un-rotates the gradient of) the q and k columns of a [n, qkvDim] buffer.
    private func applyRope(_ buf: UnsafeMutablePointer<Float>, ld: Int, pass: PackedPass, backward: Bool) {
        let c = base.config
        let pairs = c.ropeDim / 2
        ropeCos.withUnsafeBufferPointer { cosT in
            ropeSin.withUnsafeBufferPointer { sinT in
                forRows(pass.n) { rows in
                    for i in rows {
                        let cp = cosT.baseAddress! + pass.positions[i] * pairs
                        let sp = sinT.baseAddress! + pass.positions[i] * pairs
                        let row = buf + i * ld
                        if backward {
                            Ops.ropeBackward(row, heads: c.headCount, headDim: c.headDim, cos: cp, sin: sp, ropePairs: pairs)
                            Ops.ropeBackward(row + c.qDim, heads: c.kvHeadCount, headDim: c.headDim, cos: cp, sin: sp, ropePairs: pairs)
                        } else {
                            Ops.rope(row, heads: c.headCount, headDim: c.headDim, cos: cp, sin: sp, ropePairs: pairs)
                            Ops.rope(row + c.qDim, heads: c.kvHeadCount, headDim: c.headDim, cos: cp, sin: sp, ropePairs: pairs)
                        }
                    }
                }
            }
        }
    }
}
