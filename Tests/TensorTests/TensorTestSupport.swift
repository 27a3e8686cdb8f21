import XCTest

/// SplitMix64: a small deterministic generator so every run tests the same inputs.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func floats(_ n: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<n).map { _ in Float.random(in: range, using: &self) }
    }
}

/// Asserts |actual - expected| ≤ tolerance · scale for every element (scale defaults to
/// |expected|), reporting the worst one.
func assertClose(_ actual: [Float], _ expected: [Double], tolerance: Double, scale: [Double]? = nil,
                 _ label: @autoclosure () -> String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, label(), file: file, line: line)
    var worst = 0.0, worstIndex = -1
    for i in 0..<min(actual.count, expected.count) {
        let s = max(scale?[i] ?? abs(expected[i]), 1e-30)
        let err = abs(Double(actual[i]) - expected[i]) / s
        if err.isNaN || err > worst { worst = err.isNaN ? .infinity : err; worstIndex = i }
    }
    if worstIndex >= 0, worst > tolerance {
        XCTFail("\(label()): element \(worstIndex) is \(actual[worstIndex]), expected \(expected[worstIndex]) (relative error \(worst) > \(tolerance))",
                file: file, line: line)
    }
}

/// A buffer with `guardCount` sentinel floats after `count` usable ones, to catch writes past the end.
struct Guarded {
    static let sentinel = Float(bitPattern: 0x7FC0_DEAD)  // a NaN with a recognisable payload
    var storage: [Float]
    let count: Int
    init(_ values: [Float], guardCount: Int = 16) {
        count = values.count
        storage = values + [Float](repeating: Self.sentinel, count: guardCount)
    }
    var values: [Float] { Array(storage[..<count]) }
    var guardIntact: Bool { storage[count...].allSatisfy { $0.bitPattern == Self.sentinel.bitPattern } }
}
