import XCTest
import JSON
@testable import Bench

final class LoadOptionsTests: XCTestCase {
    private var scenariosDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("bench/scenarios")
    }

    func testEveryShippedScenarioParsesAndValidates() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: scenariosDirectory.path).filter { $0.hasSuffix(".json") }.sorted()
        XCTAssertEqual(files, ["adapters-64-churn.json", "adapters-64-uniform.json", "adapters-64-zipf.json",
                               "base-1.json", "base-32.json", "base-8.json", "half-adapter-8.json"])
        for file in files {
            var o = LoadOptions()
            try o.apply(scenarioFile: scenariosDirectory.appendingPathComponent(file).path)
            if o.churnRate != nil { o.churnPath = "/given/by/run-scenario.sh" }
            XCTAssertNoThrow(try o.validate(), file)
            XCTAssertEqual(o.name.map { $0 + ".json" }, file)
        }
        var zipf = LoadOptions()
        try zipf.apply(scenarioFile: scenariosDirectory.appendingPathComponent("adapters-64-zipf.json").path)
        XCTAssertEqual(zipf.adapterNames.count, 64)
        XCTAssertEqual(zipf.adapterNames.first, "bench-0")
        XCTAssertEqual(zipf.adapterNames.last, "bench-63")
        XCTAssertEqual(zipf.distribution, .zipf(exponent: 1.1))
        XCTAssertEqual(zipf.clients, 32)
    }

    func testScenarioKeysAndErrors() throws {
        var o = LoadOptions()
        let scenario = try XCTUnwrap(JSONParser.parse(#"""
            {"_note": "comments are skipped", "rate": 2.5, "requests": 10, "max_tokens": "16-64",
             "adapters": ["x", "y"], "distribution": "weights:1,3", "stream": false, "extra_body": {"top_p": 0.5},
             "server": {"max_running_sequences": 8}}
            """#).objectValue)
        try o.apply(scenario: scenario, file: "s.json")
        XCTAssertEqual(o.rate, 2.5)
        XCTAssertNil(o.clients)
        XCTAssertEqual(o.maxTokens, 16...64)
        XCTAssertEqual(o.adapterNames, ["x", "y"])
        XCTAssertFalse(o.stream)
        XCTAssertEqual(o.extraBody["top_p"], .number(0.5))
        XCTAssertNoThrow(try o.validate())

        for (text, mentions) in [(#"{"clients": "8"}"#, "'clients'"), (#"{"bogus": 1}"#, "'bogus'"),
                                 (#"{"max_tokens": "9-3"}"#, "9-3"), (#"{"distribution": "pareto"}"#, "pareto")] {
            var bad = LoadOptions()
            let object = try XCTUnwrap(JSONParser.parse(text).objectValue)
            XCTAssertThrowsError(try bad.apply(scenario: object, file: "s.json"), text) { error in
                XCTAssertTrue("\(error)".contains(mentions), "\(error)")
            }
        }
    }

    func testValidationNamesTheFlag() {
        var o = LoadOptions()
        o.clients = 2
        o.rate = 1
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("--clients")) }
        o.rate = nil
        o.churnRate = 1
        XCTAssertThrowsError(try o.validate()) { XCTAssertTrue("\($0)".contains("--churn-path")) }
        XCTAssertEqual(try LoadOptions.parseMaxTokens("7"), 7...7)
        XCTAssertThrowsError(try LoadOptions.parseMaxTokens("0"))
        XCTAssertThrowsError(try LoadOptions.parseMaxTokens("a-b"))
    }

    func testRequestBodyAsksForUsageWhenStreaming() throws {
        var o = LoadOptions()
        o.temperature = 0
        o.extraBody["seed"] = 5
        let plan = RequestPlan(index: 0, model: "m", messages: PromptSource.userMessage("hi"), maxTokens: 12, scheduledAt: 0)
        let body = try JSONParser.parse(RequestExecutor.body(for: plan, options: o))
        XCTAssertEqual(body, [
            "model": "m", "messages": [["role": "user", "content": "hi"]], "max_tokens": 12, "stream": true,
            "stream_options": ["include_usage": true], "temperature": 0.0, "seed": 5,
        ])
        o.stream = false
        let plain = try JSONParser.parse(RequestExecutor.body(for: plan, options: o))
        XCTAssertNil(plain["stream"])
        XCTAssertNil(plain["stream_options"])
    }

    func testPromptFileFormats() throws {
        let path = NSTemporaryDirectory() + "bench-prompts-\(getpid()).jsonl"
        try """
            {"prompt": "one"}

            "two"
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "three"}]}
            """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = try PromptSource(file: path)
        var random = RandomSource(seed: 1)
        XCTAssertEqual(source.messages(forRequest: 0, random: &random)[0]?["content"], "one")
        XCTAssertEqual(source.messages(forRequest: 1, random: &random)[0]?["content"], "two")
        XCTAssertEqual(source.messages(forRequest: 2, random: &random)[1]?["content"], "three")
        XCTAssertEqual(source.messages(forRequest: 3, random: &random)[0]?["content"], "one", "wraps around")

        try "{\"prompt\": 3}\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PromptSource(file: path)) { XCTAssertTrue("\($0)".contains("line 1"), "\($0)") }

        let generated = try PromptSource(generatedTokens: 50)
        let text = generated.messages(forRequest: 0, random: &random)[0]?["content"]?.stringValue ?? ""
        XCTAssertEqual(text.split(separator: " ").count, 5 + 50, "instruction words + 50 generated words")
    }
}
