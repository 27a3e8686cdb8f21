import Foundation
import HTTP
import JSON
import TestSupport
import XCTest

/// Adapters through the API: registration, per-request selection, mixing, churn.
final class AdapterAPITests: XCTestCase {
    static let referenceAdapters = ["qv-r8", "all-r16", "attn-r4-rslora"]

    func adapterPath(_ name: String) -> String { referenceAdapterPath(name) }

    func register(_ name: String, path: String, merged: Bool = false, port: Int) throws -> (Int, JSONValue?) {
        try registerAdapter(name, path: path, merged: merged, port: port)
    }

    func remove(_ name: String, port: Int) throws -> Int { try removeAdapter(name, port: port) }
}

func referenceAdapterPath(_ name: String) -> String { TestPaths.reference.appendingPathComponent("adapters/\(name)").path }

func registerAdapter(_ name: String, path: String, merged: Bool = false, port: Int) throws -> (Int, JSONValue?) {
        try post("/v1/adapters", "{\"name\": \(quoted(name)), \"path\": \(quoted(path)), \"merged\": \(merged)}", port: port)
    }

func removeAdapter(_ name: String, port: Int) throws -> Int {
        let client = try HTTPClient(port: port)
        defer { client.close() }
        return try client.request(method: "DELETE", path: "/v1/adapters/\(name)").status
}

extension AdapterAPITests {

    /// greedy_cases of every reference adapter reproduced through the API, unmerged and merged;
    /// the GGUF LoRA gives qv-r8's answers.
    func testReferenceAdaptersGreedyThroughHTTP() throws {
        let (server, port) = try ServerFixture.server()
        var names: [(String, String)] = []   // (registered name, reference name)
        for a in Self.referenceAdapters {
            XCTAssertEqual(try register("ref-\(a)", path: adapterPath(a), port: port).0, 200)
            XCTAssertEqual(try register("ref-\(a)-merged", path: adapterPath(a), merged: true, port: port).0, 200)
            names += [("ref-\(a)", a), ("ref-\(a)-merged", a)]
        }
        let gguf = TestPaths.reference.appendingPathComponent("adapters-gguf/qv-r8.gguf").path
        XCTAssertEqual(try register("ref-gguf-qv-r8", path: gguf, port: port).0, 200)
        names.append(("ref-gguf-qv-r8", "qv-r8"))
        defer { for (n, _) in names { _ = try? remove(n, port: port) } }

        let (_, models) = try get("/v1/models", port: port)
        let listed = try JSONParser.parse(models)["data"]?.arrayValue ?? []
        for (n, _) in names {
            XCTAssertTrue(listed.contains { $0["id"]?.stringValue == n && $0["parent"]?.stringValue == server.modelID }, n)
        }
        var collected: [(String, GreedyCase)] = []
        for (name, reference) in names { for c in try greedyCases(reference) { collected.append((name, c)) } }
        let jobs = collected
        // All at once: they run batched together, mixing adapters, which is the point.
        let results = Slots<(Int, JSONValue?)>(jobs.count, (0, nil))
        DispatchQueue.concurrentPerform(iterations: jobs.count) { j in
            let (name, c) = jobs[j]
            let messages = JSONValue.array(c.messages.map { ["role": .string($0.0), "content": .string($0.1)] }).jsonString
            results[j] = (try? post("/v1/chat/completions",
                                    "{\"model\": \(quoted(name)), \"messages\": \(messages), \"max_tokens\": 32, \"temperature\": 0}",
                                    port: port)) ?? (-1, nil)
        }
        for (j, (name, c)) in jobs.enumerated() {
            let (status, json) = results[j]
            let eos = c.greedyIDs.last.map { server.tokenizer.endOfGenerationIDs.contains($0) } ?? false
            let visible = eos ? Array(c.greedyIDs.dropLast()) : c.greedyIDs
            XCTAssertEqual(status, 200, name)
            XCTAssertEqual(json?["model"]?.stringValue, name)
            XCTAssertEqual(json?["usage"]?["completion_tokens"]?.intValue, c.greedyIDs.count, name)
            XCTAssertEqual(json?["choices"]?[0]?["message"]?["content"]?.stringValue, server.tokenizer.decode(visible), name)
        }
    }

