import _Builtin_intrinsics.intel

/// Dot products of quantized weight rows with activations, for the memory-bound decode
/// path (a few tokens: every weight is read once per step, so the work per byte must be
/// tiny). Block layouts are ggml's (see GGUF's Dequantize):
/// Q4_1 = f16 d, f16 m, 16 nibble bytes (low nibbles: elements 0-15, high: 16-31), value q·d + m;
/// Q4_0 = f16 d, 16 nibble bytes, value (q - 8)·d;  Q8_0 = f16 d, 32 int8, value q·d.
///
/// Why integer activations: converting every weight to f32 costs more than the multiply-add
/// (that kernel ran at ~11 ns a block here). Integer multiply-add (`vpmaddwd`, 16 pairs of
/// int16 per instruction) needs both sides as integers, so each 32-block of activations is
/// turned once per matrix product into two int16 vectors (`quantize`): with t = x·32767/max|x|,
/// hi = round(t) and lo = round((t - hi)·65536), so x = s·(hi + lo/65536) with s = max|x|/32767,
/// to ~2⁻³¹ of the block's largest value, below f32's own rounding of x·(32767/max|x|).
/// One 16-bit part alone (error up to s/2) moved the logits by 0.02 through 30 layers,
/// because a block's outlier sets the step for its small values; llama.cpp's 8-bit
/// activations are 256× coarser still. Both integer sums are exact and below 2²⁴, so exact
/// in f32 too; the weight is unpacked once for both. The q·d + m form is split as
/// d·s·Σq·(hi + lo/65536) + m·Σx, with Σx of the unrounded activations.
/// Naive references: `Dequantize.run` followed by a plain dot product (QuantizedDotTests).
///
/// Not `@inlinable`: the intrinsics need AVX2, which only this module is compiled for; a
/// call per row (18-48 blocks) costs nothing next to the row.
public enum QuantizedDot {
    /// Activations per 32-block: `blockMeta` floats (scale, Σx) and `blockValues` int16 (hi[32], lo[32]).
    public static let blockMeta = 2
    public static let blockValues = 64
    /// Blocks whose largest |x| is below this are zero (their scale's reciprocal would overflow).
    static let smallest: Float = 1e-30

