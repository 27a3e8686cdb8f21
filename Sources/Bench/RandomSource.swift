/// SplitMix64: a small, fast, seedable generator, so a run with a given `--seed` sends the same requests.
public struct RandomSource: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// An independent stream for request `index` of a run seeded with `seed`: the same request gets
    /// the same model, prompt and length whichever client thread sends it.
    public init(seed: UInt64, stream index: UInt64) {
        var mixer = RandomSource(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03))
        state = mixer.next()
    }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// An exponential variate with the given rate (mean 1/rate): Poisson-process gaps.
    public mutating func exponential(rate: Double) -> Double {
        -log1p(-unit()) / rate
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
