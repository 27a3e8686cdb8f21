import Foundation
import XCTest
@testable import GGUF

/// Deterministic mutation fuzzing: thousands of damaged copies of a small valid file must
/// each either open (and then be fully readable) or be rejected with a GGUFError.
final class GGUFFuzzTests: XCTestCase {
    func baseFile() -> [UInt8] {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        w.set("llama.context_length", .uint32(2048))
        w.set("llama.rope.freq_base", .float32(10000))
        w.set("flag", .bool(true))
        w.set("i64", .int64(-5))
        w.set("tokenizer.ggml.tokens", .array(.string, [.string("<s>"), .string("a"), .string("bc")]))
        w.set("tokenizer.ggml.scores", .array(.float32, [.float32(0), .float32(-1)]))
        w.set("nested", .array(.array, [.array(.uint8, [.uint8(1), .uint8(2)]), .array(.string, [])]))
        w.set("general.alignment", .uint32(16))
        var rng = SplitMix64(seed: 7)
        func random(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }
        w.addTensor(name: "q4_0", shape: [32, 2], type: .q4_0, bytes: random(36))
        w.addTensor(name: "q4_1", shape: [32], type: .q4_1, bytes: random(20))
        w.addTensor(name: "q8_0", shape: [32], type: .q8_0, bytes: random(34))
        w.addTensor(name: "f16", shape: [4, 2], type: .f16, bytes: random(16))
        w.addTensor(name: "bf16", shape: [4], type: .bf16, bytes: random(8))
        w.addTensor(name: "f32", shape: [3], type: .f32, bytes: random(12))
        w.addTensor(name: "q6k", shape: [256], type: .q6_K, bytes: random(210))
        return w.serialized()
    }

    static let interesting64: [UInt64] = [0, 1, 2, 4, 16, 31, 32, 33, 255, 256, 0xFFFF, 0x7FFF_FFFF, 0xFFFF_FFFF,
                                          1 << 32, 1 << 40, 1 << 62, 1 << 63, .max, .max - 1, UInt64(Int64.max)]
    static let interesting32: [UInt32] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 30, 31, 0x7FFF_FFFF, .max]

    func mutate(_ base: [UInt8], headerEnd: Int, rng: inout SplitMix64) -> [UInt8] {
        var b = base
        func position() -> Int {
            guard !b.isEmpty else { return 0 }
            let limit = Int.random(in: 0..<10, using: &rng) < 8 ? min(headerEnd, b.count) : b.count
            return Int.random(in: 0..<max(1, limit), using: &rng)
        }
        func overwrite<T: FixedWidthInteger>(_ v: T) {
            let p = position()
            withUnsafeBytes(of: v.littleEndian) { for (i, byte) in $0.enumerated() where p + i < b.count { b[p + i] = byte } }
        }
        for _ in 0..<Int.random(in: 1...3, using: &rng) {
            switch Int.random(in: 0..<8, using: &rng) {
            case 0:
                let p = position()
                if p < b.count { b[p] ^= 1 << UInt8.random(in: 0..<8, using: &rng) }
            case 1:
                let p = position()
                if p < b.count { b[p] = [0, 1, 0x7F, 0x80, 0xFF].randomElement(using: &rng)! }
            case 2: overwrite(Self.interesting64.randomElement(using: &rng)!)
            case 3: overwrite(Self.interesting32.randomElement(using: &rng)!)
            case 4: b.removeSubrange(position()...)
            case 5:
                let p = position()
                b.removeSubrange(p..<min(b.count, p + Int.random(in: 1...16, using: &rng)))
            case 6:
                let p = min(position(), b.count)
                b.insert(contentsOf: (0..<Int.random(in: 1...16, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: p)
            default:
                let p = position(), q = position()
                let chunk = Array(b[min(p, b.count)..<min(b.count, p + Int.random(in: 1...24, using: &rng))])
                b.insert(contentsOf: chunk, at: min(q, b.count))
            }
        }
        return b
    }

    /// Reads everything an opened file offers, as a model loader would.
    func exercise(_ f: GGUFFile) throws {
        for key in f.metadataKeys {
            let v = try XCTUnwrap(f.metadata[key])
            _ = (v.int, v.double, v.string, v.bool, v.stringArray, v.intArray, v.doubleArray)
        }
        XCTAssertTrue(f.alignment > 0 && f.alignment & (f.alignment - 1) == 0)
        XCTAssertEqual(f.dataOffset % f.alignment, 0)
        for t in f.tensors {
            XCTAssertEqual(f.tensor(named: t.name), t)
            XCTAssertEqual(f.data(of: t).count, t.byteCount)
            XCTAssertLessThanOrEqual(t.fileOffset + t.byteCount, f.mapping.bytes.count)
            XCTAssertEqual(t.byteCount, t.type.byteCount(elements: t.elementCount))
            if t.type.canDequantize {
                XCTAssertEqual(try f.dequantize(t).count, t.elementCount)
            } else {
                XCTAssertThrowsError(try f.dequantize(t))
            }
        }
    }

    func testRandomMutationsNeverTrap() throws {
        let dir = try ScratchDirectory()
        let base = baseFile()
        let original = try GGUFFile(path: dir.write(base))
        try exercise(original)
        let headerEnd = original.dataOffset

        var rng = SplitMix64(seed: 0x6767_7566)
        var accepted = 0, rejected = 0
        var messages = Set<String>()
        for i in 0..<3000 {
            let bytes = mutate(base, headerEnd: headerEnd, rng: &rng)
            let path = dir.url.appendingPathComponent("m\(i % 4).gguf").path
            try? FileManager.default.removeItem(atPath: path)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let f = try GGUFFile(path: path)
                try exercise(f)
                accepted += 1
            } catch let e as GGUFError {
                XCTAssertFalse(e.message.isEmpty)
                rejected += 1
                messages.insert(String(e.message.prefix(while: { $0 != "'" && !$0.isNumber })))
            }
        }
        // The mutations must reach both outcomes and many different checks.
        XCTAssertGreaterThan(accepted, 100)
        XCTAssertGreaterThan(rejected, 1000)
        XCTAssertGreaterThan(messages.count, 8, "\(messages.sorted())")
    }
}
