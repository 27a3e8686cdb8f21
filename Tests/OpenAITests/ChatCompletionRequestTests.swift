import XCTest
import Engine
import JSON
@testable import OpenAI

final class ChatCompletionRequestTests: XCTestCase {
    private let minimal = #"{"model": "m", "messages": [{"role": "user", "content": "hi"}]"#

    /// `minimal` plus extra top-level fields given as JSON text.
    private func request(_ extra: String = "") throws(OpenAIError) -> ChatCompletionRequest {
        try ChatCompletionRequest(body: Array((minimal + (extra.isEmpty ? "" : ", " + extra) + "}").utf8))
    }

    private func rejection(_ extra: String) -> OpenAIError? {
        do { _ = try request(extra); return nil } catch { return error }
    }

    private func rejection(body: String) -> OpenAIError? {
        do { _ = try ChatCompletionRequest(body: Array(body.utf8)); return nil } catch { return error }
    }

    func testMinimalRequestGetsOpenAIDefaults() throws {
        let r = try request()
        XCTAssertEqual(r.model, "m")
        XCTAssertEqual(r.messages, [ChatMessage(role: .user, content: "hi")])
        XCTAssertFalse(r.stream)
        XCTAssertNil(r.maxTokens)
        XCTAssertEqual(r.lora, [])
        let p = r.sampling.parameters
        XCTAssertEqual(p.temperature, 1)
        XCTAssertEqual(p.topP, 1)
        XCTAssertEqual(p.topK, 0)
        XCTAssertEqual(p.minP, 0)
        XCTAssertEqual(p.repetitionPenalty, 1)
        XCTAssertNil(p.seed)
        XCTAssertFalse(p.logprobs)
    }

    func testFullRequest() throws {
        let r = try request("""
            "stream": true, "stream_options": {"include_usage": true}, "max_completion_tokens": 50,
            "temperature": 0.5, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "seed": -3, "stop": ["\\n", "END"],
            "frequency_penalty": 0.5, "presence_penalty": -1, "repetition_penalty": 1.1,
            "logit_bias": {"50256": -100, "7": 2.5}, "logprobs": true, "top_logprobs": 3, "n": 1, "user": "u",
            "response_format": {"type": "text"}, "parallel_tool_calls": false, "tools": [], "tool_choice": "none",
            "lora": [{"name": "sql", "scale": 0.5}, {"name": "chat"}], "ignore_eos": true
            """)
        XCTAssertTrue(r.stream)
        XCTAssertEqual(r.sampling.stopConditions, StopConditions(useModelEndTokens: false, strings: ["\n", "END"]))
        XCTAssertTrue(r.includeUsage)
        XCTAssertEqual(r.maxTokens, 50)
        XCTAssertEqual(r.sampling.stop, ["\n", "END"])
        XCTAssertEqual(r.lora, [LoraSelection(name: "sql", scale: 0.5), LoraSelection(name: "chat", scale: 1)])
        XCTAssertEqual(r.user, "u")
        let p = r.sampling.parameters
        XCTAssertEqual(p.temperature, 0.5)
        XCTAssertEqual(p.topP, 0.9)
        XCTAssertEqual(p.topK, 40)
        XCTAssertEqual(p.minP, 0.05)
        XCTAssertEqual(p.seed, UInt64(bitPattern: -3))
        XCTAssertEqual(p.frequencyPenalty, 0.5)
        XCTAssertEqual(p.presencePenalty, -1)
        XCTAssertEqual(p.repetitionPenalty, 1.1)
        XCTAssertEqual(p.logitBias, [50256: -100, 7: 2.5])
        XCTAssertTrue(p.logprobs)
        XCTAssertEqual(p.topLogprobs, 3)
    }

