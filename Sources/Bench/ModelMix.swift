/// How requests are spread over adapters: `uniform`, `zipf:S` (the k-th adapter, 1-based, gets weight
/// k^-S) or `weights:W1,W2,…` (one non-negative weight per adapter, in order).
public enum AdapterDistribution: Sendable, Equatable, CustomStringConvertible {
    case uniform
    case zipf(exponent: Double)
    case weights([Double])

    public init(parsing text: String) throws(BenchError) {
        let lower = text.lowercased()
        if lower == "uniform" {
            self = .uniform
        } else if lower.hasPrefix("zipf:") {
            guard let s = Double(lower.dropFirst(5)), s.isFinite, s >= 0 else {
                throw BenchError("distribution '\(text)': zipf needs a non-negative exponent, e.g. zipf:1.1")
            }
            self = .zipf(exponent: s)
        } else if lower.hasPrefix("weights:") {
            var weights: [Double] = []
            for piece in lower.dropFirst(8).split(separator: ",", omittingEmptySubsequences: false) {
                guard let w = Double(piece.trimmingCharacters(in: .whitespaces)), w.isFinite, w >= 0 else {
                    throw BenchError("distribution '\(text)': weight '\(piece)' is not a non-negative number")
                }
                weights.append(w)
            }
            self = .weights(weights)
        } else {
            throw BenchError("distribution '\(text)': expected uniform, zipf:EXP or weights:W1,W2,…")
        }
    }

    public var description: String {
        switch self {
        case .uniform: return "uniform"
        case .zipf(let s): return "zipf:\(s)"
        case .weights(let w): return "weights:" + w.map { "\($0)" }.joined(separator: ",")
        }
    }

    /// The probability of each of `count` adapters (sums to 1).
    public func probabilities(count: Int) throws(BenchError) -> [Double] {
        guard count > 0 else { return [] }
        var weights: [Double]
        switch self {
        case .uniform:
            weights = Array(repeating: 1, count: count)
        case .zipf(let s):
            weights = (1...count).map { pow(Double($0), -s) }
        case .weights(let w):
            guard w.count == count else {
                throw BenchError("distribution \(self) has \(w.count) weights for \(count) adapters")
            }
            weights = w
        }
        let total = weights.reduce(0, +)
        guard total > 0 else { throw BenchError("distribution \(self): the weights sum to zero") }
        for i in weights.indices { weights[i] /= total }
        return weights
    }
}

/// Picks the model name of each request: the base model with probability `baseFraction`, otherwise
/// one of `adapters` drawn from `distribution`.
public struct ModelMix: Sendable {
    public let baseModel: String?
    public let adapters: [String]
    public let baseFraction: Double
    public let probabilities: [Double]
    /// Running sums of `probabilities`; the last is forced to 1.
    private let cumulative: [Double]

    public init(baseModel: String?, adapters: [String], distribution: AdapterDistribution, baseFraction: Double) throws(BenchError) {
        guard baseFraction.isFinite, (0...1).contains(baseFraction) else {
            throw BenchError("base fraction \(baseFraction) is not in 0…1")
        }
        if adapters.isEmpty || baseFraction > 0 {
            guard let baseModel, !baseModel.isEmpty else {
                throw BenchError("no base model name: pass --model NAME (or give adapters with a base fraction of 0)")
            }
        }
        if let duplicate = Dictionary(grouping: adapters, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw BenchError("adapter '\(duplicate)' is listed twice")
        }
        self.baseModel = baseModel
        self.adapters = adapters
        self.baseFraction = adapters.isEmpty ? 1 : baseFraction
        probabilities = try distribution.probabilities(count: adapters.count)
        var sums: [Double] = []
        var running = 0.0
        for p in probabilities {
            running += p
            sums.append(running)
        }
        if !sums.isEmpty { sums[sums.count - 1] = 1 }
        cumulative = sums
    }

    /// Every name this mix can send, base first.
    public var names: [String] {
        (baseFraction > 0 ? [baseModel ?? ""] : []) + adapters
    }

    public func pick(using random: inout RandomSource) -> String {
        if adapters.isEmpty { return baseModel ?? "" }
        if baseFraction > 0 && random.unit() < baseFraction { return baseModel ?? "" }
        let u = random.unit()
        // First index whose running sum exceeds u.
        var lo = 0, hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] > u { hi = mid } else { lo = mid + 1 }
        }
        return adapters[lo]
    }
}

import Foundation
