import Foundation
import XCTest
@testable import GGUF

/// Dequantization of every supported type against values computed here from the ggml
/// block definitions (ggml-common.h), with f16/bf16 decoded bit by bit (`half`, `bfloat`).
final class DequantizeTests: XCTestCase {
    var dir: ScratchDirectory!
    override func setUpWithError() throws { dir = try ScratchDirectory() }
    override func tearDown() { dir = nil }

    /// Runs all three entry points (`Dequantize.run`, `Dequantize.toFloat`, and
    /// `GGUFFile.dequantize` on a file holding the bytes) and compares each element with
    /// `expected` exactly (every expected value here is representable in f32).
    func check(_ type: GGMLType, _ raw: [UInt8], _ expected: [Double], shape: [Int]? = nil,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let count = expected.count
        XCTAssertEqual(raw.count, type.byteCount(elements: count), "test bytes do not match the block size", file: file, line: line)

        var viaRun = [Float](repeating: .nan, count: count + 4)
        raw.withUnsafeBytes { src in
            viaRun.withUnsafeMutableBufferPointer { Dequantize.run(src.baseAddress!, type: type, count: count, into: $0.baseAddress!) }
        }
        XCTAssertTrue(viaRun[count...].allSatisfy(\.isNaN), "run wrote past count", file: file, line: line)
        let viaToFloat = try raw.withUnsafeBytes { try Dequantize.toFloat($0, type: type, count: count) }

        var w = GGUFWriter()
        w.set("general.architecture", .string("test"))
        w.addTensor(name: "t", shape: shape ?? [count], type: type, bytes: raw)
        let gguf = try GGUFFile(path: dir.write(w.serialized()))
        let info = try XCTUnwrap(gguf.tensor(named: "t"), file: file, line: line)
        XCTAssertEqual(info.type, type, file: file, line: line)
        let viaFile = try gguf.dequantize(info)

        for (label, out) in [("run", Array(viaRun[..<count])), ("toFloat", viaToFloat), ("file", viaFile)] {
            XCTAssertEqual(out.count, count, label, file: file, line: line)
            var mismatches = 0
            for i in 0..<min(count, out.count) {
                let e = expected[i]
                let ok = e.isNaN ? out[i].isNaN : out[i].bitPattern == Float(e).bitPattern
                if !ok {
                    mismatches += 1
                    if mismatches <= 5 { XCTFail("\(type) \(label)[\(i)] = \(out[i]), expected \(e)", file: file, line: line) }
                }
            }
            if mismatches > 5 { XCTFail("\(type) \(label): \(mismatches) mismatches in all", file: file, line: line) }
        }
    }

    // MARK: - Plain types

    func testF32KeepsEveryBitPattern() throws {
        let patterns: [UInt32] = [
            0x0000_0000, 0x8000_0000, 0x3F80_0000, 0xC020_0000, 0x0000_0001, 0x807F_FFFF, 0x7F7F_FFFF,
            0xFF7F_FFFF, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0x3EAA_AAAB, 0x4049_0FDB, 0x0080_0000,
        ]
        var b = Bytes()
        for p in patterns { b.u32(p) }
        let expected = patterns.map { decodeFloat(bits: UInt64($0), exponentBits: 8, mantissaBits: 23) }
        try check(.f32, b.data, expected)
        // And the bits themselves, NaN included.
        let out = try b.data.withUnsafeBytes { try Dequantize.toFloat($0, type: .f32, count: patterns.count) }
        XCTAssertEqual(out.map(\.bitPattern), patterns)
    }

    func testF16EveryBitPattern() throws {
        var b = Bytes()
        for bits in 0...UInt16.max { b.u16(bits) }
        let expected = (0...UInt16.max).map(half)
        // Spot checks of the decoder itself against known values.
        XCTAssertEqual(half(0x3C00), 1)
        XCTAssertEqual(half(0xC000), -2)
        XCTAssertEqual(half(0x0001), 0x1p-24)         // smallest subnormal
        XCTAssertEqual(half(0x03FF), 1023 * 0x1p-24)  // largest subnormal
        XCTAssertEqual(half(0x7BFF), 65504)
        XCTAssertEqual(half(0xFC00), -.infinity)
        XCTAssertEqual(half(0x8000).sign, .minus)
        try check(.f16, b.data, expected, shape: [256, 256])
    }

