/// SplitMix64: a tiny, well-mixed generator whose stream depends only on its seed, so shuffles and
/// initialisations are the same on every machine and toolchain (unlike the standard library's shuffle).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return DropoutMask.mix(state)
    }

    /// Uniform in [0, 1) with 24 bits, as a Float.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1 / 16_777_216) }

    /// Uniform in 0..<bound (bound > 0), by 128-bit multiply (Lemire), bias below 2⁻⁶⁴·bound.
    public mutating func nextIndex(below bound: Int) -> Int {
        Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// A Fisher–Yates permutation of 0..<n.
    public static func permutation(_ n: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            p.swapAt(i, rng.nextIndex(below: i + 1))
        }
        return p
    }

    /// A seed derived from `seed` for a purpose and an index (epoch, split, …).
    public static func derive(_ seed: UInt64, _ purpose: UInt64, _ index: Int = 0) -> UInt64 {
        DropoutMask.mix(DropoutMask.mix(seed ^ DropoutMask.mix(purpose)) ^ UInt64(truncatingIfNeeded: index))
    }
}

extension LoRATrainingModel {
    /// PEFT's default initialisation: A ~ kaiming_uniform(a = √5), i.e. U(−1/√in, 1/√in); B = 0 (so the adapter
    /// starts as the identity). Uses our own seeded generator, not PyTorch's.
    public func initializeParameters(seed: UInt64) {
        var rng = SplitMix64(seed: SplitMix64.derive(seed, 0x1A17))
        for slot in layout.slots {
            let bound = 1 / Float(slot.inFeatures).squareRoot()
            let a = params.pointer + slot.offsetA
            for i in 0..<slot.countA { a[i] = (2 * rng.nextUnitFloat() - 1) * bound }
            (params.pointer + slot.offsetB).update(repeating: 0, count: slot.countB)
        }
    }
}
