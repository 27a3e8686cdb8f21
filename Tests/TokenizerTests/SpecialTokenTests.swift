import XCTest
@testable import Tokenizer

final class SpecialTokenTests: XCTestCase {
    // Vocabulary: bytes 0...255, then <|a|> = 256, <|ab|> = 257 (control), <x> = 258 (user-defined).
    func make() throws -> Tokenizer { try tinyTokenizer(specials: ["<|a|>", "<|ab|>"], userDefined: ["<x>"]) }

    func testSpecialTextBecomesOneToken() throws {
        let t = try make()
        XCTAssertEqual(t.encode("<|a|>", parseSpecial: true), [256])
        XCTAssertEqual(t.encode("q<|ab|>r", parseSpecial: true), [0x71, 257, 0x72])
        XCTAssertEqual(t.encode("<x><|a|><x>", parseSpecial: true), [258, 256, 258])
        XCTAssertEqual(t.specialTokenID("<|ab|>"), 257)
        XCTAssertNil(t.specialTokenID("<|ab"))
    }

    func testLongestMatchWins() throws {
        let t = try tinyTokenizer(specials: ["<s>", "<s>x"])
        XCTAssertEqual(t.encode("<s>x<s>", parseSpecial: true), [257, 256])
    }

    func testWithoutParseSpecialItIsPlainText() throws {
        let t = try make()
        XCTAssertEqual(t.encode("<|a|>", parseSpecial: false), Array("<|a|>".utf8).map { Int32($0) })
        XCTAssertEqual(t.encode("<x>", parseSpecial: false), [0x3C, 0x78, 0x3E])
    }

    func testTextAroundSpecialsIsPreTokenizedOnItsOwn() throws {
        let t = try make()
        // "a  " ends its segment, so both spaces stay together (\s+ at the end of the text).
        let ids = t.encode("a  <|a|>  b", parseSpecial: true)
        XCTAssertEqual(ids, [0x61, 0x20, 0x20, 256, 0x20, 0x20, 0x62])
        XCTAssertEqual(t.decode(ids), "a  <|a|>  b")
    }

    func testPartialSpecialTextIsPlain() throws {
        let t = try make()
        XCTAssertEqual(t.encode("<|a", parseSpecial: true), [0x3C, 0x7C, 0x61])
        XCTAssertEqual(t.encode("<|a|", parseSpecial: true).count, 4)
    }

    func testDecodeOfSpecials() throws {
        let t = try make()
        XCTAssertEqual(t.decode([0x68, 256, 258, 0x69]), "h<|a|><x>i")
        XCTAssertEqual(t.decode([0x68, 256, 258, 0x69], skipSpecial: true), "h<x>i")  // user-defined stays
        XCTAssertTrue(t.isSpecial(256) && t.isSpecial(258))
        XCTAssertFalse(t.isSpecial(0x68))
        XCTAssertFalse(t.isSpecial(-1))
    }

    func testEndOfGenerationIDs() throws {
        let t = try tinyTokenizer(specials: ["<|endoftext|>", "<|eot_id|>", "<|start|>"])
        // eos is the first special (256); <|eot_id|> is found by its spelling.
        XCTAssertEqual(t.endOfGenerationIDs, [256, 257])
    }
}
