import Foundation
import XCTest
@testable import Engine

/// The sampler against hand-computed distributions. Every expected number here comes from the
/// formulas in the test (Double arithmetic), not from the sampler.
final class SamplerTests: XCTestCase {
    // MARK: - Helpers

    /// Draws `n` tokens from fresh logits each time (penalties off, so draws are independent).
    private func frequencies(_ logits: [Float], _ params: SamplingParameters, draws n: Int) -> [Int: Int] {
        var sampler = Sampler(parameters: params)
        let scratch = SamplerScratch(vocabularySize: logits.count)
        var counts: [Int: Int] = [:]
        for _ in 0..<n { counts[Int(sampler.sample(logits, scratch: scratch).id), default: 0] += 1 }
        return counts
    }

    /// Pearson's chi-square statistic of observed counts against expected probabilities.
    private func chiSquare(_ counts: [Int: Int], _ expected: [Int: Double], draws n: Int) -> Double {
        var x2 = 0.0
        for (id, p) in expected {
            let e = p * Double(n)
            let o = Double(counts[id] ?? 0)
            x2 += (o - e) * (o - e) / e
        }
        return x2
    }

    /// Upper 0.1% points of chi-square for 1…4 degrees of freedom.
    private let chiSquareCritical = [1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47]

    private func normalized(_ weights: [Int: Double]) -> [Int: Double] {
        let total = weights.values.reduce(0, +)
        return weights.mapValues { $0 / total }
    }

    // MARK: - Random numbers

    func testXoshiroMatchesIndependentImplementation() {
        // Computed by a separate Python implementation of SplitMix64 + xoshiro256**.
        var g0 = Xoshiro256StarStar(seed: 0)
        XCTAssertEqual([g0.next(), g0.next(), g0.next()], [0x99ec_5f36_cb75_f2b4, 0xbf6e_1f78_4956_452a, 0x1a5f_849d_4933_e6e0])
        var g42 = Xoshiro256StarStar(seed: 42)
        XCTAssertEqual([g42.next(), g42.next(), g42.next()], [0x1578_0b2e_0c2e_c716, 0x6104_d986_6d11_3a7e, 0xae17_5332_39e4_99a1])
    }

    func testUnitIntervalIsHalfOpen() {
        var g = Xoshiro256StarStar(seed: 7)
        for _ in 0..<10000 {
            let u = g.nextUnit()
            XCTAssert(u >= 0 && u < 1)
        }
    }

    // MARK: - Greedy

    func testGreedyPicksArgmaxWithTiesToLowestID() {
        let scratch = SamplerScratch(vocabularySize: 5)
        var s = Sampler(parameters: .greedy)
        XCTAssertEqual(s.sample([0.1, 3, -2, 3, 1], scratch: scratch).id, 1)
        XCTAssertEqual(s.sample([.nan, 0.5, .nan, 0.7, -.infinity], scratch: scratch).id, 3)
        XCTAssertEqual(s.sample([.nan, .nan, .nan, .nan, .nan], scratch: scratch).id, 0)
        var negative = Sampler(parameters: SamplingParameters(temperature: -1))
        XCTAssertEqual(negative.sample([1, 2, 3, 2, 1], scratch: scratch).id, 2)
    }

    // MARK: - Temperature

    func testTemperatureOneFollowsSoftmax() {
        let probs = [0.5, 0.3, 0.2]
        let logits = probs.map { Float(log($0)) + 4 }
        let n = 20000
        let counts = frequencies(logits, SamplingParameters(temperature: 1, seed: 42), draws: n)
        let x2 = chiSquare(counts, [0: 0.5, 1: 0.3, 2: 0.2], draws: n)
        XCTAssertLessThan(x2, chiSquareCritical[2]!, "counts \(counts)")
    }

    func testTemperatureTwoFlattens() {
        // p_i ∝ exp(l_i / 2) = sqrt(q_i).
        let q = [0.5, 0.3, 0.2]
        let logits = q.map { Float(log($0)) }
        let expected = normalized([0: sqrt(0.5), 1: sqrt(0.3), 2: sqrt(0.2)])
        let n = 20000
        let counts = frequencies(logits, SamplingParameters(temperature: 2, seed: 1), draws: n)
        XCTAssertLessThan(chiSquare(counts, expected, draws: n), chiSquareCritical[2]!, "counts \(counts)")
    }

    // MARK: - Filters

