import XCTest
@testable import Engine
@testable import Tokenizer

/// A byte-level vocabulary without merges: ids 0…255 are the bytes themselves (so every
/// character of more than one byte spans tokens), then the given control tokens.
func byteTokenizer(specials: [String] = ["<|im_end|>", "<|endoftext|>"]) throws -> Tokenizer {
    let tokens = (0..<256).map { String(ByteLevel.scalarForByte[$0]) } + specials
    let types = [Int32](repeating: 1, count: 256) + [Int32](repeating: 3, count: specials.count)
    return try Tokenizer(tokens: tokens, merges: [], tokenTypes: types, preTokenizer: "gpt2",
                         eos: specials.isEmpty ? nil : 256)
}

func byteIDs(_ text: String) -> [Int32] { text.utf8.map { Int32($0) } }

final class StopStringMatcherTests: XCTestCase {
    func testHoldsBackPrefixAndDropsTheStop() {
        var m = StopStringMatcher(stops: ["</s>", "STOP"])
        XCTAssertEqual(m.push("Hello </"), "Hello ")
        XCTAssertEqual(m.heldText, "</")
        XCTAssertEqual(m.push("s> and more"), "")
        XCTAssertEqual(m.matched, "</s>")
        XCTAssertEqual(m.push("ignored"), "")
    }

    func testReleasesAPrefixThatStopsMatching() {
        var m = StopStringMatcher(stops: ["</s>"])
        XCTAssertEqual(m.push("a <"), "a ")
        XCTAssertEqual(m.push("/"), "")
        XCTAssertEqual(m.push("x"), "</x")
        XCTAssertNil(m.matched)
        XCTAssertEqual(m.push("<"), "")
        XCTAssertEqual(m.flush(), "<")
    }

    func testEarliestMatchWins() {
        var m = StopStringMatcher(stops: ["world", "lo w"])
        XCTAssertEqual(m.push("hello world"), "hel")
        XCTAssertEqual(m.matched, "lo w")
    }

    func testOverlappingPrefixKeepsTheLongestCandidate() {
        // "aab": after "aa" both "a" positions could start "aab"; the whole "aa" must be held.
        var m = StopStringMatcher(stops: ["aab"])
        XCTAssertEqual(m.push("xaa"), "x")
        XCTAssertEqual(m.push("a"), "a")  // "aaa": only the last two can still start "aab"
        XCTAssertEqual(m.push("b!"), "")
        XCTAssertEqual(m.matched, "aab")
    }

    func testMultiByteStopString() {
        var m = StopStringMatcher(stops: ["é!"])
        XCTAssertEqual(m.push("café"), "caf")
        XCTAssertEqual(m.push("?é"), "é?")
        XCTAssertEqual(m.push("!"), "")
        XCTAssertEqual(m.matched, "é!")
    }

    func testNoStopsPassesThrough() {
        var m = StopStringMatcher(stops: ["", ""])
        XCTAssertEqual(m.push("abc"), "abc")
        XCTAssertEqual(m.flush(), "")
    }
}

final class SequenceOutputTests: XCTestCase {
    private func run(_ output: inout SequenceOutput, _ ids: [Int32]) -> (pieces: [String], steps: [SequenceOutput.Step]) {
        var pieces: [String] = [], steps: [SequenceOutput.Step] = []
        for id in ids {
            let step = output.accept(id)
            pieces.append(step.text)
            steps.append(step)
            if step.stop != nil { break }
        }
        return (pieces, steps)
    }

    func testStopStringSpanningTokensIsNotEmitted() throws {
        let t = try byteTokenizer()
        var out = SequenceOutput(tokenizer: t, stopTokens: [256], stopStrings: ["END"], tokenLimit: 100)
        let (pieces, steps) = run(&out, byteIDs("one two ENDthree"))
        XCTAssertEqual(pieces.joined(), "one two ")
        XCTAssertEqual(steps.last?.stop, .string("END"))
        XCTAssertEqual(out.tokenCount, 11)  // "one two END" byte by byte
        // While "E" and "EN" could still become "END", nothing was released.
        XCTAssertEqual(pieces[8], "")
        XCTAssertEqual(pieces[9], "")
    }