    func testBF16EveryBitPattern() throws {
        var b = Bytes()
        for bits in 0...UInt16.max { b.u16(bits) }
        let expected = (0...UInt16.max).map(bfloat)
        XCTAssertEqual(bfloat(0x3F80), 1)
        XCTAssertEqual(bfloat(0xC0A0), -5)
        XCTAssertEqual(bfloat(0x0001), 0x1p-133)      // smallest bf16 subnormal
        XCTAssertEqual(bfloat(0x7F7F), 0x1.FEp127)
        try check(.bf16, b.data, expected, shape: [256, 256])
    }

    // MARK: - Q4_0: f16 d, 16 bytes; element j = low nibble of byte j, element j+16 = high nibble; x = (q - 8)·d

    func testQ4_0() throws {
        // (d bits, 16 quant bytes)
        let blocks: [(UInt16, [UInt8])] = [
            (0xC000, (0..<16).map { UInt8((15 - $0) << 4 | $0) }),        // d = -2; low nibbles 0..15, high 15..0
            (0x0001, (0..<16).map { UInt8(($0 * 37 + 11) & 0xFF) }),      // smallest subnormal d
            (0x7BFF, [UInt8](repeating: 0xF0, count: 8) + [UInt8](repeating: 0x0F, count: 8)),  // d = 65504, extremes
            (0x8200, (0..<16).map { UInt8(255 - $0 * 16) }),              // negative subnormal d
            (0x3555, [UInt8](repeating: 0x88, count: 16)),                // q = 8 everywhere: all zeros
        ]
        var b = Bytes()
        var expected: [Double] = []
        for (d, qs) in blocks {
            b.u16(d); b.raw(qs)
            let low = qs.map { Double(Int($0 & 0x0F) - 8) * half(d) }
            let high = qs.map { Double(Int($0 >> 4) - 8) * half(d) }
            expected += low + high
        }
        // Hand-written values of the first block, independent of the formula above.
        XCTAssertEqual(Array(expected[0..<4]), [16, 14, 12, 10])       // (0-8)·-2, (1-8)·-2, ...
        XCTAssertEqual(expected[15], -14)                                // (15-8)·-2
        XCTAssertEqual(expected[16], -14)                                // high nibble of byte 0 is 15
        XCTAssertEqual(expected[31], 16)                                 // high nibble of byte 15 is 0
        XCTAssertEqual(expected[2 * 32], 65504 * -8)                     // nibble 0 with d = 65504
        XCTAssertEqual(expected[2 * 32 + 16], 65504 * 7)                 // nibble 15
        try check(.q4_0, b.data, expected, shape: [32 * blocks.count])
        try check(.q4_0, b.data, expected, shape: [32, blocks.count])
    }

    // MARK: - Q4_1: f16 d, f16 m, 16 bytes as Q4_0; x = q·d + m

