import Foundation

/// Thrown by `Trainer.run` when its `interrupt` hook asks to stop: the state is as a kill would leave it.
public struct TrainingInterrupted: Error, Sendable {
    public let afterStep: Int
}

/// What a finished run reports.
public struct TrainingResult: Sendable {
    public var steps: Int
    public var epochsStarted: Int
    public var finalTrainLoss: Double?
    public var finalEvalLoss: Double?
    public var bestEvalLoss: Double?
    public var stoppedEarly: Bool
    /// The step whose parameters were kept (the best eval with early stopping, else the last).
    public var keptStep: Int
    public var resumedFrom: Int?
    public var stepRecords: [StepRecord]
    public var evalRecords: [EvalRecord]
}

/// The training loop: epochs of shuffled examples, optimiser steps of `batchSize × gradientAccumulation` examples
/// (each split into passes of at most `maxTokensPerPass` rows), AdamW with a schedule and clipping, an eval loss at
/// the end of every epoch, early stopping, checkpoints and resume.
///
/// The loss of a step is Σ token cross-entropy / (supervised tokens of the whole step), whatever the split into
/// micro-batches and passes; its gradient is accumulated pass by pass with that one normaliser.
public final class Trainer {
    public let model: LoRATrainingModel
    public let options: TrainingOptions
    public let train: [TrainingSequence]
    public let eval: [TrainingSequence]
    /// Holds `train_log.jsonl` and `checkpoint.safetensors`.
    public let runDirectory: String
    /// Identifies base, data and options; a checkpoint resumes only a run with the same one.
    public let fingerprint: String

    /// Called after every optimiser step with the record and the total number of steps.
    public var onStep: ((StepRecord, Int) -> Void)?
    public var onEval: ((EvalRecord) -> Void)?
    /// Test hook: return true after step k to stop there as if the process had been killed.
    public var interrupt: ((Int) -> Bool)?
    /// Diagnostics hook: sees the gradient of the step's mean loss (before clipping) of update k (0-based).
    public var inspectGradients: ((Int, FlatBuffer) -> Void)?

    let m: FlatBuffer
    let v: FlatBuffer

    public init(model: LoRATrainingModel, options: TrainingOptions, train: [TrainingSequence], eval: [TrainingSequence],
                runDirectory: String, fingerprint: String) throws(TrainerError) {
        try options.validate()
        guard !train.isEmpty else { throw TrainerError("no training examples") }
        self.model = model
        self.options = options
        self.train = train
        self.eval = eval
        self.runDirectory = runDirectory
        self.fingerprint = fingerprint + " " + options.canonicalText
        m = FlatBuffer(count: model.params.count)
        v = FlatBuffer(count: model.params.count)
        model.dropout = DropoutMask(probability: options.dropout)
        model.seed = options.seed
        model.recomputeAbove = options.maxTokensPerPass
    }

    public var examplesPerStep: Int { options.batchSize * options.gradientAccumulation }
    public var stepsPerEpoch: Int { (train.count + examplesPerStep - 1) / examplesPerStep }
    public var totalSteps: Int { options.maxSteps ?? options.epochs * stepsPerEpoch }
    public var checkpointPath: String { runDirectory + "/" + Checkpoint.fileName }
    public var logPath: String { runDirectory + "/train_log.jsonl" }

    /// The examples of update number `completed` (0-based), in order.
    func stepExamples(completed c: Int) -> [Int] {
        let epoch = c / stepsPerEpoch, j = c % stepsPerEpoch
        let order = SplitMix64.permutation(train.count, seed: SplitMix64.derive(options.seed, 0xDA7A, epoch))
        return Array(order[j * examplesPerStep..<min(train.count, (j + 1) * examplesPerStep)])
    }

    /// Passes of one step: micro-batches of `batchSize`, each cut into runs of at most `maxTokensPerPass` rows.
    func passes(_ examples: [Int], from set: [TrainingSequence], microBatch: Int) -> [[TrainingSequence]] {
        var out: [[TrainingSequence]] = []
        var i = 0
        while i < examples.count {
            let batch = examples[i..<min(examples.count, i + microBatch)]
            var current: [TrainingSequence] = [], rows = 0
            for e in batch {
                let s = set[e]
                if !current.isEmpty && rows + s.tokens.count > options.maxTokensPerPass {
                    out.append(current)
                    current = []
                    rows = 0
                }
                current.append(s)
                rows += s.tokens.count
            }
            if !current.isEmpty { out.append(current) }
            i += microBatch
        }
        return out
    }

    /// Mean loss over `eval` with dropout off.
    public func evaluate() -> (loss: Double, tokens: Int) {
        var sum = 0.0, count = 0
        for pass in passes(Array(eval.indices), from: eval, microBatch: options.batchSize) {
            let r = model.run(pass, step: 0, gradientScale: nil, training: false)
            sum += r.lossSum
            count += r.count
        }
        return (count > 0 ? sum / Double(count) : .nan, count)
    }

