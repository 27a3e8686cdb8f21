import GGUF

/// Loads a llama.cpp GGUF LoRA adapter (`convert_lora_to_gguf.py` output) into validated weights.
///
/// Layout: `general.type = "adapter"`, `adapter.type = "lora"`, `adapter.lora.alpha`, and per projection
/// `blk.N.<attn_q|…|ffn_down>.weight.lora_a` with GGUF shape `[in, rank]` and `.lora_b` with `[rank, out]`
/// (ne0 first), which dequantize to row-major `[rank, in]` and `[out, rank]`. llama.cpp's converter already
/// permuted q/k `lora_b` rows, so they are used as stored. Scale is `alpha / rank` with rank from `lora_a`
/// (llama.cpp uses scale 1 when alpha is 0 or absent).
enum GGUFLoRALoader {
    static func load(path: String, name: String, base: BaseModelShape) throws(AdapterError) -> LoRAAdapterFile {
        try base.validate(path: path)
        let file: GGUFFile
        do {
            file = try GGUFFile(path: path)
        } catch {
            throw AdapterError(path: path, "cannot read as GGUF: \(error.message)",
                               hint: "an adapter is a PEFT folder or a llama.cpp GGUF LoRA file")
        }
        guard file.string("general.type") == "adapter" else {
            throw AdapterError(path: path, "general.type is '\(file.string("general.type") ?? "missing")', not 'adapter'",
                               hint: "is this a base model rather than a LoRA adapter?")
        }
        guard file.string("adapter.type") == "lora" else {
            throw AdapterError(path: path, "adapter.type is '\(file.string("adapter.type") ?? "missing")'; only 'lora' is supported")
        }
        if let arch = file.string("general.architecture"), arch != "llama" {
            throw AdapterError(path: path, "adapter is for architecture '\(arch)', the base model is 'llama'",
                               hint: AdapterError.wrongBaseHint)
        }
        let alpha = file.double("adapter.lora.alpha") ?? 0
        guard alpha.isFinite else { throw AdapterError(path: path, "adapter.lora.alpha is not finite") }

        struct Key: Hashable { var layer: Int; var target: LoRATarget }
        var pairs: [Key: (a: GGUFTensorInfo?, b: GGUFTensorInfo?)] = [:]
        for info in file.tensors {
            let isA: Bool
            let stem: Substring
            if info.name.hasSuffix(".lora_a") {
                isA = true
                stem = info.name.dropLast(".lora_a".count)
            } else if info.name.hasSuffix(".lora_b") {
                isA = false
                stem = info.name.dropLast(".lora_b".count)
            } else {
                throw AdapterError(path: path, tensor: info.name, "has unexpected suffix; expected .lora_a or .lora_b")
            }
            let parts = stem.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "blk", parts[3] == "weight", let layer = Int(parts[1]),
                  String(layer) == parts[1], let target = LoRATarget(ggufName: String(parts[2])) else {
                throw AdapterError(path: path, tensor: info.name,
                                   "is not a LoRA weight of a known projection (expected blk.N.{attn_q,attn_k,attn_v,"
                                       + "attn_output,ffn_gate,ffn_up,ffn_down}.weight.lora_{a,b})",
                                   hint: "LoRA on token_embd or output is not supported")
            }
            guard layer < base.nLayers else {
                throw AdapterError(path: path, tensor: info.name,
                                   "does not exist in base model (layer \(layer) of \(base.nLayers))",
                                   hint: AdapterError.wrongBaseHint)
            }
            let key = Key(layer: layer, target: target)
            if isA { pairs[key, default: (nil, nil)].a = info } else { pairs[key, default: (nil, nil)].b = info }
        }

        var modules: [LoRAModuleWeights] = []
        for key in pairs.keys.sorted(by: { ($0.layer, $0.target) < ($1.layer, $1.target) }) {
            let stem = "blk.\(key.layer).\(key.target.ggufName).weight"
            guard let pair = pairs[key], let aInfo = pair.a, let bInfo = pair.b else {
                throw AdapterError(path: path, tensor: stem, "LoRA tensor pair is missing one component (lora_a or lora_b)")
            }
            let features = base.features(of: key.target)
            guard aInfo.shape.count == 2, bInfo.shape.count == 2 else {
                throw AdapterError(path: path, tensor: stem, "lora_a \(aInfo.shape) / lora_b \(bInfo.shape) are not 2-D")
            }
            let rank = aInfo.shape[1]
            guard rank > 0 else { throw AdapterError(path: path, tensor: aInfo.name, "rank is 0 (shape \(aInfo.shape))") }
            guard aInfo.shape[0] == features.in, bInfo.shape[1] == features.out else {
                throw AdapterError(path: path, tensor: stem,
                                   "has incorrect shape: lora_a \(aInfo.shape), lora_b \(bInfo.shape) (GGUF order); "
                                       + "expected [\(features.in), r] and [r, \(features.out)]",
                                   hint: AdapterError.wrongBaseHint)
            }
            guard bInfo.shape[0] == rank else {
                throw AdapterError(path: path, tensor: stem,
                                   "lora_a rank \(rank) differs from lora_b rank \(bInfo.shape[0])",
                                   hint: "lora_a must be stored untransposed, as convert_lora_to_gguf.py writes it")
            }
            let a = try finiteFloats(file, aInfo, path: path)
            let b = try finiteFloats(file, bInfo, path: path)
            let scale = Float(alpha != 0 ? alpha / Double(rank) : 1)
            modules.append(LoRAModuleWeights(layer: key.layer, target: key.target, rank: rank,
                                             alpha: alpha != 0 ? alpha : Double(rank), scale: scale, a: a, b: b))
        }
        guard let first = modules.first else { throw AdapterError(path: path, "holds no LoRA tensors") }

        var metadata: [String: String] = [:]
        for (key, value) in file.metadata { if let string = value.string { metadata[key] = string } }
        return LoRAAdapterFile(
            name: name, path: path, format: .gguf, rank: first.rank, alpha: alpha, useRSLoRA: false, modules: modules,
            byteSize: file.mapping.bytes.count, metadata: metadata,
            baseModelName: file.string("general.base_model.0.repo_url") ?? file.string("general.base_model.0.name"))
    }

    private static func finiteFloats(_ file: GGUFFile, _ info: GGUFTensorInfo, path: String) throws(AdapterError) -> [Float] {
        let values: [Float]
        do {
            values = try file.dequantize(info)
        } catch {
            throw AdapterError(path: path, tensor: info.name, "cannot read: \(error.message)")
        }
        if let index = firstNonFinite(values) {
            throw AdapterError(path: path, tensor: info.name, "holds a non-finite value (\(values[index])) at element \(index)")
        }
        return values
    }
}
