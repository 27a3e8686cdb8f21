import Foundation

/// Elementwise and row kernels of the forward pass. Each fast kernel has a plain
/// reference version in `ReferenceKernels` and a test comparing the two.
public enum Kernels {
    /// out[i] = x[i] / sqrt(mean(x²) + eps) · weight[i]
    @inlinable
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count n: Int, eps: Float) {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            acc.addProduct(v, v)
            i += 8
        }
        var ss = acc.sum()
        while i < n { ss += x[i] * x[i]; i += 1 }
        let scale = 1 / (ss / Float(n) + eps).squareRoot()
        for j in 0..<n { out[j] = x[j] * scale * weight[j] }
    }

    /// Rotary embedding in place on `heads` vectors of `headDim`, pairs (2i, 2i+1) rotated by
    /// pos · invFreq[i] (llama.cpp's "normal" layout, which the GGUF's permuted q/k rows expect).
    @inlinable
    public static func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, position: Int, invFreq: UnsafePointer<Float>) {
        let half = headDim / 2
        let p = Float(position)
        for i in 0..<half {
            let angle = p * invFreq[i]
            let c = cos(angle), s = sin(angle)
            for h in 0..<heads {
                let v = x + h * headDim + 2 * i
                let a = v[0], b = v[1]
                v[0] = a * c - b * s
                v[1] = a * s + b * c
            }
        }
    }

    /// e^x in each lane, to within a few ulp (Cody-Waite reduction to r = x - n·ln 2 with
    /// |r| ≤ ln 2 / 2, Cephes' polynomial for e^r, then 2^n as two exponent-bit factors so that
    /// n from -150 to 128 needs no special case: the result underflows to 0 and overflows to
    /// +inf as e^x does). NaN stays NaN. `expf` per element was 3-4% of a prefill and of a
    /// training step (perf); eight lanes at a time, inline, cost a fraction of that.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let isNaN = x .!= x
        // Masks, not `clamped`: that one went through unspecialised generic pointwiseMin/Max calls (perf).
        let lo = SIMD8<Float>(repeating: -104), hi = SIMD8<Float>(repeating: 89)
        var xs = x.replacing(with: 0, where: isNaN)
        xs.replace(with: lo, where: xs .< lo)
        xs.replace(with: hi, where: xs .> hi)
        // Adding 1.5·2²³ rounds x·log2(e) to the integer n, held in the low mantissa bits of t.
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = magic.addingProduct(xs, SIMD8(repeating: 1.442_695_04))
        let n = t - magic
        let r = xs.addingProduct(n, SIMD8(repeating: -0.693_359_375)).addingProduct(n, SIMD8(repeating: 2.121_944_4e-4))
        var p = SIMD8<Float>(repeating: 1.987_569_15e-4)
        p = SIMD8(repeating: 1.398_199_950_7e-3).addingProduct(p, r)
        p = SIMD8(repeating: 8.333_451_907_3e-3).addingProduct(p, r)
        p = SIMD8(repeating: 4.166_579_589_4e-2).addingProduct(p, r)
        p = SIMD8(repeating: 1.666_666_545_9e-1).addingProduct(p, r)
        p = SIMD8(repeating: 5.000_000_120_1e-1).addingProduct(p, r)
        let er = (r + 1).addingProduct(p, r * r)
        let ni = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
        let n1 = ni &>> 1, n2 = ni &- n1
        let f1 = unsafeBitCast((n1 &+ 127) &<< 23, to: SIMD8<Float>.self)
        let f2 = unsafeBitCast((n2 &+ 127) &<< 23, to: SIMD8<Float>.self)
        return (er * f1 * f2).replacing(with: x, where: isNaN)
    }

    /// x[i] = e^(x[i] - m) for i in 0..<n; returns Σ x[i], summed in Double over eight-lane partial sums
    /// (a Float running sum over a 49,152-token vocabulary drops the small terms). Softmax, the sampler's
    /// weights and the trainer's cross-entropy. Not `@inlinable`: callers outside the AVX2/FMA-compiled modules
    /// (the engine) would otherwise get `Kernels.exp` without FMA, one libm `fmaf` call per lane.
    public static func exponentiate(_ x: UnsafeMutablePointer<Float>, count n: Int, subtracting m: Float) -> Double {
        let mv = SIMD8<Float>(repeating: m)
        var total = 0.0
        var i = 0
        while i + 8 <= n {
            let e = exp(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - mv)
            UnsafeMutableRawPointer(x + i).storeBytes(of: e, as: SIMD8<Float>.self)
            total += Double(e.sum())
            i += 8
        }
        while i < n {
            let e = expf(x[i] - m)
            x[i] = e
            total += Double(e)
            i += 1
        }
        return total
    }

    /// x[i] = e^(x[i] - m), m the largest x[i] (so no term overflows); returns m and the sum of the new x[i].
    @inlinable
    public static func exponentiateFromMaximum(_ x: UnsafeMutablePointer<Float>, count n: Int) -> (maximum: Float, sum: Double) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        return (m, exponentiate(x, count: n, subtracting: m))
    }

    /// In-place softmax of `n` values; returns nothing, the row sums to 1.
    @inlinable
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        let inv = Float(1 / exponentiateFromMaximum(x, count: n).sum)
        for i in 0..<n { x[i] *= inv }
    }

    /// out[i] = silu(gate[i]) · up[i]  (SwiGLU); `out` may be `gate`.
    @inlinable
    public static func swiGLU(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 8 <= n {
            let g = UnsafeRawPointer(gate + i).loadUnaligned(as: SIMD8<Float>.self)
            let u = UnsafeRawPointer(up + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: g / (1 + exp(-g)) * u, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            let g = gate[i]
            out[i] = g / (1 + expf(-g)) * up[i]
            i += 1
        }
    }

    /// gate[i] = silu(gate[i]) · up[i], in place.
    @inlinable
    public static func swiGLU(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
        swiGLU(gate: gate, up: up, out: gate, count: n)
    }

    /// y[i] += x[i]
    @inlinable
    public static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count n: Int) {
        for i in 0..<n { y[i] += x[i] }
    }

    /// Σ a[i]·b[i], 8-wide with FMA.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count n: Int) -> Float {
        var acc0 = SIMD8<Float>(), acc1 = SIMD8<Float>()
        var i = 0
        while i + 16 <= n {
            acc0.addProduct(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self),
                            UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self))
            acc1.addProduct(UnsafeRawPointer(a + i + 8).loadUnaligned(as: SIMD8<Float>.self),
                            UnsafeRawPointer(b + i + 8).loadUnaligned(as: SIMD8<Float>.self))
            i += 16
        }
        if i + 8 <= n {  // e.g. a rank-8 LoRA row
            acc0.addProduct(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self),
                            UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var s = (acc0 + acc1).sum()
        while i < n { s += a[i] * b[i]; i += 1 }
        return s
    }

    /// Σ x[i] · y[i] for a short n (a LoRA rank), inlined into the caller's loop: `dot` is a call per use, which
    /// for the expand step of unmerged adapters (one rank-long dot per output feature and row) was ~3% of a
    /// 32-adapter decode step.
    @inlinable @inline(__always)
    public static func shortDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            acc.addProduct(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self),
                           UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self))
            i += 8
        }
        var s = acc.sum()
        while i < n { s += x[i] * y[i]; i += 1 }
        return s
    }

    /// y[i] += alpha · x[i]
    @inlinable
    public static func axpy(_ alpha: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        let a = SIMD8<Float>(repeating: alpha)
        while i + 8 <= n {
            var v = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
            v.addProduct(a, UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self))
            UnsafeMutableRawPointer(y + i).storeBytes(of: v, as: SIMD8<Float>.self)
            i += 8
        }
        while i < n { y[i] += alpha * x[i]; i += 1 }
    }
}
