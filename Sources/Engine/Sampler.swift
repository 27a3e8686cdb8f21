import Foundation
import Tensor

/// A token and its log-probability under the model's distribution.
public struct ScoredToken: Sendable, Equatable {
    public var id: Int32
    public var logprob: Float

    public init(id: Int32, logprob: Float) {
        self.id = id
        self.logprob = logprob
    }
}

/// The sampler's choice for one position.
public struct SampledToken: Sendable, Equatable {
    public var id: Int32
    /// log p(id) under the raw model distribution (log-softmax of the unmodified logits), when
    /// `SamplingParameters.logprobs` is set.
    public var logprob: Float?
    /// The `topLogprobs` most likely tokens under the same distribution, best first (ties to the
    /// lower id).
    public var topLogprobs: [ScoredToken]

    public init(id: Int32, logprob: Float? = nil, topLogprobs: [ScoredToken] = []) {
        self.id = id
        self.logprob = logprob
        self.topLogprobs = topLogprobs
    }
}

/// Scratch buffers for sampling, sized to the vocabulary and reused for every token, so that
/// sampling allocates nothing in the common case. One per engine thread; not thread-safe.
public final class SamplerScratch {
    public let vocabularySize: Int
    let work: UnsafeMutableBufferPointer<Float>  // [vocab] adjusted logits, then weights
    let raw: UnsafeMutableBufferPointer<Float>  // [vocab] NaN-free copy of the model's logits (logprobs)
    let ids: UnsafeMutableBufferPointer<Int32>  // [vocab] candidate ids

    public init(vocabularySize: Int) {
        precondition(vocabularySize > 0, "SamplerScratch: empty vocabulary")
        self.vocabularySize = vocabularySize
        work = .allocate(capacity: vocabularySize)
        raw = .allocate(capacity: vocabularySize)
        ids = .allocate(capacity: vocabularySize)
        work.initialize(repeating: 0)
        raw.initialize(repeating: 0)
        ids.initialize(repeating: 0)
    }

    deinit {
        work.deallocate()
        raw.deallocate()
        ids.deallocate()
    }
}

/// Picks tokens for one sequence: its parameters, its random generator and what the penalties
/// need to remember (the tokens seen so far).
///
/// The order of operations on one row of logits (as in Hugging Face transformers' warpers):
/// 1. logit bias is added;
/// 2. repetition penalty on every token of prompt and output (positive logits divided,
///    negative multiplied);
/// 3. frequency and presence penalties on output tokens (`l -= f·count + p·[count > 0]`);
/// 4. temperature ≤ 0 (or NaN): argmax, ties to the lowest id; otherwise logits / temperature,
/// 5. top-k, 6. top-p (smallest best-first prefix whose renormalised mass reaches `topP`),
/// 7. min-p (keep weight ≥ `minP` × the best weight), 8. one draw from what is left.
///
/// Log-probabilities are reported for the raw model distribution (before steps 1–7), the
/// convention of vLLM's default `raw_logprobs` mode: they describe the model, not the request's
/// adjustments.
public struct Sampler {
    public let parameters: SamplingParameters
    private var rng: Xoshiro256StarStar
    private var outputCounts: [Int32: Int32] = [:]
    private var seen: Set<Int32> = []

    private var usesOutputCounts: Bool { parameters.frequencyPenalty != 0 || parameters.presencePenalty != 0 }
    private var usesRepetition: Bool { parameters.repetitionPenalty != 1 && parameters.repetitionPenalty.isFinite && parameters.repetitionPenalty > 0 }

    /// - Parameters:
    ///   - prompt: the prompt's token ids (the repetition penalty counts them as seen).
    public init(parameters: SamplingParameters, prompt: some Sequence<Int32> = [Int32]()) {
        self.parameters = parameters
        rng = parameters.seed.map { Xoshiro256StarStar(seed: $0) } ?? Xoshiro256StarStar()
        if usesRepetition { seen.formUnion(prompt) }
    }

    /// Records a token as generated output without sampling it (for penalties).
    public mutating func record(_ token: Int32) {
        if usesRepetition { seen.insert(token) }
        if usesOutputCounts { outputCounts[token, default: 0] += 1 }
    }

