import XCTest
@testable import Tokenizer

/// The golden vectors in ../shared/reference, produced by Hugging Face tokenizers.
final class ReferenceTests: XCTestCase {
    func testDefaultModelMetadata() throws {
        let t = try defaultTokenizer()
        XCTAssertEqual(t.vocabularySize, 49152)
        XCTAssertEqual(t.preTokenizer.name, "smollm")
        XCTAssertEqual(t.bos, 1)
        XCTAssertEqual(t.eos, 2)
        XCTAssertEqual(t.tokenText(1), "<|im_start|>")
        XCTAssertEqual(t.tokenText(2), "<|im_end|>")
        XCTAssertTrue(t.isSpecial(2))
        XCTAssertFalse(t.addsBOS)
        XCTAssertTrue(t.endOfGenerationIDs.contains(2))  // <|im_end|>
        XCTAssertTrue(t.endOfGenerationIDs.contains(0))  // <|endoftext|>
        XCTAssertFalse(t.endOfGenerationIDs.contains(1))
    }

    func testTokenizerCasesEncodeExactly() throws {
        let t = try defaultTokenizer()
        let cases = try referenceCases("tokenizer_cases.json", textKey: "text")
        XCTAssertGreaterThan(cases.count, 10)
        for c in cases {
            XCTAssertEqual(t.encode(c.text, parseSpecial: false), c.ids, "encode \(c.text.debugDescription)")
            XCTAssertEqual(t.encode(c.text, parseSpecial: true), c.ids, "no special text in \(c.text.debugDescription)")
        }
    }

    func testTokenizerCasesDecodeBack() throws {
        let t = try defaultTokenizer()
        for c in try referenceCases("tokenizer_cases.json", textKey: "text") {
            XCTAssertEqual(t.decode(c.ids), c.text)
            XCTAssertEqual(t.decode(c.ids, skipSpecial: true), c.text)
        }
    }

    func testChatTemplateCasesEncodeWithSpecialTokens() throws {
        let t = try defaultTokenizer()
        let cases = try referenceCases("chat_template_cases.json", textKey: "rendered")
        XCTAssertFalse(cases.isEmpty)
        for c in cases {
            XCTAssertEqual(t.encode(c.text, parseSpecial: true), c.ids, "encode \(c.text.debugDescription)")
            XCTAssertEqual(t.decode(c.ids), c.text)
        }
    }

    func testChatTemplateCasesWithoutSpecialParsing() throws {
        let t = try defaultTokenizer()
        for c in try referenceCases("chat_template_cases.json", textKey: "rendered") {
            let ids = t.encode(c.text, parseSpecial: false)
            XCTAssertFalse(ids.contains { t.isSpecial($0) }, "special text must stay plain text")
            XCTAssertEqual(t.decode(ids), c.text)
        }
    }

    func testSkipSpecialDropsControlTokens() throws {
        let t = try defaultTokenizer()
        for c in try referenceCases("chat_template_cases.json", textKey: "rendered") {
            let expected = c.text.replacingOccurrences(of: "<|im_start|>", with: "")
                .replacingOccurrences(of: "<|im_end|>", with: "")
            XCTAssertEqual(t.decode(c.ids, skipSpecial: true), expected)
        }
    }

    func testStreamingDecodeOfEveryReferenceCase() throws {
        let t = try defaultTokenizer()
        let cases = try referenceCases("tokenizer_cases.json", textKey: "text")
            + referenceCases("chat_template_cases.json", textKey: "rendered")
        for c in cases {
            for skip in [false, true] {
                var stream = StreamingDecoder(tokenizer: t, skipSpecial: skip)
                var text = ""
                for id in c.ids {
                    let piece = stream.push(id)
                    XCTAssertFalse(piece.unicodeScalars.contains("\u{FFFD}"), "no replacement in valid text")
                    text += piece
                }
                text += stream.finish()
                XCTAssertEqual(text, t.decode(c.ids, skipSpecial: skip))
            }
        }
    }

    /// "🤖🚀✨" in the reference case is encoded with tokens that split the emoji's bytes.
    func testStreamingHoldsSplitCharactersOfRealTokens() throws {
        let t = try defaultTokenizer()
        let ids = t.encode("emoji 🤖🚀✨ 把这句话翻译", parseSpecial: false)
        var stream = StreamingDecoder(tokenizer: t)
        var sawHold = false
        var text = ""
        for id in ids {
            let piece = stream.push(id)
            if stream.hasPendingBytes { sawHold = true }
            text += piece
        }
        XCTAssertTrue(sawHold, "some token ends inside a character")
        XCTAssertEqual(text + stream.finish(), "emoji 🤖🚀✨ 把这句话翻译")
    }
}
