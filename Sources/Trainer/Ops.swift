import Foundation
import Tensor

/// The elementwise and row operations of the training pass, each as `op` / `opBackward` (llm.c style).
/// Backward functions *accumulate* into their input gradient unless the name says otherwise.
/// `NaiveReference` holds straightforward Double versions of the whole model for tests.
enum Ops {
    // MARK: - RMSNorm

    /// out[i, :] = x[i, :] · rstd[i] · w, rstd[i] = 1 / sqrt(mean(x[i, :]²) + eps).
    /// x `[rows, dim]` (row stride `ldx`), out `[rows, dim]` (stride `ldo`), rstd `[rows]`.
    @inline(__always)
    static func rmsNorm(_ x: UnsafePointer<Float>, ldx: Int, weight w: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                        ldo: Int, rstd: UnsafeMutablePointer<Float>, rows: Range<Int>, dim: Int, eps: Float) {
        for i in rows {
            let xr = x + i * ldx
            let o = out + i * ldo
            let r = 1 / (sumOfSquares(xr, dim) / Float(dim) + eps).squareRoot()
            rstd[i] = r
            for j in 0..<dim { o[j] = xr[j] * r * w[j] }
        }
    }

    /// Recomputes the normalised rows from the saved rstd (no reduction).
    @inline(__always)
    static func rmsNormApply(_ x: UnsafePointer<Float>, ldx: Int, weight w: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                             out: UnsafeMutablePointer<Float>, ldo: Int, rows: Range<Int>, dim: Int) {
        for i in rows {
            let xr = x + i * ldx
            let o = out + i * ldo
            let r = rstd[i]
            for j in 0..<dim { o[j] = xr[j] * r * w[j] }
        }
    }

    /// dx[i, :] += rstd·(w⊙dy) − rstd³·x·Σ(w⊙dy⊙x)/dim, all `[rows, dim]` with stride `dim`.
    @inline(__always)
    static func rmsNormBackward(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                                rstd: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, rows: Range<Int>, dim: Int) {
        for i in rows {
            let g = dy + i * dim, xr = x + i * dim, d = dx + i * dim
            let r = rstd[i]
            var dot: Float = 0
            for j in 0..<dim { dot += g[j] * w[j] * xr[j] }
            let c = r * r * r * dot / Float(dim)
            for j in 0..<dim { d[j] += r * g[j] * w[j] - c * xr[j] }
        }
    }

    @inline(__always)
    static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = SIMD8<Float>()
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            acc.addProduct(v, v)
            i += 8
        }
        var s = acc.sum()
        while i < n { s += x[i] * x[i]; i += 1 }
        return s
    }

    // MARK: - Rotary embedding

    /// Rotates `heads` vectors of `headDim` at `x` in place: pairs (2i, 2i+1) by angle θ_i, given cos/sin θ
    /// `[headDim / 2]` (llama.cpp's interleaved layout, which the GGUF's permuted q/k rows expect).
    @inline(__always)
    static func rope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, cos: UnsafePointer<Float>,
                     sin: UnsafePointer<Float>, ropePairs: Int) {
        for h in 0..<heads {
            let v = x + h * headDim
            for i in 0..<ropePairs {
                let a = v[2 * i], b = v[2 * i + 1]
                v[2 * i] = a * cos[i] - b * sin[i]
                v[2 * i + 1] = a * sin[i] + b * cos[i]
            }
        }
    }

    /// The backward of `rope` in place on the gradient: rotation by −θ (the transpose of a rotation).
    @inline(__always)
    static func ropeBackward(_ d: UnsafeMutablePointer<Float>, heads: Int, headDim: Int, cos: UnsafePointer<Float>,
                             sin: UnsafePointer<Float>, ropePairs: Int) {
        for h in 0..<heads {
            let v = d + h * headDim
            for i in 0..<ropePairs {
                let a = v[2 * i], b = v[2 * i + 1]
                v[2 * i] = a * cos[i] + b * sin[i]
                v[2 * i + 1] = -a * sin[i] + b * cos[i]
            }
        }
    }

    // MARK: - SwiGLU

    /// h[j] = silu(g[j]) · u[j] for one row; g and u are the two halves of a `[2·ffn]` row.
    @inline(__always)
    static func swiGLU(gu: UnsafePointer<Float>, h: UnsafeMutablePointer<Float>, ffn: Int) {
        Kernels.swiGLU(gate: gu, up: gu + ffn, out: h, count: ffn)
    }

    /// dgu = (dh · u · silu'(g), dh · silu(g)) for one row (written, not accumulated).
    @inline(__always)
    static func swiGLUBackward(dh: UnsafePointer<Float>, gu: UnsafePointer<Float>, dgu: UnsafeMutablePointer<Float>, ffn: Int) {
        var j = 0
        while j + 8 <= ffn {
            let g = UnsafeRawPointer(gu + j).loadUnaligned(as: SIMD8<Float>.self)
            let u = UnsafeRawPointer(gu + ffn + j).loadUnaligned(as: SIMD8<Float>.self)
            let d = UnsafeRawPointer(dh + j).loadUnaligned(as: SIMD8<Float>.self)
            let s = 1 / (1 + Kernels.exp(-g))
            UnsafeMutableRawPointer(dgu + j).storeBytes(of: d * u * s * (1 + g * (1 - s)), as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(dgu + ffn + j).storeBytes(of: d * (g * s), as: SIMD8<Float>.self)
            j += 8
        }
        while j < ffn {
            let g = gu[j], u = gu[ffn + j]
            let s = 1 / (1 + expf(-g))
            let silu = g * s
            dgu[j] = dh[j] * u * s * (1 + g * (1 - s))
            dgu[ffn + j] = dh[j] * silu
            j += 1
        }
    }
}

