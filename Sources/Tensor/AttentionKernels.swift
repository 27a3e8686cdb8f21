import _Builtin_intrinsics.intel

/// One decode query's attention over a sequence's cache, whose key and value rows are `stride`
/// floats apart: the scores q·K[t] of the query heads that share a KV head, and the value side
/// out = Σ_t w[t] · V[t].
///
/// Why kernels: a call of `Kernels.dot` per key and head cost more than its 64 multiply-adds, and
/// the plain value side (`Kernels.axpy` per key into `out`) loads and stores `out` for every
/// key, so each key waited for the previous key's stores (store-to-load forwarding); at 1000 cached
/// tokens that loop was the largest cost of a decode step.
/// Naive reference: AttentionKernelsTests.
///
/// Not `@inlinable`: only this module is compiled for FMA.
public enum AttentionKernels {
    /// s[j · ldS + t] = scale · q_j · k[t · stride ..< t · stride + dim] for t in 0..<count and the `heads`
    /// queries q_j = q + j · dim. Eight keys at a time: their eight sums are reduced together (`hadd`), and
    /// their rows, read from memory for the first head, are in L1 for the others.
    public static func scores(_ q: UnsafePointer<Float>, heads: Int, dim: Int, keys k: UnsafePointer<Float>, stride: Int,
                              count: Int, scale: Float, into s: UnsafeMutablePointer<Float>, ldS: Int) {
        var t = 0
        if dim == 64 {
            let sv = SIMD4<Float>(repeating: scale)
            while t + 8 <= count {
                for j in 0..<heads {
                    let qj = UnsafeRawPointer(q + j * 64)
                    let q0 = qj.loadUnaligned(as: __m256.self), q1 = qj.loadUnaligned(fromByteOffset: 32, as: __m256.self)
                    let q2 = qj.loadUnaligned(fromByteOffset: 64, as: __m256.self), q3 = qj.loadUnaligned(fromByteOffset: 96, as: __m256.self)
                    let q4 = qj.loadUnaligned(fromByteOffset: 128, as: __m256.self), q5 = qj.loadUnaligned(fromByteOffset: 160, as: __m256.self)
                    let q6 = qj.loadUnaligned(fromByteOffset: 192, as: __m256.self), q7 = qj.loadUnaligned(fromByteOffset: 224, as: __m256.self)
                    // Eight lanes of q_j · k[t + i], to be summed.
                    @inline(__always) func partial(_ i: Int) -> __m256 {
                        let r = UnsafeRawPointer(k + (t + i) * stride)
                        var a = _mm256_mul_ps(q0, r.loadUnaligned(as: __m256.self))
                        a = _mm256_fmadd_ps(q1, r.loadUnaligned(fromByteOffset: 32, as: __m256.self), a)
                        a = _mm256_fmadd_ps(q2, r.loadUnaligned(fromByteOffset: 64, as: __m256.self), a)
                        a = _mm256_fmadd_ps(q3, r.loadUnaligned(fromByteOffset: 96, as: __m256.self), a)
                        a = _mm256_fmadd_ps(q4, r.loadUnaligned(fromByteOffset: 128, as: __m256.self), a)
                        a = _mm256_fmadd_ps(q5, r.loadUnaligned(fromByteOffset: 160, as: __m256.self), a)
                        a = _mm256_fmadd_ps(q6, r.loadUnaligned(fromByteOffset: 192, as: __m256.self), a)
                        return _mm256_fmadd_ps(q7, r.loadUnaligned(fromByteOffset: 224, as: __m256.self), a)
                    }
                    // hadd(hadd(p0, p1), hadd(p2, p3)): lane i (i < 4) holds half of key i's sum, lane i + 4 the rest.
                    let x0 = _mm256_hadd_ps(_mm256_hadd_ps(partial(0), partial(1)), _mm256_hadd_ps(partial(2), partial(3)))
                    let x1 = _mm256_hadd_ps(_mm256_hadd_ps(partial(4), partial(5)), _mm256_hadd_ps(partial(6), partial(7)))
                    let out = UnsafeMutableRawPointer(s + j * ldS + t)
                    out.storeBytes(of: (x0.lowHalf + x0.highHalf) * sv, as: SIMD4<Float>.self)
                    out.storeBytes(of: (x1.lowHalf + x1.highHalf) * sv, toByteOffset: 16, as: SIMD4<Float>.self)
                }
                t += 8
            }
        }
        while t < count {
            for j in 0..<heads { s[j * ldS + t] = Kernels.dot(q + j * dim, k + t * stride, count: dim) * scale }
            t += 1
        }
    }

