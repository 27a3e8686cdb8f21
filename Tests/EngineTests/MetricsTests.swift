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
}
