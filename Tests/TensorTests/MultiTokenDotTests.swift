import XCTest
import GGUF
@testable import Tensor

/// The multi-token kernels against the naive route: `Dequantize.run` and a double-precision
/// dot product per token. Same tolerance as QuantizedDotTests (1e-5 of the summed term
/// magnitudes): the activations are not rounded at all here, only the f32 sums differ.
final class MultiTokenDotTests: XCTestCase {
    typealias Kind = QuantizedRows.Kind

    typealias Kernel = MultiTokenDot.Kernel

    func product(_ kind: Kind, _ kernel: Kernel, rows: Int, rowBytes: Int)
        -> (UnsafeRawPointer, Int, UnsafePointer<Float>, Int, Int, UnsafeMutablePointer<Float>, Int) -> Void {
        switch kind {
        case .q4_0: { MultiTokenDot.q4_0($0, rows: rows, rowBytes: rowBytes, blocks: $1, $2, ldx: $3, tokens: $4, $5, ldo: $6, kernel: kernel) }
        case .q4_1: { MultiTokenDot.q4_1($0, rows: rows, rowBytes: rowBytes, blocks: $1, $2, ldx: $3, tokens: $4, $5, ldo: $6, kernel: kernel) }
        case .q8_0: { MultiTokenDot.q8_0($0, rows: rows, rowBytes: rowBytes, blocks: $1, $2, ldx: $3, tokens: $4, $5, ldo: $6, kernel: kernel) }
        }
    }

