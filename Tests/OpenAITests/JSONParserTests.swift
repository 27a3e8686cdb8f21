import XCTest
import JSON

final class JSONParserTests: XCTestCase {
    private func parse(_ text: String, limits: JSONParser.Limits = .init()) throws -> JSONValue {
        try JSONParser.parse(text, limits: limits)
    }

    private func error(_ bytes: [UInt8], limits: JSONParser.Limits = .init()) -> JSONError? {
        do { _ = try JSONParser.parse(bytes, limits: limits); return nil } catch { return error }
    }

    private func error(_ text: String) -> JSONError? { error(Array(text.utf8)) }

    func testScalarsAndIntegerness() throws {
        XCTAssertEqual(try parse("null"), .null)
        XCTAssertEqual(try parse(" true "), .bool(true))
        XCTAssertEqual(try parse("false"), .bool(false))
        guard case .int(42) = try parse("42") else { return XCTFail("42 should be .int") }
        guard case .int(-7) = try parse("-7") else { return XCTFail("-7 should be .int") }
        guard case .number(let half) = try parse("0.5") else { return XCTFail("0.5 should be .number") }
        XCTAssertEqual(half, 0.5)
        guard case .number(let exp) = try parse("1E2") else { return XCTFail("1E2 should be .number") }
        XCTAssertEqual(exp, 100)
        guard case .int(Int64.max) = try parse("9223372036854775807") else { return XCTFail("Int64.max") }
        guard case .int(Int64.min) = try parse("-9223372036854775808") else { return XCTFail("Int64.min") }
        guard case .number(let big) = try parse("9223372036854775808") else { return XCTFail("beyond Int64 → double") }
        XCTAssertEqual(big, 9223372036854775808.0)
        XCTAssertEqual(try parse("1e-400"), .number(0))
        XCTAssertEqual(try parse("\"a\\u00e9\\n\\\"\\/\""), .string("aé\n\"/"))
        XCTAssertEqual(try parse("\"\\ud83d\\ude00\""), .string("😀"))
    }

    func testNestedAndDuplicateKeys() throws {
        let value = try parse(#"{"a": [1, {"b": null}, "x"], "c": {"d": true}, "a": 2}"#)
        XCTAssertEqual(value["a"], .int(2), "last duplicate wins")
        XCTAssertEqual(value.objectValue?.keys, ["a", "c"], "first position is kept")
        XCTAssertEqual(value["c"]?["d"], .bool(true))
        let arr = try parse(#"[1, {"b": null}, "x", [], {}]"#)
        XCTAssertEqual(arr[1]?["b"], .null)
        XCTAssertEqual(arr[2]?.stringValue, "x")
        XCTAssertEqual(arr[3], .array([]))
        XCTAssertEqual(arr[4], .object(JSONObject()))
        XCTAssertNil(arr[5])
        XCTAssertNil(arr[-1])
    }

    func testGrammarViolations() {
        let bad = ["", " ", "01", "-", "1.", ".5", "+1", "1e", "1e+", "[1,]", "{\"a\":1,}", "{'a':1}", "NaN",
                   "Infinity", "[1 2]", "{\"a\" 1}", "{1:2}", "tru", "nul", "\"abc", "\"\\x\"", "\"\\u12G4\"",
                   "[", "{", "{\"a\":", "1 2", "\"a\"b", "[1]]", "\u{1}", "--1", "0x10", "\"\t\""]
        for text in bad {
            XCTAssertEqual(error(text)?.kind, .syntax, "should reject \(text.debugDescription)")
        }
    }

    func testErrorOffsetsAndMessages() {
        let e = error(#"{"a": 1 "b": 2}"#)
        XCTAssertEqual(e?.offset, 8)
        XCTAssertEqual(e?.message, "unexpected '\"', expected ',' or '}' in object")
        XCTAssertEqual(error("[1, 2")?.message, "unexpected end of input, expected ',' or ']' in array")
        XCTAssertEqual(error("1e999")?.kind, .numberOutOfRange)
        XCTAssertEqual(error("-1e999")?.offset, 0)
        XCTAssertTrue(error("01")?.description.contains("byte offset 1") ?? false)
    }

    func testInvalidUTF8NamesTheOffset() {
        let cases: [([UInt8], Int)] = [
            ([0x22, 0x61, 0xFF, 0x22], 2),              // never valid
            ([0x22, 0xC0, 0x80, 0x22], 1),              // overlong NUL
            ([0x22, 0xE0, 0x80, 0x80, 0x22], 2),        // overlong 3-byte
            ([0x22, 0xED, 0xA0, 0x80, 0x22], 2),        // encoded surrogate
            ([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], 2),  // above U+10FFFF
            ([0x22, 0xC3, 0x22], 2),                    // truncated
            ([0x22, 0x80, 0x22], 1),                    // stray continuation
            ([0x22, 0xE2, 0x82], 3),                    // truncated at end of input
        ]
        for (bytes, offset) in cases {
            let e = error(bytes)
            XCTAssertEqual(e?.kind, .invalidUTF8, "\(bytes)")
            XCTAssertEqual(e?.offset, offset, "\(bytes)")
        }
        XCTAssertEqual(error(#""\ud800""#)?.kind, .invalidUTF8, "lone high surrogate")
        XCTAssertEqual(error(#""\udc00""#)?.kind, .invalidUTF8, "lone low surrogate")
        XCTAssertEqual(error(#""\ud800\u0041""#)?.kind, .invalidUTF8, "high surrogate then non-surrogate")
        XCTAssertEqual(try JSONParser.parse([0x22, 0xF0, 0x9F, 0x98, 0x80, 0x22]), .string("😀"))
        XCTAssertEqual(try JSONParser.parse([0xEF, 0xBB, 0xBF, 0x31]), .int(1), "BOM is skipped")
    }

    func testDepthLimit() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        XCTAssertNoThrow(try parse(ok))
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        XCTAssertEqual(error(tooDeep)?.kind, .tooDeep)
        XCTAssertEqual(error(tooDeep)?.offset, 64)
        // Far beyond any call-stack budget: must fail cleanly, not crash.
        let huge = String(repeating: "{\"a\":[", count: 200_000)
        XCTAssertEqual(error(huge)?.kind, .tooDeep)
        let deepOK = String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000)
        XCTAssertNoThrow(try parse(deepOK, limits: .init(maxDepth: 5000)))
    }

    func testSizeLimit() {
        XCTAssertEqual(error(Array("[1,2,3]".utf8), limits: .init(maxBytes: 6))?.kind, .tooLarge)
        XCTAssertNil(error(Array("[1,2,3]".utf8), limits: .init(maxBytes: 7)))
    }

    /// Random mutations of a valid document must never trap; whatever parses must re-encode and
    /// re-parse to an equal value.
    func testMutationsNeverTrap() throws {
        let seedDoc = Array(#"{"model":"m","messages":[{"role":"user","content":"héllo 😀 \n"}],"t":0.7,"n":[1,-2e3,null,true]}"#.utf8)
        var rng = SplitMix(seed: 12345)
        for _ in 0..<5000 {
            var doc = seedDoc
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(doc.count))
                switch rng.next() % 3 {
                case 0: doc[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: doc.remove(at: i)
                default: doc.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                }
                if doc.isEmpty { doc = [0x7B] }
            }
            if let value = try? JSONParser.parse(doc) {
                XCTAssertEqual(try JSONParser.parse(value.serialized()), value)
            }
        }
    }
}

/// A tiny deterministic generator for test inputs.
struct SplitMix {
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
