import Foundation
import XCTest
@testable import GGUF

/// Broken files must be rejected with a GGUFError that says what is wrong, never a trap.
final class GGUFMalformedTests: XCTestCase {
    var dir: ScratchDirectory!
    override func setUpWithError() throws { dir = try ScratchDirectory() }
    override func tearDown() { dir = nil }

    // Value type codes of the GGUF specification.
    let tUInt8: UInt32 = 0, tInt32: UInt32 = 5, tBool: UInt32 = 7, tString: UInt32 = 8, tArray: UInt32 = 9, tUInt32: UInt32 = 4

    func stringValue(_ s: String) -> [UInt8] { var b = Bytes(); b.string(s); return b.data }

    /// A small valid file: two metadata entries and one q8_0 tensor [32, 2] at offset 0.
    func valid() -> RawGGUF {
        var g = RawGGUF()
        g.metadata = [("general.name", tString, stringValue("tiny")), ("n", tUInt32, [7, 0, 0, 0])]
        g.tensors = [(name: "w", dims: [32, 2], type: 8, offset: 0)]
        g.dataBytes = [UInt8](repeating: 0x3C, count: 68)
        return g
    }

    func testTheBaseFileIsValid() throws {
        let f = try GGUFFile(path: dir.write(valid().bytes()))
        XCTAssertEqual(f.tensors.first?.shape, [32, 2])
        XCTAssertEqual(f.int("n"), 7)
    }

    // MARK: - Header

    func testBadMagic() {
        var g = valid(); g.magic = 0x4755_4747  // "GGUG"
        assertRejected(g.bytes(), "not a GGUF file", "bad magic", in: dir)
        assertRejected(Array("GGML".utf8) + [UInt8](repeating: 0, count: 40), "bad magic", in: dir)
    }

    func testUnsupportedVersion() {
        for v: UInt32 in [0, 1, 4, .max] {
            var g = valid(); g.version = v
            assertRejected(g.bytes(), "unsupported GGUF version \(v)", in: dir)
        }
    }

    func testAbsurdCounts() {
        var g = valid(); g.tensorCount = .max
        assertRejected(g.bytes(), "absurd tensor count", in: dir)
        g = valid(); g.metadataCount = 1 << 40
        assertRejected(g.bytes(), "absurd metadata count", in: dir)
        // Counts under the limit that the file does not hold run into its end.
        g = valid(); g.tensors = []; g.dataBytes = []; g.alignment = 1
        g.metadataCount = 1000
        assertRejected(g.bytes(), "truncated", "metadata key 2", in: dir)
        g.metadataCount = nil; g.tensorCount = 1 << 20
        assertRejected(g.bytes(), "truncated", "tensor 0 name", in: dir)
    }

    func testEmptyMissingAndNonRegularFiles() throws {
        assertRejected([], "is empty", in: dir)
        XCTAssertThrowsError(try GGUFFile(path: dir.url.appendingPathComponent("nope.gguf").path)) { e in
            XCTAssertTrue("\(e)".contains("cannot open") && "\(e)".contains("nope.gguf"), "\(e)")
        }
        XCTAssertThrowsError(try GGUFFile(path: dir.url.path)) { e in
            XCTAssertTrue("\(e)".contains("not a regular file"), "\(e)")
        }
    }

    // MARK: - Metadata

    func testStringLengthPastTheEnd() {
        var g = valid(); g.metadata[0].2 = [0xE8, 0x03, 0, 0, 0, 0, 0, 0] + Array("tiny".utf8)  // claims 1000 bytes
        g.tensors = []; g.dataBytes = []
        g.alignment = 1
        assertRejected(g.bytes(), "truncated", "general.name", "1000", in: dir)
        g.metadata[0].2 = [UInt8](repeating: 0xFF, count: 8)  // claims 2^64 - 1 bytes
        assertRejected(g.bytes(), "truncated", "general.name", in: dir)

        // A key whose length runs past the end.
        var b = Bytes()
        b.u32(0x4655_4747); b.u32(3); b.u64(0); b.u64(1); b.u64(1 << 62); b.raw(Array("key".utf8))
        assertRejected(b.data, "truncated", "metadata key 0", in: dir)
        // A tensor name whose length runs past the end.
        b = Bytes()
        b.u32(0x4655_4747); b.u32(3); b.u64(1); b.u64(0); b.u64(.max); b.raw(Array("w".utf8))
        assertRejected(b.data, "truncated", "tensor 0 name", in: dir)
    }

