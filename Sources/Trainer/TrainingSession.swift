import Adapters
import Foundation
import GGUF
import Llama
import Tokenizer

/// Everything `serve train` was asked to do.
public struct TrainRunConfiguration: Sendable {
    public var dataPath: String
    public var outputPath: String
    public var modelPath: String
    public var options = TrainingOptions()
    public var data = DataOptions()
    public var threads = 2
    /// Start from this adapter (its rank, alpha, targets and rsLoRA) instead of PEFT's initialisation.
    public var initAdapter: String?
    /// Show this many rendered examples and stop (nil: train).
    public var explain: Int?
    public var resume = false
    public var overwrite = false
    /// A running server to register the adapter with.
    public var registerURL: String?
    public var registerKey: String?
    /// The adapter's name when registered (default: the output folder's name).
    public var adapterName: String?
    /// Log and checkpoints (default: `<output>.run`).
    public var runDirectory: String?
    /// `base_model_name_or_path` of the written adapter: the base model's Hugging Face id. Default: taken from the
    /// GGUF's source metadata when the converter recorded it, otherwise null (a display name like `general.name`
    /// is not an id PEFT could load).
    public var baseModelID: String?

    public init(dataPath: String, outputPath: String, modelPath: String) {
        self.dataPath = dataPath
        self.outputPath = outputPath
        self.modelPath = modelPath
    }

    public var resolvedRunDirectory: String { runDirectory ?? outputPath + ".run" }
    public var resolvedName: String { adapterName ?? URL(fileURLWithPath: outputPath).lastPathComponent }
}

/// What the terminal (or a test) hears while a session runs.
public protocol TrainingReporter: AnyObject {
    func note(_ text: String)
    func started(totalSteps: Int, completedSteps: Int)
    func step(_ record: StepRecord, totalSteps: Int)
    func eval(_ record: EvalRecord)
}

/// A finished session.
public struct SessionSummary: Sendable {
    public var result: TrainingResult?
    public var stats: DataStats
    public var trainableParameters: Int
    public var baseParameters: Int
    public var outputPath: String?
    public var explanation: String?
    public var peakResidentBytes: Int?
    public var seconds: Double
    public var registered: String?
    /// Supervision problems found (with `explain`; otherwise training refuses to start when there are any).
    public var problems = 0
}

