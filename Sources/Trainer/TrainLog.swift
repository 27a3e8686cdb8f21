import Foundation
import JSON

/// One optimiser step as logged.
public struct StepRecord: Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    /// Mean cross-entropy over the step's supervised tokens, before the update.
    public var loss: Double
    public var learningRate: Double
    /// Global gradient norm before clipping.
    public var gradNorm: Double
    public var tokens: Int
    public var supervisedTokens: Int
    public var tokensPerSecond: Double

    var json: JSONValue {
        ["type": "train", "step": JSONValue(step), "epoch": JSONValue(epoch), "loss": .number(loss),
         "lr": .number(learningRate), "grad_norm": .number(gradNorm), "tokens": JSONValue(tokens),
         "supervised_tokens": JSONValue(supervisedTokens), "tokens_per_s": .number((tokensPerSecond * 10).rounded() / 10)]
    }
}

/// One evaluation (end of an epoch, or of training) as logged.
public struct EvalRecord: Sendable, Equatable {
    public var step: Int
    public var epoch: Int
    public var loss: Double
    public var supervisedTokens: Int

    var json: JSONValue {
        ["type": "eval", "step": JSONValue(step), "epoch": JSONValue(epoch), "eval_loss": .number(loss),
         "supervised_tokens": JSONValue(supervisedTokens)]
    }
}

/// `train_log.jsonl`: one JSON object per line, appended and flushed as training goes, so a crash loses nothing
/// already logged. On resume it is cut back to the length the checkpoint recorded.
final class TrainLog {
    let path: String
    private let handle: FileHandle
    private(set) var byteCount: Int
    private(set) var steps: [StepRecord] = []
    private(set) var evals: [EvalRecord] = []

    /// Opens `path`, keeping its first `keep` bytes (0 starts a new log).
    init(path: String, keep: Int) throws(TrainerError) {
        self.path = path
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) { _ = fm.createFile(atPath: path, contents: nil) }
        guard let h = FileHandle(forUpdatingAtPath: path) else { throw TrainerError("cannot open '\(path)' for writing") }
        handle = h
        var kept = Data()
        if keep > 0 {
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: path)), data.count >= keep else {
                throw TrainerError("'\(path)' is shorter than the checkpoint says (\(keep) bytes); cannot resume its log")
            }
            kept = data.prefix(keep)
        }
        do {
            try handle.truncate(atOffset: UInt64(keep))
            try handle.seekToEnd()
        } catch {
            throw TrainerError("cannot truncate '\(path)': \(error.localizedDescription)")
        }
        byteCount = keep
        for line in kept.split(separator: UInt8(ascii: "\n")) {
            guard let value = try? JSONParser.parse(Array(line)), let type = value["type"]?.stringValue else { continue }
            if type == "train", let step = value["step"]?.intValue, let loss = value["loss"]?.doubleValue {
                steps.append(StepRecord(step: step, epoch: value["epoch"]?.intValue ?? 0, loss: loss,
                                        learningRate: value["lr"]?.doubleValue ?? 0, gradNorm: value["grad_norm"]?.doubleValue ?? 0,
                                        tokens: value["tokens"]?.intValue ?? 0,
                                        supervisedTokens: value["supervised_tokens"]?.intValue ?? 0,
                                        tokensPerSecond: value["tokens_per_s"]?.doubleValue ?? 0))
            } else if type == "eval", let step = value["step"]?.intValue, let loss = value["eval_loss"]?.doubleValue {
                evals.append(EvalRecord(step: step, epoch: value["epoch"]?.intValue ?? 0, loss: loss,
                                        supervisedTokens: value["supervised_tokens"]?.intValue ?? 0))
            }
        }
    }

    deinit { try? handle.close() }

    func append(_ record: StepRecord) throws(TrainerError) {
        steps.append(record)
        try write(record.json)
    }

    func append(_ record: EvalRecord) throws(TrainerError) {
        evals.append(record)
        try write(record.json)
    }

    private func write(_ value: JSONValue) throws(TrainerError) {
        var bytes = value.serialized()
        bytes.append(UInt8(ascii: "\n"))
        do {
            try handle.write(contentsOf: Data(bytes))
            try handle.synchronize()
        } catch {
            throw TrainerError("cannot write '\(path)': \(error.localizedDescription)")
        }
        byteCount += bytes.count
    }
}