    func testArrayOfAbsurdLength() {
        for element in [tUInt8, tString, tArray] {
            var g = valid()
            var v = Bytes(); v.u32(element); v.u64(1 << 60)
            g.metadata.append(("tokenizer.ggml.tokens", tArray, v.data))
            assertRejected(g.bytes(), "tokenizer.ggml.tokens", "1152921504606846976 elements", in: dir)
        }
        // An honest-looking count whose elements are not all there.
        var g = valid()
        var v = Bytes(); v.u32(tString); v.u64(3); v.string("a"); v.string("b")
        g.metadata = [("list", tArray, v.data)]
        g.tensors = []; g.dataBytes = []; g.alignment = 1
        assertRejected(g.bytes(), "truncated", "list", in: dir)
    }

    func testNestedArraysDeeperThanTheLimit() throws {
        func nested(_ depth: Int) -> [UInt8] {
            var inner = Bytes(); inner.u32(tInt32); inner.u64(1); inner.u32(42)  // innermost array [42]
            for _ in 1..<depth {
                var b = Bytes(); b.u32(tArray); b.u64(1); b.raw(inner.data)
                inner = b
            }
            return inner.data
        }
        var g = valid(); g.metadata = [("deep", tArray, nested(8))]
        let f = try GGUFFile(path: dir.write(g.bytes()))
        var v = f.metadata["deep"]
        for _ in 1..<8 { v = v?.array?.first }
        XCTAssertEqual(v, .array(.int32, [.int32(42)]))

        g.metadata = [("deep", tArray, nested(9))]
        assertRejected(g.bytes(), "deep", "nested too deeply", in: dir)
        g.metadata = [("deep", tArray, nested(5000))]
        assertRejected(g.bytes(), "deep", "nested too deeply", in: dir)
    }

    func testUnknownValueTypes() {
        for t: UInt32 in [13, 0xFFFF_FFFF] {
            var g = valid(); g.metadata[1].1 = t
            assertRejected(g.bytes(), "'n'", "unknown value type \(t)", in: dir)
            g = valid()
            var v = Bytes(); v.u32(t); v.u64(1); v.u32(0)
            g.metadata[1] = ("arr", tArray, v.data)
            assertRejected(g.bytes(), "'arr'", "unknown array element type \(t)", in: dir)
        }
    }

    func testBoolThatIsNeitherZeroNorOne() {
        var g = valid(); g.metadata[1] = ("flag", tBool, [2])
        assertRejected(g.bytes(), "flag", "bool byte is 2", in: dir)
    }

    func testInvalidAlignment() {
        let bad: [(UInt32, [UInt8])] = [
            (tUInt32, [48, 0, 0, 0]), (tUInt32, [0, 0, 0, 0]), (tUInt32, [0, 0, 0, 1]),  // 48, 0, 2^24
            (tInt32, [0xE0, 0xFF, 0xFF, 0xFF]),                                            // -32
            (tString, stringValue("32")),
        ]
        for (type, value) in bad {
            var g = valid(); g.metadata.append(("general.alignment", type, value))
            assertRejected(g.bytes(), "general.alignment must be a power of two", in: dir)
        }
    }

    // MARK: - Tensor infos

    func testTensorDataBeyondTheFile() {
        var g = valid(); g.tensors[0].offset = 1 << 20
        assertRejected(g.bytes(), "tensor 'w' data", "beyond the end of the file", in: dir)
        g = valid(); g.tensors[0].dims = [32, 1000]
        assertRejected(g.bytes(), "tensor 'w' data", "beyond the end of the file", in: dir)
        g = valid(); g.tensors[0].offset = 32  // 68 bytes at 32 run past the 68 present
        assertRejected(g.bytes(), "beyond the end of the file", in: dir)
        g = valid(); g.tensors[0].offset = .max & ~31
        assertRejected(g.bytes(), "tensor 'w'", "absurd offset", in: dir)
        g = valid(); g.dataBytes.removeLast()
        assertRejected(g.bytes(), "tensor 'w' data (68 bytes", "truncated file?", in: dir)
    }

    func testMisalignedOffset() {
        var g = valid(); g.tensors[0].offset = 4; g.dataBytes += [UInt8](repeating: 0, count: 4)
        assertRejected(g.bytes(), "tensor 'w' offset 4 is not aligned to 32", in: dir)
        g = valid()
        g.metadata.append(("general.alignment", tUInt32, [64, 0, 0, 0]))
        g.alignment = 64
        g.tensors.append((name: "v", dims: [1], type: 0, offset: 96))  // after w (68 bytes -> 96 at 32, but 128 at 64)
        g.dataBytes += [UInt8](repeating: 0, count: 64)
        assertRejected(g.bytes(), "tensor 'v' offset 96 is not aligned to 64", in: dir)
    }