    func testQ4_1() throws {
        let blocks: [(UInt16, UInt16, [UInt8])] = [
            (0x3C00, 0xC000, (0..<16).map { UInt8((15 - $0) << 4 | $0) }),  // d = 1, m = -2
            (0x8001, 0x7BFF, [UInt8](repeating: 0xF0, count: 16)),           // tiny negative d, m = 65504
            (0xB800, 0x0001, (0..<16).map { UInt8(($0 * 91 + 5) & 0xFF) }),  // d = -0.5, subnormal m
            (0x0000, 0x3555, [UInt8](repeating: 0xFF, count: 16)),           // d = 0: every element is m
            (0x7BFF, 0xFBFF, [UInt8](repeating: 0x0F, count: 16)),           // q = 15 and 0 with d = 65504, m = -65504
        ]
        var b = Bytes()
        var expected: [Double] = []
        for (d, m, qs) in blocks {
            b.u16(d); b.u16(m); b.raw(qs)
            expected += qs.map { Double($0 & 0x0F) * half(d) + half(m) }
            expected += qs.map { Double($0 >> 4) * half(d) + half(m) }
        }
        XCTAssertEqual(Array(expected[0..<3]), [-2, -1, 0])
        XCTAssertEqual(expected[16], 13)                                  // 15·1 - 2
        XCTAssertEqual(expected[32], 65504)                               // low nibble 0: just m
        XCTAssertEqual(expected[3 * 32 + 5], half(0x3555))
        XCTAssertEqual(expected[4 * 32], 15 * 65504 - 65504)
        XCTAssertEqual(expected[4 * 32 + 16], -65504)
        try check(.q4_1, b.data, expected, shape: [32 * blocks.count])
    }

    // MARK: - Q8_0: f16 d, 32 int8; x = q·d

    func testQ8_0() throws {
        let sweep: [Int8] = [-128, 127, 0, -1, 1, 64, -64] + (0..<25).map { Int8(truncatingIfNeeded: $0 * 53 - 100) }
        let blocks: [(UInt16, [Int8])] = [
            (0x3800, sweep),                                              // d = 0.5
            (0x8001, sweep.reversed()),                                   // negative smallest subnormal
            (0x7BFF, [Int8](repeating: -128, count: 16) + [Int8](repeating: 127, count: 16)),
            (0x0000, sweep),                                              // d = 0
            (0xC400, (0..<32).map { Int8($0 - 16) }),                      // d = -4
        ]
        var b = Bytes()
        var expected: [Double] = []
        for (d, qs) in blocks {
            b.u16(d)
            for q in qs { b.i8(q) }
            expected += qs.map { Double($0) * half(d) }
        }
        XCTAssertEqual(Array(expected[0..<5]), [-64, 63.5, 0, -0.5, 0.5])
        XCTAssertEqual(expected[64], -128 * 65504)
        XCTAssertEqual(expected[64 + 31], 127 * 65504)
        XCTAssertEqual(expected[4 * 32], 64)                              // (0 - 16)·-4
        try check(.q8_0, b.data, expected, shape: [32, blocks.count])
    }

    // MARK: - Errors

    func testUnsupportedTypeIsAnError() {
        let raw = [UInt8](repeating: 0, count: 144)
        XCTAssertThrowsError(try raw.withUnsafeBytes { try Dequantize.toFloat($0, type: .q4_K, count: 256, name: "blk.0.w") }) { e in
            let m = (e as? GGUFError)?.message ?? ""
            XCTAssertTrue(m.contains("blk.0.w") && m.contains("q4_K"), m)
        }
    }

    func testTooFewBytesIsAnError() {
        let raw = [UInt8](repeating: 0, count: 33)  // one q8_0 block is 34 bytes
        XCTAssertThrowsError(try raw.withUnsafeBytes { try Dequantize.toFloat($0, type: .q8_0, count: 32, name: "w") }) { e in
            let m = (e as? GGUFError)?.message ?? ""
            XCTAssertTrue(m.contains("w:") && m.contains("33 bytes"), m)
        }
        // A count that is not a whole number of blocks.
        let two = [UInt8](repeating: 0, count: 68)
        XCTAssertThrowsError(try two.withUnsafeBytes { try Dequantize.toFloat($0, type: .q8_0, count: 33) })
        XCTAssertThrowsError(try two.withUnsafeBytes { try Dequantize.toFloat($0, type: .f32, count: -1) })
    }

    func testZeroElements() throws {
        // An empty buffer may have no base address at all.
        XCTAssertEqual(try Dequantize.toFloat(UnsafeRawBufferPointer(start: nil, count: 0), type: .q4_1, count: 0), [])
        XCTAssertEqual(try Dequantize.toFloat(UnsafeRawBufferPointer(start: nil, count: 0), type: .f32, count: 0), [])
    }
}