/// `serve train` from start to end: model, template, data, (explain,) training, the adapter folder, registration.
public enum TrainingSession {
    public static func run(_ config: TrainRunConfiguration, reporter: TrainingReporter) throws -> SessionSummary {
        let started = DispatchTime.now().uptimeNanoseconds
        var options = config.options
        options.seed = config.data.seed
        guard config.threads >= 1, config.threads <= 256 else { throw TrainerError("--threads must be between 1 and 256") }

        let fm = FileManager.default
        if config.explain == nil {
            if fm.fileExists(atPath: config.outputPath) && !config.overwrite {
                throw TrainerError("'\(config.outputPath)' already exists; choose another --output or pass --overwrite")
            }
        }

        // Model, tokenizer and the chat template serving uses.
        let base = try FrozenBase(path: config.modelPath)
        guard let file = base.file else { throw TrainerError("model '\(config.modelPath)' has no file") }
        let renderer: ChatTemplateRenderer?
        do {
            let tokenizer = try Tokenizer(gguf: file)
            renderer = ChatTemplateRenderer(template: try ChatTemplate(gguf: file, tokenizer: tokenizer))
        } catch {
            renderer = nil
            reporter.note("note: no usable chat template in the model (\(error)); only tokenized records can be used")
        }

        // Data.
        var dataOptions = config.data
        if dataOptions.maxSequenceLength > base.config.contextLength {
            reporter.note("note: --max-seq-len \(dataOptions.maxSequenceLength) is beyond the model's context; "
                          + "using \(base.config.contextLength)")
            dataOptions.maxSequenceLength = base.config.contextLength
        }
        let data = try TrainingData.load(path: config.dataPath, renderer: renderer, vocabularySize: base.config.vocabSize,
                                         options: dataOptions)
        if let count = config.explain {
            let text = Explain.report(data, renderer: renderer, count: count)
            return SessionSummary(result: nil, stats: data.stats, trainableParameters: 0, baseParameters: base.parameterCount,
                                  outputPath: nil, explanation: text, peakResidentBytes: MemoryUsage.peakResidentBytes,
                                  seconds: seconds(since: started), registered: nil, problems: data.problems.count)
        }
        try data.checkSupervision()
        guard !data.train.isEmpty else {
            throw TrainerError("'\(config.dataPath)' has no usable example (\(data.stats.kept) kept of \(data.stats.lines) lines: "
                               + "\(data.stats.emptySkipped) empty, \(data.stats.tooLongSkipped) too long)")
        }
        reporter.note(describe(data.stats, path: config.dataPath))

        // LoRA layout and initial parameters.
        let layout: LoRALayout
        var initAdapter: LoRAAdapterFile?
        var initHash = "peft-init"
        if let path = config.initAdapter {
            let adapter: LoRAAdapterFile
            do { adapter = try AdapterLoader.load(path: path, name: "init", base: base.config.adapterShape) } catch {
                throw TrainerError("--init-adapter: \(error.description)")
            }
            layout = LoRALayout(config: base.config, adapter: adapter)
            options.rank = adapter.rank
            options.alpha = adapter.alpha
            options.rsLoRA = adapter.useRSLoRA
            options.targets = Set(adapter.targets.map { Projection($0) })
            var hasher = SHA256()
            for m in adapter.modules { m.a.withUnsafeBytes { hasher.update($0) }; m.b.withUnsafeBytes { hasher.update($0) } }
            initHash = hasher.finalizeHex()
            initAdapter = adapter
            reporter.note("starting from '\(path)': r=\(adapter.rank), alpha=\(adapter.alpha), "
                          + "targets \(adapter.targets.sorted().map(\.rawValue).joined(separator: ","))")
        } else {
            layout = LoRALayout(config: base.config, targets: options.targets, rank: options.rank, alpha: options.alpha,
                                rsLoRA: options.rsLoRA)
        }
        try options.validate()
        if options.patience != nil && data.eval.isEmpty {
            throw TrainerError("--patience needs eval examples (--eval-split > 0 and at least two examples)")
        }
        let model = LoRATrainingModel(base: base, layout: layout, threads: config.threads, dropout: options.dropout,
                                      seed: options.seed)
        if let initAdapter { try model.loadParameters(from: initAdapter) } else { model.initializeParameters(seed: options.seed) }

        let baseHash = try Provenance.sha256(ofFile: config.modelPath)
        let template = renderer?.fingerprint ?? "none"
        let fingerprint = "base=\(baseHash) data=\(data.sha256) template=\(template) init=\(initHash) "
            + "max_seq_len=\(dataOptions.maxSequenceLength) truncate=\(config.data.truncate) eval_split=\(config.data.evalSplit)"
        let trainer = try Trainer(model: model, options: options, train: data.train, eval: data.eval,
                                  runDirectory: config.resolvedRunDirectory, fingerprint: fingerprint)
        let total = trainer.totalSteps
        trainer.onStep = { record, total in reporter.step(record, totalSteps: total) }
        trainer.onEval = { reporter.eval($0) }
        if !config.resume && config.overwrite {
            try? fm.removeItem(atPath: trainer.checkpointPath)
        }
        var startStep = 0
        if config.resume {
            if let ck = try? Checkpoint.read(from: trainer.checkpointPath) {
                startStep = ck.step
            } else {
                reporter.note("no checkpoint in \(config.resolvedRunDirectory); starting from step 0")
            }
        }
        reporter.note("training \(layout.parameterCount) LoRA parameters "
                      + String(format: "(%.3f%% of %d base parameters)", 100 * Double(layout.parameterCount) / Double(base.parameterCount),
                               base.parameterCount)
                      + " for \(total) steps of \(trainer.examplesPerStep) examples; log in \(trainer.logPath)")
        reporter.started(totalSteps: total, completedSteps: startStep)
        let result = try trainer.run(resume: config.resume)

        // The adapter folder.
        let adapter = model.adapterFile(name: config.resolvedName, path: config.outputPath, rank: options.rank, alpha: options.alpha,
                                        rsLoRA: options.rsLoRA,
                                        baseModelName: config.baseModelID ?? huggingFaceID(of: file))
        let provenance = Provenance(
            baseSHA256: baseHash, baseName: file.string("general.name"), chatTemplate: template, dataSHA256: data.sha256,
            steps: result.steps, keptStep: result.keptStep, finalTrainLoss: result.finalTrainLoss,
            finalEvalLoss: result.finalEvalLoss, bestEvalLoss: result.bestEvalLoss, trainExamples: data.train.count,
            evalExamples: data.eval.count, options: options.canonicalText)
        let log = (try? Data(contentsOf: URL(fileURLWithPath: trainer.logPath))) ?? Data()
        let svg = Data(LossCurveSVG.render(steps: result.stepRecords, evals: result.evalRecords,
                                           title: "LoRA training loss: \(config.resolvedName)").utf8)
        try? svg.write(to: URL(fileURLWithPath: config.resolvedRunDirectory + "/loss_curve.svg"))
        try AdapterOutput.write(adapter, base: base.config.adapterShape, to: config.outputPath, provenance: provenance,
                                extraFiles: [("train_log.jsonl", log), ("loss_curve.svg", svg)], overwrite: config.overwrite)

        var registered: String?
        if let url = config.registerURL {
            let absolute = URL(fileURLWithPath: config.outputPath).standardizedFileURL.path
            _ = try AdapterRegistration.register(url: url, name: config.resolvedName, path: absolute, apiKey: config.registerKey)
            registered = "\(config.resolvedName) at \(url)"
        }
        return SessionSummary(result: result, stats: data.stats, trainableParameters: layout.parameterCount,
                              baseParameters: base.parameterCount, outputPath: config.outputPath, explanation: nil,
                              peakResidentBytes: MemoryUsage.peakResidentBytes, seconds: seconds(since: started),
                              registered: registered)
    }

