import Foundation
import SafeTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes an adapter as a PEFT folder that PEFT (old and new) and vLLM load.
///
/// `adapter_config.json` uses a conservative key set; `adapter_model.safetensors` holds F32 tensors under PEFT
/// names with q/k `lora_B` rows back in Hugging Face order. Both files are written into a temporary sibling folder
/// that is then renamed into place, so the folder appears whole or not at all.
public enum PEFTWriter {
    /// - Parameters:
    ///   - adapter: modules with B rows in GGUF order, as `AdapterLoader` returns them.
    ///   - folder: the destination folder.
    ///   - base: the base model (for the inverse rotary permutation).
    ///   - metadata: the safetensors `__metadata__`; PEFT writes `{"format": "pt"}`, added when absent.
    ///   - overwrite: replace an existing folder; otherwise an existing destination is an error.
    public static func write(_ adapter: LoRAAdapterFile, to folder: String, base: BaseModelShape,
                             metadata: [String: String] = [:], overwrite: Bool = false) throws(AdapterError) {
        try base.validate(path: folder)
        let (config, tensors) = try encode(adapter, base: base, folder: folder)
        var fullMetadata = metadata
        if fullMetadata["format"] == nil { fullMetadata["format"] = "pt" }
        let weights: Data
        do {
            weights = try SafeTensorsWriter.encode(tensors, metadata: fullMetadata)
        } catch {
            throw AdapterError(path: folder, tensor: error.tensor, error.message)
        }

        let destination = URL(fileURLWithPath: folder).standardizedFileURL
        let parent = destination.deletingLastPathComponent()
        let fileManager = FileManager.default
        let exists = fileManager.fileExists(atPath: destination.path)
        if exists && !overwrite {
            throw AdapterError(path: folder, "destination already exists", hint: "pass overwrite: true to replace it")
        }
        let suffix = String(UInt32.random(in: 0 ... .max), radix: 16)
        let temp = parent.appendingPathComponent(".\(destination.lastPathComponent).tmp-\(suffix)")
        do {
            try fileManager.createDirectory(at: temp, withIntermediateDirectories: true)
            try config.write(to: temp.appendingPathComponent(PEFTLoader.configFile))
            try weights.write(to: temp.appendingPathComponent(PEFTLoader.weightsFile))
        } catch {
            try? fileManager.removeItem(at: temp)
            throw AdapterError(path: folder, "cannot write (\(error.localizedDescription))")
        }
        if exists {
            let old = parent.appendingPathComponent(".\(destination.lastPathComponent).old-\(suffix)")
            guard rename(destination.path, old.path) == 0 else {
                let reason = String(cString: strerror(errno))
                try? fileManager.removeItem(at: temp)
                throw AdapterError(path: folder, "cannot move the existing folder aside (\(reason))")
            }
            guard rename(temp.path, destination.path) == 0 else {
                let reason = String(cString: strerror(errno))
                _ = rename(old.path, destination.path)
                try? fileManager.removeItem(at: temp)
                throw AdapterError(path: folder, "cannot move the new folder into place (\(reason))")
            }
            try? fileManager.removeItem(at: old)
        } else {
            guard rename(temp.path, destination.path) == 0 else {
                let reason = String(cString: strerror(errno))
                try? fileManager.removeItem(at: temp)
                throw AdapterError(path: folder, "cannot move the new folder into place (\(reason))")
            }
        }
    }

    /// The config JSON and the PEFT-named tensors (B rows in HF order), without touching the disk.
    static func encode(_ adapter: LoRAAdapterFile, base: BaseModelShape,
                       folder: String) throws(AdapterError) -> (config: Data, tensors: [SafeTensorsWriter.Tensor]) {
        guard !adapter.modules.isEmpty else { throw AdapterError(path: folder, "adapter has no modules to write") }
        var tensors: [SafeTensorsWriter.Tensor] = []
        var rankPattern: [String: Int] = [:]
        var alphaPattern: [String: Any] = [:]
        for module in adapter.modules {
            let features = base.features(of: module.target)
            guard module.layer >= 0, module.layer < base.nLayers, module.rank > 0,
                  module.a.count == module.rank * features.in, module.b.count == features.out * module.rank else {
                throw AdapterError(path: folder, tensor: module.target.hfModuleName(layer: module.layer),
                                   "module sizes do not fit the base model", hint: AdapterError.wrongBaseHint)
            }
            let name = PEFTLoader.tensorPrefix + module.target.hfModuleName(layer: module.layer)
            var b = module.b
            switch module.target {
            case .q: b = RotaryPermutation.ggufToHF(b, columns: module.rank, heads: base.nHeads)
            case .k: b = RotaryPermutation.ggufToHF(b, columns: module.rank, heads: base.nKVHeads)
            default: break
            }
            tensors.append(.init(name: name + ".lora_A.weight", shape: [module.rank, features.in], values: module.a))
            tensors.append(.init(name: name + ".lora_B.weight", shape: [features.out, module.rank], values: b))
            let pattern = module.target.hfModuleName(layer: module.layer).replacingOccurrences(of: ".", with: "\\.")
            if module.rank != adapter.rank { rankPattern[pattern] = module.rank }
            if module.alpha != adapter.alpha { alphaPattern[pattern] = jsonNumber(module.alpha) }
        }
        let object: [String: Any] = [
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "r": adapter.rank,
            "lora_alpha": jsonNumber(adapter.alpha),
            "lora_dropout": 0.0,
            "target_modules": adapter.targets.sorted().map(\.rawValue),
            "bias": "none",
            "use_rslora": adapter.useRSLoRA,
            "use_dora": false,
            "fan_in_fan_out": false,
            "inference_mode": true,
            "base_model_name_or_path": adapter.baseModelName.map { $0 as Any } ?? NSNull(),
            "modules_to_save": NSNull(),
            "init_lora_weights": true,
            "layers_to_transform": NSNull(),
            "layers_pattern": NSNull(),
            "rank_pattern": rankPattern,
            "alpha_pattern": alphaPattern,
        ]
        do {
            let config = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
            return (config, tensors)
        } catch {
            throw AdapterError(path: folder, "cannot encode adapter_config.json (\(error.localizedDescription))")
        }
    }

    /// Integral values as Int so the JSON reads `16`, as PEFT writes it.
    private static func jsonNumber(_ value: Double) -> Any {
        if value.rounded() == value, abs(value) < 1e15 { return Int(value) }
        return value
    }
}
