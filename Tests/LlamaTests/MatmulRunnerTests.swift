import XCTest
import Llama
import Tensor

/// `MatmulRunner` picks a kernel by token count: the integer one-token kernel, the multi-token
/// kernel in groups of up to eight, or sgemm over dequantized tiles; on AMX machines the tile
/// kernel (groups of 16) for 2 tokens and more. Every path, and every group split (9 = 8 + 1,
/// 17 = 8 + 8 + 1, 17 = 16 + 1, ...), must give the product of the dequantized
/// matrix (`WeightMatrix.dense`) in double precision, here on the default model's own Q4_1
/// projections and its Q8_0 embedding rows.
final class MatmulRunnerTests: XCTestCase {
    func check(_ w: WeightMatrix, rows: Int? = nil, tokenCounts: [Int], runner: MatmulRunner, file: StaticString = #filePath, line: UInt = #line) {
        let dense = w.dense()
        var rng = SystemRandomNumberGenerator()
        for n in tokenCounts {
            let x = (0..<n * w.cols).map { _ in Float.random(in: -2...2, using: &rng) }
            var y = [Float](repeating: .nan, count: n * w.rows)
            runner.matmul(w, input: x, output: &y, n: n)
            var worst = 0.0
            for t in 0..<n {
                for r in 0..<(rows ?? w.rows) {
                    var exact = 0.0, scale = 0.0
                    for c in 0..<w.cols {
                        let p = Double(dense[r * w.cols + c]) * Double(x[t * w.cols + c])
                        exact += p; scale += abs(p)
                    }
                    worst = max(worst, abs(Double(y[t * w.rows + r]) - exact) / scale)
                }
            }
            // 1e-5 of Σ|w·x|: the one-token kernel's activation split and f32 summation (QuantizedDotTests).
            XCTAssertLessThan(worst, 1e-5, "\(n) tokens: worst error \(worst) of Σ|w·x|", file: file, line: line)
            XCTAssertFalse(y.contains { $0.isNaN }, "\(n) tokens: an output was not written", file: file, line: line)
        }
    }

    func testEveryPathOnTheModelsMatrices() throws {
        let model = try SharedModel.get()
        let runner = MatmulRunner(pool: model.pool, maxCols: 1536)
        let counts = [1, 2, 3, 4, 5, 8, 9, 16, 17, 31, 64, 65, 100]
        for tiles in AMXTiles.available ? [true, false] : [false] {
            runner.usesTiles = tiles
            check(model.weights.layers[3].weight(.q), tokenCounts: counts, runner: runner)
            check(model.weights.layers[3].weight(.down), tokenCounts: counts, runner: runner)
            // The Q8_0 embedding as output head: 49152 rows, checked on the first 2048.
            check(model.weights.output, rows: 2048, tokenCounts: [1, 3, 8, 13, 70], runner: runner)
        }
    }

    /// f32 matrices (merged adapters, small models): the multi-token kernel when the rows are
    /// a multiple of 32 long, else the per-token dot and sgemm; on AMX machines, for rows a
    /// multiple of 32 long, the f32 tile kernel from 2 tokens up (weights in bfloat16 hi + lo,
    /// tokens in three exact parts; 50 rows: a partial group of 16).
    func testF32Matrices() {
        let runner = MatmulRunner(pool: ThreadPool(threads: 2), maxCols: 576)
        var rng = SystemRandomNumberGenerator()
        for tiles in AMXTiles.available ? [true, false] : [false] {
            runner.usesTiles = tiles
            for (rows, cols) in [(96, 256), (50, 40), (50, 64), (192, 576)] {
                let w = WeightMatrix(rows: rows, cols: cols, copying: (0..<rows * cols).map { _ in Float.random(in: -1...1, using: &rng) })
                check(w, tokenCounts: [1, 2, 4, 5, 8, 9, 40, 64, 65, 90], runner: runner)
            }
        }
    }
}