    static func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// The Hugging Face repository a GGUF was converted from, when its metadata says so.
    static func huggingFaceID(of file: GGUFFile) -> String? {
        if let repo = file.string("general.source.huggingface.repository"), !repo.isEmpty { return repo }
        for key in ["general.source.url", "general.repo_url"] {
            guard let url = file.string(key) else { continue }
            for prefix in ["https://huggingface.co/", "http://huggingface.co/", "huggingface.co/"] where url.hasPrefix(prefix) {
                let id = url.dropFirst(prefix.count).split(separator: "/").prefix(2)
                if id.count == 2 { return id.joined(separator: "/") }
            }
        }
        return nil
    }

    /// One paragraph of data statistics.
    public static func describe(_ s: DataStats, path: String) -> String {
        var parts = ["data '\(path)': \(s.lines) lines, \(s.kept) examples kept (\(s.trainExamples) train, \(s.evalExamples) eval)"]
        var skipped: [String] = []
        if s.blankLines > 0 { skipped.append("\(s.blankLines) blank") }
        if !s.badLines.isEmpty { skipped.append("\(s.badLines.count) bad (lines \(s.badLines.prefix(5).map { String($0.line) }.joined(separator: ", "))\(s.badLines.count > 5 ? ", …" : ""))") }
        if s.emptySkipped > 0 { skipped.append("\(s.emptySkipped) empty") }
        if s.tooLongSkipped > 0 { skipped.append("\(s.tooLongSkipped) too long") }
        if !skipped.isEmpty { parts.append("skipped: " + skipped.joined(separator: ", ")) }
        if s.truncated > 0 { parts.append("\(s.truncated) truncated") }
        parts.append("\(s.tokens) tokens, \(s.supervisedTokens) supervised, longest \(s.longest)")
        return parts.joined(separator: "; ")
    }
}