    /// Trains to the end (or to early stopping). With `resume`, continues from the checkpoint in `runDirectory`
    /// when there is one. The model's parameters must hold the initial adapter before a fresh run.
    public func run(resume: Bool) throws -> TrainingResult {
        try FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        var completed = 0
        var bestEval: Double?
        var badEvals = 0
        var best: FlatBuffer?
        var keptStep = 0
        var logKeep = 0
        var resumedFrom: Int?
        let hasCheckpoint = FileManager.default.fileExists(atPath: checkpointPath)
        if resume && hasCheckpoint {
            let ck = try Checkpoint.read(from: checkpointPath)
            guard ck.fingerprint == fingerprint else {
                throw TrainerError("checkpoint '\(checkpointPath)' belongs to a different run (base, data or options differ); "
                                   + "start without --resume in a new output, or use the original settings")
            }
            guard ck.params.count == model.params.count else { throw TrainerError("checkpoint '\(checkpointPath)' has the wrong size") }
            model.params.load(ck.params, at: 0)
            m.load(ck.m, at: 0)
            v.load(ck.v, at: 0)
            if let b = ck.best {
                let buffer = FlatBuffer(count: b.count)
                buffer.load(b, at: 0)
                best = buffer
            }
            completed = ck.step
            bestEval = ck.bestEval
            badEvals = ck.badEvals
            logKeep = ck.logBytes
            resumedFrom = ck.step
        } else if !resume && hasCheckpoint {
            throw TrainerError("'\(checkpointPath)' exists from an earlier run; pass --resume to continue it, "
                               + "or choose another output")
        }
        let log = try TrainLog(path: logPath, keep: logKeep)
        let total = totalSteps
        let warmup = LearningRateSchedule.warmupSteps(ratio: options.warmupRatio, totalSteps: total)
        var stoppedEarly = false
        if let last = log.evals.last, let p = options.patience, badEvals >= p, last.step == completed { stoppedEarly = true }

        while completed < total && !stoppedEarly {
            let started = DispatchTime.now().uptimeNanoseconds
            let examples = stepExamples(completed: completed)
            let stepSet = examples.map { train[$0] }
            let supervised = stepSet.reduce(0) { $0 + $1.supervisedCount }
            let tokens = stepSet.reduce(0) { $0 + $1.tokens.count }
            model.grads.zero()
            var lossSum = 0.0
            if supervised > 0 {
                for pass in passes(examples, from: train, microBatch: options.batchSize) {
                    lossSum += model.run(pass, step: completed, gradientScale: 1 / Float(supervised), training: true).lossSum
                }
            }
            inspectGradients?(completed, model.grads)
            let norm = gradientNorm()
            if let maxNorm = options.maxGradNorm, norm > maxNorm {
                let k = Float(maxNorm / (norm + 1e-6))
                for i in 0..<model.grads.count { model.grads.pointer[i] *= k }
            }
            let lr = options.learningRate * options.schedule.factor(completed: completed, warmupSteps: warmup, totalSteps: total)
            options.optimizer.update(params: model.params, grads: model.grads, m: m, v: v, t: completed + 1, lr: lr)
            completed += 1
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            let epoch = (completed - 1) / stepsPerEpoch + 1
            let record = StepRecord(step: completed, epoch: epoch, loss: supervised > 0 ? lossSum / Double(supervised) : 0,
                                    learningRate: lr, gradNorm: norm, tokens: tokens, supervisedTokens: supervised,
                                    tokensPerSecond: Double(tokens) / max(seconds, 1e-9))
            try log.append(record)
            onStep?(record, total)

            let endOfEpoch = completed % stepsPerEpoch == 0 || completed == total
            if endOfEpoch && !eval.isEmpty {
                let (loss, count) = evaluate()
                let e = EvalRecord(step: completed, epoch: epoch, loss: loss, supervisedTokens: count)
                try log.append(e)
                onEval?(e)
                if bestEval == nil || loss < bestEval! {
                    bestEval = loss
                    badEvals = 0
                    if options.patience != nil {
                        if best == nil { best = FlatBuffer(count: model.params.count) }
                        best!.copy(from: model.params)
                        keptStep = completed
                    }
                } else {
                    badEvals += 1
                    if let p = options.patience, badEvals >= p { stoppedEarly = true }
                }
            }
            if let every = options.checkpointEvery, completed % every == 0 {
                try Checkpoint(step: completed, params: model.params.array, m: m.array, v: v.array, best: best?.array,
                               bestEval: bestEval, badEvals: badEvals, logBytes: log.byteCount, fingerprint: fingerprint)
                    .write(to: checkpointPath)
            }
            if interrupt?(completed) == true { throw TrainingInterrupted(afterStep: completed) }
        }

        if options.patience != nil, let best {
            model.params.copy(from: best)
            if keptStep == 0 { keptStep = log.evals.first(where: { $0.loss == bestEval })?.step ?? completed }
        } else {
            keptStep = completed
        }
        return TrainingResult(steps: completed, epochsStarted: completed == 0 ? 0 : (completed - 1) / stepsPerEpoch + 1,
                              finalTrainLoss: log.steps.last?.loss, finalEvalLoss: log.evals.last?.loss,
                              bestEvalLoss: bestEval, stoppedEarly: stoppedEarly, keptStep: keptStep,
                              resumedFrom: resumedFrom, stepRecords: log.steps, evalRecords: log.evals)
    }

    /// ‖g‖₂ over every LoRA parameter, summed in Double.
    func gradientNorm() -> Double {
        var s = 0.0
        let g = model.grads.pointer
        for i in 0..<model.grads.count { s += Double(g[i]) * Double(g[i]) }
        return s.squareRoot()
    }
}
