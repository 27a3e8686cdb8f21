import GGUF
import Llama

// MARK: - Shapes and names shared with the Llama module

extension BaseModelShape {
    /// The sizes of a loaded Llama model.
    public init(_ config: LlamaConfiguration) {
        self.init(nLayers: config.layerCount, dim: config.dim, ffnDim: config.ffnDim, nHeads: config.headCount,
                  nKVHeads: config.kvHeadCount, headDim: config.headDim)
    }
}

extension LoRATarget {
    /// The Llama module's index for this projection.
    public var projection: Projection {
        switch self {
        case .q: .q
        case .k: .k
        case .v: .v
        case .o: .o
        case .gate: .gate
        case .up: .up
        case .down: .down
        }
    }
}

// MARK: - Conversion to the runtime types

extension LoRAAdapterFile {
    /// The adapter as the forward pass applies it unmerged: one `LoRADelta` per module, each with its own scale
    /// (`alpha / r`, or `alpha / sqrt(r)` with rsLoRA, after `rank_pattern` / `alpha_pattern`).
    /// The per-request scale passed to `Batch.apply` multiplies on top of it.
    public func makeLoRAAdapter(for config: LlamaConfiguration) throws(AdapterError) -> LoRAAdapter {
        var deltas = [[LoRADelta?]](repeating: [LoRADelta?](repeating: nil, count: Projection.allCases.count),
                                    count: config.layerCount)
        for module in modules {
            let (inF, outF) = try checkFits(module, config)
            deltas[module.layer][module.target.projection.rawValue] =
                LoRADelta(rank: module.rank, inFeatures: inF, outFeatures: outF, scale: module.scale, a: module.a, b: module.b)
        }
        return LoRAAdapter(name: name, deltas: deltas)
    }

    /// Merged mode: for every targeted projection a dense f32 copy of the base weight with `scale · B · A` folded in.
    /// The base weights are only read; projections the adapter does not target stay shared (no override).
    public func makeMergedWeights(base weights: LlamaWeights, config: LlamaConfiguration) throws(AdapterError) -> MergedWeights {
        var overrides = [[WeightMatrix?]](repeating: [WeightMatrix?](repeating: nil, count: Projection.allCases.count),
                                          count: config.layerCount)
        guard weights.layers.count == config.layerCount else {
            throw AdapterError(path: path, "base weights hold \(weights.layers.count) layers, the configuration \(config.layerCount)")
        }
        for module in modules {
            let (inF, outF) = try checkFits(module, config)
            let base = weights.layers[module.layer].weight(module.target.projection)
            guard base.rows == outF, base.cols == inF else {
                throw AdapterError(path: path, tensor: module.target.hfModuleName(layer: module.layer),
                                   "base weight is [\(base.rows), \(base.cols)], the adapter expects [\(outF), \(inF)]",
                                   hint: AdapterError.wrongBaseHint)
            }
            var dense = base.dense()   // [out, in]
            LoRAMerge.addDelta(to: &dense, out: outF, in: inF, module: module)
            try checkFinite(dense, module)
            overrides[module.layer][module.target.projection.rawValue] = WeightMatrix(rows: outF, cols: inF, copying: dense)
        }
        return MergedWeights(name: name, overrides: overrides)
    }

    /// `(in, out)` features of `module` after checking that it fits the model.
    func checkFits(_ module: LoRAModuleWeights, _ config: LlamaConfiguration) throws(AdapterError) -> (Int, Int) {
        let (inF, outF) = module.target.projection.features(config)
        guard module.layer >= 0, module.layer < config.layerCount else {
            throw AdapterError(path: path, tensor: module.target.hfModuleName(layer: module.layer),
                               "layer \(module.layer) is out of range; the base model has \(config.layerCount) layers",
                               hint: AdapterError.wrongBaseHint)
        }
        guard module.rank > 0, module.a.count == module.rank * inF, module.b.count == outF * module.rank else {
            throw AdapterError(path: path, tensor: module.target.hfModuleName(layer: module.layer),
                               "rank \(module.rank) with \(module.a.count) A and \(module.b.count) B values does not fit "
                                   + "[\(outF), \(inF)]", hint: AdapterError.wrongBaseHint)
        }
        return (inF, outF)
    }

    private func checkFinite(_ values: [Float], _ module: LoRAModuleWeights) throws(AdapterError) {
        if let index = firstNonFinite(values) {
            throw AdapterError(path: path, tensor: module.target.hfModuleName(layer: module.layer),
                               "merged weight overflows to \(values[index]) at element \(index)")
        }
    }
}
