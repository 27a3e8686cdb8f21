import Foundation
import GGUF

/// Writes a base model with a LoRA adapter folded in as a new, self-contained GGUF model.
///
/// Every tensor the adapter does not touch is copied byte for byte (quantized as it was); each targeted
/// projection is dequantized, merged as `W + scale · B · A` in f32, and stored as f32 or f16. Metadata (tokenizer,
/// chat template, hyperparameters) is copied in its original order, plus `loraserve.merged_adapter`.
public enum MergedModelExport {
    /// How merged tensors are stored.
    public enum TensorType: String, Sendable, CaseIterable {
        case f32, f16

        var ggml: GGMLType { self == .f32 ? .f32 : .f16 }
    }

    /// What `export` reports as it goes.
    public enum Progress: Sendable {
        /// Tensor `done` of `total` is in the output (merged or copied).
        case tensor(done: Int, total: Int, name: String, merged: Bool)
        /// The file is being written (`bytes` in all).
        case writing(bytes: Int)
    }

    public struct Summary: Sendable, Equatable {
        public var tensorCount: Int
        public var mergedCount: Int
        public var bytes: Int
    }

    /// Merges `adapter` into the GGUF model at `baseModel` and writes the result to `output` (atomically).
    ///
    /// - Parameter adapter: loaded against this base model (`AdapterLoader.load(…, base: BaseModelShape(gguf:))`).
    @discardableResult
    public static func export(adapter: LoRAAdapterFile, baseModel: String, to output: String, type: TensorType = .f32,
                              progress: ((Progress) -> Void)? = nil) throws(AdapterError) -> Summary {
        let outURL = URL(fileURLWithPath: output).standardizedFileURL
        if outURL.resolvingSymlinksInPath().path == URL(fileURLWithPath: baseModel).standardizedFileURL.resolvingSymlinksInPath().path {
            throw AdapterError(path: output, "output is the base model itself; choose another file")
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: outURL.deletingLastPathComponent().path, isDirectory: &isDirectory),
              isDirectory.boolValue else {
            throw AdapterError(path: output, "the output folder \(outURL.deletingLastPathComponent().path) does not exist")
        }
        let file: GGUFFile
        do {
            file = try GGUFFile(path: baseModel)
        } catch {
            throw AdapterError(path: baseModel, "cannot read the base model: \(error.message)")
        }
        guard file.string("general.type") != "adapter" else {
            throw AdapterError(path: baseModel, "is a LoRA adapter, not a base model")
        }
        let shape = try BaseModelShape(gguf: file)

        var byTensor: [String: LoRAModuleWeights] = [:]
        for module in adapter.modules {
            byTensor["blk.\(module.layer).\(module.target.ggufName).weight"] = module
        }
        var writer = GGUFWriter()
        for key in file.metadataKeys {
            if let value = file.metadata[key] { writer.set(key, value) }
        }
        writer.set("loraserve.merged_adapter", .string(adapter.name))

        var merged = 0
        for (index, info) in file.tensors.enumerated() {
            if let module = byTensor[info.name] {
                let (inF, outF) = shape.features(of: module.target)
                guard info.shape == [inF, outF], module.a.count == module.rank * inF, module.b.count == outF * module.rank else {
                    throw AdapterError(path: adapter.path, tensor: module.target.hfModuleName(layer: module.layer),
                                       "does not fit base tensor '\(info.name)' of shape \(info.shape)",
                                       hint: AdapterError.wrongBaseHint)
                }
                var values: [Float]
                do {
                    values = try file.dequantize(info)   // [out, in]
                } catch {
                    throw AdapterError(path: baseModel, tensor: info.name, "cannot dequantize: \(error.message)")
                }
                LoRAMerge.addDelta(to: &values, out: outF, in: inF, module: module)
                if let bad = firstNonFinite(values) {
                    throw AdapterError(path: adapter.path, tensor: info.name, "merged weight overflows to \(values[bad]) at element \(bad)")
                }
                if type == .f16, let big = values.firstIndex(where: { abs($0) > Float(Float16.greatestFiniteMagnitude) }) {
                    throw AdapterError(path: adapter.path, tensor: info.name,
                                       "merged value \(values[big]) at element \(big) does not fit f16", hint: "use --type f32")
                }
                do {
                    try writer.addTensor(name: info.name, shape: info.shape, values: values, as: type.ggml)
                } catch {
                    throw AdapterError(path: output, tensor: info.name, error.message)
                }
                byTensor[info.name] = nil
                merged += 1
                progress?(.tensor(done: index + 1, total: file.tensors.count, name: info.name, merged: true))
            } else {
                writer.addTensor(name: info.name, shape: info.shape, type: info.type, bytes: Array(file.data(of: info)))
                progress?(.tensor(done: index + 1, total: file.tensors.count, name: info.name, merged: false))
            }
        }
        if let missing = byTensor.keys.sorted().first {
            throw AdapterError(path: adapter.path, tensor: missing, "has no tensor to merge into in the base model",
                               hint: AdapterError.wrongBaseHint)
        }
        let bytes = writer.serialized()
        progress?(.writing(bytes: bytes.count))
        let temp = outURL.deletingLastPathComponent()
            .appendingPathComponent(".\(outURL.lastPathComponent).tmp-\(String(UInt32.random(in: 0 ... .max), radix: 16))")
        do {
            try Data(bytes).write(to: temp)
            if FileManager.default.fileExists(atPath: outURL.path) {
                _ = try FileManager.default.replaceItemAt(outURL, withItemAt: temp)
            } else {
                try FileManager.default.moveItem(at: temp, to: outURL)
            }
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw AdapterError(path: output, "cannot write (\(error.localizedDescription))")
        }
        return Summary(tensorCount: file.tensors.count, mergedCount: merged, bytes: bytes.count)
    }
}
