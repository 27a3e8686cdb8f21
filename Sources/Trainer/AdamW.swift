import Foundation

/// AdamW with decoupled weight decay, step for step as PyTorch's `torch.optim.AdamW` computes it:
/// p ← p·(1 − lr·wd); m ← lerp(m, g, 1 − β1); v ← β2·v + (1 − β2)·g²;
/// p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε).
public struct AdamW: Sendable, Equatable {
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
    public var weightDecay: Double = 0.01

    public init(beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
    }

    /// Update number `t` (1-based) of `params` with `grads` and the moments `m`, `v` at learning rate `lr`.
    public func update(params: FlatBuffer, grads: FlatBuffer, m: FlatBuffer, v: FlatBuffer, t: Int, lr: Double) {
        precondition(grads.count == params.count && m.count == params.count && v.count == params.count,
                     "AdamW: buffers of different sizes")
        let decay = Float(1 - lr * weightDecay)
        let b2 = Float(beta2)
        let oneMinusB1 = Float(1 - beta1), oneMinusB2 = Float(1 - beta2)
        let stepSize = Float(lr / (1 - pow(beta1, Double(t))))
        let bc2Sqrt = Float((1 - pow(beta2, Double(t))).squareRoot())
        let eps = Float(epsilon)
        let p = params.pointer, g = grads.pointer, mp = m.pointer, vp = v.pointer
        for i in 0..<params.count {
            let gi = g[i]
            p[i] *= decay
            mp[i] += (gi - mp[i]) * oneMinusB1
            vp[i] = vp[i] * b2 + oneMinusB2 * gi * gi
            let denom = vp[i].squareRoot() / bc2Sqrt + eps
            p[i] -= stepSize * mp[i] / denom
        }
    }
}

/// How the learning rate moves over training: a linear warm-up, then constant, linear decay to 0, or a
/// half-cosine to 0 (the schedules of Hugging Face `transformers`, `get_*_schedule_with_warmup`).
public enum LearningRateSchedule: String, Sendable, CaseIterable {
    case constant, linear, cosine

    /// The multiplier of the base rate for the update after `completed` updates (0-based, as HF's LambdaLR sees it).
    public func factor(completed step: Int, warmupSteps: Int, totalSteps: Int) -> Double {
        if step < warmupSteps { return Double(step) / Double(max(1, warmupSteps)) }
        switch self {
        case .constant:
            return 1
        case .linear:
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return max(0, 0.5 * (1 + cos(Double.pi * progress)))
        }
    }

    /// Warm-up updates for a ratio of the total, rounded up as `transformers` does.
    public static func warmupSteps(ratio: Double, totalSteps: Int) -> Int {
        Int((ratio * Double(totalSteps)).rounded(.up))
    }
}