    func testTopKKeepsExactlyTheKBest() {
        let logits: [Float] = [1, 5, 3, 4, 2]
        let n = 10000
        let counts = frequencies(logits, SamplingParameters(temperature: 1, topK: 2, seed: 3), draws: n)
        XCTAssertEqual(Set(counts.keys), [1, 3])
        let expected = normalized([1: exp(5.0), 3: exp(4.0)])
        XCTAssertLessThan(chiSquare(counts, expected, draws: n), chiSquareCritical[1]!, "counts \(counts)")
    }

    func testTopKOneIsGreedy() {
        let counts = frequencies([0.2, 0.9, 0.9, 0.1], SamplingParameters(temperature: 1.5, topK: 1, seed: 9), draws: 200)
        XCTAssertEqual(counts, [1: 200])
    }

    func testTopPKeepsSmallestPrefixReachingP() {
        let q = [0.05, 0.5, 0.15, 0.3]  // ranked: 1 (0.5), 3 (0.3), 2 (0.15), 0 (0.05)
        let logits = q.map { Float(log($0)) }
        let n = 10000
        // 0.75: 0.5 < 0.75 ≤ 0.8 → {1, 3}.
        let a = frequencies(logits, SamplingParameters(temperature: 1, topP: 0.75, seed: 5), draws: n)
        XCTAssertEqual(Set(a.keys), [1, 3])
        XCTAssertLessThan(chiSquare(a, normalized([1: 0.5, 3: 0.3]), draws: n), chiSquareCritical[1]!)
        // 0.85: 0.8 < 0.85 ≤ 0.95 → {1, 3, 2}.
        let b = frequencies(logits, SamplingParameters(temperature: 1, topP: 0.85, seed: 6), draws: n)
        XCTAssertEqual(Set(b.keys), [1, 3, 2])
        XCTAssertLessThan(chiSquare(b, normalized([1: 0.5, 3: 0.3, 2: 0.15]), draws: n), chiSquareCritical[2]!)
        // 0.4: the best token alone already reaches it.
        let c = frequencies(logits, SamplingParameters(temperature: 1, topP: 0.4, seed: 7), draws: 300)
        XCTAssertEqual(c, [1: 300])
    }

    func testTopPAfterTopKRenormalizes() {
        // top-k 3 keeps {1, 3, 2} with mass 0.95; top-p 0.8 of that is 0.76 → {1, 3} (0.5 < 0.76 ≤ 0.8).
        let q = [0.05, 0.5, 0.15, 0.3]
        let counts = frequencies(q.map { Float(log($0)) }, SamplingParameters(temperature: 1, topK: 3, topP: 0.8, seed: 8), draws: 3000)
        XCTAssertEqual(Set(counts.keys), [1, 3])
    }

    func testNucleusOnLargeVocabularyMatchesNaiveSort() {
        // A 3000-token vocabulary whose nucleus needs more than one selection window.
        var lcg: UInt64 = 12345
        func next() -> Double {
            lcg = lcg &* 6364136223846793005 &+ 1442695040888963407
            return Double(lcg >> 11) / Double(1 << 53)
        }
        let vocab = 3000
        let logits = (0..<vocab).map { _ in Float(next() * 3) }
        for topP in [0.05, 0.3, 0.9] as [Float] {
            // Naive: sort everything, softmax in Double, take the prefix.
            let order = (0..<vocab).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
            let m = Double(logits[order[0]])
            let weights = order.map { exp(Double(logits[$0]) - m) }
            let total = weights.reduce(0, +)
            var acc = 0.0, naive: Set<Int32> = []
            for (j, id) in order.enumerated() {
                naive.insert(Int32(id))
                acc += weights[j]
                if acc >= Double(topP) * total { break }
            }
            // The sampler's routine, on the same weights.
            var w = logits.map { Float(exp(Double($0) - m)) }
            var ids = (0..<vocab).map(Int32.init)
            let kept = w.withUnsafeMutableBufferPointer { wp in
                ids.withUnsafeMutableBufferPointer { ip in
                    let ranked = RankedIDs(ids: ip, logits: UnsafeBufferPointer(wp))
                    let sumW = (0..<vocab).reduce(0.0) { $0 + Double(wp[$1]) }
                    let n = Sampler.nucleus(ranked, count: vocab, target: Double(topP) * sumW)
                    return Array(ip[0..<n])
                }
            }
            XCTAssertEqual(Set(kept), naive, "top_p \(topP)")
            XCTAssertEqual(kept, order.prefix(kept.count).map(Int32.init), "the prefix is sorted best first")
            XCTAssertGreaterThan(naive.count, topP > 0.5 ? 64 : 0)
        }
    }

