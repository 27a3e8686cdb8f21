import XCTest
@testable import Tokenizer

final class StreamingDecoderTests: XCTestCase {
    /// With no merges every byte is its own token (id == byte), so characters split everywhere.
    func testMultiByteCharactersAreHeldUntilComplete() throws {
        let t = try tinyTokenizer()
        var stream = StreamingDecoder(tokenizer: t)
        for text in ["🤖", "微", "é"] {
            let bytes = Array(text.utf8)
            for b in bytes.dropLast() { XCTAssertEqual(stream.push(Int32(b)), "") }
            XCTAssertEqual(stream.push(Int32(bytes.last!)), text)
            XCTAssertFalse(stream.hasPendingBytes)
        }
        XCTAssertEqual(stream.finish(), "")
    }

    func testInvalidBytesBecomeReplacementOnlyWhenTheyCannotComplete() throws {
        let t = try tinyTokenizer()
        var stream = StreamingDecoder(tokenizer: t)
        XCTAssertEqual(stream.push(0xE4), "")  // may still become a character
        XCTAssertEqual(stream.push(0x41), "\u{FFFD}A")  // cannot any more
        XCTAssertEqual(stream.push(0xC0), "\u{FFFD}")  // never valid
        XCTAssertEqual(stream.push(0xBF), "\u{FFFD}")  // stray continuation byte
        XCTAssertEqual(stream.push(0xED), "")
        XCTAssertEqual(stream.push(0xA0), "\u{FFFD}\u{FFFD}")  // a surrogate: ill-formed at once
        XCTAssertEqual(stream.push(0xF0), "")
        XCTAssertEqual(stream.push(0x9F), "")
        XCTAssertEqual(stream.finish(), "\u{FFFD}")  // cut off at the end
    }

    func testSpecialTokensInTheStream() throws {
        let t = try tinyTokenizer(specials: ["<|end|>"])
        var stream = StreamingDecoder(tokenizer: t)
        XCTAssertEqual(stream.push(0x68), "h")
        XCTAssertEqual(stream.push(256), "<|end|>")
        var skipping = StreamingDecoder(tokenizer: t, skipSpecial: true)
        XCTAssertEqual(skipping.push(0x68), "h")
        XCTAssertEqual(skipping.push(256), "")
    }

    func testOutOfRangeIDsAddNothing() throws {
        let t = try tinyTokenizer()
        var stream = StreamingDecoder(tokenizer: t)
        XCTAssertEqual(stream.push(-5), "")
        XCTAssertEqual(stream.push(100_000), "")
        XCTAssertEqual(stream.push(0x61), "a")
    }

    /// Whatever the bytes, the streamed pieces concatenate to `decode`.
    func testRandomBytesStreamLikeDecode() throws {
        let t = try tinyTokenizer()
        var rng = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [0x41, 0x80, 0xBF, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xA0, 0x9F, 0x90, 0x8F]
        for _ in 0..<500 {
            let ids = (0..<Int.random(in: 0..<24, using: &rng)).map { _ in
                Int32(Bool.random(using: &rng) ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng))
            }
            var stream = StreamingDecoder(tokenizer: t)
            var text = ""
            for id in ids { text += stream.push(id) }
            text += stream.finish()
            XCTAssertEqual(text, t.decode(ids), "\(ids)")
        }
    }
}