    /// Quantizes `x[count]` (count a multiple of 32) into `q[2 · count]` (per block: hi[32], lo[32]),
    /// and writes each 32-block's scale and sum into `meta[2b]`, `meta[2b + 1]`. A block holding NaN or ±inf gets a NaN scale,
    /// so every dot product with it is NaN, as in f32.
    public static func quantize(_ x: UnsafePointer<Float>, count: Int, into q: UnsafeMutablePointer<Int16>,
                                meta: UnsafeMutablePointer<Float>) {
        let signMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFF_FFFF))
        for b in 0..<count / 32 {
            let src = UnsafeRawPointer(x + b * 32)
            let v0 = src.loadUnaligned(as: __m256.self), v1 = src.loadUnaligned(fromByteOffset: 32, as: __m256.self)
            let v2 = src.loadUnaligned(fromByteOffset: 64, as: __m256.self), v3 = src.loadUnaligned(fromByteOffset: 96, as: __m256.self)
            let sum = _mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)).sum()
            let amax = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, signMask), _mm256_and_ps(v1, signMask)),
                                     _mm256_max_ps(_mm256_and_ps(v2, signMask), _mm256_and_ps(v3, signMask))).max()
            let dst = UnsafeMutableRawPointer(q + b * blockValues)
            // vmaxps may drop a NaN, but the sum keeps it; an infinity shows in either.
            let nonFinite = sum.isNaN || !amax.isFinite
            guard !nonFinite, amax >= smallest else {
                dst.initializeMemory(as: Int16.self, repeating: 0, count: blockValues)
                meta[2 * b] = nonFinite ? .nan : 0
                meta[2 * b + 1] = sum
                continue
            }
            let inv = _mm256_set1_ps(32767 / amax)
            let loScale = _mm256_set1_ps(65536)
            // Round to nearest (the MXCSR default), then pack each 8 lanes with saturation, in order.
            // |t| ≤ 32767 (up to f32 rounding, which the saturation absorbs); |t - hi| ≤ 1/2, so |lo| ≤ 32768 → 32767.
            @inline(__always) func pack(_ i: __m256i, _ offset: Int) {
                let v = unsafeBitCast(i, to: SIMD8<Int32>.self)
                let packed = _mm_packs_epi32(unsafeBitCast(v.lowHalf, to: __m128i.self), unsafeBitCast(v.highHalf, to: __m128i.self))
                dst.storeBytes(of: packed, toByteOffset: offset, as: __m128i.self)
            }
            @inline(__always) func store(_ v: __m256, _ k: Int) {
                let t = _mm256_mul_ps(v, inv)
                let hi = _mm256_cvtps_epi32(t)
                pack(hi, 16 * k)
                pack(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_sub_ps(t, _mm256_cvtepi32_ps(hi)), loScale)), 64 + 16 * k)
            }
            store(v0, 0); store(v1, 1); store(v2, 2); store(v3, 3)
            meta[2 * b] = amax / 32767
            meta[2 * b + 1] = sum
        }
    }

    /// Σ q·hi and Σ q·lo over one block (8 lanes each): `w0`, `w1` the 16-bit weights of
    /// elements 0-15 and 16-31, `xq` the block's hi[32], lo[32].
    @inline(__always)
    static func blockSums(_ w0: __m256i, _ w1: __m256i, _ xq: UnsafeRawPointer) -> (hi: __m256, lo: __m256) {
        let h = _mm256_add_epi32(_mm256_madd_epi16(w0, xq.loadUnaligned(as: __m256i.self)),
                                 _mm256_madd_epi16(w1, xq.loadUnaligned(fromByteOffset: 32, as: __m256i.self)))
        let l = _mm256_add_epi32(_mm256_madd_epi16(w0, xq.loadUnaligned(fromByteOffset: 64, as: __m256i.self)),
                                 _mm256_madd_epi16(w1, xq.loadUnaligned(fromByteOffset: 96, as: __m256i.self)))
        return (_mm256_cvtepi32_ps(h), _mm256_cvtepi32_ps(l))
    }

    /// One accumulator of a row: Σ hi-part and Σ lo-part sums times their block scales, and
    /// the summed block offsets (lane 1). A row uses two, for alternate blocks, so consecutive
    /// blocks do not wait on each other's add.
    struct Accumulator {
        var hi: __m256, lo: __m256
        var offset: __m128

        // Set here, not as property defaults: those compile to out-of-line initializer calls.
        init() {
            hi = _mm256_setzero_ps()
            lo = _mm256_setzero_ps()
            offset = _mm_setzero_ps()
        }

        /// Adds a block's sums times lane 0 of `scaled`.
        @inline(__always)
        mutating func add(_ sums: (hi: __m256, lo: __m256), _ scaled: __m128) {
            let s = _mm256_broadcastss_ps(scaled)
            hi = _mm256_fmadd_ps(sums.hi, s, hi)
            lo = _mm256_fmadd_ps(sums.lo, s, lo)
        }

        /// Σ hi + Σ lo / 65536 over both accumulators, and their summed offset lanes.
        @inline(__always)
        static func total(_ a: Accumulator, _ b: Accumulator) -> (dot: Float, offset: Float) {
            let h = _mm256_add_ps(a.hi, b.hi).sum()
            let l = _mm256_add_ps(a.lo, b.lo).sum()
            return (h + l * (1 / 65536), _mm_add_ps(a.offset, b.offset)[1])
        }
    }

    /// The 32 nibbles of 16 bytes at `qs` as 16-bit integers: elements 0-15, then 16-31.
    @inline(__always)
    static func nibbles(_ qs: UnsafeRawPointer) -> (__m256i, __m256i) {
        let v = qs.loadUnaligned(as: __m128i.self), low = _mm_set1_epi8(0x0F)
        return (_mm256_cvtepu8_epi16(_mm_and_si128(v, low)), _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(v, 4), low)))
    }

    /// (d, d, d, d) from the f16 at `p`.
    @inline(__always)
    static func broadcastHalf(_ p: UnsafeRawPointer) -> __m128 {
        _mm_cvtph_ps(_mm_set1_epi16(p.loadUnaligned(as: Int16.self)))
    }

    /// (scale, Σx) of block `b`, in lanes 0 and 1.
    @inline(__always)
    static func metaPair(_ meta: UnsafePointer<Float>, _ b: Int) -> __m128 {
        _mm_castsi128_ps(_mm_loadl_epi64(UnsafeRawPointer(meta + 2 * b).assumingMemoryBound(to: __m128i.self)))
    }

    /// Runs `block(b, &accumulator)` over blocks 0..<blocks, alternating two accumulators, and
    /// returns their total.
    @inline(__always)
    static func sumBlocks(_ blocks: Int, _ block: (Int, inout Accumulator) -> Void) -> (dot: Float, offset: Float) {
        var a = Accumulator(), c = Accumulator()
        var b = 0
        while b + 2 <= blocks {
            block(b, &a)
            block(b + 1, &c)
            b += 2
        }
        if b < blocks { block(b, &a) }
        return Accumulator.total(a, c)
    }

    /// One Q4_1 block `b` of `row` into `acc`.
    @inline(__always)
    static func q4_1Block(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ meta: UnsafePointer<Float>, _ b: Int,
                          _ acc: inout Accumulator) {
        let blk = row + b * 20
        // (d, m) · (s, Σx) = (d·s, m·Σx): the scale of the integer sums and the block's offset.
        let scaled = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(blk.loadUnaligned(as: Int32.self))), metaPair(meta, b))
        acc.offset = _mm_add_ps(acc.offset, scaled)
        let (w0, w1) = nibbles(blk + 4)
        acc.add(blockSums(w0, w1, UnsafeRawPointer(xq + blockValues * b)), scaled)
    }

    /// Σ w·x for one Q4_1 row of `blocks` blocks; `xq`/`meta` from `quantize`.
    public static func q4_1(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ meta: UnsafePointer<Float>,
                            blocks: Int) -> Float {
        let t = sumBlocks(blocks) { q4_1Block(row, xq, meta, $0, &$1) }
        return t.dot + t.offset
    }

    /// One Q4_0 block `b` of `row` into `acc`.
    @inline(__always)
    static func q4_0Block(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ meta: UnsafePointer<Float>, _ b: Int,
                          _ acc: inout Accumulator) {
        let blk = row + b * 18
        // (d, d) · (s, Σx) = (d·s, d·Σx); the value is (q - 8)·d, so the offset is -8·d·Σx.
        let scaled = _mm_mul_ps(broadcastHalf(blk), metaPair(meta, b))
        acc.offset = _mm_add_ps(acc.offset, scaled)
        let (w0, w1) = nibbles(blk + 2)
        acc.add(blockSums(w0, w1, UnsafeRawPointer(xq + blockValues * b)), scaled)
    }

    /// Σ w·x for one Q4_0 row; `xq`/`meta` from `quantize`.
    public static func q4_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ meta: UnsafePointer<Float>,
                            blocks: Int) -> Float {
        let t = sumBlocks(blocks) { q4_0Block(row, xq, meta, $0, &$1) }
        return t.dot - 8 * t.offset
    }

    /// One Q8_0 block `b` of `row` into `acc`.
    @inline(__always)
    static func q8_0Block(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ meta: UnsafePointer<Float>, _ b: Int,
                          _ acc: inout Accumulator) {
        let blk = row + b * 34
        let scaled = _mm_mul_ps(broadcastHalf(blk), metaPair(meta, b))
        let w0 = _mm256_cvtepi8_epi16((blk + 2).loadUnaligned(as: __m128i.self))
        let w1 = _mm256_cvtepi8_epi16((blk + 18).loadUnaligned(as: __m128i.self))
        acc.add(blockSums(w0, w1, UnsafeRawPointer(xq + blockValues * b)), scaled)
    }

    /// Σ w·x for one Q8_0 row; `xq`/`meta` from `quantize`.
    public static func q8_0(_ row: UnsafeRawPointer, _ xq: UnsafePointer<Int16>, _ meta: UnsafePointer<Float>,
                            blocks: Int) -> Float {
        sumBlocks(blocks) { q8_0Block(row, xq, meta, $0, &$1) }.dot
    }

    /// Σ w·x over `count` f16 weights and f32 activations (plain order).
    @inlinable
    public static func f16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            let w = SIMD8<Float>((row + 2 * i).loadUnaligned(as: SIMD8<Float16>.self))
            acc.addProduct(w, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var s = acc.sum()
        while i < count { s += Float(row.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) * x[i]; i += 1 }
        return s
    }
}
