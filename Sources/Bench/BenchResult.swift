/// Everything a run measured. Built by `ResultCollector.finish`; written as a table, JSON and SVG.
public struct BenchResult: Sendable {
    /// One finished request, without its per-chunk times.
    public struct Record: Sendable {
        public var index: Int
        public var model: String
        public var maxTokens: Int
        public var scheduledAt: UInt64
        public var sentAt: UInt64
        public var endedAt: UInt64
        public var timeToFirstToken: UInt64?
        public var outputTokens: Int
        public var chunks: Int
        public var error: RequestErrorKind?
        public var errorDetail: String?
    }

    /// Counts and latencies of one model name.
    public struct ModelStats: Sendable {
        public var sent = 0
        public var succeeded = 0
        public var failed = 0
        public var outputTokens = 0
        public var timeToFirstToken = LatencyHistogram()
        public var latency = LatencyHistogram()
    }

    /// One second of the run: what finished in it, and the output tokens that arrived in it.
    public struct TimelineBucket: Sendable, Equatable {
        public var second: Int
        public var succeeded: Int
        public var failed: Int
        public var outputTokens: Double
    }

    public var options: LoadOptions
    /// The model names the mix sends, base first.
    public var models: [String]
    /// Wall-clock start, seconds since 1970.
    public var startedAt: Double
    /// From the run's start to the end of its last request.
    public var durationSeconds: Double

    public var sent = 0
    public var succeeded = 0
    public var failed = 0
    /// Sum over succeeded requests of `usage.completion_tokens` (or content chunks where usage was missing).
    public var outputTokens = 0
    public var promptTokens = 0
    /// Succeeded requests whose server reported no `usage`.
    public var usageMissing = 0
    public var errors: [RequestErrorKind: Int] = [:]
    /// A few error texts per kind, for the report.
    public var errorSamples: [RequestErrorKind: [String]] = [:]

    public var timeToFirstToken = LatencyHistogram()
    public var interTokenLatency = LatencyHistogram()
    public var timePerOutputToken = LatencyHistogram()
    public var latency = LatencyHistogram()

    public var perModel: [String: ModelStats] = [:]
    public var timeline: [TimelineBucket] = []
    public var records: [Record] = []
    public var churn: ChurnStats?

    public var requestsPerSecond: Double { durationSeconds > 0 ? Double(succeeded) / durationSeconds : 0 }
    public var outputTokensPerSecond: Double { durationSeconds > 0 ? Double(outputTokens) / durationSeconds : 0 }
    public var successRate: Double { sent > 0 ? Double(succeeded) / Double(sent) : 0 }
}