/// Dropout on a LoRA input, as PEFT applies it (`lora_B(lora_A(dropout(x)))`, one independent mask per module):
/// each element is kept with probability 1 − p and scaled by 1 / (1 − p). p is rounded to a multiple of 2⁻¹⁶
/// (each 64-bit draw decides four elements), and the scale uses the rounded value, so E[mask] = 1 exactly.
///
/// The mask is a pure function of (seed, step, example, position, layer, projection, feature) — counter-based, no
/// state — so forward and backward regenerate it identically, and resuming or re-packing a step gives the same masks.
public struct DropoutMask: Sendable {
    public let probability: Float
    let threshold: UInt16
    let keepScale: Float

    public init(probability: Float) {
        self.probability = probability
        let t = min(65535, max(0, (Double(probability) * 65536).rounded()))
        threshold = UInt16(t)
        keepScale = Float(65536 / (65536 - t))
    }

    public var isActive: Bool { threshold > 0 }

    /// The mask's random stream for one row of one module.
    @inline(__always)
    public static func rowKey(seed: UInt64, step: Int, example: Int, position: Int, layer: Int, projection: Int) -> UInt64 {
        var h = mix(seed ^ 0x9E37_79B9_7F4A_7C15)
        h = mix(h ^ UInt64(truncatingIfNeeded: step))
        h = mix(h ^ UInt64(truncatingIfNeeded: example))
        h = mix(h ^ UInt64(truncatingIfNeeded: position))
        return mix(h ^ UInt64(truncatingIfNeeded: layer * 16 + projection))
    }

    /// out[j] = keep(j) ? x[j] · 1/(1−p) : 0, for one row of `count` features (`out` may be `x`).
    @inline(__always)
    public func apply(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int, key: UInt64) {
        var state = key
        var j = 0
        // Four elements a draw: lane k takes bits 16k..<16k+16 (little-endian), as the scalar tail does.
        let scale = SIMD4<Float>(repeating: keepScale), limit = SIMD4<UInt32>(repeating: UInt32(threshold))
        while j + 4 <= count {
            state &+= 0x9E37_79B9_7F4A_7C15
            let r = SIMD4<UInt32>(truncatingIfNeeded: unsafeBitCast(Self.mix(state), to: SIMD4<UInt16>.self))
            let v = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD4<Float>.self) * scale
            UnsafeMutableRawPointer(out + j).storeBytes(of: v.replacing(with: 0, where: r .< limit), as: SIMD4<Float>.self)
            j += 4
        }
        if j < count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var r = Self.mix(state)
            for k in j..<count {
                out[k] = UInt16(truncatingIfNeeded: r) >= threshold ? x[k] * keepScale : 0
                r >>= 16
            }
        }
    }

    /// SplitMix64's finaliser.
    @inline(__always)
    static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
