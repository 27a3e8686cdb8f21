import Foundation
import XCTest
@testable import GGUF

// MARK: - Independent float decoding

/// Decodes an IEEE-754 style binary float from its bits (sign, `exponentBits`, `mantissaBits`)
/// with integer arithmetic and `scalbn`, without going through Float16 or bit casts, so the
/// tests check the library's conversions against the definition of the format.
func decodeFloat(bits: UInt64, exponentBits: Int, mantissaBits: Int) -> Double {
    let sign: Double = (bits >> UInt64(exponentBits + mantissaBits)) & 1 == 1 ? -1 : 1
    let exponent = Int((bits >> UInt64(mantissaBits)) & ((1 << UInt64(exponentBits)) - 1))
    let mantissa = Double(bits & ((1 << UInt64(mantissaBits)) - 1))
    let bias = (1 << (exponentBits - 1)) - 1
    let maxExponent = (1 << exponentBits) - 1
    if exponent == maxExponent { return mantissa == 0 ? sign * .infinity : .nan }
    if exponent == 0 { return sign * scalbn(mantissa, 1 - bias - mantissaBits) }  // subnormal or zero
    return sign * scalbn(Double(1 << mantissaBits) + mantissa, exponent - bias - mantissaBits)
}

/// IEEE half precision: 1 sign, 5 exponent, 10 mantissa bits.
func half(_ bits: UInt16) -> Double { decodeFloat(bits: UInt64(bits), exponentBits: 5, mantissaBits: 10) }
/// bfloat16: 1 sign, 8 exponent, 7 mantissa bits.
func bfloat(_ bits: UInt16) -> Double { decodeFloat(bits: UInt64(bits), exponentBits: 8, mantissaBits: 7) }

// MARK: - Byte building

/// Little-endian byte builder for hand-made blocks and GGUF files.
struct Bytes {
    var data: [UInt8] = []
    mutating func u8(_ v: UInt8) { data.append(v) }
    mutating func u16(_ v: UInt16) { append(v) }
    mutating func u32(_ v: UInt32) { append(v) }
    mutating func u64(_ v: UInt64) { append(v) }
    mutating func i8(_ v: Int8) { data.append(UInt8(bitPattern: v)) }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); data.append(contentsOf: s.utf8) }
    mutating func raw(_ b: [UInt8]) { data.append(contentsOf: b) }
    mutating func zeros(_ n: Int) { data.append(contentsOf: repeatElement(0, count: n)) }
    mutating func padTo(_ alignment: Int) { while data.count % alignment != 0 { data.append(0) } }
    private mutating func append<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
}

/// A GGUF header built field by field, so tests can break any one field.
struct RawGGUF {
    var magic: UInt32 = 0x4655_4747
    var version: UInt32 = 3
    var tensorCount: UInt64?
    var metadataCount: UInt64?
    /// Key, value type code, encoded value bytes.
    var metadata: [(String, UInt32, [UInt8])] = []
    var tensors: [(name: String, dims: [UInt64], type: UInt32, offset: UInt64)] = []
    var nDimsOverride: [String: UInt32] = [:]
    var alignment = 32
    var dataBytes: [UInt8] = []

    func bytes() -> [UInt8] {
        var b = Bytes()
        b.u32(magic)
        b.u32(version)
        b.u64(tensorCount ?? UInt64(tensors.count))
        b.u64(metadataCount ?? UInt64(metadata.count))
        for (key, type, value) in metadata {
            b.string(key)
            b.u32(type)
            b.raw(value)
        }
        for t in tensors {
            b.string(t.name)
            b.u32(nDimsOverride[t.name] ?? UInt32(t.dims.count))
            for d in t.dims { b.u64(d) }
            b.u32(t.type)
            b.u64(t.offset)
        }
        b.padTo(alignment)
        b.raw(dataBytes)
        return b.data
    }
}

// MARK: - Files

/// A scratch directory removed when the test case finishes; in /dev/shm when there is one,
/// because the fuzz and truncation tests write thousands of small files.
final class ScratchDirectory {
    let url: URL
    private var counter = 0

    init() throws {
        var isDirectory: ObjCBool = false
        let shm = FileManager.default.fileExists(atPath: "/dev/shm", isDirectory: &isDirectory)
            && isDirectory.boolValue && FileManager.default.isWritableFile(atPath: "/dev/shm")
        let parent = shm ? URL(fileURLWithPath: "/dev/shm") : FileManager.default.temporaryDirectory
        url = parent.appendingPathComponent("gguftests-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    /// Writes `bytes` to a fresh file and returns its path.
    func write(_ bytes: [UInt8], name: String? = nil) throws -> String {
        counter += 1
        let path = url.appendingPathComponent(name ?? "f\(counter).gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// Opens `bytes` as a GGUF file; the GGUFError if it is rejected, nil if it opens.
func openError(_ bytes: [UInt8], in dir: ScratchDirectory, file: StaticString = #filePath, line: UInt = #line) -> GGUFError? {
    do {
        let path = try dir.write(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        _ = try GGUFFile(path: path)
        return nil
    } catch let e as GGUFError {
        return e
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
        return nil
    }
}

/// Asserts that `bytes` is rejected with a GGUFError whose message contains every one of `fragments`.
func assertRejected(_ bytes: [UInt8], _ fragments: String..., in dir: ScratchDirectory,
                    file: StaticString = #filePath, line: UInt = #line) {
    guard let e = openError(bytes, in: dir, file: file, line: line) else {
        XCTFail("file was accepted; expected an error mentioning \(fragments)", file: file, line: line)
        return
    }
    for f in fragments where !e.message.contains(f) {
        XCTFail("error '\(e.message)' does not mention '\(f)'", file: file, line: line)
    }
}

// MARK: - Random numbers

/// SplitMix64: a small deterministic generator so every run tests the same inputs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