    /// Chooses the next token from one row of logits `[vocab]` and records it.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, scratch: SamplerScratch) -> SampledToken {
        let vocab = min(logits.count, scratch.vocabularySize)
        precondition(vocab > 0, "Sampler.sample: empty logits row")
        let work = UnsafeMutableBufferPointer(rebasing: scratch.work[0..<vocab])
        for i in 0..<vocab {
            let l = logits[i]
            work[i] = l.isNaN ? -.infinity : l
        }
        var result = SampledToken(id: 0)
        let wantsLogprobs = parameters.logprobs || parameters.topLogprobs > 0
        var lse: Float = 0
        if wantsLogprobs {
            let raw = UnsafeMutableBufferPointer(rebasing: scratch.raw[0..<vocab])
            _ = raw.update(fromContentsOf: work)
            lse = Self.logSumExp(UnsafeBufferPointer(raw))
            result.topLogprobs = Self.topLogprobs(raw: UnsafeBufferPointer(raw), count: parameters.topLogprobs,
                                                  ids: scratch.ids, logSumExp: lse)
        }
        applyAdjustments(work)

        let id: Int32
        let t = parameters.temperature
        if !(t > 0) {
            id = Self.argmax(UnsafeBufferPointer(work))
        } else {
            id = draw(work, ids: UnsafeMutableBufferPointer(rebasing: scratch.ids[0..<vocab]), temperature: t)
        }
        result.id = id
        if wantsLogprobs {
            result.logprob = scratch.raw[Int(id)] - lse
        }
        record(id)
        return result
    }

    /// Convenience for tests and one-off calls.
    public mutating func sample(_ logits: [Float], scratch: SamplerScratch) -> SampledToken {
        logits.withUnsafeBufferPointer { sample($0, scratch: scratch) }
    }

    // MARK: - Steps

    /// Steps 1–3 in place on a row of logits.
    func applyAdjustments(_ work: UnsafeMutableBufferPointer<Float>) {
        let vocab = work.count
        for (token, bias) in parameters.logitBias where token >= 0 && Int(token) < vocab && bias.isFinite {
            work[Int(token)] += bias
        }
        if usesRepetition {
            let penalty = parameters.repetitionPenalty
            for token in seen where token >= 0 && Int(token) < vocab {
                let l = work[Int(token)]
                work[Int(token)] = l > 0 ? l / penalty : l * penalty
            }
        }
        if usesOutputCounts {
            let f = parameters.frequencyPenalty.isFinite ? parameters.frequencyPenalty : 0
            let p = parameters.presencePenalty.isFinite ? parameters.presencePenalty : 0
            for (token, count) in outputCounts where token >= 0 && Int(token) < vocab {
                work[Int(token)] -= f * Float(count) + (count > 0 ? p : 0)
            }
        }
    }

    /// Temperature, top-k, top-p, min-p, then one draw. `work` holds adjusted logits.
    private mutating func draw(_ work: UnsafeMutableBufferPointer<Float>, ids: UnsafeMutableBufferPointer<Int32>,
                               temperature: Float) -> Int32 {
        let vocab = work.count
        let greedy = Self.argmax(UnsafeBufferPointer(work))
        let invT = 1 / temperature
        guard invT.isFinite else { return greedy }
        for i in 0..<vocab { work[i] *= invT }
        let best = work[Int(greedy)]
        guard best.isFinite else { return greedy }
        let ranked = RankedIDs(ids: ids, logits: UnsafeBufferPointer(work))

        var count = vocab
        let k = parameters.topK
        if k > 0 && k < vocab {
            if k <= vocab / 8 {
                ranked.selectBest(among: vocab, k: k)
            } else {
                for i in 0..<vocab { ids[i] = Int32(i) }
                ranked.select(0, vocab, k: k)
            }
            count = k
        } else {
            for i in 0..<vocab { ids[i] = Int32(i) }
        }
        // Weights relative to the best token (whose weight is exactly 1).
        var total = 0.0
        if count == vocab {
            // Every token, in id order (no top-k): eight at a time. This runs on the engine thread for each
            // sampled sequence of a step (49,152 exponentials each) while the pool's other thread waits.
            total = Kernels.exponentiate(work.baseAddress!, count: vocab, subtracting: best)
        } else {
            for j in 0..<count {
                let i = Int(ids[j])
                let w = exp(work[i] - best)
                work[i] = w
                total += Double(w)
            }
        }
        // `ranked` now orders by weight, which exp keeps in the same (total) order.
        let topP = parameters.topP
        if topP > 0 && topP < 1 {
            // Tokens lighter than τ = (1 - p)·total / count weigh less than (1 - p)·total all
            // together, so none of them is needed to reach p: drop them before sorting.
            let tau = Float((1 - Double(topP)) * total / Double(count))
            var kept = 0
            for j in 0..<count where work[Int(ids[j])] >= tau {
                ids[kept] = ids[j]
                kept += 1
            }
            count = Self.nucleus(ranked, count: kept, target: Double(topP) * total)
        }
        let minP = parameters.minP
        if minP > 0 && minP <= 1 {
            var kept = 0
            for j in 0..<count where work[Int(ids[j])] >= minP {
                ids[kept] = ids[j]
                kept += 1
            }
            count = kept  // the best token has weight 1 ≥ minP, so kept ≥ 1
        }
        var mass = 0.0
        for j in 0..<count { mass += Double(work[Int(ids[j])]) }
        guard mass > 0, mass.isFinite, count > 0 else { return greedy }
        let u = rng.nextUnit() * mass
        var acc = 0.0
        for j in 0..<count {
            acc += Double(work[Int(ids[j])])
            if acc > u { return ids[j] }
        }
        // Rounding left u at the very top: the last candidate with positive weight.
        for j in stride(from: count - 1, through: 0, by: -1) where work[Int(ids[j])] > 0 { return ids[j] }
        return greedy
    }

    /// Sorts the best-ranked prefix of `ids[0..<count]` just far enough to find the smallest
    /// prefix whose weight reaches `target`; returns its length (at least 1).
    static func nucleus(_ ranked: RankedIDs, count: Int, target: Double) -> Int {
        var sorted = 0
        var acc = 0.0
        var window = min(count, 64)
        while true {
            ranked.select(sorted, count, k: window - sorted)
            ranked.sort(sorted, window)
            for j in sorted..<window {
                acc += Double(ranked.logits[Int(ranked.ids[j])])
                if acc >= target { return j + 1 }
            }
            sorted = window
            if window == count { return count }
            window = min(count, window * 4)
        }
    }

    // MARK: - Helpers

    /// The index of the largest value, ties to the lowest index; 0 when all are -inf.
    static func argmax(_ values: UnsafeBufferPointer<Float>) -> Int32 {
        var best = 0
        var bestValue = -Float.infinity
        for i in 0..<values.count where values[i] > bestValue {
            best = i
            bestValue = values[i]
        }
        return Int32(best)
    }

    /// log Σ exp(values), computed around the maximum.
    static func logSumExp(_ values: UnsafeBufferPointer<Float>) -> Float {
        var m = -Float.infinity
        for v in values where v > m { m = v }
        guard m.isFinite else { return m }
        var s: Float = 0
        for v in values { s += exp(v - m) }
        return m + log(s)
    }

    /// The `count` best tokens of `raw`, best first, with log-probabilities.
    static func topLogprobs(raw: UnsafeBufferPointer<Float>, count: Int, ids: UnsafeMutableBufferPointer<Int32>,
                            logSumExp: Float) -> [ScoredToken] {
        let vocab = raw.count
        let n = min(max(count, 0), vocab)
        guard n > 0 else { return [] }
        let ranked = RankedIDs(ids: UnsafeMutableBufferPointer(rebasing: ids[0..<vocab]), logits: raw)
        ranked.selectBest(among: vocab, k: n)
        return (0..<n).map { ScoredToken(id: ids[$0], logprob: raw[Int(ids[$0])] - logSumExp) }
    }
}