    /// out_j[d] = Σ_{t < count} w_j[t] · v[t · stride + d] for d in 0..<dim and the `heads` weight rows
    /// w_j = w + j · ldW, out_j = out + j · dim (overwritten). Three heads at a time over 32-wide slices:
    /// each slice of a value row is loaded once for all of them, and the twelve sums stay in registers
    /// for the whole sweep over the keys.
    public static func weightedSum(_ w: UnsafePointer<Float>, ldW: Int, heads: Int, values v: UnsafePointer<Float>, stride: Int,
                                   count: Int, dim: Int, into out: UnsafeMutablePointer<Float>) {
        var j0 = 0
        while j0 < heads {
            switch heads - j0 {
            case 1: slices(1, w + j0 * ldW, ldW, v, stride, count, dim, out + j0 * dim)
            case 2: slices(2, w + j0 * ldW, ldW, v, stride, count, dim, out + j0 * dim)
            default: slices(3, w + j0 * ldW, ldW, v, stride, count, dim, out + j0 * dim)
            }
            j0 += 3
        }
    }

    /// `weightedSum` for n (1...3, a constant after inlining) heads.
    @inline(__always)
    static func slices(_ n: Int, _ w: UnsafePointer<Float>, _ ldW: Int, _ v: UnsafePointer<Float>, _ stride: Int, _ count: Int,
                       _ dim: Int, _ out: UnsafeMutablePointer<Float>) {
        var d0 = 0
        while d0 + 32 <= dim {
            let zero = _mm256_setzero_ps()
            var a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero
            var c0 = zero, c1 = zero, c2 = zero, c3 = zero
            for t in 0..<count {
                let row = UnsafeRawPointer(v + t * stride + d0)
                let v0 = row.loadUnaligned(as: __m256.self), v1 = row.loadUnaligned(fromByteOffset: 32, as: __m256.self)
                let v2 = row.loadUnaligned(fromByteOffset: 64, as: __m256.self), v3 = row.loadUnaligned(fromByteOffset: 96, as: __m256.self)
                let x = _mm256_set1_ps(w[t])
                a0 = _mm256_fmadd_ps(x, v0, a0); a1 = _mm256_fmadd_ps(x, v1, a1)
                a2 = _mm256_fmadd_ps(x, v2, a2); a3 = _mm256_fmadd_ps(x, v3, a3)
                if n > 1 {
                    let y = _mm256_set1_ps(w[ldW + t])
                    b0 = _mm256_fmadd_ps(y, v0, b0); b1 = _mm256_fmadd_ps(y, v1, b1)
                    b2 = _mm256_fmadd_ps(y, v2, b2); b3 = _mm256_fmadd_ps(y, v3, b3)
                }
                if n > 2 {
                    let z = _mm256_set1_ps(w[2 * ldW + t])
                    c0 = _mm256_fmadd_ps(z, v0, c0); c1 = _mm256_fmadd_ps(z, v1, c1)
                    c2 = _mm256_fmadd_ps(z, v2, c2); c3 = _mm256_fmadd_ps(z, v3, c3)
                }
            }
            @inline(__always) func store(_ j: Int, _ r0: __m256, _ r1: __m256, _ r2: __m256, _ r3: __m256) {
                let o = UnsafeMutableRawPointer(out + j * dim + d0)
                o.storeBytes(of: r0, as: __m256.self); o.storeBytes(of: r1, toByteOffset: 32, as: __m256.self)
                o.storeBytes(of: r2, toByteOffset: 64, as: __m256.self); o.storeBytes(of: r3, toByteOffset: 96, as: __m256.self)
            }
            store(0, a0, a1, a2, a3)
            if n > 1 { store(1, b0, b1, b2, b3) }
            if n > 2 { store(2, c0, c1, c2, c3) }
            d0 += 32
        }
        // A head size that is not a multiple of 32: the rest one element at a time.
        while d0 < dim {
            for j in 0..<n {
                var a: Float = 0
                for t in 0..<count { a += w[j * ldW + t] * v[t * stride + d0] }
                out[j * dim + d0] = a
            }
            d0 += 1
        }
    }
}