    func testNullMeansNotGiven() throws {
        let r = try request(#""temperature": null, "stop": null, "stream_options": null, "n": null, "lora": null"#)
        XCTAssertEqual(r.sampling.parameters.temperature, 1)
        XCTAssertEqual(r.sampling.stop, [])
        XCTAssertEqual(r.sampling.stopConditions, StopConditions(useModelEndTokens: true, strings: []))
    }

    func testMessagesContentForms() throws {
        let r = try ChatCompletionRequest(json: JSONParser.parse("""
            {"model": "m", "messages": [
              {"role": "developer", "content": "be brief"},
              {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "name": "bob"},
              {"role": "assistant", "content": null},
              {"role": "tool", "content": "42", "tool_call_id": "call_1"}
            ]}
            """))
        XCTAssertEqual(r.messages, [
            ChatMessage(role: .system, content: "be brief"),
            ChatMessage(role: .user, content: "a\nb", name: "bob"),
            ChatMessage(role: .assistant, content: ""),
            ChatMessage(role: .tool, content: "42", toolCallID: "call_1"),
        ])
    }

    func testWrongTypesNameTheParam() {
        let cases: [(String, String)] = [
            (#""temperature": "hot""#, "temperature"),
            (#""stream": 1"#, "stream"),
            (#""max_tokens": 1.5"#, "max_tokens"),
            (#""stop": 3"#, "stop"),
            (#""stop": ["a", 3]"#, "stop[1]"),
            (#""logit_bias": []"#, "logit_bias"),
            (#""logit_bias": {"5": "x"}"#, "logit_bias.5"),
            (#""lora": {"name": "x"}"#, "lora"),
            (#""lora": [{"name": 3}]"#, "lora[0].name"),
            (#""lora": [{"name": "a", "scale": "big"}]"#, "lora[0].scale"),
            (#""user": 5"#, "user"),
            (#""seed": 1.5"#, "seed"),
            (#""ignore_eos": "yes""#, "ignore_eos"),
        ]
        for (extra, param) in cases {
            let e = rejection(extra)
            XCTAssertEqual(e?.status, 400, extra)
            XCTAssertEqual(e?.type, "invalid_request_error", extra)
            XCTAssertEqual(e?.param, param, extra)
            XCTAssertTrue(e?.message.contains("Invalid type for '\(param)'") ?? false, "\(extra): \(e?.message ?? "accepted")")
        }
        XCTAssertEqual(rejection(#""temperature": "hot""#)?.message,
                       "Invalid type for 'temperature': expected a number, but got a string instead.")
    }

    func testRangesAreEnforced() {
        let bad: [(String, String)] = [
            (#""temperature": -0.1"#, "temperature"), (#""temperature": 2.01"#, "temperature"),
            (#""top_p": 0"#, "top_p"), (#""top_p": 1.5"#, "top_p"),
            (#""top_k": -2"#, "top_k"), (#""min_p": 1.1"#, "min_p"),
            (#""frequency_penalty": 2.5"#, "frequency_penalty"), (#""presence_penalty": -3"#, "presence_penalty"),
            (#""repetition_penalty": 0"#, "repetition_penalty"), (#""max_tokens": 0"#, "max_tokens"),
            (#""max_completion_tokens": -5"#, "max_completion_tokens"), (#""top_logprobs": 21, "logprobs": true"#, "top_logprobs"),
            (#""logit_bias": {"5": 101}"#, "logit_bias.5"), (#""logit_bias": {"abc": 1}"#, "logit_bias"),
            (#""logit_bias": {"-1": 1}"#, "logit_bias"), (#""logit_bias": {"99999999999": 1}"#, "logit_bias"),
            (#""stop": ["a", "b", "c", "d", "e"]"#, "stop"), ("\"stop\": \"\"", "stop"), (#""stop": ["a", ""]"#, "stop[1]"),
            (#""n": 2"#, "n"), (#""top_logprobs": 2"#, "top_logprobs"), (#""top_logprobs": 2, "logprobs": false"#, "top_logprobs"),
            (#""stream_options": {"include_usage": true}"#, "stream_options"),
            (#""stream": true, "stream_options": {"x": 1}"#, "stream_options.x"),
            (#""max_tokens": 5, "max_completion_tokens": 6"#, "max_tokens"),
            (#""response_format": {"type": "json_object"}"#, "response_format.type"),
            (#""tools": [{"type": "function"}]"#, "tools"), (#""tool_choice": "auto""#, "tool_choice"), (#""store": true"#, "store"),
            (#""lora": [{"name": ""}]"#, "lora[0].name"), (#""lora": [{"name": "a"}, {"name": "a"}]"#, "lora[1].name"),
            (#""lora": [{"name": "a", "scale": 11}]"#, "lora[0].scale"), (#""lora": [{"name": "a", "rank": 8}]"#, "lora[0].rank"),
        ]
        for (extra, param) in bad {
            let e = rejection(extra)
            XCTAssertEqual(e?.status, 400, extra)
            XCTAssertEqual(e?.param, param, "\(extra): \(e?.message ?? "accepted")")
        }
        XCTAssertEqual(rejection(#""temperature": 3"#)?.message,
                       "Invalid value for 'temperature': expected a value at least 0 and at most 2, but got 3 instead.")
        XCTAssertEqual(rejection(#""n": 3"#)?.message, "Invalid 'n': only n=1 is supported by this server, but got 3.")
        // Boundaries are accepted.
        XCTAssertNil(rejection(#""temperature": 0, "top_p": 1, "top_k": -1, "min_p": 1, "frequency_penalty": -2, "max_tokens": 1"#))
        XCTAssertNil(rejection(#""max_tokens": 7, "max_completion_tokens": 7"#))
    }

    func testUnknownFieldsAreRejectedByName() {
        let e = rejection(#""temprature": 0.5"#)
        XCTAssertEqual(e?.param, "temprature")
        XCTAssertEqual(e?.message, "Unrecognized request argument supplied: temprature")
        XCTAssertEqual(rejection(#""functions": []"#)?.param, "functions")
    }

    func testMessageValidation() {
        let cases: [(String, String)] = [
            (#"{"model": "m"}"#, "messages"),
            (#"{"messages": [{"role": "user", "content": "x"}]}"#, "model"),
            (#"{"model": "m", "messages": []}"#, "messages"),
            (#"{"model": "m", "messages": "hi"}"#, "messages"),
            (#"{"model": "m", "messages": ["hi"]}"#, "messages[0]"),
            (#"{"model": "m", "messages": [{"content": "x"}]}"#, "messages[0].role"),
            (#"{"model": "m", "messages": [{"role": "robot", "content": "x"}]}"#, "messages[0].role"),
            (#"{"model": "m", "messages": [{"role": "user"}]}"#, "messages[0].content"),
            (#"{"model": "m", "messages": [{"role": "user", "content": 5}]}"#, "messages[0].content"),
            (#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}"#, "messages[0].content[0].type"),
            (#"{"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}"#, "messages[0].content[0].text"),
            (#"{"model": "m", "messages": [{"role": "user", "content": "x", "mood": "happy"}]}"#, "messages[0].mood"),
            (#"{"model": "m", "messages": [{"role": "user", "content": "x", "tool_call_id": "c"}]}"#, "messages[0].tool_call_id"),
            (#"{"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]}"#, "messages[0].tool_calls"),
            (#"{"model": 3, "messages": [{"role": "user", "content": "x"}]}"#, "model"),
        ]
        for (body, param) in cases {
            let e = rejection(body: body)
            XCTAssertEqual(e?.status, 400, body)
            XCTAssertEqual(e?.param, param, "\(body): \(e?.message ?? "accepted")")
        }
        XCTAssertEqual(rejection(body: #"{"model": "m"}"#)?.message, "Missing required parameter: 'messages'.")
    }

    func testBodyThatIsNotAnObjectOrNotJSON() {
        XCTAssertEqual(rejection(body: "[1]")?.message, "The request body must be a JSON object, but got an array.")
        let e = rejection(body: #"{"model": "m",}"#)
        XCTAssertEqual(e?.status, 400)
        XCTAssertNil(e?.param)
        XCTAssertTrue(e?.message.contains("byte offset 14") ?? false, e?.message ?? "")
        XCTAssertNotNil(rejection(body: "\u{FEFF}\u{0}"))
    }
}
