import _Builtin_intrinsics.intel
import TensorAVX512

/// Dot products of one quantized weight row with up to `maxTokens` f32 activation rows at
/// once, for decode steps of a few sequences (`MatmulRunner` uses it for 2-64 tokens: too few for
/// sgemm, whose per-call packing and our tile dequantization cost as much as the arithmetic).
/// Block layouts as in `QuantizedDot`.
///
/// Why f32 here and integers for one token: each 32-weight block is converted to f32 in
/// registers once and then multiplied with every token, so the conversion (what makes a
/// one-token f32 kernel slower than `QuantizedDot`'s) is shared; per token a block then
/// costs four 8-wide multiply-adds, where the integer kernel needs four 16-wide `vpmaddwd`
/// at half the rate on this CPU plus the scale arithmetic. The activations stay f32, so
/// there is no activation rounding at all.
/// Naive reference: `Dequantize.run` and a plain dot product (MultiTokenDotTests).
///
/// Not `@inlinable`, like `QuantizedDot`: only this module is compiled for AVX2.
public enum MultiTokenDot {
    public static let maxTokens = 8

    /// Which vectors the products use: 256-bit everywhere, 512-bit (`TensorAVX512`) where the CPU has
    /// AVX-512. `preferred` is the machine's; tests pass each one they can run. Pass only those two:
    /// `.avx512` on a CPU without AVX-512 is an illegal instruction (the check is not repeated per row).
    public enum Kernel: Sendable {
        case avx2, avx512
        public static var preferred: Kernel { CPUFeatures.avx512 ? .avx512 : .avx2 }
        /// The kernels this CPU can run.
        public static var runnable: [Kernel] { CPUFeatures.hardwareAVX512 ? [.avx2, .avx512] : [.avx2] }
    }

    /// The 32 weights of one block as four f32 vectors (elements 0-7, 8-15, 16-23, 24-31).
    typealias BlockWeights = (__m256, __m256, __m256, __m256)

    /// `out[t · ldo + r] = Σ_c W_r[c] · x[t · ldx + c]` for t in 0..<tokens (1...maxTokens) and r in
    /// 0..<rows (1 or 2: the 512-bit kernel loads each activation once for both), W_r the Q4_1 row of
    /// `blocks` blocks at `row + r · rowBytes`; with `accumulate`, `+=` (a row taken in column ranges,
    /// so that each range's activations stay in L1: `MatmulRunner`).
    public static func q4_1(_ row: UnsafeRawPointer, rows: Int = 1, rowBytes: Int = 0, blocks: Int, _ x: UnsafePointer<Float>,
                            ldx: Int, tokens: Int, _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool = false,
                            kernel: Kernel = .preferred) {
        if kernel == .avx512 {
            return MultiTokenDotAVX512.q4_1(row, rows: rows, rowBytes: rowBytes, blocks: blocks, x, ldx: ldx, tokens: tokens,
                                            out, ldo: ldo, accumulate: accumulate)
        }
        dispatch(tokens, rows, blocks, x, ldx, out, ldo, accumulate) { r, b in q4_1Weights(row + r * rowBytes + 20 * b) }
    }

    /// As `q4_1`, W a Q4_0 row.
    public static func q4_0(_ row: UnsafeRawPointer, rows: Int = 1, rowBytes: Int = 0, blocks: Int, _ x: UnsafePointer<Float>,
                            ldx: Int, tokens: Int, _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool = false,
                            kernel: Kernel = .preferred) {
        if kernel == .avx512 {
            return MultiTokenDotAVX512.q4_0(row, rows: rows, rowBytes: rowBytes, blocks: blocks, x, ldx: ldx, tokens: tokens,
                                            out, ldo: ldo, accumulate: accumulate)
        }
        dispatch(tokens, rows, blocks, x, ldx, out, ldo, accumulate) { r, b in q4_0Weights(row + r * rowBytes + 18 * b) }
    }

    /// As `q4_1`, W a Q8_0 row.
    public static func q8_0(_ row: UnsafeRawPointer, rows: Int = 1, rowBytes: Int = 0, blocks: Int, _ x: UnsafePointer<Float>,
                            ldx: Int, tokens: Int, _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool = false,
                            kernel: Kernel = .preferred) {
        if kernel == .avx512 {
            return MultiTokenDotAVX512.q8_0(row, rows: rows, rowBytes: rowBytes, blocks: blocks, x, ldx: ldx, tokens: tokens,
                                            out, ldo: ldo, accumulate: accumulate)
        }
        dispatch(tokens, rows, blocks, x, ldx, out, ldo, accumulate) { r, b in q8_0Weights(row + r * rowBytes + 34 * b) }
    }

