import XCTest
import GGUF
@testable import Tensor

/// The decode-path dot kernels against the naive route: `Dequantize.run` (itself checked
/// against hand-built blocks in GGUFTests) followed by a plain double-precision dot product
/// of the unquantized activations. The tolerance is the one the f32-activation kernels these
/// replaced were held to: the activations' two 16-bit parts must not cost precision.
final class QuantizedDotTests: XCTestCase {
    let rowLengths = QuantizedRows.rowLengths
    typealias Kind = QuantizedRows.Kind

    /// Quantizes `x`: (values[2n], meta[2 · blocks]).
    func quantize(_ x: [Float]) -> (q: [Int16], meta: [Float]) {
        let blocks = x.count / 32
        var q = [Int16](repeating: 0x5555, count: blocks * QuantizedDot.blockValues + 1)
        var meta = [Float](repeating: .nan, count: blocks * QuantizedDot.blockMeta + 1)
        QuantizedDot.quantize(x, count: x.count, into: &q, meta: &meta)
        XCTAssertEqual(q.last, 0x5555, "quantize wrote past the values")
        XCTAssertTrue(meta.last!.isNaN, "quantize wrote past the block metadata")
        return (Array(q.dropLast()), Array(meta.dropLast()))
    }

    /// s·(hi + lo/65536) gives back every x to within f32's rounding of the block's largest value,
    /// and the block sums are the sums of the unrounded x.
    func testQuantizeRepresentsEveryValue() {
        var rng = SplitMix64(seed: 10)
        for n in rowLengths {
            let x = QuantizedRows.activations(n, rng: &rng)
            let (q, meta) = quantize(x)
            for b in 0..<n / 32 {
                let block = x[b * 32..<(b + 1) * 32]
                let amax = block.map { abs(Double($0)) }.max()!
                let exact = block.reduce(0.0) { $0 + Double($1) }
                XCTAssertEqual(Double(meta[2 * b + 1]), exact, accuracy: 1e-6 * block.reduce(0.0) { $0 + abs(Double($1)) })
                XCTAssertEqual(Double(meta[2 * b]), amax / 32767, accuracy: 1e-6 * amax / 32767)
                for e in 0..<32 {
                    let hi = Double(q[b * 64 + e]), lo = Double(q[b * 64 + 32 + e])
                    let back = Double(meta[2 * b]) * (hi + lo / 65536)
                    XCTAssertEqual(back, Double(x[b * 32 + e]), accuracy: 2e-7 * amax, "block \(b) element \(e)")
                }
            }
        }
    }

    /// All-zero and tiny blocks are zeros with scale 0; a NaN or an infinity makes the block's
    /// scale NaN, so every product with it is NaN, as with f32 activations.
    func testQuantizeSpecialBlocks() {
        var x = [Float](repeating: 0, count: 32) + [Float](repeating: 1e-35, count: 32)
        x += [Float](repeating: 1, count: 32); x[64 + 5] = .nan
        x += [Float](repeating: 1, count: 32); x[96 + 31] = -.infinity
        let (q, meta) = quantize(x)
        XCTAssertEqual(Array(q[0..<128]), [Int16](repeating: 0, count: 128))
        XCTAssertEqual(meta[0], 0); XCTAssertEqual(meta[2], 0)
        XCTAssertEqual(meta[3], 32e-35, accuracy: 1e-39)
        XCTAssertTrue(meta[4].isNaN); XCTAssertTrue(meta[6].isNaN)
        let q41: [UInt8] = [0x00, 0x38, 0x00, 0xBC] + [UInt8](repeating: 0x11, count: 16)
        let row = [UInt8]((0..<4).flatMap { _ in q41 })
        // Only the offsets m·Σx are left: m = -1, Σx = 0 and 32e-35.
        XCTAssertEqual(QuantizedDot.q4_1(row, q, meta, blocks: 2), -32e-35, accuracy: 1e-38)
        XCTAssertTrue(QuantizedDot.q4_1(row, q, meta, blocks: 3).isNaN)
        XCTAssertTrue(QuantizedDot.q4_1(Array(row[40...]), Array(q[192...]), Array(meta[6...]), blocks: 1).isNaN)
    }

