import XCTest
@testable import Tensor

/// The decode attention kernels against double-precision sums: every key count around the
/// eight-key groups (0...19, and a long cache), one to three query heads, head sizes with and
/// without the 64-wide fast paths, rows further apart than a head (a cache row holds every KV head).
final class AttentionKernelsTests: XCTestCase {
    /// Σ term(i) for i in 0..<n in double precision, and Σ |term(i)| (the scale of its rounding error in f32).
    static func sum(_ n: Int, _ term: (Int) -> Double) -> (exact: Double, magnitude: Double) {
        var exact = 0.0, magnitude = 0.0
        for i in 0..<n { let p = term(i); exact += p; magnitude += abs(p) }
        return (exact, magnitude)
    }

    func testScoresAgainstDoubleDots() {
        var rng = SplitMix64(seed: 31)
        for dim in [64, 32, 72] {
            let stride = 3 * dim + 8
            for heads in 1...3 {
                for count in Array(0...19) + [1000] {
                    let q = rng.floats(heads * dim), k = rng.floats(max(1, count) * stride)
                    let ldS = count + 5
                    var s = [Float](repeating: .nan, count: heads * ldS)
                    AttentionKernels.scores(q, heads: heads, dim: dim, keys: k, stride: stride, count: count, scale: 0.125,
                                            into: &s, ldS: ldS)
                    for j in 0..<heads {
                        for t in 0..<count {
                            let (exact, magnitude) = Self.sum(dim) { 0.125 * Double(q[j * dim + $0]) * Double(k[t * stride + $0]) }
                            XCTAssertLessThanOrEqual(abs(Double(s[j * ldS + t]) - exact), 1e-6 * magnitude + 1e-30,
                                                     "dim \(dim) heads \(heads) count \(count): head \(j) key \(t)")
                        }
                        for t in count..<ldS { XCTAssertTrue(s[j * ldS + t].isNaN, "wrote past the keys") }
                    }
                }
            }
        }
    }

    func testWeightedSumAgainstDoubleSums() {
        var rng = SplitMix64(seed: 32)
        for dim in [64, 128, 72, 8, 5] {
            let stride = 3 * dim + 3
            for heads in 1...4 {
                for count in [0, 1, 2, 7, 8, 9, 300] {
                    let ldW = count + 2
                    let w = rng.floats(heads * ldW, in: 0...1), v = rng.floats(max(1, count) * stride)
                    var out = [Float](repeating: .nan, count: heads * dim + 4)
                    AttentionKernels.weightedSum(w, ldW: ldW, heads: heads, values: v, stride: stride, count: count, dim: dim, into: &out)
                    for j in 0..<heads {
                        for d in 0..<dim {
                            let (exact, magnitude) = Self.sum(count) { Double(w[j * ldW + $0]) * Double(v[$0 * stride + d]) }
                            XCTAssertLessThanOrEqual(abs(Double(out[j * dim + d]) - exact), 1e-6 * magnitude,
                                                     "dim \(dim) heads \(heads) count \(count): head \(j) element \(d)")
                        }
                    }
                    for d in heads * dim..<heads * dim + 4 { XCTAssertTrue(out[d].isNaN, "wrote past the heads") }
                }
            }
        }
    }
}
