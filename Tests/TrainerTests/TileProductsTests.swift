import Tensor
import XCTest
@testable import Trainer

/// The AMX tile products (MatrixAMX through TileProducts) against plain Double sums, on shapes with every side
/// off the 16- and 32-blocks, both layouts of B. Skipped where the CPU has no AMX or Linux refuses the tiles.
final class TileProductsTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(AMXTiles.available, "no AMX-BF16 here (or LORASERVE_KERNELS asks for less)")
    }

    struct Case {
        let m: Int, n: Int, k: Int
        let a: [Float], b: [Float]
        let transposedB: Bool
        var ldb: Int { transposedB ? k : n }

        init(m: Int, n: Int, k: Int, transposedB: Bool, seed: UInt64) {
            self.m = m; self.n = n; self.k = k; self.transposedB = transposedB
            var rng = SplitMix64(seed: seed)
            a = (0..<(m * k)).map { _ in 2 * rng.nextUnitFloat() - 1 }
            b = (0..<(n * k)).map { _ in (2 * rng.nextUnitFloat() - 1) * 0.1 }
        }

        func bValue(_ kk: Int, _ j: Int) -> Float { transposedB ? b[j * k + kk] : b[kk * n + j] }

        /// C in Double, element by element.
        func reference() -> [Double] {
            var c = [Double](repeating: 0, count: m * n)
            for i in 0..<m { for j in 0..<n {
                var s = 0.0
                for kk in 0..<k { s += Double(a[i * k + kk]) * Double(bValue(kk, j)) }
                c[i * n + j] = s
            } }
            return c
        }

        func onTiles(threads: Int) -> [Float] {
            let tiles = TileProducts(pool: ThreadPool(threads: threads))
            var c = [Float](repeating: .nan, count: m * n)
            a.withUnsafeBufferPointer { a in b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                tiles.multiply(m: m, n: n, k: k, a: a.baseAddress!, lda: k, b: b.baseAddress!, ldb: ldb,
                               transposedB: transposedB, c: c.baseAddress!, ldc: n)
            } } }
            return c
        }
    }

    /// Relative error of the whole product (Frobenius): the two-halves split keeps 16 significand bits of each
    /// operand, ~4e-6 measured; plain bfloat16 products would give ~2e-3. Also no element far off on its own.
    func assertClose(_ got: [Float], _ want: [Double], _ label: String) {
        var err = 0.0, norm = 0.0, worst = 0.0
        for (g, w) in zip(got, want) {
            err += (Double(g) - w) * (Double(g) - w)
            norm += w * w
            worst = max(worst, abs(Double(g) - w))
        }
        let rms = (norm / Double(max(1, want.count))).squareRoot()
        XCTAssertLessThan((err / norm).squareRoot(), 2e-5, label)
        XCTAssertLessThan(worst, 1e-4 * rms + 1e-6, label)
    }

    func testMatchesDoubleSumsOnEdgeShapes() {
        let shapes = [(1, 1, 1), (5, 17, 33), (33, 31, 64), (64, 96, 100), (70, 129, 47), (100, 40, 300), (257, 65, 96)]
        for (index, (m, n, k)) in shapes.enumerated() {
            for transposed in [true, false] {
                let c = Case(m: m, n: n, k: k, transposedB: transposed, seed: UInt64(10 + index))
                assertClose(c.onTiles(threads: 2), c.reference(), "m \(m) n \(n) k \(k) transposed \(transposed)")
            }
        }
    }

    /// The summed dimension long enough for several passes over C (the output head's gradient sums 49152), and
    /// the row split of a tall product; bits do not depend on the thread count.
    func testLongSumsAndTheSameBitsOnOneOrTwoThreads() {
        for (m, n, k) in [(96, 64, 9000), (300, 70, 64)] {
            let c = Case(m: m, n: n, k: k, transposedB: false, seed: 3)
            let two = c.onTiles(threads: 2)
            assertClose(two, c.reference(), "m \(m) n \(n) k \(k)")
            XCTAssertEqual(two, c.onTiles(threads: 1), "m \(m) n \(n) k \(k): 1 thread vs 2")
        }
    }

    func testPackedOperandGivesTheSameBitsAsPackingPerCall() {
        let c = Case(m: 80, n: 200, k: 96, transposedB: true, seed: 21)
        let pool = ThreadPool(threads: 2)
        let tiles = TileProducts(pool: pool)
        var out = [Float](repeating: .nan, count: c.m * c.n)
        c.a.withUnsafeBufferPointer { a in c.b.withUnsafeBufferPointer { b in out.withUnsafeMutableBufferPointer { o in
            let packed = TileProducts.PackedOperand(b: b.baseAddress!, ldb: c.ldb, transposed: true, n: c.n, k: c.k, pool: pool)
            tiles.multiply(m: c.m, a: a.baseAddress!, lda: c.k, b: packed, c: o.baseAddress!, ldc: c.n)
        } } }
        XCTAssertEqual(out, c.onTiles(threads: 2))
    }

    /// Gemm sends plain large products to the tiles and keeps the rest (scaled, accumulated, transposed A, a
    /// side under 64) on OpenBLAS.
    func testGemmRoutesOnlyPlainLargeProducts() {
        let gemm = Gemm(pool: ThreadPool(threads: 2))
        XCTAssertTrue(gemm.onTiles(m: 1024, n: 576, k: 576, alpha: 1, transA: false, beta: 0))
        XCTAssertFalse(gemm.onTiles(m: 1024, n: 8, k: 576, alpha: 1, transA: false, beta: 0))
        XCTAssertFalse(gemm.onTiles(m: 1024, n: 576, k: 576, alpha: 2, transA: false, beta: 0))
        XCTAssertFalse(gemm.onTiles(m: 1024, n: 576, k: 576, alpha: 1, transA: false, beta: 1))
        XCTAssertFalse(gemm.onTiles(m: 1024, n: 576, k: 576, alpha: 1, transA: true, beta: 0))
        XCTAssertFalse(Gemm(pool: ThreadPool(threads: 1), tiles: false).onTiles(m: 1024, n: 576, k: 576, alpha: 1,
                                                                                 transA: false, beta: 0))
    }
}
