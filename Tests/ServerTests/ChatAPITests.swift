import Foundation
import HTTP
import JSON
import TestSupport
import XCTest

/// The OpenAI chat API over loopback against a real server on the default model.
final class ChatAPITests: XCTestCase {
    func testNonStreamingAndStreamingAgree() throws {
        let (_, port) = try ServerFixture.server()
        let (status, json) = try post("/v1/chat/completions", chatBody("What is the capital of France?"), port: port)
        XCTAssertEqual(status, 200)
        let content = json?["choices"]?[0]?["message"]?["content"]?.stringValue
        XCTAssertEqual(content, "The capital of France is Paris.")
        XCTAssertEqual(json?["object"]?.stringValue, "chat.completion")
        XCTAssertEqual(json?["model"]?.stringValue, "base")
        XCTAssertEqual(json?["choices"]?[0]?["finish_reason"]?.stringValue, "stop")
        let usage = json?["usage"]
        XCTAssertEqual(usage?["total_tokens"]?.intValue, (usage?["prompt_tokens"]?.intValue ?? 0) + (usage?["completion_tokens"]?.intValue ?? 0))

        let streamed = try streamChat(chatBody("What is the capital of France?", stream: true), port: port)
        XCTAssertEqual(streamed.text, content)
        XCTAssertTrue(streamed.done)
        XCTAssertEqual(streamed.usage?["completion_tokens"]?.intValue, usage?["completion_tokens"]?.intValue)
        // The same prompt again: all of it but the last token comes from the prefix cache.
        XCTAssertEqual(streamed.usage?["prompt_tokens_details"]?["cached_tokens"]?.intValue, (usage?["prompt_tokens"]?.intValue ?? 0) - 1)
    }

    /// `ignore_eos` (vLLM's and llama.cpp's extension) runs past the model's end token to exactly
    /// `max_tokens`: how benchmarks ask for fixed-length completions.
    func testIgnoreEOSGeneratesExactlyMaxTokens() throws {
        let (_, port) = try ServerFixture.server()
        let (_, ended) = try post("/v1/chat/completions", chatBody("What is the capital of France?", maxTokens: 24), port: port)
        let natural = ended?["usage"]?["completion_tokens"]?.intValue ?? 0
        XCTAssertEqual(ended?["choices"]?[0]?["finish_reason"]?.stringValue, "stop")
        XCTAssertLessThan(natural, 24, "the answer ends on its own before max_tokens")
        let (status, json) = try post("/v1/chat/completions",
                                      chatBody("What is the capital of France?", maxTokens: 24, extra: ", \"ignore_eos\": true"), port: port)
        XCTAssertEqual(status, 200)
        XCTAssertEqual(json?["usage"]?["completion_tokens"]?.intValue, 24)
        XCTAssertEqual(json?["choices"]?[0]?["finish_reason"]?.stringValue, "length")
        let text = json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
        XCTAssertTrue(text.hasPrefix("The capital of France is Paris."), text)
    }

    /// greedy_cases "base" of the reference, through the HTTP API at temperature 0; twice, the
    /// second time with every prompt but its last token from the prefix cache.
    func testReferenceGreedyCasesThroughHTTP() throws {
        let (server, port) = try ServerFixture.server()
        for pass in 0..<2 { for c in try greedyCases("base") {
            let eos = c.greedyIDs.last.map { server.tokenizer.endOfGenerationIDs.contains($0) } ?? false
            let visible = eos ? Array(c.greedyIDs.dropLast()) : c.greedyIDs
            let messages = JSONValue.array(c.messages.map { ["role": .string($0.0), "content": .string($0.1)] }).jsonString
            let body = "{\"model\": \"base\", \"messages\": \(messages), \"max_tokens\": 32, \"temperature\": 0, \"logprobs\": true}"
            let (status, json) = try post("/v1/chat/completions", body, port: port)
            XCTAssertEqual(status, 200)
            XCTAssertEqual(json?["usage"]?["prompt_tokens"]?.intValue, c.promptIDs.count, "prompt rendered to the reference ids' length")
            XCTAssertEqual(json?["usage"]?["completion_tokens"]?.intValue, c.greedyIDs.count)
            let text = json?["choices"]?[0]?["message"]?["content"]?.stringValue
            XCTAssertEqual(text, server.tokenizer.decode(visible))
            // The tokens themselves, through logprobs' bytes.
            let tokens = json?["choices"]?[0]?["logprobs"]?["content"]?.arrayValue ?? []
            let bytes = tokens.map { t in (t["bytes"]?.arrayValue ?? []).compactMap { $0.intValue.map(UInt8.init) } }
            XCTAssertEqual(bytes, visible.map { Array(server.tokenizer.tokenBytes($0)) })
            XCTAssertEqual(json?["choices"]?[0]?["finish_reason"]?.stringValue, eos ? "stop" : "length")
            if pass == 1 { XCTAssertEqual(json?["usage"]?["prompt_tokens_details"]?["cached_tokens"]?.intValue, c.promptIDs.count - 1) }
        } }
    }

