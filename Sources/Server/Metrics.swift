import Engine
import HTTP

/// `GET /metrics`: the Prometheus text exposition format (version 0.0.4).
struct PrometheusText {
    private(set) var text = ""

    mutating func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        for s in samples { text += "\(name)\(s.labels.isEmpty ? "" : "{\(s.labels)}") \(Self.format(s.value))\n" }
    }

    mutating func gauge(_ name: String, _ help: String, _ value: Double) { metric(name, "gauge", help, [("", value)]) }
    mutating func counter(_ name: String, _ help: String, _ value: Double) { metric(name, "counter", help, [("", value)]) }

    mutating func histogram(_ name: String, _ help: String, _ h: Histogram) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        let cumulative = h.cumulativeCounts
        for (i, bound) in h.bounds.enumerated() { text += "\(name)_bucket{le=\"\(Self.format(bound))\"} \(cumulative[i])\n" }
        text += "\(name)_bucket{le=\"+Inf\"} \(cumulative.last ?? 0)\n"
        text += "\(name)_sum \(Self.format(h.sum))\n\(name)_count \(h.count)\n"
    }

    static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }
}

/// Counters the server keeps itself (the engine and the HTTP layer keep theirs).
struct ServerCounters: Sendable {
    var requestsByRouteAndStatus: [String: Int] = [:]   // "route|status"
    var rateLimited = 0

    mutating func count(route: String, status: Int) { requestsByRouteAndStatus["\(route)|\(status)", default: 0] += 1 }
}

func renderMetrics(engine: EngineMetrics, http: HTTPServerMetrics, server: ServerCounters,
                   adaptersRegistered: Int, adapterResidentBytes: Int) -> String {
    var p = PrometheusText()
    let byStatus = server.requestsByRouteAndStatus.sorted { $0.key < $1.key }.map { entry -> (String, Double) in
        let parts = entry.key.split(separator: "|", maxSplits: 1).map(String.init)
        return ("route=\"\(parts[0])\",status=\"\(parts.count > 1 ? parts[1] : "")\"", Double(entry.value))
    }
    p.metric("loraserve_requests_total", "counter", "API requests answered, by route and HTTP status.", byStatus)
    p.metric("loraserve_http_responses_total", "counter", "HTTP responses by status, including errors the HTTP layer sent itself.",
             http.responsesByStatus.sorted { $0.key < $1.key }.map { ("status=\"\($0.key)\"", Double($0.value)) })
    p.gauge("loraserve_http_open_connections", "Open client connections.", Double(http.openConnections))
    p.counter("loraserve_http_rejected_connections_total", "Connections refused at the connection limit.", Double(http.rejectedConnections))
    // As vLLM counts them: every prompt token, those served from the prefix cache included.
    p.counter("loraserve_prompt_tokens_total", "Prompt tokens of requests that ran, cached ones included.",
              Double(engine.promptTokensTotal + engine.promptTokensCachedTotal))
    p.counter("loraserve_prompt_tokens_cached_total", "Prompt tokens whose keys and values came from the prefix cache.",
              Double(engine.promptTokensCachedTotal))
    p.gauge("loraserve_prefix_cache_bytes", "Bytes held by the prefix cache.", Double(engine.prefixCacheBytes))
    p.counter("loraserve_generation_tokens_total", "Tokens generated.", Double(engine.generationTokensTotal))
    p.metric("loraserve_requests_finished_total", "counter", "Generations finished, by reason.",
             engine.requestsFinished.sorted { $0.key < $1.key }.map { ("reason=\"\($0.key)\"", Double($0.value)) })
    p.gauge("loraserve_queue_depth", "Requests waiting to start.", Double(engine.queueDepth))
    p.gauge("loraserve_running_sequences", "Sequences holding a KV cache.", Double(engine.runningSequences))
    p.gauge("loraserve_kv_cache_bytes", "Bytes held by KV caches.", Double(engine.kvCacheBytes))
    p.counter("loraserve_engine_steps_total", "Forward passes run.", Double(engine.steps))
    p.gauge("loraserve_adapters_registered", "Adapters in the registry.", Double(adaptersRegistered))
    p.gauge("loraserve_adapter_resident_bytes", "Bytes of resident adapter weights.", Double(adapterResidentBytes))
    p.histogram("loraserve_time_to_first_token_seconds", "Time from submission to the first token.", engine.timeToFirstToken)
    p.histogram("loraserve_inter_token_latency_seconds", "Time between consecutive tokens of a sequence.", engine.interTokenLatency)
    return p.text
}
