/// A snapshot of the engine's state and counters, taken after each step.
public struct EngineMetrics: Sendable, Equatable {
    /// Requests submitted and not yet running.
    public var queueDepth = 0
    /// Sequences holding a KV cache (prefilling or decoding).
    public var runningSequences = 0
    /// Prompt tokens that went through a forward pass, since start.
    public var promptTokensTotal = 0
    /// Tokens sampled, since start.
    public var generationTokensTotal = 0
    /// Requests finished, by `GenerationOutcome.finishReason` ("stop", "length", "cancelled", "error").
    public var requestsFinished: [String: Int] = [:]
    /// Bytes held by the KV caches of running sequences.
    public var kvCacheBytes = 0
    /// Forward passes run.
    public var steps = 0
    /// Tokens in the most recent forward pass.
    public var lastStepTokens = 0
    public var timeToFirstToken = Histogram.timeToFirstToken()
    public var interTokenLatency = Histogram.interTokenLatency()

    public init() {}
}

// MARK: - Prometheus text exposition

extension EngineMetrics {
    /// The metrics in Prometheus' text exposition format (version 0.0.4), names prefixed with
    /// `namespace_`. Gauges and counters first, then the two histograms.
    public func prometheusText(namespace: String = "loraserve") -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            let full = "\(namespace)_\(name)"
            out += "# HELP \(full) \(help)\n# TYPE \(full) \(type)\n"
            for s in samples { out += "\(full)\(s.labels) \(s.value)\n" }
        }
        metric("queue_depth", "gauge", "Requests waiting to run.", [("", "\(queueDepth)")])
        metric("running_sequences", "gauge", "Sequences holding a KV cache.", [("", "\(runningSequences)")])
        metric("kv_cache_bytes", "gauge", "Bytes held by the KV caches of running sequences.", [("", "\(kvCacheBytes)")])
        metric("prompt_tokens_total", "counter", "Prompt tokens processed.", [("", "\(promptTokensTotal)")])
        metric("generation_tokens_total", "counter", "Tokens sampled.", [("", "\(generationTokensTotal)")])
        metric("steps_total", "counter", "Forward passes run.", [("", "\(steps)")])
        metric("requests_finished_total", "counter", "Requests finished, by reason.",
               requestsFinished.keys.sorted().map { ("{reason=\"\($0)\"}", "\(requestsFinished[$0] ?? 0)") })
        func histogram(_ name: String, _ help: String, _ h: Histogram) {
            var samples: [(labels: String, value: String)] = []
            for (bound, count) in zip(h.bounds.map { "\($0)" } + ["+Inf"], h.cumulativeCounts) {
                samples.append(("_bucket{le=\"\(bound)\"}", "\(count)"))
            }
            samples.append(("_sum", "\(h.sum)"))
            samples.append(("_count", "\(h.count)"))
            metric(name, "histogram", help, samples)
        }
        histogram("time_to_first_token_seconds", "From submission to the first sampled token.", timeToFirstToken)
        histogram("inter_token_latency_seconds", "Between consecutive tokens of one sequence.", interTokenLatency)
        return out
    }
}
