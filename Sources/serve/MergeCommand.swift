import Adapters
import ArgumentParser
import Foundation
import GGUF

/// `serve merge --adapter DIR --output FILE.gguf [--model GGUF] [--type f32|f16]`: folds a LoRA adapter into the
/// base model and writes a standalone GGUF model.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Write the base model with a LoRA adapter merged in as a new GGUF model.")

    @Option(help: "A PEFT adapter folder or a llama.cpp GGUF LoRA file.")
    var adapter: String

    @Option(help: "Where to write the merged model (.gguf).")
    var output: String

    @Option(help: "Path to the base GGUF model (default: the one in models/).")
    var model: String?

    @Option(help: "Storage of the merged tensors: f32 or f16 (untouched tensors keep their type).")
    var type: String = "f32"

    func run() throws {
        guard let tensorType = MergedModelExport.TensorType(rawValue: type) else {
            throw CommandError("--type must be f32 or f16, not '\(type)'")
        }
        let modelPath = try DefaultModel.resolve(model)
        let started = Date()
        func note(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

        note("reading base model \(modelPath)")
        let shape: BaseModelShape
        do {
            shape = try BaseModelShape(gguf: GGUFFile(path: modelPath))
        } catch let error as GGUFError {
            throw CommandError("cannot read \(modelPath): \(error.message)")
        }
        note("loading adapter \(adapter)")
        let name = URL(fileURLWithPath: adapter).deletingPathExtension().lastPathComponent
        let loaded: LoRAAdapterFile
        do {
            loaded = try AdapterLoader.load(path: adapter, name: name, base: shape)
        } catch {
            throw CommandError(error.description)
        }
        note("adapter '\(name)': \(loaded.format.rawValue), rank \(loaded.rank), alpha \(loaded.alpha), "
            + "\(loaded.modules.count) modules on \(loaded.targets.sorted().map(\.rawValue).joined(separator: ","))")

        var lastPercent = -1
        let summary: MergedModelExport.Summary
        do {
            summary = try MergedModelExport.export(adapter: loaded, baseModel: modelPath, to: output, type: tensorType) { progress in
                switch progress {
                case .tensor(let done, let total, _, _):
                    let percent = done * 100 / max(1, total)
                    if percent / 10 != lastPercent / 10 || done == total {
                        lastPercent = percent
                        note("merging: \(done)/\(total) tensors (\(percent)%)")
                    }
                case .writing(let bytes):
                    note("writing \(bytes) bytes to \(output)")
                }
            }
        } catch {
            throw CommandError(error.description)
        }
        note(String(format: "done: %d tensors, %d merged as %@, %.1f MB in %.2f s", summary.tensorCount, summary.mergedCount,
                    tensorType.rawValue, Double(summary.bytes) / 1e6, Date().timeIntervalSince(started)))
    }
}
