/// Dot products of one quantized weight row with f32 activations, for the memory-bound
/// single-token path. Block layouts are ggml's (see GGUF's Dequantize):
/// Q4_1 = f16 d, f16 m, 16 nibble bytes (low nibbles: elements 0-15, high: 16-31);
/// Q8_0 = f16 d, 32 int8; Q4_0 = f16 d, 16 nibble bytes, value (q - 8)·d.
/// Each kernel dequantizes a block into registers exactly as Dequantize does, then FMAs,
/// so results equal an f32 dot with the dequantized row up to summation order.
public enum QuantizedDot {
    @usableFromInline @inline(__always)
    static func nibbles(_ p: UnsafeRawPointer) -> (SIMD16<Float>, SIMD16<Float>) {
        let q = p.loadUnaligned(as: SIMD16<UInt8>.self)
        let lo = SIMD16<Int32>(truncatingIfNeeded: q & 0x0F)
        let hi = SIMD16<Int32>(truncatingIfNeeded: q &>> 4)
        return (SIMD16<Float>(lo), SIMD16<Float>(hi))
    }

    @usableFromInline @inline(__always)
    static func load16(_ x: UnsafePointer<Float>) -> SIMD16<Float> {
        UnsafeRawPointer(x).loadUnaligned(as: SIMD16<Float>.self)
    }

    /// Σ w·x over `blocks` Q4_1 blocks at `row`.
    @inlinable
    public static func q4_1(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc = SIMD16<Float>()
        for b in 0..<blocks {
            let blk = row + b * 20
            let d = SIMD16<Float>(repeating: Float(blk.loadUnaligned(as: Float16.self)))
            let m = SIMD16<Float>(repeating: Float(blk.loadUnaligned(fromByteOffset: 2, as: Float16.self)))
            let (lo, hi) = nibbles(blk + 4)
            let xb = x + b * 32
            acc.addProduct(lo * d + m, load16(xb))
            acc.addProduct(hi * d + m, load16(xb + 16))
        }
        return acc.sum()
    }

    /// Σ w·x over `blocks` Q4_0 blocks at `row`.
    @inlinable
    public static func q4_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc = SIMD16<Float>()
        let eight = SIMD16<Float>(repeating: 8)
        for b in 0..<blocks {
            let blk = row + b * 18
            let d = SIMD16<Float>(repeating: Float(blk.loadUnaligned(as: Float16.self)))
            let (lo, hi) = nibbles(blk + 2)
            let xb = x + b * 32
            acc.addProduct((lo - eight) * d, load16(xb))
            acc.addProduct((hi - eight) * d, load16(xb + 16))
        }
        return acc.sum()
    }

    /// Σ w·x over `blocks` Q8_0 blocks at `row`.
    @inlinable
    public static func q8_0(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc = SIMD16<Float>()
        for b in 0..<blocks {
            let blk = row + b * 34
            let d = SIMD16<Float>(repeating: Float(blk.loadUnaligned(as: Float16.self)))
            let q0 = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: (blk + 2).loadUnaligned(as: SIMD16<Int8>.self)))
            let q1 = SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: (blk + 18).loadUnaligned(as: SIMD16<Int8>.self)))
            let xb = x + b * 32
            acc.addProduct(q0 * d, load16(xb))
            acc.addProduct(q1 * d, load16(xb + 16))
        }
        return acc.sum()
    }

    /// Σ w·x over `count` f16 weights.
    @inlinable
    public static func f16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= count {
            let w = SIMD16<Float>((row + 2 * i).loadUnaligned(as: SIMD16<Float16>.self))
            acc.addProduct(w, load16(x + i))
            i += 16
        }
        var s = acc.sum()
        while i < count { s += Float(row.loadUnaligned(fromByteOffset: 2 * i, as: Float16.self)) * x[i]; i += 1 }
        return s
    }
}