    /// Every kernel this CPU runs (the 512-bit one too where it has AVX-512), one row and two rows at
    /// once, every token count 1...maxTokens, every row length, activation rows `ldx` apart (wider than
    /// the row, as in a batch buffer) and outputs `ldo` apart; nothing else is written.
    func testEveryTokenCountAgainstDequantizeAndDot() {
        var rng = SplitMix64(seed: 21)
        for kernel in Kernel.runnable {
            for kind in [Kind.q4_0, .q4_1, .q8_0] {
                let type = QuantizedRows.ggmlType[kind]!
                for n in QuantizedRows.rowLengths {
                    let blocks = n / 32, ldx = n + 8, ldo = 5
                    let rowList = [QuantizedRows.randomRow(kind, blocks: blocks, rng: &rng), QuantizedRows.randomRow(kind, blocks: blocks, rng: &rng)]
                    let rowBytes = rowList[0].count
                    let both = rowList[0] + rowList[1]
                    let w = rowList.map { row in
                        var w = [Float](repeating: 0, count: n)
                        row.withUnsafeBytes { Dequantize.run($0.baseAddress!, type: type, count: n, into: &w) }
                        return w
                    }
                    for rows in 1...2 {
                        for tokens in 1...MultiTokenDot.maxTokens {
                            var x = [Float](repeating: .nan, count: tokens * ldx)
                            for t in 0..<tokens { x.replaceSubrange(t * ldx..<t * ldx + n, with: QuantizedRows.activations(n, rng: &rng)) }
                            var out = Guarded([Float](repeating: Guarded.sentinel, count: tokens * ldo))
                            both.withUnsafeBytes { r in
                                product(kind, kernel, rows: rows, rowBytes: rowBytes)(r.baseAddress!, blocks, x, ldx, tokens, &out.storage, ldo)
                            }
                            let label = "\(kernel) \(type) n=\(n) rows=\(rows) tokens=\(tokens)"
                            XCTAssertTrue(out.guardIntact, "\(label): wrote past the outputs")
                            for t in 0..<tokens {
                                let xt = x[t * ldx..<t * ldx + n]
                                for r in 0..<rows {
                                    let exact = zip(w[r], xt).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                                    let scale = (0..<n).reduce(0.0) {
                                        $0 + QuantizedRows.termScale(kind, rowList[r], element: $1) * abs(Double(xt[t * ldx + $1]))
                                    }
                                    let got = out.storage[t * ldo + r]
                                    XCTAssertLessThanOrEqual(abs(Double(got) - exact), 1e-5 * scale, "\(label) token \(t) row \(r): \(got) vs \(exact)")
                                }
                                for gap in rows..<ldo {
                                    XCTAssertEqual(out.storage[t * ldo + gap].bitPattern, Guarded.sentinel.bitPattern, "\(label): wrote between outputs")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `accumulate` adds to what is in `out`: a row taken as two column ranges (the second
    /// accumulating, as `MatmulRunner` takes wide rows) gives the whole row's dot product.
    func testColumnRangesAccumulate() {
        var rng = SplitMix64(seed: 22)
        let blocks = 48, n = 32 * blocks, split = 16
        let row = QuantizedRows.randomRow(.q4_1, blocks: blocks, rng: &rng)
        var w = [Float](repeating: 0, count: n)
        row.withUnsafeBytes { Dequantize.run($0.baseAddress!, type: .q4_1, count: n, into: &w) }
        for kernel in Kernel.runnable { for tokens in [1, 5, 8] {
            var x = [Float]()
            for _ in 0..<tokens { x += QuantizedRows.activations(n, rng: &rng) }
            var out = [Float](repeating: .nan, count: tokens)
            row.withUnsafeBytes { r in
                let p = r.baseAddress!
                MultiTokenDot.q4_1(p, blocks: split, x, ldx: n, tokens: tokens, &out, ldo: 1, kernel: kernel)
                x.withUnsafeBufferPointer { xb in
                    MultiTokenDot.q4_1(p + 20 * split, blocks: blocks - split, xb.baseAddress! + 32 * split, ldx: n, tokens: tokens,
                                       &out, ldo: 1, accumulate: true, kernel: kernel)
                }
            }
            for t in 0..<tokens {
                let xt = x[t * n..<(t + 1) * n]
                let exact = zip(w, xt).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let scale = (0..<n).reduce(0.0) { $0 + QuantizedRows.termScale(.q4_1, row, element: $1) * abs(Double(xt[t * n + $1])) }
                XCTAssertLessThanOrEqual(abs(Double(out[t]) - exact), 1e-5 * scale, "\(kernel) tokens=\(tokens) token \(t): \(out[t]) vs \(exact)")
            }
        } }
    }

    /// f32 rows (merged adapters): every kernel, one and two rows, every token count, against a double dot product.
    func testF32RowsEveryTokenCount() {
        var rng = SplitMix64(seed: 23)
        for kernel in Kernel.runnable { for n in QuantizedRows.rowLengths { for rows in 1...2 {
            let w = rng.floats(2 * n, in: -3...3), ldx = n + 32
            for tokens in 1...MultiTokenDot.maxTokens {
                let x = rng.floats(tokens * ldx)
                var out = [Float](repeating: .nan, count: tokens * 2)
                MultiTokenDot.f32(w, rows: rows, rowFloats: n, blocks: n / 32, x, ldx: ldx, tokens: tokens, &out, ldo: 2, kernel: kernel)
                for t in 0..<tokens {
                    for r in 0..<rows {
                        let exact = (0..<n).reduce(0.0) { $0 + Double(w[r * n + $1]) * Double(x[t * ldx + $1]) }
                        let scale = (0..<n).reduce(0.0) { $0 + abs(Double(w[r * n + $1]) * Double(x[t * ldx + $1])) }
                        XCTAssertLessThanOrEqual(abs(Double(out[t * 2 + r]) - exact), 1e-5 * scale,
                                                 "\(kernel) f32 n=\(n) rows=\(rows) tokens=\(tokens) token \(t) row \(r)")
                    }
                    if rows == 1 { XCTAssertTrue(out[t * 2 + 1].isNaN, "wrote the second row") }
                }
            }
        } } }
    }

    /// A NaN or infinity in one token's activations poisons that token's result only.
    func testNonFiniteActivationsStayInTheirToken() {
        var rng = SplitMix64(seed: 22)
        let n = 64, tokens = 6
        let row = QuantizedRows.randomRow(.q4_1, blocks: n / 32, rng: &rng)
        var x = rng.floats(tokens * n)
        x[2 * n + 40] = .nan
        x[4 * n + 3] = .infinity
        for kernel in Kernel.runnable {
            var out = [Float](repeating: 0, count: tokens)
            row.withUnsafeBytes { MultiTokenDot.q4_1($0.baseAddress!, blocks: n / 32, x, ldx: n, tokens: tokens, &out, ldo: 1, kernel: kernel) }
            XCTAssertTrue(out[2].isNaN, "\(kernel)")
            XCTAssertFalse(out[4].isFinite, "\(kernel)")
            for t in [0, 1, 3, 5] { XCTAssertTrue(out[t].isFinite, "\(kernel) token \(t): \(out[t])") }
        }
    }

    /// Hand-made blocks, x = 1 for every token: the sums of the dequantized weights.
    func testByHand() {
        let x = [Float](repeating: 1, count: 3 * 32)
        for kernel in Kernel.runnable {
            var out = [Float](repeating: 0, count: 3)
            // Q4_0, d = 2, low nibbles 0..15, high 15..0: Σ(q - 8)·2 = -32.
            var q40: [UInt8] = [0x00, 0x40]
            q40 += (0..<16).map { UInt8((15 - $0) << 4 | $0) }
            MultiTokenDot.q4_0(q40, blocks: 1, x, ldx: 32, tokens: 3, &out, ldo: 1, kernel: kernel)
            XCTAssertEqual(out, [-32, -32, -32], "\(kernel)")
            // Q4_1, d = 0.5, m = -1, every nibble 15: 32·(7.5 - 1) = 208.
            let q41: [UInt8] = [0x00, 0x38, 0x00, 0xBC] + [UInt8](repeating: 0xFF, count: 16)
            MultiTokenDot.q4_1(q41, blocks: 1, x, ldx: 32, tokens: 3, &out, ldo: 1, kernel: kernel)
            XCTAssertEqual(out, [208, 208, 208], "\(kernel)")
            // Q8_0, d = 1: sixteen -128s and sixteen 127s: -16.
            let q80: [UInt8] = [0x00, 0x3C] + [UInt8](repeating: 0x80, count: 16) + [UInt8](repeating: 0x7F, count: 16)
            MultiTokenDot.q8_0(q80, blocks: 1, x, ldx: 32, tokens: 3, &out, ldo: 1, kernel: kernel)
            XCTAssertEqual(out, [-16, -16, -16], "\(kernel)")
        }
    }
}
