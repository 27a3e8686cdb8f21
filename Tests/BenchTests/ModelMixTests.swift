import XCTest
@testable import Bench

final class ModelMixTests: XCTestCase {
    private func frequencies(_ mix: ModelMix, draws: Int, seed: UInt64) -> [String: Double] {
        var random = RandomSource(seed: seed)
        var counts: [String: Int] = [:]
        for _ in 0..<draws { counts[mix.pick(using: &random), default: 0] += 1 }
        return counts.mapValues { Double($0) / Double(draws) }
    }

    func testUniformOverEight() throws {
        let names = (0..<8).map { "a\($0)" }
        let mix = try ModelMix(baseModel: nil, adapters: names, distribution: .uniform, baseFraction: 0)
        let f = frequencies(mix, draws: 80_000, seed: 7)
        for name in names { XCTAssertEqual(f[name] ?? 0, 0.125, accuracy: 0.006, name) }
        XCTAssertNil(f[""])
    }

    func testZipfOverSixtyFour() throws {
        let names = (0..<64).map { "bench-\($0)" }
        let mix = try ModelMix(baseModel: nil, adapters: names, distribution: try AdapterDistribution(parsing: "zipf:1.1"), baseFraction: 0)
        // Independent expectation: p_k = k^-1.1 / sum_{j=1..64} j^-1.1.
        var harmonic = 0.0
        for j in 1...64 { harmonic += 1 / pow(Double(j), 1.1) }
        let f = frequencies(mix, draws: 200_000, seed: 11)
        for k in 1...64 {
            let expected = 1 / pow(Double(k), 1.1) / harmonic
            // ~4 standard deviations of a binomial share over 200k draws.
            let sigma = (expected * (1 - expected) / 200_000).squareRoot()
            XCTAssertEqual(f["bench-\(k - 1)"] ?? 0, expected, accuracy: 4 * sigma + 1e-4, "adapter \(k)")
        }
        XCTAssertEqual(mix.probabilities[0], 1 / harmonic, accuracy: 1e-12)
    }

    func testWeightsAndBaseFraction() throws {
        let mix = try ModelMix(baseModel: "base", adapters: ["w", "x", "y", "z"],
                               distribution: try AdapterDistribution(parsing: "weights:1,2,3,4"), baseFraction: 0.5)
        let f = frequencies(mix, draws: 100_000, seed: 3)
        XCTAssertEqual(f["base"] ?? 0, 0.5, accuracy: 0.01)
        for (name, w) in [("w", 1.0), ("x", 2), ("y", 3), ("z", 4)] {
            XCTAssertEqual(f[name] ?? 0, 0.5 * w / 10, accuracy: 0.008, name)
        }
        XCTAssertEqual(mix.names, ["base", "w", "x", "y", "z"])
    }

    func testSameSeedSameSequence() throws {
        let mix = try ModelMix(baseModel: nil, adapters: ["a", "b", "c"], distribution: .zipf(exponent: 1), baseFraction: 0)
        var r1 = RandomSource(seed: 99), r2 = RandomSource(seed: 99)
        XCTAssertEqual((0..<100).map { _ in mix.pick(using: &r1) }, (0..<100).map { _ in mix.pick(using: &r2) })
    }

    func testBadDistributionsAreErrorsNamingTheInput() {
        for bad in ["zipf", "zipf:-1", "zipf:x", "weights:1,a", "weights:-2", "normal"] {
            XCTAssertThrowsError(try AdapterDistribution(parsing: bad)) { error in
                XCTAssertTrue("\(error)".contains(bad), "\(error)")
            }
        }
        XCTAssertThrowsError(try ModelMix(baseModel: nil, adapters: ["a", "b"], distribution: .weights([1]), baseFraction: 0))
        XCTAssertThrowsError(try ModelMix(baseModel: nil, adapters: ["a", "b"], distribution: .weights([0, 0]), baseFraction: 0))
        XCTAssertThrowsError(try ModelMix(baseModel: nil, adapters: [], distribution: .uniform, baseFraction: 0))
        XCTAssertThrowsError(try ModelMix(baseModel: nil, adapters: ["a"], distribution: .uniform, baseFraction: 0.5))
        XCTAssertThrowsError(try ModelMix(baseModel: "b", adapters: ["a", "a"], distribution: .uniform, baseFraction: 0))
    }
}
