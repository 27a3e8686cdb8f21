import Histogram

/// Latencies in microseconds in an HDR histogram (3 significant digits: every reported value is within
/// 0.1% of a recorded one), from 1 µs up to one hour; longer values are clamped to an hour.
public struct LatencyHistogram: Sendable {
    public static let highestMicroseconds: UInt64 = 3_600_000_000
    private var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highestMicroseconds,
                                              numberOfSignificantValueDigits: .three)
    private var sum: Double = 0

    public init() {}

    public var count: Int { Int(histogram.totalCount) }

    /// Records one latency given in nanoseconds.
    public mutating func record(nanoseconds: UInt64) {
        record(microseconds: nanoseconds / 1000)
    }

    public mutating func record(microseconds: UInt64) {
        let value = min(max(microseconds, 1), Self.highestMicroseconds)
        _ = histogram.record(value)
        sum += Double(value)
    }

    public mutating func add(_ other: LatencyHistogram) {
        histogram.add(other.histogram)
        sum += other.sum
    }

    /// The value at `percentile` (0…100) in microseconds: the highest value equivalent to the
    /// recorded value below which that share of values falls. 0 when empty.
    public func microseconds(atPercentile percentile: Double) -> UInt64 {
        count == 0 ? 0 : histogram.valueAtPercentile(percentile)
    }

    public func milliseconds(atPercentile percentile: Double) -> Double {
        Double(microseconds(atPercentile: percentile)) / 1000
    }

    /// Largest recorded value (to the histogram's precision), in microseconds.
    public var maxMicroseconds: UInt64 { count == 0 ? 0 : histogram.max }
    public var minMicroseconds: UInt64 { count == 0 ? 0 : histogram.min }
    /// Exact mean of the recorded (clamped) values, in microseconds.
    public var meanMicroseconds: Double { count == 0 ? 0 : sum / Double(count) }

    /// The summary the report prints: p50, p90, p99, max and mean, in milliseconds.
    public var summary: LatencySummary {
        LatencySummary(count: count,
                       p50: milliseconds(atPercentile: 50), p90: milliseconds(atPercentile: 90),
                       p99: milliseconds(atPercentile: 99), max: Double(maxMicroseconds) / 1000,
                       mean: meanMicroseconds / 1000)
    }
}

/// Percentiles of one latency, in milliseconds.
public struct LatencySummary: Sendable, Equatable {
    public var count: Int
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var max: Double
    public var mean: Double
}