    /// 5000 tokens: 12 heavy ones at logits 6…7.1 and a long tail in [0, 1).
    private func heavyHeadLogits() -> [Float] {
        var lcg: UInt64 = 99
        var logits = (0..<5000).map { _ -> Float in
            lcg = lcg &* 6364136223846793005 &+ 1442695040888963407
            return Float(lcg >> 40) / Float(1 << 24)
        }
        for j in 0..<12 { logits[397 * j + 5] = 6 + 0.1 * Float(j) }
        return logits
    }

    /// Ids in rank order (logit descending, ties to the lower id): the naive reference.
    private func rankOrder(_ logits: [Float]) -> [Int] {
        (0..<logits.count).sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
    }

    func testTopKAndTopPOnLargeVocabularyDrawExactlyTheNaiveSets() {
        let logits = heavyHeadLogits()
        let order = rankOrder(logits)
        let k5 = frequencies(logits, SamplingParameters(temperature: 1, topK: 5, seed: 21), draws: 3000)
        XCTAssertEqual(Set(k5.keys), Set(order.prefix(5)))
        // Naive nucleus at p = 0.5 in Double.
        let m = Double(logits[order[0]])
        let weights = order.map { exp(Double(logits[$0]) - m) }
        let total = weights.reduce(0, +)
        var acc = 0.0, nucleus: Set<Int> = []
        for (j, id) in order.enumerated() {
            nucleus.insert(id)
            acc += weights[j]
            if acc >= 0.5 * total { break }
        }
        XCTAssertGreaterThan(nucleus.count, 2)
        let p = frequencies(logits, SamplingParameters(temperature: 1, topP: 0.5, seed: 22), draws: 4000)
        XCTAssertEqual(Set(p.keys), nucleus)
        let expected = Dictionary(uniqueKeysWithValues: order.prefix(nucleus.count).enumerated().map { ($1, weights[$0]) })
        XCTAssertLessThan(chiSquare(p, normalized(expected), draws: 4000), 30, "counts \(p)")
    }

    func testTopLogprobsOnLargeVocabularyMatchNaiveSort() {
        let logits = heavyHeadLogits()
        let order = rankOrder(logits)
        let m = Double(logits[order[0]])
        let lse = m + log(logits.reduce(0.0) { $0 + exp(Double($1) - m) })
        var s = Sampler(parameters: SamplingParameters(temperature: 0, logprobs: true, topLogprobs: 20))
        let t = s.sample(logits, scratch: SamplerScratch(vocabularySize: logits.count))
        XCTAssertEqual(t.topLogprobs.map { Int($0.id) }, Array(order.prefix(20)))
        for e in t.topLogprobs { XCTAssertEqual(Double(e.logprob), Double(logits[Int(e.id)]) - lse, accuracy: 1e-4) }
    }

    func testMinPDropsTokensBelowFractionOfBest() {
        let q = [0.5, 0.3, 0.15, 0.05]
        let logits = q.map { Float(log($0)) }
        let n = 10000
        // min_p 0.25: threshold 0.125 → {0, 1, 2}.
        let a = frequencies(logits, SamplingParameters(temperature: 1, minP: 0.25, seed: 11), draws: n)
        XCTAssertEqual(Set(a.keys), [0, 1, 2])
        XCTAssertLessThan(chiSquare(a, normalized([0: 0.5, 1: 0.3, 2: 0.15]), draws: n), chiSquareCritical[2]!)
        // min_p 0.7: threshold 0.35 → {0}.
        let b = frequencies(logits, SamplingParameters(temperature: 1, minP: 0.7, seed: 12), draws: 300)
        XCTAssertEqual(b, [0: 300])
    }

    // MARK: - Penalties and bias

    private func adjusted(_ logits: [Float], _ sampler: Sampler) -> [Float] {
        var work = logits
        work.withUnsafeMutableBufferPointer { sampler.applyAdjustments($0) }
        return work
    }

    func testRepetitionPenaltyDividesPositiveAndMultipliesNegative() {
        let s = Sampler(parameters: SamplingParameters(repetitionPenalty: 2), prompt: [0, 2, 2])
        XCTAssertEqual(adjusted([2, 1.9, -1, -1.1], s), [1, 1.9, -2, -1.1])
    }