    func testEndOfGenerationTokenStopsWithoutText() throws {
        let t = try byteTokenizer()
        var out = SequenceOutput(tokenizer: t, stopTokens: [256, 257], stopStrings: [], tokenLimit: 100)
        let (pieces, steps) = run(&out, byteIDs("Paris.") + [256] + byteIDs("more"))
        XCTAssertEqual(pieces.joined(), "Paris.")
        XCTAssertEqual(steps.last, SequenceOutput.Step(text: "", visible: false, stop: .token(256)))
        XCTAssertEqual(out.tokenCount, 7)
    }

    func testHeldPrefixComesOutAtEndOfGenerationToken() throws {
        let t = try byteTokenizer()
        var out = SequenceOutput(tokenizer: t, stopTokens: [256], stopStrings: ["STOP"], tokenLimit: 100)
        let (pieces, steps) = run(&out, byteIDs("go ST") + [256])
        XCTAssertEqual(pieces.joined(), "go ST")
        XCTAssertEqual(steps.last?.text, "ST")
        XCTAssertEqual(steps.last?.stop, .token(256))
    }

    func testTokenLimitFlushesAndReportsLength() throws {
        let t = try byteTokenizer()
        var out = SequenceOutput(tokenizer: t, stopTokens: [256], stopStrings: ["xyz"], tokenLimit: 4)
        let (pieces, steps) = run(&out, byteIDs("abxyq"))
        XCTAssertEqual(pieces, ["a", "b", "", "xy"])  // "xy" was held, then released at the limit
        XCTAssertEqual(steps.last?.stop, .length)
        XCTAssertEqual(out.tokenCount, 4)
    }

    func testUTF8SpanningTokensIsHeldUntilComplete() throws {
        let t = try byteTokenizer()
        var out = SequenceOutput(tokenizer: t, stopTokens: [256], stopStrings: [], tokenLimit: 100)
        let text = "a🤖b微"
        let (pieces, _) = run(&out, byteIDs(text))
        XCTAssertEqual(pieces, ["a", "", "", "", "🤖", "b", "", "", "微"])
        XCTAssertFalse(pieces.joined().contains("\u{FFFD}"))
    }

    func testCutCharacterAtLimitBecomesReplacement() throws {
        let t = try byteTokenizer()
        var out = SequenceOutput(tokenizer: t, stopTokens: [256], stopStrings: [], tokenLimit: 3)
        let (pieces, steps) = run(&out, byteIDs("a🤖"))
        XCTAssertEqual(pieces.joined(), "a\u{FFFD}")
        XCTAssertEqual(steps.last?.stop, .length)
    }

    func testStopStringInsideMultiByteText() throws {
        let t = try byteTokenizer()
        var out = SequenceOutput(tokenizer: t, stopTokens: [], stopStrings: ["微b"], tokenLimit: 100)
        let (pieces, steps) = run(&out, byteIDs("é微é微bz"))
        XCTAssertEqual(pieces.joined(), "é微é")
        XCTAssertEqual(steps.last?.stop, .string("微b"))
    }

    func testSpecialTokensSkippedOrShown() throws {
        let t = try byteTokenizer()
        var skipping = SequenceOutput(tokenizer: t, stopTokens: [256], stopStrings: [], tokenLimit: 10)
        XCTAssertEqual(run(&skipping, byteIDs("a") + [257] + byteIDs("b")).pieces.joined(), "ab")
        var showing = SequenceOutput(tokenizer: t, stopTokens: [256], stopStrings: [], tokenLimit: 10, skipSpecialTokens: false)
        XCTAssertEqual(run(&showing, byteIDs("a") + [257] + byteIDs("b")).pieces.joined(), "a<|endoftext|>b")
    }
}
