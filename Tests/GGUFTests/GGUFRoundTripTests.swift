import Foundation
import XCTest
@testable import GGUF

/// GGUFWriter output read back by GGUFFile: every value type, several alignments and tensor types.
final class GGUFRoundTripTests: XCTestCase {
    var dir: ScratchDirectory!
    override func setUpWithError() throws { dir = try ScratchDirectory() }
    override func tearDown() { dir = nil }

    /// One value of every GGUF value type, arrays of several element types, nested arrays.
    static let metadata: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("t.uint8", .uint8(255)),
        ("t.int8", .int8(-128)),
        ("t.uint16", .uint16(65535)),
        ("t.int16", .int16(-32768)),
        ("t.uint32", .uint32(.max)),
        ("t.int32", .int32(.min)),
        ("t.uint64", .uint64(.max)),
        ("t.int64", .int64(.min)),
        ("t.float32", .float32(-0x1.fffffep127)),
        ("t.float32.subnormal", .float32(0x1p-149)),
        ("t.float64", .float64(0x1.921fb54442d18p1)),
        ("t.bool.true", .bool(true)),
        ("t.bool.false", .bool(false)),
        ("t.string", .string("héllo ✓ 世界 \u{0} end")),
        ("t.string.empty", .string("")),
        ("t.array.uint8", .array(.uint8, [.uint8(0), .uint8(1), .uint8(255)])),
        ("t.array.int64", .array(.int64, [.int64(.min), .int64(-1), .int64(.max)])),
        ("t.array.float32", .array(.float32, [.float32(1.5), .float32(-0.25)])),
        ("t.array.float64", .array(.float64, [.float64(1e300)])),
        ("t.array.bool", .array(.bool, [.bool(true), .bool(false), .bool(true)])),
        ("t.array.string", .array(.string, [.string("a"), .string(""), .string("ünï"), .string("<|im_end|>")])),
        ("t.array.empty", .array(.int32, [])),
        ("t.array.nested", .array(.array, [
            .array(.int32, [.int32(1), .int32(-2)]),
            .array(.string, [.string("x")]),
            .array(.array, [.array(.uint16, [.uint16(7)]), .array(.bool, [])]),
        ])),
    ]

    /// Tensors of several types whose byte sizes are not multiples of the alignment.
    static func tensors() -> [(name: String, shape: [Int], type: GGMLType, bytes: [UInt8])] {
        var rng = SplitMix64(seed: 42)
        func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        // f16/bf16/f32 bytes must not be NaN-sensitive here: we compare bytes, not values.
        return [
            ("token_embd.weight", [32, 3], .q4_1, random(3 * 20)),
            ("blk.0.attn_q.weight", [64, 2], .q4_0, random(4 * 18)),
            ("blk.0.ffn_down.weight", [32, 1, 1], .q8_0, random(34)),
            ("output_norm.weight", [5], .f32, random(20)),
            ("blk.0.attn_norm.weight", [3], .f16, random(6)),
            ("rope_freqs", [7], .bf16, random(14)),
            ("i32", [1, 1, 1, 1], .i32, random(4)),
            ("q4k", [256], .q4_K, random(144)),
        ]
    }

    func testEveryValueTypeAndTensorRoundTrips() throws {
        for alignment in [8, 16, 32, 64, 256, 4096] {
            var w = GGUFWriter()
            for (k, v) in Self.metadata { w.set(k, v) }
            w.set("general.alignment", .uint32(UInt32(alignment)))
            let tensors = Self.tensors()
            for t in tensors { w.addTensor(name: t.name, shape: t.shape, type: t.type, bytes: t.bytes) }
            let path = try dir.write(w.serialized())
            let f = try GGUFFile(path: path)

            XCTAssertEqual(f.version, 3)
            XCTAssertEqual(f.alignment, alignment)
            XCTAssertEqual(f.metadataKeys, Self.metadata.map(\.0) + ["general.alignment"])
            for (k, v) in Self.metadata { XCTAssertEqual(f.metadata[k], v, "\(k) at alignment \(alignment)") }
            XCTAssertEqual(f.metadata["t.float32.subnormal"], .float32(0x1p-149))
            XCTAssertEqual(f.int("general.alignment"), alignment)
            XCTAssertEqual(f.string("general.architecture"), "llama")
            XCTAssertEqual(f.metadata["t.array.string"]?.stringArray, ["a", "", "ünï", "<|im_end|>"])
            XCTAssertEqual(f.metadata["t.array.int64"]?.intArray, [Int.min, -1, Int.max])
            XCTAssertEqual(f.metadata["t.uint64"]?.int, nil, "UInt64.max does not fit Int")
            XCTAssertEqual(f.bool("t.bool.true"), true)
            XCTAssertEqual(f.double("t.float64"), 0x1.921fb54442d18p1)

            XCTAssertEqual(f.dataOffset % alignment, 0)
            XCTAssertEqual(f.tensors.map(\.name), tensors.map(\.name))
            var previousEnd = f.dataOffset
            for (t, info) in zip(tensors, f.tensors) {
                XCTAssertEqual(info.shape, t.shape, t.name)
                XCTAssertEqual(info.type, t.type, t.name)
                XCTAssertEqual(info.byteCount, t.bytes.count, t.name)
                XCTAssertEqual(info.elementCount, t.shape.reduce(1, *), t.name)
                XCTAssertEqual(info.fileOffset % alignment, 0, "\(t.name) at alignment \(alignment)")
                XCTAssertGreaterThanOrEqual(info.fileOffset, previousEnd, "\(t.name) overlaps the previous tensor")
                previousEnd = info.fileOffset + info.byteCount
                XCTAssertEqual(Array(f.data(of: info)), t.bytes, t.name)
                XCTAssertEqual(f.tensor(named: t.name), info)
            }
            XCTAssertNil(f.tensor(named: "missing"))
        }
    }

    /// The writer's bytes against a file assembled by hand from the GGUF specification.
    func testWriterBytesMatchTheSpecification() throws {
        var w = GGUFWriter()
        w.set("a", .uint16(0x1234))
        w.set("b", .array(.string, [.string("xy")]))
        w.addTensor(name: "w", shape: [2, 3], type: .f32, bytes: [UInt8](1...24))
        w.addTensor(name: "v", shape: [32], type: .q8_0, bytes: [UInt8](repeating: 9, count: 34))

        var e = Bytes()
        e.raw(Array("GGUF".utf8)); e.u32(3); e.u64(2); e.u64(2)
        e.string("a"); e.u32(2); e.u16(0x1234)
        e.string("b"); e.u32(9); e.u32(8); e.u64(1); e.string("xy")
        e.string("w"); e.u32(2); e.u64(2); e.u64(3); e.u32(0); e.u64(0)
        e.string("v"); e.u32(1); e.u64(32); e.u32(8); e.u64(32)   // 24 bytes padded to 32
        e.padTo(32)
        e.raw([UInt8](1...24)); e.padTo(32)
        e.raw([UInt8](repeating: 9, count: 34)); e.padTo(32)
        XCTAssertEqual(w.serialized(), e.data)
    }

    func testFloatTensorsThroughTheWriterConvenience() throws {
        var w = GGUFWriter()
        // q8_0 values that quantize exactly: per block max |x| = 127·0.5, so d = 0.5 and x/d is an integer.
        let q8: [Float] = (0..<64).map { i in i % 32 == 0 ? 63.5 : Float(i % 32 - 16) * 0.5 }
        let f16: [Float] = [0, -0, 1, -2.5, 65504, 0x1p-24, 0.1]
        let f32: [Float] = [.pi, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, 1e-3]
        try w.addTensor(name: "q8", shape: [32, 2], values: q8, as: .q8_0)
        try w.addTensor(name: "h", shape: [7], values: f16, as: .f16)
        try w.addTensor(name: "f", shape: [2, 2], values: f32)
        XCTAssertThrowsError(try w.addTensor(name: "bad", shape: [3], values: [1, 2])) { e in
            XCTAssertTrue("\(e)".contains("'bad'"), "\(e)")
        }
        XCTAssertThrowsError(try w.addTensor(name: "q4", shape: [32], values: [Float](repeating: 0, count: 32), as: .q4_0)) { e in
            XCTAssertTrue("\(e)".contains("q4_0"), "\(e)")
        }
        let path = dir.url.appendingPathComponent("conv.gguf").path
        try w.write(to: path)
        try w.write(to: path)  // overwriting an existing file works too
        let f = try GGUFFile(path: path)
        XCTAssertEqual(try f.dequantize(XCTUnwrap(f.tensor(named: "q8"))), q8)
        // 0.1 is the one value f16 cannot hold: 0x2E66 is the nearest half.
        XCTAssertEqual(try f.dequantize(XCTUnwrap(f.tensor(named: "h"))),
                       [0, -0, 1, -2.5, 65504, 0x1p-24, Float(half(0x2E66))])
        XCTAssertEqual(try f.dequantize(XCTUnwrap(f.tensor(named: "f"))), f32)
        XCTAssertEqual(f.tensor(named: "f")?.rows, 2)
        XCTAssertEqual(f.tensor(named: "q8")?.columns, 32)
    }

    func testSettingAKeyAgainReplacesItInPlace() throws {
        var w = GGUFWriter()
        w.set("a", .int32(1))
        w.set("b", .string("two"))
        w.set("a", .float64(3))
        let f = try GGUFFile(path: dir.write(w.serialized()))
        XCTAssertEqual(f.metadataKeys, ["a", "b"])
        XCTAssertEqual(f.metadata["a"], .float64(3))
        XCTAssertEqual(f.tensors.count, 0)
    }

    func testVersion2IsAccepted() throws {
        var w = GGUFWriter()
        w.set("x", .uint8(1))
        w.addTensor(name: "t", shape: [2], type: .f32, bytes: [UInt8](repeating: 0, count: 8))
        var bytes = w.serialized()
        bytes[4] = 2
        let f = try GGUFFile(path: dir.write(bytes))
        XCTAssertEqual(f.version, 2)
        XCTAssertEqual(try f.dequantize(f.tensors[0]), [0, 0])
    }

    /// An alignment that is not a power of two cannot be honoured; the writer must not trap
    /// on it, and the reader rejects the result by name.
    func testWriterWithInvalidAlignmentDoesNotTrap() {
        for bad: GGUFValue in [.uint32(0), .uint32(48), .int32(-32)] {
            var w = GGUFWriter()
            w.set("general.alignment", bad)
            w.addTensor(name: "t", shape: [3], type: .f32, bytes: [UInt8](repeating: 0, count: 12))
            assertRejected(w.serialized(), "general.alignment", in: dir)
        }
    }
}