    func testRepetitionPenaltyCountsOutputTokens() {
        var s = Sampler(parameters: SamplingParameters(temperature: 0, repetitionPenalty: 4), prompt: [])
        let scratch = SamplerScratch(vocabularySize: 3)
        // First pick: 0 (logit 2). Penalised to 0.5, then 1 (1.9) wins, then 2 (1.8): 0.5 and 0.475 lose.
        XCTAssertEqual(s.sample([2, 1.9, 1.8], scratch: scratch).id, 0)
        XCTAssertEqual(s.sample([2, 1.9, 1.8], scratch: scratch).id, 1)
        XCTAssertEqual(s.sample([2, 1.9, 1.8], scratch: scratch).id, 2)
    }

    func testFrequencyAndPresencePenalties() {
        var s = Sampler(parameters: SamplingParameters(frequencyPenalty: 0.5, presencePenalty: 0.25), prompt: [3, 3])
        for t: Int32 in [1, 1, 2] { s.record(t) }
        // token 1: 2 × 0.5 + 0.25 = 1.25; token 2: 0.5 + 0.25 = 0.75; prompt tokens are not penalised.
        XCTAssertEqual(adjusted([0, 1, 1, 1], s), [0, -0.25, 0.25, 1])
    }

    func testLogitBiasAddsAndIgnoresUnknownIDs() {
        let s = Sampler(parameters: SamplingParameters(logitBias: [1: -100, 2: 3.5, 99: 100, -4: 100]))
        XCTAssertEqual(adjusted([1, 2, 3], s), [1, -98, 6.5])
        var forced = Sampler(parameters: SamplingParameters(temperature: 1, seed: 1, logitBias: [2: 100]))
        let scratch = SamplerScratch(vocabularySize: 4)
        for _ in 0..<50 { XCTAssertEqual(forced.sample([5, 5, 0, 5], scratch: scratch).id, 2) }
    }

    // MARK: - Log-probabilities

    func testLogprobsOfChosenAndTopAlternatives() {
        let logits: [Float] = [1, 2, 3, 0, 3]
        let lse = log(exp(1.0) + exp(2.0) + exp(3.0) + exp(0.0) + exp(3.0))
        var s = Sampler(parameters: SamplingParameters(temperature: 0, logitBias: [1: 10], logprobs: true, topLogprobs: 3))
        let scratch = SamplerScratch(vocabularySize: 5)
        let t = s.sample(logits, scratch: scratch)
        // The bias makes 1 the choice; log-probabilities describe the raw model.
        XCTAssertEqual(t.id, 1)
        XCTAssertEqual(Double(t.logprob!), 2 - lse, accuracy: 1e-5)
        XCTAssertEqual(t.topLogprobs.map(\.id), [2, 4, 1])
        for (got, raw) in zip(t.topLogprobs, [3.0, 3.0, 2.0]) { XCTAssertEqual(Double(got.logprob), raw - lse, accuracy: 1e-5) }
    }

    func testNoLogprobsUnlessAsked() {
        var s = Sampler(parameters: .greedy)
        let t = s.sample([1, 2], scratch: SamplerScratch(vocabularySize: 2))
        XCTAssertNil(t.logprob)
        XCTAssertEqual(t.topLogprobs, [])
    }

    // MARK: - Seeds

    func testSameSeedSameDrawsDifferentSeedDifferentDraws() {
        let logits = (0..<50).map { Float($0 % 7) * 0.3 }
        let scratch = SamplerScratch(vocabularySize: 50)
        func run(_ seed: UInt64) -> [Int32] {
            var s = Sampler(parameters: SamplingParameters(temperature: 1, topP: 0.9, seed: seed, frequencyPenalty: 0.1))
            return (0..<100).map { _ in s.sample(logits, scratch: scratch).id }
        }
        XCTAssertEqual(run(1234), run(1234))
        XCTAssertNotEqual(run(1234), run(1235))
    }

    func testDegenerateInputsDoNotTrap() {
        let scratch = SamplerScratch(vocabularySize: 3)
        var s = Sampler(parameters: SamplingParameters(temperature: 1e-30, topK: -5, topP: 7, minP: -1, seed: 1))
        XCTAssertEqual(s.sample([0, 1, 0.5], scratch: scratch).id, 1)
        var allBanned = Sampler(parameters: SamplingParameters(temperature: 1, seed: 2))
        XCTAssertEqual(allBanned.sample([-.infinity, -.infinity, -.infinity], scratch: scratch).id, 0)
        var nan = Sampler(parameters: SamplingParameters(temperature: .nan, seed: 2))
        XCTAssertEqual(nan.sample([0, 1, 2], scratch: scratch).id, 2)
    }
}
