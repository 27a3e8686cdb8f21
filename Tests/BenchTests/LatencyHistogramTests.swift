import XCTest
@testable import Bench

final class LatencyHistogramTests: XCTestCase {
    /// Nearest-rank percentile of sorted data: the smallest value with at least p% of values at or below it.
    private func nearestRank(_ sorted: [UInt64], _ p: Double) -> UInt64 {
        // (The small epsilon keeps 99.9/100 × 50000 = 49950.000…01 at rank 49950.)
        let rank = max(1, Int((p / 100 * Double(sorted.count) - 1e-9).rounded(.up)))
        return sorted[min(rank, sorted.count) - 1]
    }

    private func assertClose(_ got: UInt64, _ want: UInt64, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        // Three significant digits: within 0.1% (plus one unit for small values).
        let tolerance = max(1, Double(want) * 0.001)
        XCTAssertLessThanOrEqual(abs(Double(got) - Double(want)), tolerance, "\(what): got \(got), want \(want)", file: file, line: line)
    }

    func testUniformOneToTenThousand() {
        var h = LatencyHistogram()
        for v in 1...10_000 { h.record(microseconds: UInt64(v)) }
        XCTAssertEqual(h.count, 10_000)
        // By hand: nearest-rank p50 of 1…10000 is 5000, p90 9000, p99 9900, max 10000.
        assertClose(h.microseconds(atPercentile: 50), 5000, "p50")
        assertClose(h.microseconds(atPercentile: 90), 9000, "p90")
        assertClose(h.microseconds(atPercentile: 99), 9900, "p99")
        assertClose(h.maxMicroseconds, 10_000, "max")
        XCTAssertEqual(h.meanMicroseconds, 5000.5, accuracy: 1e-9)
        let s = h.summary
        XCTAssertEqual(s.p50, 5.0, accuracy: 0.005)
        XCTAssertEqual(s.p99, 9.9, accuracy: 0.01)
    }

    func testSkewedDataMatchesSortedArray() {
        var random = RandomSource(seed: 42)
        var values: [UInt64] = []
        var h = LatencyHistogram()
        for _ in 0..<50_000 {
            // Exponential around 20 ms with a heavy tail: every 100th value 50× longer.
            var v = UInt64(random.exponential(rate: 1 / 20_000) + 1)
            if random.next() % 100 == 0 { v *= 50 }
            values.append(v)
            h.record(microseconds: v)
        }
        values.sort()
        for p in [1.0, 25, 50, 75, 90, 99, 99.9] {
            assertClose(h.microseconds(atPercentile: p), nearestRank(values, p), "p\(p)")
        }
        assertClose(h.maxMicroseconds, values[values.count - 1], "max")
        assertClose(h.minMicroseconds, values[0], "min")
        XCTAssertEqual(h.meanMicroseconds, Double(values.reduce(0, +)) / Double(values.count), accuracy: 1e-6)
    }

    func testNanosecondsAndMergeAndEmpty() {
        var a = LatencyHistogram()
        XCTAssertEqual(a.summary, LatencySummary(count: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0))
        a.record(nanoseconds: 2_000_000)  // 2 ms
        var b = LatencyHistogram()
        b.record(nanoseconds: 4_000_000)
        b.record(nanoseconds: 500)        // below 1 µs: clamped to 1 µs
        a.add(b)
        XCTAssertEqual(a.count, 3)
        XCTAssertEqual(a.minMicroseconds, 1)
        assertClose(a.maxMicroseconds, 4000, "max")
        assertClose(a.microseconds(atPercentile: 50), 2000, "p50")
    }
}
