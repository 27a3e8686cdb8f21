import XCTest
import GGUF
@testable import Tokenizer

final class RobustnessTests: XCTestCase {
    /// Byte-level BPE loses nothing: any string encodes and decodes back to itself.
    func testRandomStringsRoundTrip() throws {
        let t = try defaultTokenizer()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let s = randomString(length: Int.random(in: 0..<60, using: &rng), using: &rng)
            XCTAssertEqual(t.decode(t.encode(s, parseSpecial: false)), encodable(s, t))
            XCTAssertEqual(t.decode(t.encode(s, parseSpecial: true)), encodable(s, t))
        }
    }

    func testRandomBytesNeverCrash() throws {
        let t = try defaultTokenizer()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let bytes = (0..<Int.random(in: 0..<80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let s = String(decoding: bytes, as: UTF8.self)
            XCTAssertEqual(t.decode(t.encode(s, parseSpecial: true)), encodable(s, t))
        }
    }

    /// SmolLM2's vocabulary has no token for 21 bytes (0x04, 0x06, 0x13, 0x14, 0x16, 0x1D and
    /// bytes that never or rarely occur in UTF-8); encoding drops them, as the reference does.
    func testBytesWithoutATokenAreDropped() throws {
        let t = try defaultTokenizer()
        // "\u{4}" is still its own piece ([^\s\p{L}\p{N}]+), so "a" and "b" are not merged.
        XCTAssertEqual(t.encode("a\u{4}b"), t.encode("a") + t.encode("b"))
        XCTAssertEqual(t.decode(t.encode("x\u{4}\u{6}\u{13}\u{14}\u{16}\u{1D}y")), "xy")
        XCTAssertEqual(encodable("\u{40000}", t), "\u{FFFD}\u{FFFD}\u{FFFD}")  // F1 80 80 80 loses its F1
    }

    /// `s` as it survives encoding: without the bytes that have no token.
    func encodable(_ s: String, _ t: Tokenizer) -> String {
        let missing = Set((0..<256).filter { t.model.byteToken[$0] < 0 }.map(UInt8.init))
        return String(decoding: s.utf8.filter { !missing.contains($0) }, as: UTF8.self)
    }

    func testRandomIDsDecodeWithoutCrashing() throws {
        let t = try defaultTokenizer()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let ids = (0..<Int.random(in: 0..<40, using: &rng)).map { _ in Int32.random(in: -10...50_000, using: &rng) }
            let text = t.decode(ids)
            _ = t.decode(ids, skipSpecial: true)
            _ = t.encode(text)
            let valid = ids.filter { $0 >= 0 && Int($0) < t.vocabularySize }
            XCTAssertEqual(text, t.decode(valid), "out-of-range ids are skipped")
        }
        XCTAssertNil(t.tokenText(-1))
        XCTAssertNil(t.tokenText(Int32(t.vocabularySize)))
        XCTAssertEqual(t.tokenBytes(Int32.max), [])
    }

    func testLongRepeatsAndSpecialEdges() throws {
        let t = try defaultTokenizer()
        for s in [String(repeating: "a", count: 5000), String(repeating: " ", count: 3000),
                  String(repeating: "🤖", count: 500), String(repeating: "<|im_end|", count: 50),
                  "<|im_end|><|im_end|>", "<", "|>", "\u{0}\u{0}"] {
            XCTAssertEqual(t.decode(t.encode(s, parseSpecial: true)), s)
        }
    }

    func testConcurrentEncodingAgrees() throws {
        let t = try defaultTokenizer()
        let text = "Concurrent encoding shares one word cache: 12345 café 🤖 naïve."
        let expected = t.encode(text)
        let results = UnsafeSendableBox(Array(repeating: [Int32](), count: 8))
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            var ids = [Int32]()
            for _ in 0..<50 { ids = t.encode(text + String(i)) }
            results.set(i, ids)
        }
        for i in 0..<8 { XCTAssertEqual(t.decode(results.values[i]), text + String(i)) }
        XCTAssertEqual(t.encode(text), expected)
    }

    // MARK: - Errors

    func testBadVocabulariesThrowNamedErrors() {
        let bytes = (0..<256).map { String(ByteLevel.scalarForByte[$0]) }
        XCTAssertThrowsError(try Tokenizer(tokens: bytes, merges: ["a"])) {
            XCTAssertEqual($0 as? TokenizerError, .malformedMerge(index: 0, merge: "a"))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: bytes, merges: ["a b", "zz q"])) {
            XCTAssertEqual($0 as? TokenizerError, .unknownMergeToken(index: 0, merge: "a b", token: "ab"))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: bytes + ["ab"], merges: ["a b", "zz q"])) {
            XCTAssertEqual($0 as? TokenizerError, .unknownMergeToken(index: 1, merge: "zz q", token: "zz"))
            XCTAssertTrue("\($0)".contains("'zz q'"))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: bytes, merges: [], tokenTypes: [1, 1])) {
            XCTAssertEqual($0 as? TokenizerError,
                           .lengthMismatch(what: "tokenizer.ggml.token_type", count: 2, expected: 256))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: bytes, merges: [], eos: 300)) {
            XCTAssertTrue("\($0)".contains("eos_token_id = 300"))
        }
        XCTAssertThrowsError(try Tokenizer(tokens: [], merges: []))
        XCTAssertThrowsError(try Tokenizer(tokens: bytes, merges: [], preTokenizer: "bogus")) {
            XCTAssertTrue("\($0)".contains("'bogus'"))
        }
    }

    func testGGUFErrorsNameTheKey() throws {
        let tokens = GGUFValue.array(.string, ["a", "b", "ab"].map { .string($0) })
        let merges = GGUFValue.array(.string, [.string("a b")])
        func load(_ meta: [(String, GGUFValue)]) throws -> Tokenizer {
            let path = try writeGGUF(meta)
            defer { try? FileManager.default.removeItem(atPath: path) }
            return try Tokenizer(gguf: try GGUFFile(path: path))
        }
        XCTAssertThrowsError(try load([("tokenizer.ggml.tokens", tokens)])) {
            XCTAssertEqual($0 as? TokenizerError, .missingKey("tokenizer.ggml.model"))
        }
        XCTAssertThrowsError(try load([("tokenizer.ggml.model", .string("llama")), ("tokenizer.ggml.tokens", tokens)])) {
            XCTAssertEqual($0 as? TokenizerError, .unsupportedModel("llama"))
            XCTAssertTrue("\($0)".contains("'llama'"))
        }
        XCTAssertThrowsError(try load([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", tokens)])) {
            XCTAssertEqual($0 as? TokenizerError, .missingKey("tokenizer.ggml.merges"))
        }
        XCTAssertThrowsError(try load([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", .uint32(3))])) {
            XCTAssertEqual($0 as? TokenizerError, .wrongType(key: "tokenizer.ggml.tokens", expected: "an array of strings"))
        }
        XCTAssertThrowsError(try load([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", tokens),
                                       ("tokenizer.ggml.merges", merges), ("tokenizer.ggml.pre", .string("mystery"))])) {
            XCTAssertTrue("\($0)".contains("'mystery'"))
        }
        XCTAssertThrowsError(try load([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", tokens),
                                       ("tokenizer.ggml.merges", merges), ("tokenizer.ggml.eos_token_id", .uint32(7))])) {
            XCTAssertEqual($0 as? TokenizerError,
                           .tokenIDOutOfRange(key: "tokenizer.ggml.eos_token_id", id: 7, vocabularySize: 3))
        }
        let ok = try load([("tokenizer.ggml.model", .string("gpt2")), ("tokenizer.ggml.tokens", tokens),
                           ("tokenizer.ggml.merges", merges), ("tokenizer.ggml.add_bos_token", .bool(true))])
        XCTAssertEqual(ok.vocabularySize, 3)
        XCTAssertEqual(ok.preTokenizer.name, "default")
        XCTAssertTrue(ok.addsBOS)
        XCTAssertEqual(ok.encode("ab"), [2])
        XCTAssertEqual(ok.encode("a b"), [0, 1], "a byte missing from the vocabulary is dropped")
    }
}

/// Results written from `concurrentPerform`, each index by one thread only.
/// `@unchecked Sendable`: guarded by `lock`.
final class UnsafeSendableBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [[Int32]]
    init(_ values: [[Int32]]) { self.values = values }
    func set(_ i: Int, _ v: [Int32]) { lock.lock(); values[i] = v; lock.unlock() }
}
