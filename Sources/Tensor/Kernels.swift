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

    /// In-place softmax of `n` values; returns nothing, the row sums to 1.
    @inlinable
    public static func softmax(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        var sum: Float = 0
        for i in 0..<n { let e = expf(x[i] - m); x[i] = e; sum += e }
        let inv = 1 / sum
        for i in 0..<n { x[i] *= inv }
    }

    /// gate[i] = silu(gate[i]) · up[i]  (SwiGLU)
    @inlinable
    public static func swiGLU(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count n: Int) {
        for i in 0..<n {
            let g = gate[i]
            gate[i] = g / (1 + expf(-g)) * up[i]
        }
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
