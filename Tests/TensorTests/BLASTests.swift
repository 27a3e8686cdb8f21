import XCTest
@testable import Tensor

/// The sgemm/sgemv wrappers against naive loops in double precision, with row strides wider
/// than the matrices (padding that must stay untouched) and every transpose combination.
final class BLASTests: XCTestCase {
    static let padding: Float = 12345.5

    /// C = alpha · op(A) · op(B) + beta · C over row-major storage with the given strides;
    /// `beta == 0` ignores C's old contents (BLAS convention), padding columns are kept.
    func naiveGemm(m: Int, n: Int, k: Int, alpha: Float, a: [Float], lda: Int, transposeA: Bool,
                   b: [Float], ldb: Int, transposeB: Bool, beta: Float, c: [Float], ldc: Int) -> (c: [Double], scale: [Double]) {
        var out = c.map(Double.init), scale = c.map { _ in 1.0 }
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, mag = 0.0
                for p in 0..<k {
                    let av = Double(transposeA ? a[p * lda + i] : a[i * lda + p])
                    let bv = Double(transposeB ? b[j * ldb + p] : b[p * ldb + j])
                    s += av * bv
                    mag += abs(av * bv)
                }
                let old = beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])
                out[i * ldc + j] = Double(alpha) * s + old
                scale[i * ldc + j] = abs(Double(alpha)) * mag + abs(old) + 1e-30
            }
        }
        return (out, scale)
    }

    func testSgemmAgainstTripleLoop() {
        var rng = SplitMix64(seed: 20)
        let shapes = [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 48, 40), (2, 100, 3), (1, 576, 64)]
        for (m, n, k) in shapes {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (-2, 0.25)] {
                        // Storage widths: A is [m, k] (or [k, m] transposed), B is [k, n] (or [n, k]).
                        let aRows = transposeA ? k : m, aCols = transposeA ? m : k
                        let bRows = transposeB ? n : k, bCols = transposeB ? k : n
                        let lda = aCols + 3, ldb = bCols + 5, ldc = n + 2
                        var a = rng.floats(aRows * lda), b = rng.floats(bRows * ldb, in: -2...2)
                        for r in 0..<aRows { for c in aCols..<lda { a[r * lda + c] = .nan } }  // must never be read
                        for r in 0..<bRows { for c in bCols..<ldb { b[r * ldb + c] = .nan } }
                        var c = rng.floats(m * ldc, in: -3...3)
                        for r in 0..<m {
                            for j in n..<ldc { c[r * ldc + j] = Self.padding }
                            if beta == 0 { for j in 0..<n { c[r * ldc + j] = .nan } }  // ignored when beta = 0
                        }
                        let ref = naiveGemm(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, transposeA: transposeA,
                                            b: b, ldb: ldb, transposeB: transposeB, beta: beta, c: c, ldc: ldc)
                        BLAS.sgemm(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, transposeB: transposeB,
                                   beta: beta, c: &c, ldc: ldc, transposeA: transposeA)
                        let label = "sgemm m=\(m) n=\(n) k=\(k) tA=\(transposeA) tB=\(transposeB) alpha=\(alpha) beta=\(beta)"
                        for r in 0..<m {
                            for j in n..<ldc { XCTAssertEqual(c[r * ldc + j], Self.padding, "\(label): padding changed") }
                        }
                        assertClose(c, ref.c, tolerance: 1e-5, scale: ref.scale, label)
                    }
                }
            }
        }
    }

    func testSgemmByHand() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]; with B given as Bᵀ = [5 7; 6 8] and transposeB.
        var c = [Float](repeating: 0, count: 4)
        BLAS.sgemm(m: 2, n: 2, k: 2, a: [1, 2, 3, 4], lda: 2, b: [5, 6, 7, 8], ldb: 2, transposeB: false, c: &c, ldc: 2)
        XCTAssertEqual(c, [19, 22, 43, 50])
        BLAS.sgemm(m: 2, n: 2, k: 2, a: [1, 2, 3, 4], lda: 2, b: [5, 7, 6, 8], ldb: 2, transposeB: true, c: &c, ldc: 2)
        XCTAssertEqual(c, [19, 22, 43, 50])
        BLAS.sgemm(m: 2, n: 2, k: 2, alpha: 2, a: [1, 2, 3, 4], lda: 2, b: [1, 0, 0, 1], ldb: 2, transposeB: false,
                   beta: -1, c: &c, ldc: 2)
        XCTAssertEqual(c, [-17, -18, -37, -42])  // 2·A - C
    }

    /// When OpenBLAS's own choice stands and what replaces a generic fallback.
    func testCoreTypeReplacement() {
        XCTAssertEqual(BLAS.coreTypeReplacement(current: "Prescott", avx512: true, avx2: true), "SkylakeX")
        XCTAssertEqual(BLAS.coreTypeReplacement(current: "Prescott", avx512: false, avx2: true), "Haswell")
        XCTAssertEqual(BLAS.coreTypeReplacement(current: "Sandybridge", avx512: false, avx2: true), "Haswell")
        XCTAssertNil(BLAS.coreTypeReplacement(current: "Cooperlake", avx512: true, avx2: true))
        XCTAssertNil(BLAS.coreTypeReplacement(current: "SkylakeX", avx512: true, avx2: true))
        XCTAssertNil(BLAS.coreTypeReplacement(current: "Zen", avx512: false, avx2: true))
        XCTAssertNil(BLAS.coreTypeReplacement(current: "Haswell", avx512: false, avx2: true))
        // A CPU without AVX2 gets what OpenBLAS chose.
        XCTAssertNil(BLAS.coreTypeReplacement(current: "Prescott", avx512: false, avx2: false))
        // A Haswell kernel set on an AVX-512 CPU is only half as wide.
        XCTAssertEqual(BLAS.coreTypeReplacement(current: "Haswell", avx512: true, avx2: true), "SkylakeX")
    }

    func testEmptySizes() {
        var c: [Float] = [7, 7, 7, 7]
        let a: [Float] = [1, 1, 1, 1], b: [Float] = [1, 1, 1, 1]
        BLAS.sgemm(m: 0, n: 2, k: 2, a: a, lda: 2, b: b, ldb: 2, transposeB: false, beta: 0, c: &c, ldc: 2)
        BLAS.sgemm(m: 2, n: 0, k: 2, a: a, lda: 2, b: b, ldb: 2, transposeB: true, beta: 0, c: &c, ldc: 2)
        XCTAssertEqual(c, [7, 7, 7, 7])
        // k = 0: the product is empty, C = beta · C.
        BLAS.sgemm(m: 2, n: 2, k: 0, a: a, lda: 2, b: b, ldb: 2, transposeB: false, beta: 0.5, c: &c, ldc: 2)
        XCTAssertEqual(c, [3.5, 3.5, 3.5, 3.5])
    }

    func testSgemv() {
        var rng = SplitMix64(seed: 21)
        for (m, n) in [(1, 1), (7, 13), (64, 576), (100, 3)] {
            for (alpha, beta) in [(Float(1), Float(0)), (-0.5, 2)] {
                let lda = n + 4
                let a = rng.floats(m * lda), x = rng.floats(n)
                var y = rng.floats(m)
                var expected = [Double](repeating: 0, count: m), scale = expected
                for i in 0..<m {
                    var s = 0.0, mag = 0.0
                    for j in 0..<n { s += Double(a[i * lda + j]) * Double(x[j]); mag += abs(Double(a[i * lda + j]) * Double(x[j])) }
                    let old = beta == 0 ? 0 : Double(beta) * Double(y[i])
                    expected[i] = Double(alpha) * s + old
                    scale[i] = abs(Double(alpha)) * mag + abs(old) + 1e-30
                }
                if beta == 0 { y = y.map { _ in .nan } }
                BLAS.sgemv(m: m, n: n, alpha: alpha, a: a, lda: lda, x: x, beta: beta, y: &y)
                assertClose(y, expected, tolerance: 1e-5, scale: scale, "sgemv m=\(m) n=\(n) alpha=\(alpha) beta=\(beta)")
            }
        }
    }
}
