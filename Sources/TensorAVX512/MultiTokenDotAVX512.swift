import _Builtin_intrinsics.intel

/// `MultiTokenDot` with 512-bit vectors, for CPUs whose two multiply-add units are each 512 bits wide
/// (Intel's Xeons from Skylake-SP on): a 32-weight block is two 16-float vectors instead of four 8-float
/// ones, so the multiply-adds per block and token halve, and so does the block's conversion to f32.
/// Same block layouts, same arithmetic (f32 activations, no rounding), same tolerance in the tests.
///
/// This module alone is compiled for skylake-avx512 (AVX-512 F/BW/DQ/VL): nothing here may run unless
/// `CPUFeatures.avx512` said so, which is why it has no globals and `Tensor.MultiTokenDot` is the only
/// caller. Naive reference: `Dequantize.run` and a plain dot product (MultiTokenDotTests).
public enum MultiTokenDotAVX512 {
    public static let maxTokens = 8

    /// The 32 weights of one block as two f32 vectors (elements 0-15, 16-31).
    typealias BlockWeights = (__m512, __m512)

    /// `out[t · ldo + r] = Σ_c W_r[c] · x[t · ldx + c]` for t in 0..<tokens (1...maxTokens) and r in
    /// 0..<rows (1 or 2), W_r the Q4_1 row at `row + r · rowBytes` of `blocks` blocks; with `accumulate`, `+=`.
    public static func q4_1(_ row: UnsafeRawPointer, rows: Int, rowBytes: Int, blocks: Int, _ x: UnsafePointer<Float>,
                            ldx: Int, tokens: Int, _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        dispatch(tokens, rows, blocks, x, ldx, out, ldo, accumulate) { r, b in q4_1Weights(row + r * rowBytes + 20 * b) }
    }

    /// As `q4_1`, W a Q4_0 row.
    public static func q4_0(_ row: UnsafeRawPointer, rows: Int, rowBytes: Int, blocks: Int, _ x: UnsafePointer<Float>,
                            ldx: Int, tokens: Int, _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        dispatch(tokens, rows, blocks, x, ldx, out, ldo, accumulate) { r, b in q4_0Weights(row + r * rowBytes + 18 * b) }
    }

    /// As `q4_1`, W a Q8_0 row.
    public static func q8_0(_ row: UnsafeRawPointer, rows: Int, rowBytes: Int, blocks: Int, _ x: UnsafePointer<Float>,
                            ldx: Int, tokens: Int, _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        dispatch(tokens, rows, blocks, x, ldx, out, ldo, accumulate) { r, b in q8_0Weights(row + r * rowBytes + 34 * b) }
    }

    /// As `q4_1`, W an f32 row of `32 · blocks` values, the second `rowFloats` after the first.
    public static func f32(_ row: UnsafePointer<Float>, rows: Int, rowFloats: Int, blocks: Int, _ x: UnsafePointer<Float>,
                           ldx: Int, tokens: Int, _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool) {
        dispatch(tokens, rows, blocks, x, ldx, out, ldo, accumulate) { r, b in
            let p = UnsafeRawPointer(row + r * rowFloats + 32 * b)
            return (p.loadUnaligned(as: __m512.self), p.loadUnaligned(fromByteOffset: 64, as: __m512.self))
        }
    }

    /// One specialised loop per token and row count (both must be constants inside `run`, so that its
    /// accumulators stay in registers).
    @inline(__always)
    static func dispatch(_ tokens: Int, _ rows: Int, _ blocks: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                         _ out: UnsafeMutablePointer<Float>, _ ldo: Int, _ accumulate: Bool,
                         _ weights: (Int, Int) -> BlockWeights) {
        // Sums of row r, token t at [8r + t]: on the stack, then to `out`.
        var buffer = SIMD16<Float>()
        withUnsafeMutableBytes(of: &buffer) { raw in
            let sums = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            if rows == 2 {
                switch tokens {
                case 8: run(8, 2, blocks, x, ldx, sums, weights)
                case 7: run(7, 2, blocks, x, ldx, sums, weights)
                case 6: run(6, 2, blocks, x, ldx, sums, weights)
                case 5: run(5, 2, blocks, x, ldx, sums, weights)
                case 4: run(4, 2, blocks, x, ldx, sums, weights)
                case 3: run(3, 2, blocks, x, ldx, sums, weights)
                case 2: run(2, 2, blocks, x, ldx, sums, weights)
                case 1: run(1, 2, blocks, x, ldx, sums, weights)
                default: preconditionFailure("MultiTokenDotAVX512: \(tokens) tokens (1...\(maxTokens))")
                }
            } else {
                precondition(rows == 1, "MultiTokenDotAVX512: \(rows) rows (1 or 2)")
                switch tokens {
                case 8: run(8, 1, blocks, x, ldx, sums, weights)
                case 7: run(7, 1, blocks, x, ldx, sums, weights)
                case 6: run(6, 1, blocks, x, ldx, sums, weights)
                case 5: run(5, 1, blocks, x, ldx, sums, weights)
                case 4: run(4, 1, blocks, x, ldx, sums, weights)
                case 3: run(3, 1, blocks, x, ldx, sums, weights)
                case 2: run(2, 1, blocks, x, ldx, sums, weights)
                case 1: run(1, 1, blocks, x, ldx, sums, weights)
                default: preconditionFailure("MultiTokenDotAVX512: \(tokens) tokens (1...\(maxTokens))")
                }
            }
        }
        for r in 0..<rows {
            if accumulate {
                for t in 0..<tokens { out[t * ldo + r] += buffer[8 * r + t] }
            } else {
                for t in 0..<tokens { out[t * ldo + r] = buffer[8 * r + t] }
            }
        }
    }

