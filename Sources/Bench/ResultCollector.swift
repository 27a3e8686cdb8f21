import Foundation

/// Gathers outcomes from every client thread into one `BenchResult`, and answers progress snapshots.
///
/// `@unchecked Sendable`: every stored property is read and written only while `lock` is held.
public final class ResultCollector: @unchecked Sendable {
    /// What the progress line shows.
    public struct Snapshot: Sendable {
        public var elapsed: Double
        public var sent: Int
        public var succeeded: Int
        public var failed: Int
        public var outputTokens: Int
        public var inFlight: Int { sent - succeeded - failed }
    }

    private let lock = NSLock()
    private var result: BenchResult
    private let origin: UInt64
    private static let samplesPerKind = 3

    /// `origin`: the run's time zero (`MonotonicClock`).
    public init(options: LoadOptions, models: [String], origin: UInt64) {
        self.origin = origin
        result = BenchResult(options: options, models: models, startedAt: Date().timeIntervalSince1970, durationSeconds: 0)
    }

    /// A request is about to be sent.
    public func willSend(model: String) {
        lock.lock()
        defer { lock.unlock() }
        result.sent += 1
        result.perModel[model, default: BenchResult.ModelStats()].sent += 1
    }

    public func record(_ outcome: RequestOutcome) {
        lock.lock()
        defer { lock.unlock() }
        var stats = result.perModel[outcome.model, default: BenchResult.ModelStats()]
        let endSecond = Int(outcome.endedAt / 1_000_000_000)
        if outcome.succeeded {
            result.succeeded += 1
            stats.succeeded += 1
            result.outputTokens += outcome.outputTokens
            stats.outputTokens += outcome.outputTokens
            result.promptTokens += outcome.promptTokens ?? 0
            if !outcome.usageReported { result.usageMissing += 1 }
            result.latency.record(nanoseconds: outcome.latency)
            stats.latency.record(nanoseconds: outcome.latency)
            if let ttft = outcome.timeToFirstToken {
                result.timeToFirstToken.record(nanoseconds: ttft)
                stats.timeToFirstToken.record(nanoseconds: ttft)
            }
            let times = outcome.chunkTimes
            if times.count > 1 {
                for i in 1..<times.count { result.interTokenLatency.record(nanoseconds: times[i] &- times[i - 1]) }
            }
            if let first = outcome.firstTokenAt, outcome.outputTokens > 1 {
                result.timePerOutputToken.record(nanoseconds: (outcome.endedAt &- first) / UInt64(outcome.outputTokens - 1))
            }
            let b = bucket(endSecond)
            result.timeline[b].succeeded += 1
            // Spread the request's tokens over the seconds its content arrived in.
            if times.isEmpty {
                result.timeline[b].outputTokens += Double(outcome.outputTokens)
            } else {
                let share = Double(outcome.outputTokens) / Double(times.count)
                for t in times {
                    let tb = bucket(Int(t / 1_000_000_000))
                    result.timeline[tb].outputTokens += share
                }
            }
        } else {
            result.failed += 1
            stats.failed += 1
            let kind = outcome.error ?? .protocolError
            result.errors[kind, default: 0] += 1
            if let detail = outcome.errorDetail, result.errorSamples[kind, default: []].count < Self.samplesPerKind,
               !result.errorSamples[kind, default: []].contains(detail) {
                result.errorSamples[kind, default: []].append(detail)
            }
            let b = bucket(endSecond)
            result.timeline[b].failed += 1
        }
        result.perModel[outcome.model] = stats
        result.durationSeconds = max(result.durationSeconds, Double(outcome.endedAt) / 1e9)
        result.records.append(BenchResult.Record(
            index: outcome.index, model: outcome.model, maxTokens: outcome.maxTokens,
            scheduledAt: outcome.scheduledAt, sentAt: outcome.sentAt, endedAt: outcome.endedAt,
            timeToFirstToken: outcome.timeToFirstToken, outputTokens: outcome.outputTokens,
            chunks: outcome.chunkTimes.count, error: outcome.error, errorDetail: outcome.errorDetail))
    }

    /// The index of the timeline bucket of `second`, growing the timeline as needed. Caller holds the lock.
    private func bucket(_ second: Int) -> Int {
        let s = max(0, second)
        while result.timeline.count <= s {
            result.timeline.append(BenchResult.TimelineBucket(second: result.timeline.count, succeeded: 0, failed: 0, outputTokens: 0))
        }
        return s
    }

    public func snapshot() -> Snapshot {
        lock.lock()
        defer { lock.unlock() }
        return Snapshot(elapsed: Double(MonotonicClock.now() &- origin) / 1e9, sent: result.sent,
                        succeeded: result.succeeded, failed: result.failed, outputTokens: result.outputTokens)
    }

    /// The result so far, records in request order.
    public func finish(churn: ChurnStats?) -> BenchResult {
        lock.lock()
        defer { lock.unlock() }
        var r = result
        r.records.sort { $0.index < $1.index }
        r.churn = churn
        return r
    }
}
