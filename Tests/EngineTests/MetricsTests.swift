import XCTest
@testable import Engine

final class MetricsTests: XCTestCase {
    func testHistogramBucketsAreUpperInclusive() {
        var h = Histogram(bounds: [0.1, 0.5, 1])
        for x in [0.05, 0.1, 0.3, 0.5, 2, 7] { h.observe(x) }
        h.observe(.nan)
        XCTAssertEqual(h.counts, [2, 2, 0, 2])
        XCTAssertEqual(h.cumulativeCounts, [2, 4, 4, 6])
        XCTAssertEqual(h.count, 6)
        XCTAssertEqual(h.sum, 9.95, accuracy: 1e-12)
        var d = Histogram(bounds: [0.01, 0.1])
        d.observe(Duration.milliseconds(50))
        XCTAssertEqual(d.counts, [0, 1, 0])
    }

    func testPrometheusText() {
        var m = EngineMetrics()
        m.queueDepth = 3
        m.runningSequences = 2
        m.kvCacheBytes = 4096
        m.promptTokensTotal = 100
        m.generationTokensTotal = 40
        m.steps = 7
        m.requestsFinished = ["stop": 5, "length": 1]
        m.timeToFirstToken = Histogram(bounds: [0.1, 1])
        m.timeToFirstToken.observe(0.25)
        m.interTokenLatency = Histogram(bounds: [0.05])
        m.interTokenLatency.observe(0.02)
        m.interTokenLatency.observe(0.5)
        XCTAssertEqual(m.prometheusText(namespace: "x"), """
            # HELP x_queue_depth Requests waiting to run.
            # TYPE x_queue_depth gauge
            x_queue_depth 3
            # HELP x_running_sequences Sequences holding a KV cache.
            # TYPE x_running_sequences gauge
            x_running_sequences 2
            # HELP x_kv_cache_bytes Bytes held by the KV caches of running sequences.
            # TYPE x_kv_cache_bytes gauge
            x_kv_cache_bytes 4096
            # HELP x_prompt_tokens_total Prompt tokens processed.
            # TYPE x_prompt_tokens_total counter
            x_prompt_tokens_total 100
            # HELP x_generation_tokens_total Tokens sampled.
            # TYPE x_generation_tokens_total counter
            x_generation_tokens_total 40
            # HELP x_steps_total Forward passes run.
            # TYPE x_steps_total counter
            x_steps_total 7
            # HELP x_requests_finished_total Requests finished, by reason.
            # TYPE x_requests_finished_total counter
            x_requests_finished_total{reason="length"} 1
            x_requests_finished_total{reason="stop"} 5
            # HELP x_time_to_first_token_seconds From submission to the first sampled token.
            # TYPE x_time_to_first_token_seconds histogram
            x_time_to_first_token_seconds_bucket{le="0.1"} 0
            x_time_to_first_token_seconds_bucket{le="1.0"} 1
            x_time_to_first_token_seconds_bucket{le="+Inf"} 1
            x_time_to_first_token_seconds_sum 0.25
            x_time_to_first_token_seconds_count 1
            # HELP x_inter_token_latency_seconds Between consecutive tokens of one sequence.
            # TYPE x_inter_token_latency_seconds histogram
            x_inter_token_latency_seconds_bucket{le="0.05"} 1
            x_inter_token_latency_seconds_bucket{le="+Inf"} 2
            x_inter_token_latency_seconds_sum 0.52
            x_inter_token_latency_seconds_count 2

            """)
    }
}