    /// Each activation vector loaded feeds both rows' multiply-adds (two rows at once halve the loads, which
    /// otherwise equal the multiply-adds). Up to four tokens, each row and token gets two accumulators
    /// (one for each half of a block) so that the multiply-adds of a block do not wait on one another;
    /// five to eight tokens have enough independent sums with one each. At most 16 accumulators, 4 weight
    /// vectors and the activation: within AVX-512's 32 registers.
    @inline(__always)
    static func run(_ n: Int, _ rows: Int, _ blocks: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                    _ out: UnsafeMutablePointer<Float>, _ weights: (Int, Int) -> BlockWeights) {
        let zero = _mm512_setzero_ps()
        // Row 0: a (first half of a block; both halves from five tokens on), b (second half, up to four tokens);
        // row 1: c, d likewise.
        var a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero
        var c0 = zero, c1 = zero, c2 = zero, c3 = zero, c4 = zero, c5 = zero, c6 = zero, c7 = zero
        var b0 = zero, b1 = zero, b2 = zero, b3 = zero, d0 = zero, d1 = zero, d2 = zero, d3 = zero
        let split = n <= 4
        for blk in 0..<blocks {
            let w = weights(0, blk)
            let v = rows == 2 ? weights(1, blk) : (zero, zero)
            let xb = x + 32 * blk
            @inline(__always) func fma(_ t: Int, _ a: inout __m512, _ b: inout __m512, _ c: inout __m512, _ d: inout __m512) {
                let p = UnsafeRawPointer(xb + t * ldx)
                let x0 = p.loadUnaligned(as: __m512.self), x1 = p.loadUnaligned(fromByteOffset: 64, as: __m512.self)
                a = _mm512_fmadd_ps(w.0, x0, a)
                if rows == 2 { c = _mm512_fmadd_ps(v.0, x0, c) }
                if split {
                    b = _mm512_fmadd_ps(w.1, x1, b)
                    if rows == 2 { d = _mm512_fmadd_ps(v.1, x1, d) }
                } else {
                    a = _mm512_fmadd_ps(w.1, x1, a)
                    if rows == 2 { c = _mm512_fmadd_ps(v.1, x1, c) }
                }
            }
            fma(0, &a0, &b0, &c0, &d0)
            if n > 1 { fma(1, &a1, &b1, &c1, &d1) }
            if n > 2 { fma(2, &a2, &b2, &c2, &d2) }
            if n > 3 { fma(3, &a3, &b3, &c3, &d3) }
            if n > 4 { fma(4, &a4, &b0, &c4, &d0) }
            if n > 5 { fma(5, &a5, &b0, &c5, &d0) }
            if n > 6 { fma(6, &a6, &b0, &c6, &d0) }
            if n > 7 { fma(7, &a7, &b0, &c7, &d0) }
        }
        @inline(__always) func store(_ t: Int, _ a: __m512, _ b: __m512, _ c: __m512, _ d: __m512) {
            out[t] = split ? _mm512_add_ps(a, b).sum() : a.sum()
            if rows == 2 { out[8 + t] = split ? _mm512_add_ps(c, d).sum() : c.sum() }
        }
        store(0, a0, b0, c0, d0)
        if n > 1 { store(1, a1, b1, c1, d1) }
        if n > 2 { store(2, a2, b2, c2, d2) }
        if n > 3 { store(3, a3, b3, c3, d3) }
        if n > 4 { store(4, a4, b0, c4, d0) }
        if n > 5 { store(5, a5, b0, c5, d0) }
        if n > 6 { store(6, a6, b0, c6, d0) }
        if n > 7 { store(7, a7, b0, c7, d0) }
    }

    /// The 32 nibbles of the 16 bytes at `qs` (low nibbles: elements 0-15, high: 16-31) as f32 `q·d + c`.
    @inline(__always)
    static func nibbleWeights(_ qs: UnsafeRawPointer, _ d: __m512, _ c: __m512) -> BlockWeights {
        let v = qs.loadUnaligned(as: __m128i.self), mask = _mm_set1_epi8(0x0F)
        let lo = _mm_and_si128(v, mask), hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask)
        return (_mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)), d, c),
                _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)), d, c))
    }

    /// The f16 at `p` as f32 in every lane.
    @inline(__always)
    static func broadcastHalf(_ p: UnsafeRawPointer) -> __m512 {
        _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(Int32(p.loadUnaligned(as: UInt16.self)))))
    }

    /// Q4_1 block: f16 d, f16 m, 16 nibble bytes; w = q·d + m.
    @inline(__always)
    static func q4_1Weights(_ blk: UnsafeRawPointer) -> BlockWeights {
        let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(blk.loadUnaligned(as: Int32.self)))
        return nibbleWeights(blk + 4, _mm512_broadcastss_ps(dm), _mm512_broadcastss_ps(_mm_movehdup_ps(dm)))
    }

    /// Q4_0 block: f16 d, 16 nibble bytes; w = (q - 8)·d.
    @inline(__always)
    static func q4_0Weights(_ blk: UnsafeRawPointer) -> BlockWeights {
        let d = broadcastHalf(blk)
        return nibbleWeights(blk + 2, d, _mm512_mul_ps(d, _mm512_set1_ps(-8)))
    }

    /// Q8_0 block: f16 d, 32 int8; w = q·d.
    @inline(__always)
    static func q8_0Weights(_ blk: UnsafeRawPointer) -> BlockWeights {
        let d = broadcastHalf(blk)
        @inline(__always) func sixteen(_ offset: Int) -> __m512 {
            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32((blk + offset).loadUnaligned(as: __m128i.self))), d)
        }
        return (sixteen(2), sixteen(18))
    }
}
