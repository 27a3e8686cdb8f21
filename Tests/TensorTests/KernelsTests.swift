import Foundation
import XCTest
@testable import Tensor

/// Each kernel in `Kernels` against a plain double-precision version of its formula written here.
final class KernelsTests: XCTestCase {
    /// Lengths around the 8- and 16-wide vector bodies and their scalar tails.
    let lengths = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 576, 1000, 1536, 4099]

    // MARK: - rmsNorm: out[i] = x[i] / sqrt(mean(x²) + eps) · w[i]

    func naiveRMSNorm(_ x: [Float], _ w: [Float], eps: Float) -> [Double] {
        let ss = x.reduce(0.0) { $0 + Double($1) * Double($1) }
        let scale = 1 / (ss / Double(x.count) + Double(eps)).squareRoot()
        return zip(x, w).map { Double($0) * scale * Double($1) }
    }

    func testRMSNorm() {
        var rng = SplitMix64(seed: 1)
        for n in lengths where n > 0 {
            for (eps, range) in [(Float(1e-5), Float(-3)...3), (1e-6, -1000...1000), (1e-5, -1e-3...1e-3)] {
                let x = rng.floats(n, in: range), w = rng.floats(n, in: -2...2)
                var out = Guarded([Float](repeating: 0, count: n))
                out.storage.withUnsafeMutableBufferPointer { o in
                    Kernels.rmsNorm(x, weight: w, out: o.baseAddress!, count: n, eps: eps)
                }
                assertClose(out.values, naiveRMSNorm(x, w, eps: eps), tolerance: 1e-5, "rmsNorm n=\(n) eps=\(eps) range=\(range)")
                XCTAssertTrue(out.guardIntact, "rmsNorm wrote past \(n)")
            }
        }
    }

    func testRMSNormOfZerosIsZeros() {
        let x = [Float](repeating: 0, count: 20), w = [Float](repeating: 3, count: 20)
        var out = [Float](repeating: .nan, count: 20)
        Kernels.rmsNorm(x, weight: w, out: &out, count: 20, eps: 1e-5)
        XCTAssertEqual(out, x)
    }

    func testRMSNormByHand() {
        // x = [3, 4]: mean(x²) = 12.5, eps = 0 -> scale = 1/sqrt(12.5); w = [1, 2].
        var out = [Float](repeating: 0, count: 2)
        Kernels.rmsNorm([3, 4], weight: [1, 2], out: &out, count: 2, eps: 0)
        assertClose(out, [3 / 12.5.squareRoot(), 8 / 12.5.squareRoot()], tolerance: 1e-6, "rmsNorm by hand")
    }

    // MARK: - rope: pairs (2i, 2i+1) of each head rotated by position · invFreq[i]

    func invFreq(headDim: Int, base: Double = 10000) -> [Float] {
        (0..<headDim / 2).map { Float(pow(base, -2 * Double($0) / Double(headDim))) }
    }

    /// The rotation written out: (a, b) -> (a cos θ - b sin θ, a sin θ + b cos θ). `angle` gives θ
    /// for pair i. Also returns each element's pair norm, the natural scale of its error.
    func naiveRope(_ x: [Float], heads: Int, headDim: Int, angle: (Int) -> Double) -> (out: [Double], scale: [Double]) {
        var out = x.map(Double.init), scale = out
        for h in 0..<heads {
            for i in 0..<headDim / 2 {
                let j = h * headDim + 2 * i
                let a = Double(x[j]), b = Double(x[j + 1]), t = angle(i)
                out[j] = a * cos(t) - b * sin(t)
                out[j + 1] = a * sin(t) + b * cos(t)
                scale[j] = (a * a + b * b).squareRoot()
                scale[j + 1] = scale[j]
            }
        }
        return (out, scale)
    }

    func testRopeByHand() {
        // One head of 4: pair (x0, x1) turns by 2·0.5 = 1 rad, pair (x2, x3) by 2·0.25 = 0.5 rad.
        var x: [Float] = [1, 2, 3, 4]
        Kernels.rope(&x, heads: 1, headDim: 4, position: 2, invFreq: [0.5, 0.25])
        let expected = [cos(1.0) - 2 * sin(1.0), sin(1.0) + 2 * cos(1.0),
                        3 * cos(0.5) - 4 * sin(0.5), 3 * sin(0.5) + 4 * cos(0.5)]
        assertClose(x, expected, tolerance: 1e-6, scale: [5, 5, 5, 5], "rope by hand")
        // Interleaved pairs, not halves (NeoX would pair x0 with x2): a quarter turn on pair 0 only.
        var y: [Float] = [1, 0, 0, 1]
        Kernels.rope(&y, heads: 1, headDim: 4, position: 1, invFreq: [.pi / 2, 0])
        assertClose(y, [0, 1, 0, 1], tolerance: 1e-6, scale: [1, 1, 1, 1], "rope layout")
    }

    func testRopeAtPositionZeroIsIdentity() {
        var rng = SplitMix64(seed: 2)
        let x = rng.floats(3 * 64)
        var y = x
        Kernels.rope(&y, heads: 3, headDim: 64, position: 0, invFreq: invFreq(headDim: 64))
        XCTAssertEqual(y, x)
    }

    func testRopeAgainstCosSin() {
        var rng = SplitMix64(seed: 3)
        for headDim in [2, 8, 64, 128] {
            let freq = invFreq(headDim: headDim)
            for heads in [1, 3, 9] {
                for position in [1, 5, 16, 100, 2047, 8191] {
                    let x = rng.floats(heads * headDim, in: -4...4)
                    var out = Guarded(x)
                    out.storage.withUnsafeMutableBufferPointer {
                        Kernels.rope($0.baseAddress!, heads: heads, headDim: headDim, position: position, invFreq: freq)
                    }
                    XCTAssertTrue(out.guardIntact)
                    // The angle is the f32 product position · invFreq[i] (as in llama.cpp, which
                    // also forms θ in f32); cos and sin of it in double.
                    let ref = naiveRope(x, heads: heads, headDim: headDim) { Double(Float(position) * freq[$0]) }
                    assertClose(out.values, ref.out, tolerance: 1e-5, scale: ref.scale,
                                "rope headDim=\(headDim) heads=\(heads) pos=\(position)")
                    if position <= 16 {
                        // Small positions: the f32 angle is within 1e-6 of the exact one.
                        let exact = naiveRope(x, heads: heads, headDim: headDim) { Double(position) * pow(10000, -2 * Double($0) / Double(headDim)) }
                        assertClose(out.values, exact.out, tolerance: 1e-5, scale: exact.scale, "rope exact angle pos=\(position)")
                    }
                }
            }
        }
    }

    // MARK: - exp

    /// Eight-lane e^x against Foundation's double-precision exp: within 4 ulp wherever the
    /// result is a normal float, within 2⁻¹⁴⁹ where it is subnormal, exact at the special values.
    func testExpAgainstDoublePrecision() {
        var rng = SplitMix64(seed: 14)
        var xs = rng.floats(4000, in: -104...89) + rng.floats(2000, in: -1...1)
        xs += [0, -0, 1, -1, 0.5 * Float(M_LN2), -0.5 * Float(M_LN2), 88.7, 88.72, -87.3, -87.34, -100, -103.9, 1e-8, -1e-8]
        while xs.count % 8 != 0 { xs.append(0) }
        for start in stride(from: 0, to: xs.count, by: 8) {
            let v = SIMD8<Float>(xs[start..<start + 8])
            let e = Kernels.exp(v)
            for lane in 0..<8 {
                let x = v[lane], got = Double(e[lane]), exact = Foundation.exp(Double(x))
                if exact > Double(Float.greatestFiniteMagnitude) {
                    XCTAssertEqual(got, .infinity, "exp(\(x))")
                } else if exact >= Double(Float.leastNormalMagnitude) {
                    XCTAssertLessThanOrEqual(abs(got - exact), 4 * Double(Float.ulpOfOne) * exact, "exp(\(x)) = \(got), exact \(exact)")
                } else {
                    XCTAssertLessThanOrEqual(abs(got - exact), Double(Float.leastNonzeroMagnitude), "exp(\(x)) = \(got), exact \(exact)")
                }
            }
        }
        let special = Kernels.exp(SIMD8<Float>(0, .infinity, -.infinity, .nan, 89, 1000, -104, -1e30))
        XCTAssertEqual(special[0], 1)
        XCTAssertEqual(special[1], .infinity)
        XCTAssertEqual(special[2].bitPattern, Float(0).bitPattern)
        XCTAssertTrue(special[3].isNaN)
        XCTAssertEqual(special[4], .infinity)
        XCTAssertEqual(special[5], .infinity)
        XCTAssertEqual(special[6], 0)
        XCTAssertEqual(special[7], 0)
    }

    /// `exponentiate` over a whole vocabulary row (the sampler's no-top-k path, the trainer's cross-entropy): each e^(x - best) within 4 ulp of
    /// Foundation's double exp, -inf giving 0 and NaN staying NaN, and the returned total their sum.
    func testExponentiateWholeVocabularyRow() {
        var values = (0..<49_155).map { Float(($0 * 7919) % 4001) / 100 - 40 }  // -40 ... 0.01
        values[5] = -.infinity
        values[13] = .nan
        let best = values.filter { !$0.isNaN }.max()!
        var work = values
        let total = work.withUnsafeMutableBufferPointer { Kernels.exponentiate($0.baseAddress!, count: $0.count, subtracting: best) }
        var sum = 0.0
        for (i, x) in values.enumerated() {
            if x.isNaN { XCTAssertTrue(work[i].isNaN); continue }
            let exact = Foundation.exp(Double(x) - Double(best))
            XCTAssertLessThanOrEqual(abs(Double(work[i]) - exact), 4 * Double(Float.ulpOfOne) * exact + 1e-45, "x = \(x)")
            sum += Double(work[i])
        }
        XCTAssertEqual(work[5], 0)
        XCTAssertTrue(total.isNaN, "a NaN weight makes the total NaN")
        var clean = values
        clean[13] = -1
        let cleanTotal = clean.withUnsafeMutableBufferPointer { Kernels.exponentiate($0.baseAddress!, count: $0.count, subtracting: best) }
        XCTAssertEqual(cleanTotal, sum + Double(clean[13]), accuracy: 1e-6 * sum)  // eight-lane Float partial sums
    }

    // MARK: - softmax

    func naiveSoftmax(_ x: [Float]) -> [Double] {
        let m = Double(x.max()!)
        let e = x.map { exp(Double($0) - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    func runSoftmax(_ x: [Float]) -> (values: [Float], guardIntact: Bool) {
        var g = Guarded(x)
        g.storage.withUnsafeMutableBufferPointer { Kernels.softmax($0.baseAddress!, count: x.count) }
        return (g.values, g.guardIntact)
    }

    func testSoftmaxRandom() {
        var rng = SplitMix64(seed: 4)
        for n in lengths where n > 0 {
            for range: ClosedRange<Float> in [-1...1, -30...30] {
                let x = rng.floats(n, in: range)
                let out = runSoftmax(x)
                XCTAssertTrue(out.guardIntact)
                assertClose(out.values, naiveSoftmax(x), tolerance: 1e-5, "softmax n=\(n) range=\(range)")
                XCTAssertEqual(out.values.reduce(0.0) { $0 + Double($1) }, 1, accuracy: 1e-5)
            }
        }
    }

    func testSoftmaxLargeValuesDoNotOverflow() {
        let x: [Float] = [1000, 999, 998, -1000, 88.5, 3e38]
        let out = runSoftmax(x).values
        XCTAssertTrue(out.allSatisfy(\.isFinite), "\(out)")
        assertClose(out, naiveSoftmax(x), tolerance: 1e-6, scale: [Double](repeating: 1, count: x.count), "softmax large")
        XCTAssertEqual(out[5], 1)
        let y: [Float] = [1000, 999, 998]
        assertClose(runSoftmax(y).values, naiveSoftmax(y), tolerance: 1e-5, "softmax 1000s")
        // exp(1)/(1 + e + e²) etc. by hand
        let e = M_E
        assertClose(runSoftmax(y).values, [e * e / (1 + e + e * e), e / (1 + e + e * e), 1 / (1 + e + e * e)], tolerance: 1e-5, "softmax by hand")
    }

    func testSoftmaxMaskedEntriesAreExactlyZero() {
        var rng = SplitMix64(seed: 5)
        for n in [2, 9, 100] {
            var x = rng.floats(n, in: -5...5)
            var unmasked: [Float] = []
            for i in 0..<n { if i % 3 == 1 { x[i] = -.infinity } else { unmasked.append(x[i]) } }
            let out = runSoftmax(x).values
            let ref = naiveSoftmax(unmasked)
            var k = 0
            for i in 0..<n {
                if i % 3 == 1 {
                    XCTAssertEqual(out[i].bitPattern, Float(0).bitPattern, "masked entry \(i)")
                } else {
                    XCTAssertEqual(Double(out[i]), ref[k], accuracy: 1e-5 * ref[k]); k += 1
                }
            }
        }
    }

    func testSoftmaxEdgeCases() {
        XCTAssertEqual(runSoftmax([-7]).values, [1])
        XCTAssertEqual(runSoftmax([-.infinity, 2]).values, [0, 1])
        for v in runSoftmax([Float](repeating: 3.5, count: 8)).values { XCTAssertEqual(v, 0.125) }
    }

    // MARK: - swiGLU: gate[i] = gate[i] / (1 + e^-gate[i]) · up[i]

    func testSwiGLU() {
        var rng = SplitMix64(seed: 6)
        for n in lengths {
            var g = rng.floats(n, in: -20...20)
            if n >= 9 { g[0...8] = [0, -0, 100, -100, 88, -88, 89, -89, 1e-30] }
            let u = rng.floats(n, in: -3...3)
            var out = Guarded(g)
            out.storage.withUnsafeMutableBufferPointer { Kernels.swiGLU(gate: $0.baseAddress!, up: u, count: n) }
            XCTAssertTrue(out.guardIntact)
            let expected = zip(g, u).map { Double($0) / (1 + exp(-Double($0))) * Double($1) }
            // Relative 1e-5, with an absolute floor of 1e-7 where silu underflows.
            assertClose(out.values, expected, tolerance: 1e-5, scale: expected.map { abs($0) + 0.01 }, "swiGLU n=\(n)")
        }
        // By hand: silu(0) = 0, silu(x) -> x for large x.
        var g: [Float] = [0, 50, 2]
        Kernels.swiGLU(gate: &g, up: [5, 2, 1], count: 3)
        XCTAssertEqual(g[0], 0)
        XCTAssertEqual(g[1], 100)
        XCTAssertEqual(Double(g[2]), 2 / (1 + exp(-2.0)), accuracy: 1e-6)
    }

    // MARK: - add, dot, axpy

    func testAdd() {
        var rng = SplitMix64(seed: 7)
        for n in lengths {
            let x = rng.floats(n), y = rng.floats(n, in: -100...100)
            var out = Guarded(y)
            out.storage.withUnsafeMutableBufferPointer { Kernels.add(x, into: $0.baseAddress!, count: n) }
            XCTAssertTrue(out.guardIntact)
            // One f32 addition per element: exactly the rounded sum.
            XCTAssertEqual(out.values, zip(x, y).map { Float(Double($0) + Double($1)) }, "add n=\(n)")
        }
    }

    func testDot() {
        var rng = SplitMix64(seed: 8)
        for n in lengths {
            for range: ClosedRange<Float> in [-1...1, 0...1000] {
                let a = rng.floats(n, in: range), b = rng.floats(n)
                let got = Kernels.dot(a, b, count: n)
                let exact = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let scale = zip(a, b).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                XCTAssertLessThanOrEqual(abs(Double(got) - exact), 1e-6 * scale + 1e-30, "dot n=\(n)")
            }
        }
        XCTAssertEqual(Kernels.dot([1, 2, 3], [4, 5, 6], count: 3), 32)
        let ones = [Float](repeating: 1, count: 40), twos = [Float](repeating: 2, count: 40)
        XCTAssertEqual(Kernels.dot(ones, twos, count: 40), 80)
        XCTAssertEqual(Kernels.dot(ones, twos, count: 0), 0)
    }

    func testAxpy() {
        var rng = SplitMix64(seed: 9)
        for n in lengths {
            for alpha: Float in [0, 1, -0.5, 3.25] {
                let x = rng.floats(n), y = rng.floats(n, in: -10...10)
                var out = Guarded(y)
                out.storage.withUnsafeMutableBufferPointer { Kernels.axpy(alpha, x, $0.baseAddress!, count: n) }
                XCTAssertTrue(out.guardIntact)
                let expected = zip(x, y).map { Double($1) + Double(alpha) * Double($0) }
                let scale = zip(x, y).map { abs(Double($1)) + abs(Double(alpha) * Double($0)) }
                assertClose(out.values, expected, tolerance: 2e-7, scale: scale, "axpy n=\(n) alpha=\(alpha)")
            }
        }
    }
}
