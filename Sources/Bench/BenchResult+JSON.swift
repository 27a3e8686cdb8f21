import Foundation
import JSON

// The `--json FILE` document. Times are milliseconds (latencies) or seconds (durations, timeline);
// the schema is described in bench/README.md.

extension BenchResult {
    public static let schema = "loraserve-bench/1"

    public var json: JSONValue {
        var root = JSONObject()
        root["schema"] = .string(Self.schema)
        root["name"] = JSONValue(options.name)
        root["started_at"] = .string(ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: startedAt)))
        root["config"] = configJSON
        root["summary"] = summaryJSON
        root["per_model"] = .array(perModel.keys.sorted { orderOf($0) < orderOf($1) }.map { modelJSON($0) })
        root["churn"] = churn.map(Self.churnJSON) ?? .null
        root["timeline"] = .array(timeline.map { b in
            ["t_s": JSONValue(b.second), "succeeded": JSONValue(b.succeeded), "failed": JSONValue(b.failed),
             "output_tokens": .number(Self.rounded(b.outputTokens, 3))]
        })
        root["requests"] = .array(records.map(Self.recordJSON))
        return .object(root)
    }

    private func orderOf(_ model: String) -> Int { models.firstIndex(of: model) ?? Int.max }

    var configJSON: JSONValue {
        var c = JSONObject()
        c["url"] = .string(options.url.description)
        c["mode"] = .string(options.isOpenLoop ? "open" : "closed")
        c["clients"] = options.isOpenLoop ? .null : JSONValue(options.clients ?? 1)
        c["rate"] = options.rate.map(JSONValue.number) ?? .null
        c["duration_s"] = options.duration.map(JSONValue.number) ?? .null
        c["requests"] = options.requests.map { JSONValue($0) } ?? .null
        switch PromptSourceDescription(options) {
        case .file(let path): c["prompts"] = .string(path)
        case .generated(let n): c["prompt_tokens"] = JSONValue(n)
        }
        c["max_tokens"] = [JSONValue(options.maxTokens.lowerBound), JSONValue(options.maxTokens.upperBound)]
        c["stream"] = .bool(options.stream)
        c["temperature"] = options.temperature.map(JSONValue.number) ?? .null
        c["extra_body"] = .object(options.extraBody)
        c["timeout_s"] = .number(options.timeout)
        c["seed"] = JSONValue(options.seed)
        c["models"] = .array(models.map(JSONValue.string))
        c["base_model"] = JSONValue(options.model)
        c["distribution"] = .string(options.distribution.description)
        c["base_fraction"] = .number(options.baseFraction)
        c["churn_rate"] = options.churnRate.map(JSONValue.number) ?? .null
        c["churn_path"] = JSONValue(options.churnPath)
        c["churn_keep"] = JSONValue(options.churnKeep)
        c["max_connections"] = JSONValue(options.maxConnections)
        return .object(c)
    }

    var summaryJSON: JSONValue {
        var s = JSONObject()
        s["duration_s"] = .number(Self.rounded(durationSeconds, 4))
        s["requests_sent"] = JSONValue(sent)
        s["requests_succeeded"] = JSONValue(succeeded)
        s["requests_failed"] = JSONValue(failed)
        s["success_rate"] = .number(Self.rounded(successRate, 6))
        s["requests_per_s"] = .number(Self.rounded(requestsPerSecond, 4))
        s["output_tokens"] = JSONValue(outputTokens)
        s["output_tokens_per_s"] = .number(Self.rounded(outputTokensPerSecond, 3))
        s["prompt_tokens"] = JSONValue(promptTokens)
        s["usage_missing"] = JSONValue(usageMissing)
        var e = JSONObject()
        for (kind, count) in errors.sorted(by: { $0.key.description < $1.key.description }) { e[kind.description] = JSONValue(count) }
        s["errors"] = .object(e)
        var samples = JSONObject()
        for (kind, texts) in errorSamples.sorted(by: { $0.key.description < $1.key.description }) {
            samples[kind.description] = .array(texts.map(JSONValue.string))
        }
        s["error_samples"] = .object(samples)
        s["latency_ms"] = [
            "ttft": Self.latencyJSON(timeToFirstToken),
            "itl": Self.latencyJSON(interTokenLatency),
            "tpot": Self.latencyJSON(timePerOutputToken),
            "e2e": Self.latencyJSON(latency),
        ]
        return .object(s)
    }

    func modelJSON(_ name: String) -> JSONValue {
        let m = perModel[name] ?? ModelStats()
        return [
            "model": .string(name), "sent": JSONValue(m.sent), "succeeded": JSONValue(m.succeeded),
            "failed": JSONValue(m.failed), "output_tokens": JSONValue(m.outputTokens),
            "ttft_ms": Self.latencyJSON(m.timeToFirstToken), "e2e_ms": Self.latencyJSON(m.latency),
        ]
    }

    static func latencyJSON(_ h: LatencyHistogram) -> JSONValue {
        let s = h.summary
        return ["count": JSONValue(s.count), "p50": .number(s.p50), "p90": .number(s.p90), "p99": .number(s.p99),
                "max": .number(s.max), "mean": .number(rounded(s.mean, 3))]
    }

    static func churnJSON(_ c: ChurnStats) -> JSONValue {
        ["adds_succeeded": JSONValue(c.addsSucceeded), "adds_failed": JSONValue(c.addsFailed),
         "removes_succeeded": JSONValue(c.removesSucceeded), "removes_failed": JSONValue(c.removesFailed),
         "add_ms": latencyJSON(c.addLatency), "remove_ms": latencyJSON(c.removeLatency),
         "error_samples": .array(c.errorSamples.map(JSONValue.string))]
    }

    static func recordJSON(_ r: Record) -> JSONValue {
        func ms(_ ns: UInt64) -> JSONValue { .number(rounded(Double(ns) / 1e6, 3)) }
        var o = JSONObject()
        o["i"] = JSONValue(r.index)
        o["model"] = .string(r.model)
        o["max_tokens"] = JSONValue(r.maxTokens)
        o["scheduled_ms"] = ms(r.scheduledAt)
        o["sent_ms"] = ms(r.sentAt)
        o["ttft_ms"] = r.timeToFirstToken.map(ms) ?? .null
        o["e2e_ms"] = ms(r.endedAt &- r.scheduledAt)
        o["output_tokens"] = JSONValue(r.outputTokens)
        o["chunks"] = JSONValue(r.chunks)
        o["error"] = JSONValue(r.error?.description)
        o["error_detail"] = JSONValue(r.errorDetail)
        return .object(o)
    }

    static func rounded(_ x: Double, _ digits: Int) -> Double {
        let scale = pow(10, Double(digits))
        return (x * scale).rounded() / scale
    }
}

/// Where the prompts came from, for the report.
enum PromptSourceDescription {
    case file(String)
    case generated(Int)

    init(_ options: LoadOptions) {
        if let path = options.promptsFile { self = .file(path) } else { self = .generated(options.promptTokens) }
    }
}
