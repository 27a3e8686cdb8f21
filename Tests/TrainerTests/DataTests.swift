import Foundation
import GGUF
import TestSupport
import Tokenizer
import XCTest
@testable import Trainer

final class DataTests: XCTestCase {
    nonisolated(unsafe) static var sharedRenderer: ChatTemplateRenderer?   // tests run serially; only they touch it

    static func renderer() throws -> ChatTemplateRenderer {
        if let r = sharedRenderer { return r }
        let path = TestPaths.defaultModel.path
        try XCTSkipUnless(FileManager.default.fileExists(atPath: path), "model not installed")
        let file = try GGUFFile(path: path)
        let r = ChatTemplateRenderer(template: try ChatTemplate(gguf: file, tokenizer: try Tokenizer(gguf: file)))
        sharedRenderer = r
        return r
    }

    static func jsonl(_ objects: [Any]) throws -> [UInt8] {
        var out: [UInt8] = []
        for o in objects {
            out += try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }

    func load(_ bytes: [UInt8], _ configure: (inout DataOptions) -> Void = { _ in }) throws -> TrainingData {
        var options = DataOptions()
        options.evalSplit = 0
        configure(&options)
        return try TrainingData.load(bytes: bytes, name: "test.jsonl", renderer: try Self.renderer(), vocabularySize: 49152,
                                     options: options)
    }

    /// train_case.json's alpaca records, rendered with the GGUF's template, give the reference's ids and labels.
    func testAlpacaRecordsRenderAndMaskLikeReference() throws {
        let json = try XCTUnwrap(TestPaths.loadJSON("train_case.json") as? [String: Any])
        let records = try XCTUnwrap(json["data"] as? [[String: Any]])
        let examples = try XCTUnwrap(json["examples"] as? [[String: Any]])
        let data = try load(try Self.jsonl(records))
        XCTAssertEqual(data.examples.count, examples.count)
        XCTAssertTrue(data.problems.isEmpty)
        for (ours, ref) in zip(data.examples, examples) {
            let ids = try XCTUnwrap(ref["input_ids"] as? [Int]).map(Int32.init)
            let labels = try XCTUnwrap(ref["labels"] as? [Int])
            XCTAssertEqual(ours.sequence.tokens, ids)
            XCTAssertEqual(ours.sequence.supervised, labels.map { $0 != -100 })
        }
        XCTAssertEqual(data.stats.supervisedTokens, 51)
        XCTAssertNoThrow(try data.checkSupervision())
    }

    func testChatFormTrainsEveryAssistantTurnAndItsEnd() throws {
        let record: [String: Any] = ["messages": [
            ["role": "system", "content": "Be brief."],
            ["role": "user", "content": "Hi"],
            ["role": "assistant", "content": "Hello!"],
            ["role": "user", "content": "Bye"],
            ["role": "assistant", "content": "Goodbye."],
        ]]
        let data = try load(try Self.jsonl([record]))
        let e = try XCTUnwrap(data.examples.first)
        XCTAssertEqual(e.spans.count, 2)
        let r = try Self.renderer()
        XCTAssertEqual(r.decode(Array(e.sequence.tokens[e.spans[0]])), "Hello!<|im_end|>")
        XCTAssertEqual(r.decode(Array(e.sequence.tokens[e.spans[1]])), "Goodbye.<|im_end|>")
        // Everything else (system, user turns, role headers, the newline after <|im_end|>) is not trained.
        let trained = e.sequence.supervised.enumerated().filter(\.element).map(\.offset)
        XCTAssertEqual(trained, Array(e.spans[0]) + Array(e.spans[1]))
        XCTAssertEqual(r.decode(e.sequence.tokens), "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                       + "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\nGoodbye.<|im_end|>\n")
    }

    func testPromptCompletionIsOneUserAndOneAssistantTurn() throws {
        let a = try load(try Self.jsonl([["prompt": "Who are you?", "completion": "A test."]]))
        let b = try load(try Self.jsonl([["instruction": "Who are you?", "input": "", "output": "A test."]]))
        XCTAssertEqual(a.examples.first?.sequence, b.examples.first?.sequence)
        // An alpaca system field becomes the system turn (no default system message then).
        let c = try load(try Self.jsonl([["instruction": "Q", "output": "A", "system": "S"]]))
        XCTAssertTrue(try Self.renderer().decode(c.examples[0].sequence.tokens).hasPrefix("<|im_start|>system\nS<|im_end|>"))
    }

    func testBadLinesAreReportedWithLineNumbers() throws {
        var bytes = try Self.jsonl([["instruction": "a", "output": "b"]])
        bytes += Array("{not json\n[1,2]\n{\"instruction\": 3, \"output\": \"x\"}\n\n{\"foo\": 1}\n".utf8)
        bytes += try Self.jsonl([["messages": [["role": "robot", "content": "x"]]]])
        XCTAssertThrowsError(try load(bytes)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("5 bad line(s)"), text)
            for line in ["line 2:", "line 3:", "line 4:", "line 6:", "line 7:"] { XCTAssertTrue(text.contains(line), "\(line) in \(text)") }
            XCTAssertTrue(text.contains("\"instruction\" must be a string"), text)
            XCTAssertTrue(text.contains("role \"robot\""), text)
        }
        let skipped = try load(bytes) { $0.skipBadLines = true }
        XCTAssertEqual(skipped.stats.badLines.map(\.line), [2, 3, 4, 6, 7])
        XCTAssertEqual(skipped.stats.blankLines, 1)
        XCTAssertEqual(skipped.examples.count, 1)
    }

    func testEmptyAndOverlongExamplesAreCountedSkippedOrTruncated() throws {
        let long = String(repeating: "word ", count: 200)
        let bytes = try Self.jsonl([
            ["instruction": "a", "output": ""],                       // empty: nothing to learn
            ["messages": [["role": "user", "content": "only a question"]]],   // no assistant turn
            ["instruction": "short", "output": "fine"],
            ["instruction": "long", "output": long],                  // over 64 tokens
            ["instruction": long, "output": "answer at the end"],     // truncation would cut every label
        ])
        let skipped = try load(bytes) { $0.maxSequenceLength = 64 }
        XCTAssertEqual(skipped.stats.emptySkipped, 2)
        XCTAssertEqual(skipped.stats.tooLongSkipped, 2)
        XCTAssertEqual(skipped.stats.truncated, 0)
        XCTAssertEqual(skipped.examples.map(\.line), [3])

        let cut = try load(bytes) { $0.maxSequenceLength = 64; $0.truncate = true }
        XCTAssertEqual(cut.stats.truncated, 1)
        XCTAssertEqual(cut.stats.tooLongSkipped, 1)
        XCTAssertEqual(cut.examples.map(\.line), [3, 4])
        XCTAssertEqual(cut.examples[1].sequence.tokens.count, 64)
        XCTAssertTrue(cut.examples[1].truncated)
    }

    func testTokenizedRecordsAndEvalSplit() throws {
        let json = try XCTUnwrap(TestPaths.loadJSON("train_case.json") as? [String: Any])
        let examples = try XCTUnwrap(json["examples"] as? [[String: Any]])
        let records = examples.map { ["input_ids": $0["input_ids"]!, "labels": $0["labels"]!] }
        let data = try load(try Self.jsonl(records + records + records)) { $0.evalSplit = 0.25 }
        XCTAssertEqual(data.stats.kept, 12)
        XCTAssertEqual(data.eval.count, 3)
        XCTAssertEqual(data.train.count, 9)
        XCTAssertEqual(Set((data.train + data.eval).map(\.exampleID)), Set(0..<12))
        XCTAssertEqual(data.stats.supervisedTokens, 3 * 51)
        // Labels that are not the ids are refused.
        XCTAssertThrowsError(try load(try Self.jsonl([["input_ids": [1, 2, 3], "labels": [-100, 5, 3]]])))
        XCTAssertThrowsError(try load(try Self.jsonl([["input_ids": [1, 99999], "labels": [-100, 99999]]])))
    }

    /// A renderer whose spans stop before the end-of-turn token: training must refuse to start.
    func testMissingTurnEndSupervisionIsRefused() throws {
        struct Clipped: ConversationRenderer {
            let inner: ChatTemplateRenderer
            var fingerprint: String { "clipped" }
            func render(_ turns: [ChatTurn]) throws(TrainerError) -> RenderedConversation {
                var r = try inner.render(turns)
                r.spans = r.spans.map { $0.lowerBound..<$0.upperBound - 1 }
                return r
            }
            func isTurnEnd(_ id: Int32) -> Bool { inner.isTurnEnd(id) }
            func decode(_ ids: [Int32]) -> String { inner.decode(ids) }
        }
        var options = DataOptions()
        options.evalSplit = 0
        let data = try TrainingData.load(bytes: try Self.jsonl([["instruction": "a", "output": "b c"]]), name: "t",
                                         renderer: Clipped(inner: try Self.renderer()), vocabularySize: 49152, options: options)
        XCTAssertEqual(data.problems.count, 1)
        XCTAssertThrowsError(try data.checkSupervision()) { XCTAssertTrue("\($0)".contains("line 1"), "\($0)") }
    }

    func testSHA256KnownVectors() {
        XCTAssertEqual(SHA256.hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var s = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { s.update(chunk) }
        XCTAssertEqual(s.finalizeHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
