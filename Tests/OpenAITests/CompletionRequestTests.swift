import XCTest
import JSON
@testable import OpenAI

final class CompletionRequestTests: XCTestCase {
    private func parse(_ body: String) throws(OpenAIError) -> CompletionRequest {
        try CompletionRequest(body: Array(body.utf8))
    }

    private func rejection(_ body: String) -> OpenAIError? {
        do { _ = try parse(body); return nil } catch { return error }
    }

    func testPromptForms() throws {
        XCTAssertEqual(try parse(#"{"model": "m", "prompt": "Once"}"#).prompt, .text("Once"))
        XCTAssertEqual(try parse(#"{"model": "m", "prompt": ["Once"]}"#).prompt, .text("Once"))
        XCTAssertEqual(try parse(#"{"model": "m", "prompt": [1, 2, 3]}"#).prompt, .tokens([1, 2, 3]))
        XCTAssertEqual(try parse(#"{"model": "m", "prompt": [[4, 5]]}"#).prompt, .tokens([4, 5]))
    }

    func testDefaultsAndOptions() throws {
        let r = try parse(#"{"model": "m", "prompt": "x"}"#)
        XCTAssertEqual(r.maxTokens, 16)
        XCTAssertFalse(r.sampling.logprobs)
        let full = try parse("""
            {"model": "m", "prompt": "x", "max_tokens": 3, "logprobs": 2, "echo": false, "suffix": null, "best_of": 1,
             "n": 1, "stream": true, "stream_options": {"include_usage": false}, "temperature": 0, "stop": "\\n",
             "lora": [{"name": "a", "scale": 2}]}
            """)
        XCTAssertEqual(full.maxTokens, 3)
        XCTAssertTrue(full.sampling.parameters.logprobs)
        XCTAssertEqual(full.sampling.parameters.topLogprobs, 2)
        XCTAssertTrue(full.stream)
        XCTAssertEqual(full.sampling.stop, ["\n"])
        XCTAssertEqual(full.lora, [LoraSelection(name: "a", scale: 2)])
    }

    func testRejections() {
        let cases: [(String, String)] = [
            (#"{"model": "m"}"#, "prompt"),
            (#"{"model": "m", "prompt": 5}"#, "prompt"),
            (#"{"model": "m", "prompt": []}"#, "prompt"),
            (#"{"model": "m", "prompt": ["a", "b"]}"#, "prompt"),
            (#"{"model": "m", "prompt": [1, -2]}"#, "prompt[1]"),
            (#"{"model": "m", "prompt": [1, "a"]}"#, "prompt[1]"),
            (#"{"model": "m", "prompt": [[]]}"#, "prompt[0]"),
            (#"{"model": "m", "prompt": "x", "echo": true}"#, "echo"),
            (#"{"model": "m", "prompt": "x", "suffix": "end"}"#, "suffix"),
            (#"{"model": "m", "prompt": "x", "best_of": 3}"#, "best_of"),
            (#"{"model": "m", "prompt": "x", "logprobs": 6}"#, "logprobs"),
            (#"{"model": "m", "prompt": "x", "logprobs": true}"#, "logprobs"),
            (#"{"model": "m", "prompt": "x", "messages": []}"#, "messages"),
            (#"{"model": "m", "prompt": "x", "max_completion_tokens": 5}"#, "max_completion_tokens"),
        ]
        for (body, param) in cases {
            let e = rejection(body)
            XCTAssertEqual(e?.status, 400, body)
            XCTAssertEqual(e?.param, param, "\(body): \(e?.message ?? "accepted")")
        }
    }
}