    /// 64 adapters registered, 32 concurrent clients each naming a different one (and the base
    /// in between): every answer equals that adapter's answer run alone.
    func testSixtyFourAdaptersThirtyTwoClients() throws {
        let (_, port) = try ServerFixture.server()
        let sources = Self.referenceAdapters + ["train-init"]
        for i in 0..<64 { XCTAssertEqual(try register("many-\(i)", path: adapterPath(sources[i % sources.count]), port: port).0, 200) }
        defer { for i in 0..<64 { _ = try? remove("many-\(i)", port: port) } }
        let question = "Name a colour."
        var expected: [String: String] = [:]
        for (k, s) in sources.enumerated() {
            expected[s] = try streamChat(chatBody(question, model: "many-\(k)", maxTokens: 16, stream: true), port: port).text
        }
        expected["base"] = try streamChat(chatBody(question, maxTokens: 16, stream: true), port: port).text
        // A sanity check that adapters apply at all (two adapters may happen to agree on a short answer).
        XCTAssertGreaterThanOrEqual(Set(expected.values).count, 3, "adapters change the answer")

        let answers = Slots<String?>(32, nil)
        DispatchQueue.concurrentPerform(iterations: 32) { c in
            let model = c % 8 == 7 ? "base" : "many-\(c * 2 % 64)"
            answers[c] = (try? streamChat(chatBody(question, model: model, maxTokens: 16, stream: true), port: port))?.text
        }
        for c in 0..<32 {
            let want = c % 8 == 7 ? expected["base"] : expected[sources[(c * 2 % 64) % sources.count]]
            XCTAssertEqual(answers[c], want, "client \(c)")
        }
    }

    /// Adapters added and removed every 100 ms while 16 clients stream: nothing fails except
    /// requests naming an adapter already removed (404), and memory returns to its baseline.
    func testAddRemoveUnderLoad() throws {
        let (server, port) = try ServerFixture.server()
        let baseline = server.registry.residentBytes
        XCTAssertEqual(try register("churn-stable", path: adapterPath("qv-r8"), port: port).0, 200)
        let stop = ManagedAtomicFlag()
        let churn = Thread {
            var i = 0
            while !stop.isSet {
                _ = try? registerAdapter("churn-\(i % 4)", path: referenceAdapterPath(["qv-r8", "all-r16", "attn-r4-rslora"][i % 3]), port: port)
                usleep(100_000)
                _ = try? removeAdapter("churn-\((i + 2) % 4)", port: port)
                i += 1
            }
        }
        churn.start()
        let outcomes = Slots<(Int, String)>(16 * 2, (0, ""))
        DispatchQueue.concurrentPerform(iterations: 16) { c in
            for k in 0..<2 {
                let model = c % 2 == 0 ? "churn-stable" : "churn-\((c + k) % 4)"
                let status: Int
                if let (s, _) = try? post("/v1/chat/completions", chatBody("Hello!", model: model, maxTokens: 8), port: port) {
                    status = s
                } else { status = -1 }
                outcomes[c * 2 + k] = (status, model)
            }
        }
        stop.set()
        while !churn.isFinished { usleep(10_000) }
        for (status, model) in outcomes.all {
            if model == "churn-stable" { XCTAssertEqual(status, 200, model) } else { XCTAssertTrue(status == 200 || status == 404, "\(model): \(status)") }
        }
        XCTAssertTrue(outcomes.all.contains { $0.0 == 200 && $0.1 != "churn-stable" }, "some churned adapters served")
        for i in 0..<4 { _ = try remove("churn-\(i)", port: port) }
        XCTAssertEqual(try remove("churn-stable", port: port), 200)
        XCTAssertTrue(waitFor { server.registry.residentBytes == baseline }, "resident adapter bytes back to baseline")
    }

    func testBadAdapterRequestsAreRefused() throws {
        let (_, port) = try ServerFixture.server()
        let outside = try register("evil", path: "/etc", port: port)
        XCTAssertEqual(outside.0, 403)
        XCTAssertNotNil(outside.1?["error"]?["message"]?.stringValue)
        let escape = try register("evil2", path: adapterPath("qv-r8") + "/../../../../etc", port: port)
        XCTAssertEqual(escape.0, 403)
        XCTAssertEqual(try register("missing", path: adapterPath("no-such-adapter"), port: port).0, 400)
        XCTAssertEqual(try remove("never-registered", port: port), 404)
        XCTAssertEqual(try register("dup", path: adapterPath("qv-r8"), port: port).0, 200)
        XCTAssertEqual(try register("dup", path: adapterPath("qv-r8"), port: port).0, 409)
        XCTAssertEqual(try remove("dup", port: port), 200)
        // vLLM's endpoints.
        XCTAssertEqual(try post("/v1/load_lora_adapter", "{\"lora_name\": \"v\", \"lora_path\": \(quoted(adapterPath("qv-r8")))}", port: port).0, 200)
        XCTAssertEqual(try post("/v1/unload_lora_adapter", "{\"lora_name\": \"v\"}", port: port).0, 200)
        XCTAssertEqual(try post("/v1/unload_lora_adapter", "{\"lora_name\": \"v\"}", port: port).0, 404)
    }
}

/// A flag set once from one thread and read from another.
final class ManagedAtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
