import Llama

/// Everything that decides what training computes. Defaults are `serve train`'s defaults, resolved here only.
public struct TrainingOptions: Sendable, Equatable {
    // LoRA
    public var rank = 8
    public var alpha: Double = 16
    public var dropout: Float = 0.05
    public var targets: Set<Projection> = [.q, .v]
    public var rsLoRA = false
    // Optimiser and schedule
    public var learningRate: Double = 2e-4
    public var schedule: LearningRateSchedule = .cosine
    public var warmupRatio: Double = 0.05
    public var optimizer = AdamW()
    /// Clip the global gradient norm to this; nil turns clipping off.
    public var maxGradNorm: Double? = 1.0
    // Batching
    public var batchSize = 8
    public var gradientAccumulation = 1
    public var epochs = 3
    /// Stops after this many optimiser steps (overrides `epochs`).
    public var maxSteps: Int?
    /// Rows of one forward/backward pass: bounds activation memory. A longer sequence gets a pass of its own, in
    /// which layers are recomputed in the backward pass instead of kept.
    public var maxTokensPerPass = 1024
    // Evaluation and control
    /// Stop when the eval loss has not improved for this many evaluations; the best adapter is kept.
    public var patience: Int?
    public var seed: UInt64 = 42
    /// Write a checkpoint every this many steps (nil: never).
    public var checkpointEvery: Int?

    public init() {}

    /// Throws on values that make no sense, naming the flag.
    public func validate() throws(TrainerError) {
        func bad(_ flag: String, _ why: String) -> TrainerError { TrainerError("--\(flag): \(why)") }
        guard rank > 0, rank <= 4096 else { throw bad("rank", "must be between 1 and 4096, got \(rank)") }
        guard alpha.isFinite, alpha > 0 else { throw bad("alpha", "must be a positive number, got \(alpha)") }
        guard dropout >= 0, dropout < 1 else { throw bad("dropout", "must be in [0, 1), got \(dropout)") }
        guard !targets.isEmpty else { throw bad("targets", "names no projection") }
        guard learningRate.isFinite, learningRate > 0 else { throw bad("lr", "must be positive, got \(learningRate)") }
        guard warmupRatio >= 0, warmupRatio <= 1 else { throw bad("warmup-ratio", "must be in [0, 1], got \(warmupRatio)") }
        guard optimizer.weightDecay >= 0, optimizer.weightDecay.isFinite else {
            throw bad("weight-decay", "must be ≥ 0, got \(optimizer.weightDecay)")
        }
        guard optimizer.beta1 >= 0, optimizer.beta1 < 1, optimizer.beta2 >= 0, optimizer.beta2 < 1 else {
            throw bad("betas", "must be in [0, 1)")
        }
        guard optimizer.epsilon > 0 else { throw bad("eps", "must be positive") }
        if let g = maxGradNorm { guard g > 0, g.isFinite else { throw bad("max-grad-norm", "must be positive, got \(g)") } }
        guard batchSize > 0 else { throw bad("batch-size", "must be at least 1, got \(batchSize)") }
        guard gradientAccumulation > 0 else { throw bad("grad-accum", "must be at least 1, got \(gradientAccumulation)") }
        guard epochs > 0 else { throw bad("epochs", "must be at least 1, got \(epochs)") }
        if let m = maxSteps { guard m > 0 else { throw bad("max-steps", "must be at least 1, got \(m)") } }
        guard maxTokensPerPass > 0 else { throw bad("max-tokens-per-pass", "must be positive") }
        if let p = patience { guard p > 0 else { throw bad("patience", "must be at least 1, got \(p)") } }
        if let c = checkpointEvery { guard c > 0 else { throw bad("checkpoint-every", "must be at least 1, got \(c)") } }
    }

    /// A stable text of every option that changes the result (for the checkpoint's fingerprint).
    var canonicalText: String {
        let t = Projection.allCases.filter { targets.contains($0) }.map(\.peftName).joined(separator: ",")
        return "r=\(rank) alpha=\(alpha) dropout=\(dropout) targets=\(t) rslora=\(rsLoRA) lr=\(learningRate) "
            + "schedule=\(schedule.rawValue) warmup=\(warmupRatio) b1=\(optimizer.beta1) b2=\(optimizer.beta2) "
            + "eps=\(optimizer.epsilon) wd=\(optimizer.weightDecay) clip=\(maxGradNorm.map { "\($0)" } ?? "none") "
            + "batch=\(batchSize) accum=\(gradientAccumulation) epochs=\(epochs) max_steps=\(maxSteps.map { "\($0)" } ?? "none") "
            + "patience=\(patience.map { "\($0)" } ?? "none") seed=\(seed) pass_tokens=\(maxTokensPerPass)"
    }
}
