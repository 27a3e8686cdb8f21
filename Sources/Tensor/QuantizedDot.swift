/// Dot products of quantized weight rows with f32 activations, for the memory-bound
/// decode path (a few tokens: every weight is read once per step, so the work per byte
/// must be tiny). Block layouts are ggml's (see GGUF's Dequantize):
/// Q4_1 = f16 d, f16 m, 16 nibble bytes (low nibbles: elements 0-15, high: 16-31), value q·d + m;
/// Q4_0 = f16 d, 16 nibble bytes, value (q - 8)·d;  Q8_0 = f16 d, 32 int8, value q·d.
///
/// Why the permuted activations: Swift's integer-to-float SIMD conversions compile to
/// out-of-line calls, so the kernels never convert. They load a block's bytes as UInt32
/// lanes, shift and mask one byte (or nibble) per lane, and turn it into a float by OR-ing
/// it into the mantissa of 2²³ (`bits(q | 0x4B00_0000) - 2²³ = q`). Each shift yields
/// elements 4i+k of lane i, so the activations are rearranged once per matrix product
/// (`prepare`) into that order; the q·d + m form is split as d·Σq·x + m·Σx with Σx per block
/// precomputed. Naive references are `Dequantize.run` followed by `Kernels.dot`.
public enum QuantizedDot {
    /// The layout of prepared activations for a weight type.
    public enum Layout: Sendable { case nibbles, bytes }

    /// Rearranges `x[count]` (count a multiple of 32) into `xp[count]` for `layout`, and writes
    /// the sum of each 32-block of `x` into `blockSums[count / 32]`.
    public static func prepare(_ x: UnsafePointer<Float>, count: Int, layout: Layout,
                               into xp: UnsafeMutablePointer<Float>, blockSums: UnsafeMutablePointer<Float>) {
        for b in 0..<count / 32 {
            let src = x + b * 32, dst = xp + b * 32
            var s: Float = 0
            for e in 0..<32 { s += src[e] }
            blockSums[b] = s
            switch layout {
            case .nibbles:
                // Vector k, lane i < 4: element 4i + k (low nibble); lane i ≥ 4: 16 + 4(i-4) + k (high).
                for k in 0..<4 {
                    for i in 0..<4 {
                        dst[k * 8 + i] = src[4 * i + k]
                        dst[k * 8 + 4 + i] = src[16 + 4 * i + k]
                    }
                }
            case .bytes:
                // Vector k, lane i: element 4i + k.
                for k in 0..<4 { for i in 0..<8 { dst[k * 8 + i] = src[4 * i + k] } }
            }
        }
    }

    @usableFromInline static let magic = SIMD8<UInt32>(repeating: 0x4B00_0000)
    @usableFromInline static let twoTo23 = SIMD8<Float>(repeating: 8_388_608)

    @inlinable @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    /// Σ_e q_e · xp_e over one block of 16 nibble bytes at `qs`.
    @inlinable @inline(__always)
    static func nibbleDot(_ qs: UnsafeRawPointer, _ xp: UnsafePointer<Float>) -> SIMD8<Float> {
        // Lanes 0-3: the 16 bytes (low nibbles in bits 0-3 of each byte); lanes 4-7: the same shifted right by 4
        // (high nibbles there). Then every k takes bits 8k..8k+3 of every lane: one shift by a constant per k.
        let v4 = qs.loadUnaligned(as: SIMD4<UInt32>.self)
        let h4 = v4 &>> 4
        let v = SIMD8<UInt32>(v4[0], v4[1], v4[2], v4[3], h4[0], h4[1], h4[2], h4[3])
        let mask = SIMD8<UInt32>(repeating: 0x0F)
        var t = SIMD8<Float>()
        for k in 0..<4 {
            let q = unsafeBitCast(((v &>> UInt32(8 * k)) & mask) | magic, to: SIMD8<Float>.self) - twoTo23
            t.addProduct(q, load8(xp + 8 * k))
        }
        return t
    }

    /// Σ w·x for one Q4_1 row of `blocks` blocks; `xp`/`sums` from `prepare(layout: .nibbles)`.
    @inlinable
    public static func q4_1(_ row: UnsafeRawPointer, _ xp: UnsafePointer<Float>, _ sums: UnsafePointer<Float>,
                            blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        var offset: Float = 0
        for b in 0..<blocks {
            let blk = row + b * 20
            let d = Float(blk.loadUnaligned(as: Float16.self))
            let m = Float(blk.loadUnaligned(fromByteOffset: 2, as: Float16.self))
            acc.addProduct(nibbleDot(blk + 4, xp + 32 * b), SIMD8(repeating: d))
            offset += m * sums[b]
        }
        return acc.sum() + offset
    }

    /// Σ w·x for one Q4_0 row; `xp`/`sums` from `prepare(layout: .nibbles)`.
    @inlinable
    public static func q4_0(_ row: UnsafeRawPointer, _ xp: UnsafePointer<Float>, _ sums: UnsafePointer<Float>,
                            blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        var offset: Float = 0
        for b in 0..<blocks {
            let blk = row + b * 18
            let d = Float(blk.loadUnaligned(as: Float16.self))
            acc.addProduct(nibbleDot(blk + 2, xp + 32 * b), SIMD8(repeating: d))
            offset -= 8 * d * sums[b]
        }
        return acc.sum() + offset
    }

    /// Σ w·x for one Q8_0 row; `xp`/`sums` from `prepare(layout: .bytes)`.
    @inlinable
    public static func q8_0(_ row: UnsafeRawPointer, _ xp: UnsafePointer<Float>, _ sums: UnsafePointer<Float>,
                            blocks: Int) -> Float {
        var acc = SIMD8<Float>()
        var offset: Float = 0
        // int8 q as the unsigned byte q + 128 (flip the sign bit), so the value is (u - 128)·d.
        let flip = SIMD8<UInt32>(repeating: 0x8080_8080)
        let mask = SIMD8<UInt32>(repeating: 0xFF)
        for b in 0..<blocks {
            let blk = row + b * 34
            let d = Float(blk.loadUnaligned(as: Float16.self))
            let v = (blk + 2).loadUnaligned(as: SIMD8<UInt32>.self) ^ flip
            let xb = xp + 32 * b
            var t = SIMD8<Float>()
            for k in 0..<4 {
                let u = unsafeBitCast(((v &>> UInt32(8 * k)) & mask) | magic, to: SIMD8<Float>.self) - twoTo23
                t.addProduct(u, load8(xb + 8 * k))
            }
            acc.addProduct(t, SIMD8(repeating: d))
            offset -= 128 * d * sums[b]
        }
        return acc.sum() + offset
    }

    /// Σ w·x over `count` f16 weights (plain order).
    @inlinable
    public static func f16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            let w = SIMD8<Float>((row + 2 * i).loadUnaligned(as: SIMD8<Float16>.self))
            acc.addProduct(w, load8(x + i))
            i += 8
        }
        var s = acc.sum()
        while i < count { s += Float(row.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) * x[i]; i += 1 }
        return s
    }
}