    /// 16 concurrent streaming clients; each greedy answer equals the same request run alone.
    func testSixteenConcurrentStreamsEqualEachAlone() throws {
        let (_, port) = try ServerFixture.server()
        let prompts = (0..<16).map { "Write one sentence about the number \($0 * 7 + 3)." }
        let alone = try prompts.map { try streamChat(chatBody($0, maxTokens: 24, stream: true), port: port).text }
        let together = Slots<String?>(prompts.count, nil)
        DispatchQueue.concurrentPerform(iterations: prompts.count) { i in
            together[i] = (try? streamChat(chatBody(prompts[i], maxTokens: 24, stream: true), port: port))?.text
        }
        for i in prompts.indices { XCTAssertEqual(together[i], alone[i], "prompt \(i)") }
    }

    /// A client that disconnects mid-stream frees its sequence (visible in /metrics).
    func testDisconnectMidStreamFreesTheSequence() throws {
        let (_, port) = try ServerFixture.server()
        XCTAssertTrue(try waitFor { try metric("loraserve_running_sequences", port: port) == 0 })
        let cancelledBefore = try finishedCount("cancelled", port: port)
        let client = try HTTPClient(port: port, timeout: .seconds(60))
        try client.sendRequest(method: "POST", path: "/v1/chat/completions", headers: [("Content-Type", "application/json")],
                               body: Array(chatBody("Count from one to five hundred.", maxTokens: 2000, stream: true).utf8))
        XCTAssertEqual(try client.readResponseHead().status, 200)
        for _ in 0..<3 { _ = try client.readEvent() }
        XCTAssertEqual(try metric("loraserve_running_sequences", port: port), 1)
        client.close()
        XCTAssertTrue(try waitFor { try metric("loraserve_running_sequences", port: port) == 0 }, "sequence still running")
        XCTAssertEqual(try metric("loraserve_kv_cache_bytes", port: port), 0)
        XCTAssertEqual(try finishedCount("cancelled", port: port), cancelledBefore + 1)
    }

    private func finishedCount(_ reason: String, port: Int) throws -> Int {
        let (_, text) = try get("/metrics", port: port)
        for line in text.split(separator: "\n") where line.hasPrefix("loraserve_requests_finished_total{reason=\"\(reason)\"}") {
            return Int(Double(line.split(separator: " ").last ?? "") ?? 0)
        }
        return 0
    }

    /// Bad requests get the right 4xx with an OpenAI error body, and the server keeps serving.
    func testBadRequestsGetOpenAIErrors() throws {
        let (_, port) = try ServerFixture.server()
        let longPrompt = String(repeating: "hello world ", count: 5000)   // ~10,000 tokens > 8192
        let cases: [(String, [UInt8], Int, String?)] = [
            ("malformed JSON", Array("{\"model\": \"base\", \"messages\": [".utf8), 400, nil),
            ("wrong type", Array("{\"model\": \"base\", \"messages\": \"hi\"}".utf8), 400, "messages"),
            ("unknown field", Array("{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"bogus\": 1}".utf8), 400, "bogus"),
            ("invalid UTF-8", Array("{\"model\": \"base\", \"messages\": [{\"role\": \"user\", \"content\": \"".utf8) + [0xC3, 0x28] + Array("\"}]}".utf8), 400, nil),
            ("negative max_tokens", Array(chatBody("hi", maxTokens: -5).utf8), 400, "max_tokens"),
            ("n = 2", Array(chatBody("hi", extra: ", \"n\": 2").utf8), 400, "n"),
            ("unknown model", Array(chatBody("hi", model: "no-such-adapter").utf8), 404, "model"),
            ("over-long prompt", Array(chatBody(longPrompt).utf8), 400, "messages"),
            ("oversize body", Array(chatBody(String(repeating: "x", count: 2 << 20)).utf8), 413, nil),
        ]
        for (name, body, status, param) in cases {
            let client = try HTTPClient(port: port, timeout: .seconds(60))
            let r = try client.request(method: "POST", path: "/v1/chat/completions", headers: [("Content-Type", "application/json")], body: body)
            client.close()
            XCTAssertEqual(r.status, status, name)
            let json = try? JSONParser.parse(r.body)
            XCTAssertNotNil(json?["error"]?["message"]?.stringValue, "\(name): \(r.text)")
            XCTAssertNotNil(json?["error"]?["type"]?.stringValue, name)
            if let param { XCTAssertEqual(json?["error"]?["param"]?.stringValue, param, "\(name): \(r.text)") }
            if name == "over-long prompt" {
                XCTAssertTrue(json?["error"]?["message"]?.stringValue?.contains("8192") ?? false, r.text)
            }
            // Still serving.
            XCTAssertEqual(try get("/health", port: port).0, 200, "after \(name)")
        }
        let (status, _) = try post("/v1/chat/completions", chatBody("hi", maxTokens: 4), port: port)
        XCTAssertEqual(status, 200)
        XCTAssertEqual(try get("/v1/nothing", port: port).0, 404)
    }

    func testModelsListAndHealth() throws {
        let (server, port) = try ServerFixture.server()
        let (status, text) = try get("/v1/models", port: port)
        XCTAssertEqual(status, 200)
        let json = try JSONParser.parse(text)
        XCTAssertEqual(json["object"]?.stringValue, "list")
        XCTAssertTrue(json["data"]?.arrayValue?.contains { $0["id"]?.stringValue == server.modelID } ?? false)
        XCTAssertEqual(try get("/health", port: port).0, 200)
    }
}