    /// As `q4_1`, W an f32 row of `32 · blocks` values, the second `rowFloats` after the first (merged
    /// adapters: nothing to convert, the weights are loaded once for all the tokens).
    public static func f32(_ row: UnsafePointer<Float>, rows: Int = 1, rowFloats: Int = 0, blocks: Int, _ x: UnsafePointer<Float>,
                           ldx: Int, tokens: Int, _ out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool = false,
                           kernel: Kernel = .preferred) {
        if kernel == .avx512 {
            return MultiTokenDotAVX512.f32(row, rows: rows, rowFloats: rowFloats, blocks: blocks, x, ldx: ldx, tokens: tokens,
                                           out, ldo: ldo, accumulate: accumulate)
        }
        dispatch(tokens, rows, blocks, x, ldx, out, ldo, accumulate) { r, b in
            let p = UnsafeRawPointer(row + r * rowFloats + 32 * b)
            return (p.loadUnaligned(as: __m256.self), p.loadUnaligned(fromByteOffset: 32, as: __m256.self),
                    p.loadUnaligned(fromByteOffset: 64, as: __m256.self), p.loadUnaligned(fromByteOffset: 96, as: __m256.self))
        }
    }

    /// One specialised loop per token count (the count must be a constant inside `run`, so its
    /// accumulators stay in registers), row after row: `weights(r, b)` is block b of row r, whose
    /// sums go to `out[t · ldo + r]`.
    @inline(__always)
    static func dispatch(_ tokens: Int, _ rows: Int, _ blocks: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                         _ out: UnsafeMutablePointer<Float>, _ ldo: Int, _ accumulate: Bool,
                         _ weights: (Int, Int) -> BlockWeights) {
        for r in 0..<rows {
            // The sums go to eight floats on the stack, then to `out`: one inlined `run` per token
            // count whatever `accumulate` is (with the store inside `run`, the compiler stopped
            // inlining the eight-token copy, and that call cost 20%).
            var buffer = SIMD8<Float>()
            withUnsafeMutableBytes(of: &buffer) { raw in
                let sums = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                let rowWeights = { weights(r, $0) }
                switch tokens {
                case 8: run(8, blocks, x, ldx, sums, rowWeights)
                case 7: run(7, blocks, x, ldx, sums, rowWeights)
                case 6: run(6, blocks, x, ldx, sums, rowWeights)
                case 5: run(5, blocks, x, ldx, sums, rowWeights)
                case 4: run(4, blocks, x, ldx, sums, rowWeights)
                case 3: run(3, blocks, x, ldx, sums, rowWeights)
                case 2: run(2, blocks, x, ldx, sums, rowWeights)
                case 1: run(1, blocks, x, ldx, sums, rowWeights)
                default: preconditionFailure("MultiTokenDot: \(tokens) tokens (1...\(maxTokens))")
                }
            }
            if accumulate {
                for t in 0..<tokens { out[t * ldo + r] += buffer[t] }
            } else {
                for t in 0..<tokens { out[t * ldo + r] = buffer[t] }
            }
        }
    }

