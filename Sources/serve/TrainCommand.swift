import ArgumentParser
import Foundation
import Llama
import Trainer

/// `serve train --data FILE.jsonl --output DIR [...]`: trains a LoRA adapter on the base model with serving's own
/// chat template and tokenizer and writes it as a PEFT folder. Argument parsing only; the work is `TrainingSession`.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a LoRA adapter from JSONL data and write it in Hugging Face PEFT format.",
        discussion: """
            Each line of --data is one example: alpaca {"instruction", "input"?, "output", "system"?}, chat \
            {"messages": [{"role", "content"}, ...]} (the loss covers every assistant turn), {"prompt", "completion"}, \
            or tokenized {"input_ids", "labels"} (-100 = not trained). Examples are rendered with the model's chat \
            template exactly as the server renders prompts; the loss covers assistant tokens and each turn's end token.
            The log (train_log.jsonl) and checkpoints live in <output>.run; the adapter folder gets a copy of the log \
            and loss_curve.svg.
            """)

    // Inputs and outputs
    @Option(help: "Training data (JSONL).") var data: String
    @Option(help: "Adapter folder to write (PEFT: adapter_config.json + adapter_model.safetensors).") var output: String
    @Option(help: "Base GGUF model (default: the one in models/).") var model: String?
    @Flag(help: "Replace an existing output folder.") var overwrite = false
    @Option(help: "Folder for train_log.jsonl and checkpoints (default: <output>.run).") var runDir: String?

    // LoRA
    @Option(help: "LoRA rank.") var rank = 8
    @Option(help: "LoRA alpha (scale = alpha / rank).") var alpha: Double = 16
    @Option(help: "Dropout on the LoRA input.") var dropout: Float = 0.05
    @Option(help: "Comma-separated projections (q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj) or 'all'.")
    var targets = "q_proj,v_proj"
    @Flag(help: "rsLoRA: scale = alpha / sqrt(rank).") var rslora = false
    @Option(help: "Start from this adapter (folder or GGUF LoRA) instead of PEFT's initialisation; it sets rank, alpha and targets.")
    var initAdapter: String?

    // Optimisation
    @Option(help: "Peak learning rate.") var lr: Double = 2e-4
    @Option(help: "Learning-rate schedule: constant, linear or cosine.") var schedule = "cosine"
    @Option(help: "Fraction of steps spent warming up linearly.") var warmupRatio: Double = 0.05
    @Option(help: "AdamW decoupled weight decay.") var weightDecay: Double = 0.01
    @Option(help: "AdamW beta1.") var beta1: Double = 0.9
    @Option(help: "AdamW beta2.") var beta2: Double = 0.999
    @Option(help: "AdamW epsilon.") var eps: Double = 1e-8
    @Option(help: "Clip the global gradient norm to this (0 turns clipping off).") var maxGradNorm: Double = 1.0
    @Option(help: "Examples per micro-batch.") var batchSize = 8
    @Option(help: "Micro-batches per optimiser step.") var gradAccum = 1
    @Option(help: "Passes over the training data.") var epochs = 3
    @Option(help: "Stop after this many optimiser steps (overrides --epochs).") var maxSteps: Int?
    @Option(help: "Rows of one forward/backward pass (bounds activation memory).") var maxTokensPerPass = 1024

    // Data
    @Option(help: "Longest example in tokens.") var maxSeqLen = 2048
    @Flag(help: "Truncate over-long examples instead of skipping them.") var truncate = false
    @Flag(help: "Count and skip lines that do not parse instead of refusing the file.") var skipBadLines = false
    @Option(help: "Fraction of examples held out for the eval loss (0 for none).") var evalSplit: Double = 0.1

    // Control
    @Option(help: "Stop when the eval loss has not improved for this many epochs (keeps the best adapter).") var patience: Int?
    @Option(help: "Seed for initialisation, data order, split and dropout.") var seed: UInt64 = 42
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Write a checkpoint (for --resume) every N steps; 0 for never.") var checkpointEvery = 50
    @Flag(help: "Continue from the checkpoint in the run folder.") var resume = false
    @Flag(help: "Show how the first examples are rendered and which tokens are trained, then stop.") var explain = false
    @Option(help: "Examples --explain shows.") var explainCount = 3
    @Option(help: "POST the finished adapter to this running server (URL/v1/adapters).") var register: String?
    @Option(help: "Admin API key for --register (sent as a Bearer token).") var registerKey: String?
    @Option(help: "Name to register the adapter under (default: the output folder's name).") var name: String?
    @Option(help: "The base model's Hugging Face id for adapter_config.json's base_model_name_or_path (default: from the GGUF's source metadata, else null).")
    var baseModelId: String?

    func run() throws {
        var config = TrainRunConfiguration(dataPath: data, outputPath: output, modelPath: try DefaultModel.resolve(model))
        var o = TrainingOptions()
        o.rank = rank
        o.alpha = alpha
        o.dropout = dropout
        o.targets = try Self.parseTargets(targets)
        o.rsLoRA = rslora
        o.learningRate = lr
        guard let s = LearningRateSchedule(rawValue: schedule) else {
            throw CommandError("--schedule must be constant, linear or cosine, not '\(schedule)'")
        }
        o.schedule = s
        o.warmupRatio = warmupRatio
        o.optimizer = AdamW(beta1: beta1, beta2: beta2, epsilon: eps, weightDecay: weightDecay)
        o.maxGradNorm = maxGradNorm > 0 ? maxGradNorm : nil
        o.batchSize = batchSize
        o.gradientAccumulation = gradAccum
        o.epochs = epochs
        o.maxSteps = maxSteps
        o.maxTokensPerPass = maxTokensPerPass
        o.patience = patience
        guard checkpointEvery >= 0 else { throw CommandError("--checkpoint-every must be ≥ 0") }
        o.checkpointEvery = checkpointEvery > 0 ? checkpointEvery : nil
        config.options = o
        config.data.maxSequenceLength = maxSeqLen
        config.data.truncate = truncate
        config.data.skipBadLines = skipBadLines
        config.data.evalSplit = evalSplit
        config.data.seed = seed
        config.threads = threads
        config.initAdapter = initAdapter
        config.explain = explain ? max(1, explainCount) : nil
        config.resume = resume
        config.overwrite = overwrite
        config.registerURL = register
        config.registerKey = registerKey
        config.adapterName = name
        config.runDirectory = runDir
        config.baseModelID = baseModelId

        let progress = TerminalProgress()
        let summary: SessionSummary
        do {
            summary = try TrainingSession.run(config, reporter: progress)
        } catch let e as TrainerError {
            throw CommandError(e.message)
        }
        if let text = summary.explanation {
            print(text, terminator: "")
            print(TrainingSession.describe(summary.stats, path: data))
            if summary.problems > 0 {
                throw CommandError("refusing to train: \(summary.problems) supervision problem(s), listed above")
            }
            return
        }
        progress.summary(summary)
    }

    static func parseTargets(_ text: String) throws -> Set<Projection> {
        if text == "all" { return Set(Projection.allCases) }
        var out: Set<Projection> = []
        for part in text.split(separator: ",") {
            let name = part.trimmingCharacters(in: .whitespaces)
            let full = name.hasSuffix("_proj") ? name : name + "_proj"
            guard let p = Projection(peftName: full) else {
                throw CommandError("--targets: unknown projection '\(name)' (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj or all)")
            }
            out.insert(p)
        }
        guard !out.isEmpty else { throw CommandError("--targets names no projection") }
        return out
    }
}
