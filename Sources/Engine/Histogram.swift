/// A Prometheus-style histogram of durations in seconds: fixed upper bounds, a count per bucket,
/// plus the sum and the count of all observations.
public struct Histogram: Sendable, Equatable {
    /// Upper bounds (inclusive, ascending); an implicit last bucket is +Inf.
    public let bounds: [Double]
    /// Observations per bucket (not cumulative): `counts[i]` for `bounds[i-1] < x ≤ bounds[i]`,
    /// `counts[bounds.count]` for the +Inf bucket.
    public private(set) var counts: [UInt64]
    public private(set) var sum: Double = 0
    public private(set) var count: UInt64 = 0

    public init(bounds: [Double]) {
        precondition(zip(bounds, bounds.dropFirst()).allSatisfy { $0 < $1 }, "Histogram: bounds must ascend")
        self.bounds = bounds
        counts = [UInt64](repeating: 0, count: bounds.count + 1)
    }

    public mutating func observe(_ value: Double) {
        guard !value.isNaN else { return }
        var i = 0
        while i < bounds.count && value > bounds[i] { i += 1 }
        counts[i] += 1
        sum += value
        count += 1
    }

    public mutating func observe(_ duration: Duration) { observe(duration.seconds) }

    /// Cumulative counts per bound, as Prometheus exposes them (`le` buckets, the last is +Inf).
    public var cumulativeCounts: [UInt64] {
        var acc: UInt64 = 0
        return counts.map { acc += $0; return acc }
    }

    /// Time to first token (vLLM's buckets), seconds.
    public static func timeToFirstToken() -> Histogram {
        Histogram(bounds: [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80])
    }

    /// Time between consecutive tokens of one sequence (vLLM's buckets), seconds.
    public static func interTokenLatency() -> Histogram {
        Histogram(bounds: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10])
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) * 1e-18
    }
}
