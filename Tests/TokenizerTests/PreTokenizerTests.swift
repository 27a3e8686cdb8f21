import XCTest
@testable import Tokenizer

/// Expectations worked out by hand from each pattern's regex (see `PreTokenizer`).
final class PreTokenizerTests: XCTestCase {
    func split(_ name: String, _ text: String) throws -> [String] {
        try PreTokenizer(name: name).split(text)
    }

    func testGPT2Words() throws {
        XCTAssertEqual(try split("gpt2", "Hello world"), ["Hello", " world"])
        XCTAssertEqual(try split("gpt2", " Hello  world"), [" Hello", " ", " world"])
        XCTAssertEqual(try split("gpt2", "café naïve Zürich"), ["café", " naïve", " Zürich"])
        XCTAssertEqual(try split("gpt2", "今天 好"), ["今天", " 好"])
        XCTAssertEqual(try split("gpt2", "Ω≈ç"), ["Ω", "≈", "ç"])  // ≈ is Sm
    }

    func testGPT2Contractions() throws {
        XCTAssertEqual(try split("gpt2", "don't we'll I'm they've you're he'd it's"),
                       ["don", "'t", " we", "'ll", " I", "'m", " they", "'ve", " you", "'re", " he", "'d", " it", "'s"])
        // Case-sensitive: "'T" is not a contraction, so "'" is punctuation on its own.
        XCTAssertEqual(try split("gpt2", "DON'T"), ["DON", "'", "T"])
        XCTAssertEqual(try split("gpt2", "'sup"), ["'s", "up"])
        XCTAssertEqual(try split("gpt2", "x 'll"), ["x", " '", "ll"])
    }

    func testGPT2NumbersAndPunctuation() throws {
        XCTAssertEqual(try split("gpt2", "abc123 x"), ["abc", "123", " x"])
        XCTAssertEqual(try split("gpt2", "a+=1.5!"), ["a", "+=", "1", ".", "5", "!"])
        XCTAssertEqual(try split("gpt2", "x ½Ⅻ٣"), ["x", " ½Ⅻ٣"])  // No, Nl, Nd are all \p{N}
        XCTAssertEqual(try split("gpt2", "(x)"), ["(", "x", ")"])
    }

    func testGPT2Whitespace() throws {
        XCTAssertEqual(try split("gpt2", "a   b"), ["a", "  ", " b"])
        XCTAssertEqual(try split("gpt2", "a\t\tb"), ["a", "\t", "\t", "b"])
        XCTAssertEqual(try split("gpt2", "end  "), ["end", "  "])
        XCTAssertEqual(try split("gpt2", "x  \n\n  y"), ["x", "  \n\n ", " y"])
        XCTAssertEqual(try split("gpt2", "hi!!\n\nok"), ["hi", "!!", "\n", "\n", "ok"])
        XCTAssertEqual(try split("gpt2", " "), [" "])
        XCTAssertEqual(try split("gpt2", "a\u{3000}b"), ["a", "\u{3000}", "b"])  // ideographic space is \s
        XCTAssertEqual(try split("gpt2", "a \u{A0}b"), ["a", " ", "\u{A0}", "b"])
        XCTAssertEqual(try split("gpt2", ""), [])
    }

    func testSmolLMSplitsEveryDigit() throws {
        XCTAssertEqual(try split("smollm", "abc123 x"), ["abc", "1", "2", "3", " x"])
        // The space before a digit cannot join it, and ends its own segment.
        XCTAssertEqual(try split("smollm", "+ 0.5 = 12"), ["+", " ", "0", ".", "5", " =", " ", "1", "2"])
        XCTAssertEqual(try split("smollm", "x½٣"), ["x", "½", "٣"])
        // A whitespace run before a digit leaves its last space to stand alone, as the reference's
        // GPT-2 regex does (`\s+(?!\S)` sees the digit); train_case.json has "\n\n2" as 198, 198, 34.
        XCTAssertEqual(try split("smollm", "a  1"), ["a", " ", " ", "1"])
        XCTAssertEqual(try split("smollm", "x\n\n2"), ["x", "\n", "\n", "2"])
        XCTAssertEqual(try split("default", "abc123"), ["abc", "123"])
    }

    func testLlama3() throws {
        XCTAssertEqual(try split("llama-bpe", "1234567"), ["123", "456", "7"])
        XCTAssertEqual(try split("llama-bpe", "DON'T it's"), ["DON", "'T", " it", "'s"])  // case-insensitive
        XCTAssertEqual(try split("llama-bpe", "a(b"), ["a", "(b"])  // one non-letter may lead a word
        XCTAssertEqual(try split("llama-bpe", "a\t\tb"), ["a", "\t", "\tb"])
        XCTAssertEqual(try split("llama-bpe", " (x)"), [" (", "x", ")"])
        XCTAssertEqual(try split("llama-bpe", "hi!!\n\nok"), ["hi", "!!\n\n", "ok"])
        XCTAssertEqual(try split("llama-bpe", "x  \n\n  y"), ["x", "  \n\n", " ", " y"])
        XCTAssertEqual(try split("llama-bpe", "a\nb"), ["a", "\n", "b"])  // a newline never leads a word
        XCTAssertEqual(try split("llama-bpe", "end  "), ["end", "  "])
        XCTAssertEqual(try split("llama-bpe", "x 12"), ["x", " ", "12"])
    }

    func testQwen2() throws {
        XCTAssertEqual(try split("qwen2", "x 1234"), ["x", " ", "1", "2", "3", "4"])
        XCTAssertEqual(try split("qwen2", "We'RE here"), ["We", "'RE", " here"])
    }

    func testPiecesConcatenateToTheInput() throws {
        var rng = SystemRandomNumberGenerator()
        for name in ["gpt2", "smollm", "llama-bpe", "qwen2"] {
            for _ in 0..<200 {
                let s = randomString(length: Int.random(in: 0..<40, using: &rng), using: &rng)
                XCTAssertEqual(try split(name, s).joined(), s)
            }
        }
    }

    func testUnknownNameListsKnownOnes() {
        XCTAssertThrowsError(try PreTokenizer(name: "nope")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("'nope'"))
            XCTAssertTrue(message.contains("smollm") && message.contains("llama-bpe") && message.contains("qwen2"))
        }
    }
}

/// Random text drawn from a mix of ASCII, whitespace, Latin, CJK, emoji and odd scalars.
func randomString(length: Int, using rng: inout some RandomNumberGenerator) -> String {
    let pools: [ClosedRange<UInt32>] = [
        0x20...0x7E, 0x09...0x0D, 0x20...0x20, 0xA0...0x17F, 0x4E00...0x4E80, 0x1F600...0x1F64F,
        0x0...0x1F, 0x300...0x36F, 0x2000...0x206F, 0x30...0x39, 0x27...0x27,
    ]
    var s = String.UnicodeScalarView()
    for _ in 0..<length {
        let pool = pools.randomElement(using: &rng)!
        if let scalar = Unicode.Scalar(UInt32.random(in: pool, using: &rng)) { s.append(scalar) }
    }
    return String(s)
}