    func testQuantizedRowsAgainstDequantizeAndDot() {
        var rng = SplitMix64(seed: 11)
        for kind in [Kind.q4_0, .q4_1, .q8_0] {
            let type = QuantizedRows.ggmlType[kind]!
            for n in rowLengths {
                let blocks = n / 32
                let x = QuantizedRows.activations(n, rng: &rng)
                let (xq, meta) = quantize(x)
                for r in 0..<3 {
                    let row = QuantizedRows.randomRow(kind, blocks: blocks, rng: &rng)
                    XCTAssertEqual(row.count, type.byteCount(elements: n))
                    var w = [Float](repeating: 0, count: n)
                    row.withUnsafeBytes { Dequantize.run($0.baseAddress!, type: type, count: n, into: &w) }
                    let exact = zip(w, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                    let scale = (0..<n).reduce(0.0) { $0 + QuantizedRows.termScale(kind, row, element: $1) * abs(Double(x[$1])) }

                    let got = row.withUnsafeBytes { raw -> Float in
                        switch kind {
                        case .q4_0: QuantizedDot.q4_0(raw.baseAddress!, xq, meta, blocks: blocks)
                        case .q4_1: QuantizedDot.q4_1(raw.baseAddress!, xq, meta, blocks: blocks)
                        case .q8_0: QuantizedDot.q8_0(raw.baseAddress!, xq, meta, blocks: blocks)
                        }
                    }
                    XCTAssertLessThanOrEqual(abs(Double(got) - exact), 1e-5 * scale,
                                             "\(type) n=\(n) row \(r): \(got) vs \(exact) (scale \(scale))")
                }
            }
        }
    }

    /// A row-by-row product of a small matrix: each row pointer is `r · bytesPerRow` in.
    func testRowsInsideAMatrix() {
        var rng = SplitMix64(seed: 12)
        let n = 128, rows = 5, blocks = n / 32
        let m = QuantizedRows.randomRow(.q4_1, blocks: rows * blocks, rng: &rng)
        let x = QuantizedRows.activations(n, rng: &rng)
        let (xq, meta) = quantize(x)
        var w = [Float](repeating: 0, count: rows * n)
        m.withUnsafeBytes { Dequantize.run($0.baseAddress!, type: .q4_1, count: rows * n, into: &w) }
        for r in 0..<rows {
            let exact = (0..<n).reduce(0.0) { $0 + Double(w[r * n + $1]) * Double(x[$1]) }
            let scale = (0..<n).reduce(0.0) { $0 + QuantizedRows.termScale(.q4_1, m, element: r * n + $1) * abs(Double(x[$1])) }
            let got = m.withUnsafeBytes { QuantizedDot.q4_1($0.baseAddress! + r * blocks * 20, xq, meta, blocks: blocks) }
            XCTAssertLessThanOrEqual(abs(Double(got) - exact), 1e-5 * scale, "row \(r)")
        }
    }

    /// Hand-made blocks whose exact dot product is known: x = 1 everywhere.
    func testByHand() {
        let (xq, meta) = quantize([Float](repeating: 1, count: 32))
        XCTAssertEqual(Array(meta), [1 / 32767, 32])
        // Q4_0, d = 2, low nibbles 0..15, high 15..0: Σ(q - 8)·2 over both halves = 2·(2·120 - 256) = -32.
        var q40: [UInt8] = [0x00, 0x40]
        q40 += (0..<16).map { UInt8((15 - $0) << 4 | $0) }
        XCTAssertEqual(QuantizedDot.q4_0(q40, xq, meta, blocks: 1), -32)
        // Q4_1, d = 0.5, m = -1, every nibble 15: 32·(7.5 - 1) = 208.
        let q41: [UInt8] = [0x00, 0x38, 0x00, 0xBC] + [UInt8](repeating: 0xFF, count: 16)
        XCTAssertEqual(QuantizedDot.q4_1(q41, xq, meta, blocks: 1), 208)
        // Q8_0, d = 1: sixteen -128s and sixteen 127s: 16·(-1) = -16.
        let q80: [UInt8] = [0x00, 0x3C] + [UInt8](repeating: 0x80, count: 16) + [UInt8](repeating: 0x7F, count: 16)
        XCTAssertEqual(QuantizedDot.q8_0(q80, xq, meta, blocks: 1), -16)
    }

    func testF16() {
        var rng = SplitMix64(seed: 13)
        for n in [1, 7, 8, 9, 32, 33, 576, 1000] {
            var w = (0..<n).map { _ in Float16(Float.random(in: -2...2, using: &rng)) }
            if n >= 8 { w[0...3] = [65504, Float16(bitPattern: 0x0001), -0, Float16(bitPattern: 0x83FF)] }
            let x = rng.floats(n)
            let raw = w.withUnsafeBytes { Array($0) }
            var deq = [Float](repeating: 0, count: n)
            raw.withUnsafeBytes { Dequantize.run($0.baseAddress!, type: .f16, count: n, into: &deq) }
            let exact = zip(deq, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let scale = zip(deq, x).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            let got = raw.withUnsafeBytes { QuantizedDot.f16($0.baseAddress!, x, count: n) }
            XCTAssertLessThanOrEqual(abs(Double(got) - exact), 1e-5 * scale, "f16 n=\(n)")
        }
    }
}