    func testUnknownGGMLType() {
        for t: UInt32 in [4, 5, 16, 29, 31, 99, .max] {  // 4 and 5 were q4_2/q4_3, long removed
            var g = valid(); g.tensors[0].type = t
            assertRejected(g.bytes(), "tensor 'w'", "unknown ggml type \(t)", in: dir)
        }
    }

    func testBadDimensionCounts() {
        for n: UInt32 in [0, 5, .max] {
            var g = valid(); g.nDimsOverride["w"] = n
            if n == 0 { g.tensors[0].dims = [] }
            assertRejected(g.bytes(), "tensor 'w' has \(n) dimensions", in: dir)
        }
    }

    func testZeroAndNegativeDimensions() {
        for dims: [UInt64] in [[0], [32, 0], [0, 2], [32, 0, 1, 1]] {
            var g = valid(); g.tensors[0].dims = dims
            assertRejected(g.bytes(), "tensor 'w' has a dimension of 0", in: dir)
        }
        for d: UInt64 in [.max, 1 << 63, UInt64(UInt32.max), 1 << 31] {  // -1, Int64.min, ... as signed
            var g = valid(); g.tensors[0].dims = [32, d]
            assertRejected(g.bytes(), "tensor 'w' has absurd dimension \(d)", in: dir)
        }
    }

    func testOverflowingElementCounts() {
        let m = UInt64(Int32.max)
        for dims: [UInt64] in [[m, m, m, m], [1 << 30, 1 << 30], [32, 1 << 24, 1 << 24], [1 << 20, 1 << 20, m]] {
            var g = valid(); g.tensors[0].dims = dims
            assertRejected(g.bytes(), "tensor 'w' is absurdly large", in: dir)
        }
    }

    func testRowsThatAreNotWholeBlocks() {
        var g = valid(); g.tensors[0].dims = [33, 2]
        assertRejected(g.bytes(), "tensor 'w'", "row of 33", "q8_0 blocks", in: dir)
        g = valid(); g.tensors[0].dims = [16, 4]  // 64 elements, but rows of 16
        assertRejected(g.bytes(), "row of 16", in: dir)
    }

    func testDuplicateTensorNames() {
        var g = valid()
        g.tensors.append((name: "w", dims: [32, 2], type: 8, offset: 96))
        g.dataBytes += [UInt8](repeating: 0, count: 28 + 68)
        assertRejected(g.bytes(), "duplicate tensor name 'w'", in: dir)
    }

    // MARK: - Truncation everywhere

    /// Every prefix of a small file that stops before the end of its last tensor's data is
    /// rejected as truncated: each byte of the header, and a sample of cuts in the data.
    func testTruncatedAtEveryHeaderByte() throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("llama.block_count", .uint32(1))
        w.set("f", .float32(1.5))
        w.set("tokenizer.ggml.tokens", .array(.string, [.string("a"), .string("bc")]))
        w.set("nested", .array(.array, [.array(.int16, [.int16(1)])]))
        w.set("general.alignment", .uint32(64))
        w.addTensor(name: "a", shape: [32, 2], type: .q4_1, bytes: [UInt8](repeating: 1, count: 40))
        w.addTensor(name: "b", shape: [3], type: .f32, bytes: [UInt8](repeating: 2, count: 12))
        let bytes = w.serialized()
        let f = try GGUFFile(path: dir.write(bytes))
        let end = f.tensors.map { $0.fileOffset + $0.byteCount }.max()!
        XCTAssertLessThan(end, bytes.count, "the writer pads the last tensor")

        var cuts = Array(0..<f.dataOffset)
        cuts += stride(from: f.dataOffset, to: end, by: 7)
        cuts.append(end - 1)
        for cut in cuts {
            guard let e = openError(Array(bytes[..<cut]), in: dir) else {
                XCTFail("prefix of \(cut) bytes (of \(end) needed) was accepted")
                continue
            }
            let ok = cut == 0 ? e.message.contains("is empty")
                : e.message.contains("truncated") || e.message.contains("more than the file holds")  // array lengths
            XCTAssertTrue(ok, "cut at \(cut): \(e.message)")
        }
        // Cutting only the padding after the last tensor leaves a valid file.
        XCTAssertNil(openError(Array(bytes[..<end]), in: dir))
    }
}
