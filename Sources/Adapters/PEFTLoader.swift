import Foundation
import SafeTensors

/// Loads a PEFT LoRA folder (`adapter_config.json` + `adapter_model.safetensors`) into validated weights.
enum PEFTLoader {
    static let configFile = "adapter_config.json"
    static let weightsFile = "adapter_model.safetensors"
    /// PEFT prefixes every saved tensor with the wrapper path of `PeftModelForCausalLM`.
    static let tensorPrefix = "base_model.model."

    static func load(folder: String, name: String, base: BaseModelShape) throws(AdapterError) -> LoRAAdapterFile {
        try base.validate(path: folder)
        let configURL = URL(fileURLWithPath: folder).appendingPathComponent(configFile)
        let weightsURL = URL(fileURLWithPath: folder).appendingPathComponent(weightsFile)
        let configData: Data
        do {
            configData = try Data(contentsOf: configURL)
        } catch {
            throw AdapterError(path: folder, "cannot read \(configFile) (\(error.localizedDescription))",
                               hint: "a PEFT adapter folder holds \(configFile) and \(weightsFile)")
        }
        let config = try PEFTConfig.parse(configData, path: folder)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let hint = FileManager.default.fileExists(atPath: URL(fileURLWithPath: folder).appendingPathComponent("adapter_model.bin").path)
                ? "adapter_model.bin (pickle) is not supported; convert it to safetensors"
                : nil
            throw AdapterError(path: folder, "\(weightsFile) is missing", hint: hint)
        }
        let file: SafeTensorsFile
        do {
            file = try SafeTensorsFile(path: weightsURL.path)
        } catch {
            throw AdapterError(path: folder, tensor: error.tensor, error.message)
        }
        let modules = try modules(of: file, config: config, base: base, folder: folder)
        return LoRAAdapterFile(
            name: name, path: folder, format: .peft, rank: config.r, alpha: config.loraAlpha,
            useRSLoRA: config.useRSLoRA, modules: modules, byteSize: file.byteSize + configData.count,
            metadata: file.metadata, baseModelName: config.baseModelName)
    }

    /// Tensor name → (layer, target, isA), or an error naming the tensor.
    static func parseName(_ name: String, folder: String) throws(AdapterError) -> (layer: Int, target: LoRATarget, isA: Bool) {
        let unknown = AdapterError(
            path: folder, tensor: name,
            "is not a LoRA weight of a known projection; expected "
                + "'\(tensorPrefix)model.layers.N.{self_attn.{q,k,v,o}_proj|mlp.{gate,up,down}_proj}.lora_{A,B}.weight'",
            hint: "LoRA on embed_tokens or lm_head, bias terms and extra trained modules are not supported")
        guard name.hasPrefix(tensorPrefix) else { throw unknown }
        let parts = name.dropFirst(tensorPrefix.count).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 7, parts[0] == "model", parts[1] == "layers", parts[6] == "weight",
              let layer = Int(parts[2]), String(layer) == parts[2],
              let target = LoRATarget(rawValue: String(parts[4])), parts[3] == target.hfGroup,
              parts[5] == "lora_A" || parts[5] == "lora_B" else { throw unknown }
        return (layer, target, parts[5] == "lora_A")
    }

    static func modules(of file: SafeTensorsFile, config: PEFTConfig, base: BaseModelShape,
                        folder: String) throws(AdapterError) -> [LoRAModuleWeights] {
        struct Pair { var a: SafeTensorInfo?; var b: SafeTensorInfo? }
        struct Key: Hashable { var layer: Int; var target: LoRATarget }
        var pairs: [Key: Pair] = [:]
        for info in file.tensors {
            let (layer, target, isA) = try parseName(info.name, folder: folder)
            guard layer < base.nLayers else {
                throw AdapterError(path: folder, tensor: info.name,
                                   "layer \(layer) is out of range; the base model has \(base.nLayers) layers",
                                   hint: AdapterError.wrongBaseHint)
            }
            let key = Key(layer: layer, target: target)
            if isA { pairs[key, default: Pair()].a = info } else { pairs[key, default: Pair()].b = info }
        }

        var modules: [LoRAModuleWeights] = []
        for key in pairs.keys.sorted(by: { ($0.layer, $0.target) < ($1.layer, $1.target) }) {
            let pair = pairs[key] ?? Pair()
            let moduleName = key.target.hfModuleName(layer: key.layer)
            let stem = tensorPrefix + moduleName
            guard let aInfo = pair.a else {
                throw AdapterError(path: folder, tensor: "\(stem).lora_B.weight", "has no matching '\(stem).lora_A.weight'")
            }
            guard let bInfo = pair.b else {
                throw AdapterError(path: folder, tensor: aInfo.name, "has no matching '\(stem).lora_B.weight'")
            }
            guard config.targets(moduleName) else {
                throw AdapterError(path: folder, tensor: aInfo.name,
                                   "module '\(moduleName)' is not selected by target_modules/layers_to_transform "
                                       + "in \(configFile)", hint: "config and weights disagree")
            }
            let (rank, alpha) = try config.rankAndAlpha(for: moduleName, path: folder)
            let features = base.features(of: key.target)
            try checkShape(aInfo, expected: [rank, features.in], role: "lora_A", folder: folder)
            try checkShape(bInfo, expected: [features.out, rank], role: "lora_B", folder: folder)
            let a = try finiteFloats(file, aInfo, folder: folder)
            var b = try finiteFloats(file, bInfo, folder: folder)
            switch key.target {
            case .q: b = RotaryPermutation.hfToGGUF(b, columns: rank, heads: base.nHeads)
            case .k: b = RotaryPermutation.hfToGGUF(b, columns: rank, heads: base.nKVHeads)
            default: break
            }
            modules.append(LoRAModuleWeights(layer: key.layer, target: key.target, rank: rank, alpha: alpha,
                                             scale: config.scale(rank: rank, alpha: alpha), a: a, b: b))
        }
        guard !modules.isEmpty else {
            throw AdapterError(path: folder, "\(weightsFile) holds no LoRA tensors")
        }
        return modules
    }

    /// `expected` is `[rank, in]` for A and `[out, rank]` for B.
    private static func checkShape(_ info: SafeTensorInfo, expected: [Int], role: String, folder: String) throws(AdapterError) {
        guard info.shape.count == 2 else {
            throw AdapterError(path: folder, tensor: info.name, "shape \(info.shape) is not 2-D")
        }
        let rankAxis = role == "lora_A" ? 0 : 1
        if info.shape[rankAxis] == 0 {
            throw AdapterError(path: folder, tensor: info.name, "rank is 0 (shape \(info.shape))")
        }
        guard info.shape == expected else {
            let rankMismatch = info.shape[rankAxis] != expected[rankAxis]
            throw AdapterError(
                path: folder, tensor: info.name,
                "shape \(info.shape) does not match the expected \(expected) "
                    + (role == "lora_A" ? "[rank, in_features]" : "[out_features, rank]"),
                hint: rankMismatch ? "rank differs from r/rank_pattern in \(configFile)" : AdapterError.wrongBaseHint)
        }
    }

    private static func finiteFloats(_ file: SafeTensorsFile, _ info: SafeTensorInfo, folder: String) throws(AdapterError) -> [Float] {
        let values: [Float]
        do {
            values = try file.floats(info)
        } catch {
            throw AdapterError(path: folder, tensor: info.name, error.message)
        }
        if let index = firstNonFinite(values) {
            throw AdapterError(path: folder, tensor: info.name, "holds a non-finite value (\(values[index])) at element \(index)")
        }
        return values
    }
}

/// Index of the first NaN or infinity, if any.
func firstNonFinite(_ values: [Float]) -> Int? {
    values.withUnsafeBufferPointer { buffer in
        for i in buffer.indices where !buffer[i].isFinite { return i }
        return nil
    }
}
