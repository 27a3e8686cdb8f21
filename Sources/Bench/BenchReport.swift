import Foundation

/// The final table on standard output.
extension BenchResult {
    public var table: String {
        var lines: [String] = []
        func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
        let mode = options.isOpenLoop ? "open loop, \(f(options.rate ?? 0, 2)) req/s (Poisson)" : "closed loop, \(options.clients ?? 1) clients"
        if let name = options.name { lines.append("scenario        \(name)") }
        lines.append("target          \(options.url)  (\(mode), \(options.stream ? "streaming" : "not streaming"))")
        lines.append("models          \(models.count) (\(models.prefix(4).joined(separator: ", "))\(models.count > 4 ? ", …" : ""))  distribution \(options.distribution)")
        lines.append("duration        \(f(durationSeconds, 2)) s")
        lines.append("requests        sent \(sent)  succeeded \(succeeded)  failed \(failed)  success \(f(successRate * 100, 2))%")
        if !errors.isEmpty {
            let list = errors.sorted { $0.key.description < $1.key.description }.map { "\($0.key) \($0.value)" }
            lines.append("errors          " + list.joined(separator: "  "))
            for (kind, samples) in errorSamples.sorted(by: { $0.key.description < $1.key.description }) {
                for s in samples.prefix(2) { lines.append("                \(kind): \(s)") }
            }
        }
        lines.append("throughput      \(f(requestsPerSecond, 2)) req/s   \(f(outputTokensPerSecond, 1)) output tokens/s   (\(outputTokens) tokens)")
        if usageMissing > 0 { lines.append("note            \(usageMissing) responses had no usage; their tokens are content chunks") }
        lines.append("")
        lines.append("latency (ms)        count       p50       p90       p99       max      mean")
        for (label, h) in [("time to 1st token", timeToFirstToken), ("inter-token", interTokenLatency),
                           ("per output token", timePerOutputToken), ("end to end", latency)] {
            let s = h.summary
            lines.append(label.padding(toLength: 18, withPad: " ", startingAt: 0)
                + [String(s.count), f(s.p50, 2), f(s.p90, 2), f(s.p99, 2), f(s.max, 2), f(s.mean, 2)]
                .map { $0.leftPadded(to: 10, with: " ") }.joined())
        }
        if perModel.count > 1 {
            lines.append("")
            lines.append("model                         sent    ok  fail   tokens  e2e p50  e2e p99")
            let names = perModel.keys.sorted { (models.firstIndex(of: $0) ?? .max, $0) < (models.firstIndex(of: $1) ?? .max, $1) }
            for name in names.prefix(20) {
                guard let m = perModel[name] else { continue }
                let s = m.latency.summary
                lines.append(String(name.prefix(28)).padding(toLength: 28, withPad: " ", startingAt: 0)
                    + [String(m.sent).leftPadded(to: 6, with: " "), String(m.succeeded).leftPadded(to: 6, with: " "),
                       String(m.failed).leftPadded(to: 6, with: " "), String(m.outputTokens).leftPadded(to: 9, with: " "),
                       f(s.p50, 0).leftPadded(to: 9, with: " "), f(s.p99, 0).leftPadded(to: 9, with: " ")].joined())
            }
            if names.count > 20 { lines.append("… \(names.count - 20) more in the JSON result") }
        }
        if let c = churn {
            lines.append("")
            lines.append("adapter churn   adds \(c.addsSucceeded) ok / \(c.addsFailed) failed (p50 \(f(c.addLatency.summary.p50, 1)) ms, max \(f(c.addLatency.summary.max, 1)) ms)"
                + "   removes \(c.removesSucceeded) ok / \(c.removesFailed) failed (p50 \(f(c.removeLatency.summary.p50, 1)) ms)")
            for e in c.errorSamples.prefix(3) { lines.append("                \(e)") }
        }
        return lines.joined(separator: "\n")
    }
}

extension ResultCollector.Snapshot {
    /// The live progress line.
    public var line: String {
        let tps = elapsed > 0 ? Double(outputTokens) / elapsed : 0
        return String(format: "[%6.1fs] sent %d  ok %d  failed %d  in flight %d  %.1f tok/s", elapsed, sent, succeeded, failed, inFlight, tps)
    }
}
