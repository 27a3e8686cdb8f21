import Adapters
import Llama

extension Projection {
    /// The matching `Adapters` target.
    var loraTarget: LoRATarget { LoRATarget(rawValue: peftName)! }  // both enums list the same seven PEFT names

    init(_ target: LoRATarget) { self = Projection(peftName: target.rawValue)! }  // same seven names
}

extension LlamaConfiguration {
    /// The shape `Adapters` checks adapters against.
    public var adapterShape: BaseModelShape {
        BaseModelShape(nLayers: layerCount, dim: dim, ffnDim: ffnDim, nHeads: headCount, nKVHeads: kvHeadCount, headDim: headDim)
    }
}

extension LoRALayout {
    /// The layout of an existing adapter (its modules, ranks and scales).
    public init(config: LlamaConfiguration, adapter: LoRAAdapterFile) {
        self.init(config: config, modules: adapter.modules.map { ($0.layer, Projection($0.target), $0.rank, $0.scale) })
    }
}

extension LoRATrainingModel {
    /// Copies an adapter's A and B (B rows in GGUF order, as `AdapterLoader` returns them) into `params`.
    public func loadParameters(from adapter: LoRAAdapterFile) throws(TrainerError) {
        for module in adapter.modules {
            guard let slot = layout.slot(layer: module.layer, Projection(module.target)),
                  slot.rank == module.rank, module.a.count == slot.countA, module.b.count == slot.countB else {
                throw TrainerError("adapter '\(adapter.path)': module \(module.target.hfModuleName(layer: module.layer)) "
                                   + "does not fit the training layout")
            }
            params.load(module.a, at: slot.offsetA)
            params.load(module.b, at: slot.offsetB)
        }
    }

    /// The current parameters as an adapter (B rows in GGUF order; `PEFTWriter` permutes q/k back to HF order).
    public func adapterFile(name: String, path: String, alpha: Double, rsLoRA: Bool, baseModelName: String?) -> LoRAAdapterFile {
        let modules = layout.slots.map { slot in
            LoRAModuleWeights(layer: slot.layer, target: slot.projection.loraTarget, rank: slot.rank, alpha: alpha,
                              scale: slot.scale, a: params.slice(slot.offsetA, slot.countA),
                              b: params.slice(slot.offsetB, slot.countB))
        }
        let rank = layout.slots.first?.rank ?? 0
        return LoRAAdapterFile(name: name, path: path, format: .peft, rank: rank, alpha: alpha, useRSLoRA: rsLoRA,
                               modules: modules, byteSize: 0, metadata: [:], baseModelName: baseModelName)
    }

    /// A flat buffer's tensors under PEFT names (`…lora_A.weight`, `…lora_B.weight`), q/k B rows in HF order.
    public func peftTensors(of buffer: FlatBuffer) -> [String: [Float]] {
        let c = base.config
        var out: [String: [Float]] = [:]
        for slot in layout.slots {
            let stem = "base_model.model." + slot.projection.loraTarget.hfModuleName(layer: slot.layer)
            out[stem + ".lora_A.weight"] = buffer.slice(slot.offsetA, slot.countA)
            var b = buffer.slice(slot.offsetB, slot.countB)
            switch slot.projection {
            case .q: b = RotaryPermutation.ggufToHF(b, columns: slot.rank, heads: c.headCount)
            case .k: b = RotaryPermutation.ggufToHF(b, columns: slot.rank, heads: c.kvHeadCount)
            default: break
            }
            out[stem + ".lora_B.weight"] = b
        }
        return out
    }
}
