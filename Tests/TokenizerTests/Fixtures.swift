import Foundation
import GGUF
import TestSupport
@testable import Tokenizer

/// The default model's tokenizer, loaded once for all tests.
let defaultTokenizerResult: Result<Tokenizer, any Error> = Result {
    try Tokenizer(gguf: try GGUFFile(path: TestPaths.defaultModel.path))
}

func defaultTokenizer() throws -> Tokenizer { try defaultTokenizerResult.get() }

struct ReferenceCase {
    let text: String
    let ids: [Int32]
}

/// `cases[i]` of a reference file, with `textKey` as the text.
func referenceCases(_ file: String, textKey: String) throws -> [ReferenceCase] {
    let root = try TestPaths.loadJSON(file) as! [String: Any]
    return (root["cases"] as! [[String: Any]]).map {
        ReferenceCase(text: $0[textKey] as! String, ids: ($0["ids"] as! [NSNumber]).map { $0.int32Value })
    }
}

/// A tiny byte-level vocabulary: the 256 single-byte tokens (ids 0...255 in byte order), then
/// the results of `merges` in order, then `specials` (control type) and `userDefined`.
func tinyTokenizer(
    merges: [String] = [], specials: [String] = [], userDefined: [String] = [], pre: String = "gpt2"
) throws -> Tokenizer {
    var tokens = (0..<256).map { String(ByteLevel.scalarForByte[$0]) }
    var types = [Int32](repeating: 1, count: 256)
    for m in merges {
        let merged = m.replacingOccurrences(of: " ", with: "")
        if !tokens.contains(merged) { tokens.append(merged); types.append(1) }
    }
    for s in specials { tokens.append(s); types.append(3) }
    for s in userDefined { tokens.append(s); types.append(4) }
    return try Tokenizer(tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: pre,
                         eos: specials.isEmpty ? nil : Int32(tokens.count - specials.count - userDefined.count))
}

/// The vocabulary spelling of a plain string (for building merges in tests).
func spelled(_ s: String) -> String { ByteLevel.string(of: Array(s.utf8)) }

/// Writes a minimal GGUF (version 3, no tensors) holding `metadata`, for error tests.
func writeGGUF(_ metadata: [(String, GGUFValue)]) throws -> String {
    var d = Data("GGUF".utf8)
    func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
    func str(_ s: String) { u64(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8)) }
    func typeCode(_ v: GGUFValue) -> UInt32 {
        switch v {
        case .uint32: 4
        case .int32: 5
        case .bool: 7
        case .string: 8
        case .array: 9
        default: fatalError("test helper: unsupported type")
        }
    }
    func value(_ v: GGUFValue) {
        switch v {
        case .uint32(let x): u32(x)
        case .int32(let x): u32(UInt32(bitPattern: x))
        case .bool(let b): d.append(b ? 1 : 0)
        case .string(let s): str(s)
        case .array(_, let a):
            u32(a.first.map(typeCode) ?? 8)
            u64(UInt64(a.count))
            a.forEach(value)
        default: fatalError("test helper: unsupported type")
        }
    }
    u32(3)
    u64(0)
    u64(UInt64(metadata.count))
    for (k, v) in metadata {
        str(k)
        u32(typeCode(v))
        value(v)
    }
    let path = FileManager.default.temporaryDirectory
        .appendingPathComponent("tokenizer-test-\(UUID().uuidString).gguf").path
    try d.write(to: URL(fileURLWithPath: path))
    return path
}
