import XCTest
import JSON
@testable import OpenAI

/// Every builder's output is encoded, parsed back, and checked field by field against the
/// OpenAI API reference (names, nesting, object types).
final class ResponseShapeTests: XCTestCase {
    private func roundTrip(_ value: JSONValue) throws -> JSONValue { try JSONParser.parse(value.serialized()) }

    private let logprob = TokenLogprob(
        token: "Hi", bytes: [72, 105], logprob: -0.25,
        topLogprobs: [.init(token: "Hi", bytes: [72, 105], logprob: -0.25), .init(token: "Yo", bytes: [89, 111], logprob: -.infinity)])

    func testChatCompletion() throws {
        let completion = ChatCompletion(
            id: "chatcmpl-abc", created: 1_700_000_000, model: "smol",
            choices: [.init(content: "Hello", logprobs: [logprob], finishReason: .stop)],
            usage: Usage(promptTokens: 5, completionTokens: 2))
        let v = try roundTrip(completion.json)
        XCTAssertEqual(v["id"], "chatcmpl-abc")
        XCTAssertEqual(v["object"], "chat.completion")
        XCTAssertEqual(v["created"], 1_700_000_000)
        XCTAssertEqual(v["model"], "smol")
        let choice = try XCTUnwrap(v["choices"]?[0])
        XCTAssertEqual(choice["index"], 0)
        XCTAssertEqual(choice["message"]?["role"], "assistant")
        XCTAssertEqual(choice["message"]?["content"], "Hello")
        XCTAssertEqual(choice["finish_reason"], "stop")
        let entry = try XCTUnwrap(choice["logprobs"]?["content"]?[0])
        XCTAssertEqual(entry["token"], "Hi")
        XCTAssertEqual(entry["logprob"], -0.25)
        XCTAssertEqual(entry["bytes"], [72, 105])
        XCTAssertEqual(entry["top_logprobs"]?[1]?["token"], "Yo")
        XCTAssertEqual(entry["top_logprobs"]?[1]?["logprob"], -9999.0, "-inf is reported as -9999")
        XCTAssertEqual(entry["top_logprobs"]?[1]?["bytes"], [89, 111])
        XCTAssertEqual(v["usage"], ["prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                                    "prompt_tokens_details": ["cached_tokens": 0]])

        let plain = try roundTrip(ChatCompletion(id: "x", created: 0, model: "m", choices: [.init(content: "", finishReason: .length)],
                                                 usage: Usage(promptTokens: 1, completionTokens: 0)).json)
        XCTAssertEqual(plain["choices"]?[0]?["logprobs"], .null)
        XCTAssertEqual(plain["choices"]?[0]?["finish_reason"], "length")
    }

    func testChatChunkSequence() throws {
        let builder = ChatCompletionChunkBuilder(id: "chatcmpl-1", created: 9, model: "m", includeUsage: true)
        let role = try roundTrip(builder.roleChunk())
        XCTAssertEqual(role["object"], "chat.completion.chunk")
        XCTAssertEqual(role["id"], "chatcmpl-1")
        XCTAssertEqual(role["created"], 9)
        XCTAssertEqual(role["choices"]?[0]?["delta"], ["role": "assistant", "content": ""])
        XCTAssertEqual(role["choices"]?[0]?["finish_reason"], .null)
        XCTAssertEqual(role["usage"], .null)
        XCTAssertNotNil(role.objectValue?["usage"], "usage: null is present on every chunk with include_usage")

        let content = try roundTrip(builder.contentChunk("lo", logprobs: [logprob]))
        XCTAssertEqual(content["choices"]?[0]?["delta"], ["content": "lo"])
        XCTAssertEqual(content["choices"]?[0]?["logprobs"]?["content"]?[0]?["token"], "Hi")

        let finish = try roundTrip(builder.finishChunk(.length))
        XCTAssertEqual(finish["choices"]?[0]?["delta"], .object(JSONObject()))
        XCTAssertEqual(finish["choices"]?[0]?["finish_reason"], "length")

        let usage = try roundTrip(builder.usageChunk(Usage(promptTokens: 3, completionTokens: 4)))
        XCTAssertEqual(usage["choices"], [])
        XCTAssertEqual(usage["usage"]?["total_tokens"], 7)

        let noUsage = ChatCompletionChunkBuilder(id: "c", created: 0, model: "m").contentChunk("x")
        XCTAssertNil(noUsage.objectValue?["usage"], "no usage key without include_usage")
    }

    func testTextCompletionAndChunks() throws {
        let lp = [TokenLogprob(token: "é", bytes: [0xC3, 0xA9], logprob: -1, topLogprobs: [.init(token: "é", bytes: [0xC3, 0xA9], logprob: -1)]),
                  TokenLogprob(token: "ab", bytes: [97, 98], logprob: -2)]
        let v = try roundTrip(TextCompletion(id: "cmpl-1", created: 5, model: "m", text: "éab", logprobs: lp,
                                             finishReason: .stop, usage: Usage(promptTokens: 1, completionTokens: 2)).json)
        XCTAssertEqual(v["object"], "text_completion")
        let choice = try XCTUnwrap(v["choices"]?[0])
        XCTAssertEqual(choice["text"], "éab")
        XCTAssertEqual(choice["index"], 0)
        XCTAssertEqual(choice["finish_reason"], "stop")
        XCTAssertEqual(choice["logprobs"]?["tokens"], ["é", "ab"])
        XCTAssertEqual(choice["logprobs"]?["token_logprobs"], [-1.0, -2.0])
        XCTAssertEqual(choice["logprobs"]?["top_logprobs"]?[0], ["é": -1.0])
        XCTAssertEqual(choice["logprobs"]?["text_offset"], [0, 1])
        XCTAssertEqual(v["usage"]?["prompt_tokens"], 1)

        var builder = TextCompletionChunkBuilder(id: "cmpl-2", created: 1, model: "m")
        _ = builder.textChunk("héllo")
        let second = try roundTrip(builder.textChunk("x", logprobs: [TokenLogprob(token: "x", bytes: [120], logprob: -0.5)]))
        XCTAssertEqual(second["object"], "text_completion")
        XCTAssertEqual(second["choices"]?[0]?["text"], "x")
        XCTAssertEqual(second["choices"]?[0]?["logprobs"]?["text_offset"], [5], "offsets continue across chunks")
        XCTAssertEqual(second["choices"]?[0]?["finish_reason"], .null)
        let finish = try roundTrip(builder.finishChunk(.length))
        XCTAssertEqual(finish["choices"]?[0]?["finish_reason"], "length")
        XCTAssertEqual(try roundTrip(builder.usageChunk(Usage(promptTokens: 1, completionTokens: 1)))["choices"], [])
    }

    func testModelList() throws {
        let v = try roundTrip(ModelInfo.listJSON([
            ModelInfo(id: "smol", created: 1), ModelInfo(id: "sql", created: 2, parent: "smol"),
        ]))
        XCTAssertEqual(v["object"], "list")
        XCTAssertEqual(v["data"]?[0], ["id": "smol", "object": "model", "created": 1, "owned_by": "loraserve"])
        XCTAssertEqual(v["data"]?[1]?["parent"], "smol")
    }

    func testErrorsAndSSE() throws {
        let e = OpenAIError.modelNotFound("gpt-9")
        XCTAssertEqual(e.status, 404)
        let body = try JSONParser.parse(e.jsonBody)
        XCTAssertEqual(body, ["error": ["message": "The model 'gpt-9' does not exist.", "type": "invalid_request_error",
                                        "param": "model", "code": "model_not_found"]])
        let bad = try JSONParser.parse(OpenAIError.invalidRequest("nope", param: "top_p").jsonBody)
        XCTAssertEqual(bad["error"]?["param"], "top_p")
        XCTAssertEqual(bad["error"]?["code"], .null)
        XCTAssertNotNil(bad["error"]?.objectValue?["code"], "code is present as null")
        let statuses = [OpenAIError.invalidAPIKey(), .authenticationRequired(), .payloadTooLarge(limit: 10), .rateLimited(),
                        .serverError(), .serviceUnavailable()].map(\.status)
        XCTAssertEqual(statuses, [401, 401, 413, 429, 500, 503])
        XCTAssertEqual(OpenAIError.invalidAPIKey().code, "invalid_api_key")
        XCTAssertEqual(OpenAIError.rateLimited().code, "rate_limit_exceeded")

        let event = ServerSentEvents.event(["a": 1])
        XCTAssertEqual(String(decoding: event, as: UTF8.self), "data: {\"a\":1}\n\n")
        XCTAssertEqual(String(decoding: ServerSentEvents.done, as: UTF8.self), "data: [DONE]\n\n")
        XCTAssertTrue(String(decoding: ServerSentEvents.error(.serverError()), as: UTF8.self).hasPrefix("data: {\"error\":{"))
    }

    func testResponseIDs() {
        var rng = SplitMixRNG(seed: 1)
        let id = ResponseID.make(prefix: "chatcmpl", using: &rng)
        XCTAssertTrue(id.hasPrefix("chatcmpl-"))
        XCTAssertEqual(id.count, 9 + 24)
        XCTAssertTrue(id.dropFirst(9).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
        XCTAssertNotEqual(ResponseID.make(prefix: "x"), ResponseID.make(prefix: "x"))
    }
}

struct SplitMixRNG: RandomNumberGenerator {
    var inner: SplitMix
    init(seed: UInt64) { inner = SplitMix(seed: seed) }
    mutating func next() -> UInt64 { inner.next() }
}
