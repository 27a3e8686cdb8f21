import Adapters
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where an adapter came from, stored in its safetensors `__metadata__` (strings, as the format requires).
public struct Provenance: Sendable, Equatable {
    public var baseSHA256: String
    public var baseName: String?
    public var chatTemplate: String
    public var dataSHA256: String
    public var steps: Int
    public var keptStep: Int
    public var finalTrainLoss: Double?
    public var finalEvalLoss: Double?
    public var bestEvalLoss: Double?
    public var trainExamples: Int
    public var evalExamples: Int
    public var options: String

    public init(baseSHA256: String, baseName: String?, chatTemplate: String, dataSHA256: String, steps: Int, keptStep: Int,
                finalTrainLoss: Double?, finalEvalLoss: Double?, bestEvalLoss: Double?, trainExamples: Int,
                evalExamples: Int, options: String) {
        self.baseSHA256 = baseSHA256
        self.baseName = baseName
        self.chatTemplate = chatTemplate
        self.dataSHA256 = dataSHA256
        self.steps = steps
        self.keptStep = keptStep
        self.finalTrainLoss = finalTrainLoss
        self.finalEvalLoss = finalEvalLoss
        self.bestEvalLoss = bestEvalLoss
        self.trainExamples = trainExamples
        self.evalExamples = evalExamples
        self.options = options
    }

    public var metadata: [String: String] {
        var m: [String: String] = [
            "format": "pt",
            "lora_serve.base_sha256": baseSHA256,
            "lora_serve.chat_template": chatTemplate,
            "lora_serve.data_sha256": dataSHA256,
            "lora_serve.steps": String(steps),
            "lora_serve.kept_step": String(keptStep),
            "lora_serve.train_examples": String(trainExamples),
            "lora_serve.eval_examples": String(evalExamples),
            "lora_serve.options": options,
        ]
        if let baseName { m["lora_serve.base_name"] = baseName }
        if let v = finalTrainLoss { m["lora_serve.final_train_loss"] = String(v) }
        if let v = finalEvalLoss { m["lora_serve.final_eval_loss"] = String(v) }
        if let v = bestEvalLoss { m["lora_serve.best_eval_loss"] = String(v) }
        return m
    }

    /// sha256 of a whole file, streamed through a memory mapping.
    public static func sha256(ofFile path: String) throws(TrainerError) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw TrainerError("cannot open '\(path)' to hash it") }
        defer { close(fd) }
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer.baseAddress!, buffer.count)
            if n < 0 { throw TrainerError("cannot read '\(path)' to hash it") }
            if n == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
        return hasher.finalizeHex()
    }
}

/// Writes the trained adapter folder: `adapter_config.json` + `adapter_model.safetensors` (PEFT, q/k `lora_B` rows
/// back in Hugging Face order, provenance in `__metadata__`) plus the training log and loss curve. Everything is
/// written into a hidden sibling folder that is then renamed into place, so the folder appears whole or not at all.
public enum AdapterOutput {
    public static func write(_ adapter: LoRAAdapterFile, base: BaseModelShape, to folder: String, provenance: Provenance,
                             extraFiles: [(name: String, contents: Data)], overwrite: Bool) throws(TrainerError) {
        let destination = URL(fileURLWithPath: folder).standardizedFileURL
        let parent = destination.deletingLastPathComponent()
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: destination.path)
        if exists && !overwrite {
            throw TrainerError("'\(folder)' already exists; choose another --output or pass --overwrite")
        }
        do { try fm.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw TrainerError("cannot create '\(parent.path)': \(error.localizedDescription)")
        }
        let suffix = String(UInt32.random(in: 0 ... .max), radix: 16)
        let staging = parent.appendingPathComponent(".\(destination.lastPathComponent).staging-\(suffix)")
        do {
            try PEFTWriter.write(adapter, to: staging.path, base: base, metadata: provenance.metadata)
        } catch {
            throw TrainerError("cannot write the adapter: \(error.description)")
        }
        do {
            for file in extraFiles { try file.contents.write(to: staging.appendingPathComponent(file.name)) }
        } catch {
            try? fm.removeItem(at: staging)
            throw TrainerError("cannot write into '\(staging.path)': \(error.localizedDescription)")
        }
        if exists {
            let old = parent.appendingPathComponent(".\(destination.lastPathComponent).old-\(suffix)")
            guard rename(destination.path, old.path) == 0 else {
                try? fm.removeItem(at: staging)
                throw TrainerError("cannot move the existing '\(folder)' aside: \(String(cString: strerror(errno)))")
            }
            guard rename(staging.path, destination.path) == 0 else {
                let reason = String(cString: strerror(errno))
                _ = rename(old.path, destination.path)
                try? fm.removeItem(at: staging)
                throw TrainerError("cannot move the new adapter into '\(folder)': \(reason)")
            }
            try? fm.removeItem(at: old)
        } else {
            guard rename(staging.path, destination.path) == 0 else {
                let reason = String(cString: strerror(errno))
                try? fm.removeItem(at: staging)
                throw TrainerError("cannot move the new adapter into '\(folder)': \(reason)")
            }
        }
    }
}