    /// Up to four tokens get two accumulators each (even and odd vectors of a block), so that a
    /// token's multiply-adds do not all wait on one another; five to eight have enough
    /// independent tokens to keep the multiply-add units busy with one each (and sixteen
    /// accumulators would not fit in the registers beside the block's weights).
    @inline(__always)
    static func run(_ n: Int, _ blocks: Int, _ x: UnsafePointer<Float>, _ ldx: Int,
                    _ out: UnsafeMutablePointer<Float>, _ weights: (Int) -> BlockWeights) {
        let zero = _mm256_setzero_ps()
        var a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero, a6 = zero, a7 = zero
        var b0 = zero, b1 = zero, b2 = zero, b3 = zero
        let paired = n <= 4
        for blk in 0..<blocks {
            let w = weights(blk)
            let xb = x + 32 * blk
            // Vector j of every token, then vector j + 1: neighbouring multiply-adds are
            // independent, so the out-of-order window always holds several ready ones.
            @inline(__always) func step(_ wj: __m256, _ j: Int) {
                let second = paired && j % 2 == 1
                @inline(__always) func fma(_ t: Int, _ a: inout __m256, _ b: inout __m256) {
                    let v = UnsafeRawPointer(xb + t * ldx).loadUnaligned(fromByteOffset: 32 * j, as: __m256.self)
                    if second { b = _mm256_fmadd_ps(wj, v, b) } else { a = _mm256_fmadd_ps(wj, v, a) }
                }
                fma(0, &a0, &b0)
                if n > 1 { fma(1, &a1, &b1) }
                if n > 2 { fma(2, &a2, &b2) }
                if n > 3 { fma(3, &a3, &b3) }
                if n > 4 { fma(4, &a4, &b0) }
                if n > 5 { fma(5, &a5, &b0) }
                if n > 6 { fma(6, &a6, &b0) }
                if n > 7 { fma(7, &a7, &b0) }
            }
            step(w.0, 0); step(w.1, 1); step(w.2, 2); step(w.3, 3)
        }
        @inline(__always) func store(_ t: Int, _ a: __m256, _ b: __m256) {
            out[t] = _mm256_add_ps(a, b).sum()
        }
        if paired {
            store(0, a0, b0)
            if n > 1 { store(1, a1, b1) }
            if n > 2 { store(2, a2, b2) }
            if n > 3 { store(3, a3, b3) }
        } else {
            // Five to eight tokens, one accumulator each.
            store(0, a0, zero); store(1, a1, zero); store(2, a2, zero); store(3, a3, zero); store(4, a4, zero)
            if n > 5 { store(5, a5, zero) }
            if n > 6 { store(6, a6, zero) }
            if n > 7 { store(7, a7, zero) }
        }
    }

    /// The 32 nibbles of the 16 bytes at `qs` (low nibbles: elements 0-15, high: 16-31) as f32 `q·d + c`.
    @inline(__always)
    static func nibbleWeights(_ qs: UnsafeRawPointer, _ d: __m256, _ c: __m256) -> BlockWeights {
        let v = qs.loadUnaligned(as: __m128i.self), mask = _mm_set1_epi8(0x0F)
        let lo = _mm_and_si128(v, mask), hi = _mm_and_si128(_mm_srli_epi16(v, 4), mask)
        // Eight bytes (the low 64 bits of `bytes`) as f32 q·d + c.
        @inline(__always) func eight(_ bytes: __m128i) -> __m256 {
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)), d, c)
        }
        return (eight(lo), eight(_mm_unpackhi_epi64(lo, lo)), eight(hi), eight(_mm_unpackhi_epi64(hi, hi)))
    }

    /// Q4_1 block: f16 d, f16 m, 16 nibble bytes; w = q·d + m.
    @inline(__always)
    static func q4_1Weights(_ blk: UnsafeRawPointer) -> BlockWeights {
        let dm = _mm_cvtph_ps(_mm_cvtsi32_si128(blk.loadUnaligned(as: Int32.self)))
        return nibbleWeights(blk + 4, _mm256_broadcastss_ps(dm), _mm256_broadcastss_ps(_mm_movehdup_ps(dm)))
    }

    /// Q4_0 block: f16 d, 16 nibble bytes; w = (q - 8)·d.
    @inline(__always)
    static func q4_0Weights(_ blk: UnsafeRawPointer) -> BlockWeights {
        let d = _mm256_broadcastss_ps(QuantizedDot.broadcastHalf(blk))
        return nibbleWeights(blk + 2, d, _mm256_mul_ps(d, _mm256_set1_ps(-8)))
    }

    /// Q8_0 block: f16 d, 32 int8; w = q·d.
    @inline(__always)
    static func q8_0Weights(_ blk: UnsafeRawPointer) -> BlockWeights {
        let d = _mm256_broadcastss_ps(QuantizedDot.broadcastHalf(blk))
        @inline(__always) func eight(_ offset: Int) -> __m256 {
            let bytes = _mm_cvtsi64_si128((blk + offset).loadUnaligned(as: Int64.self))
            return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), d)
        }
        return (eight(2), eight(10), eight(18), eight(26))
    }
}
