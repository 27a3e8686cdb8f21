import Foundation
import SafeTensors
import XCTest
@testable import Adapters

/// Adapters made by the test in a temporary folder, for a tiny base model, to check every refusal and config option.
final class AdapterValidationTests: XCTestCase {
    /// q: 8 → 8, k/v: 8 → 4, o: 8 → 8, gate/up: 8 → 12, down: 12 → 8.
    static let tiny = BaseModelShape(nLayers: 2, dim: 8, ffnDim: 12, nHeads: 2, nKVHeads: 1, headDim: 4)

    /// A PEFT folder under construction: config keys and tensors, valid until a test breaks it.
    struct TinyAdapter {
        var config: [String: Any] = [
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 2, "lora_alpha": 4,
            "target_modules": ["q_proj", "v_proj"], "bias": "none", "use_dora": false, "use_rslora": false,
            "modules_to_save": NSNull(), "fan_in_fan_out": false, "rank_pattern": [String: Any](),
            "alpha_pattern": [String: Any](), "layers_to_transform": NSNull(),
        ]
        var tensors: [SafeTensorsWriter.Tensor] = []
        /// Replaces the weights file with these bytes when set.
        var rawWeights: Data?

        init(targets: [LoRATarget] = [.q, .v], layers: [Int] = [0, 1], rank: Int = 2) {
            for layer in layers {
                for target in targets { add(layer: layer, target: target, rank: rank) }
            }
        }

        mutating func add(layer: Int, target: LoRATarget, rank: Int, aShape: [Int]? = nil, bShape: [Int]? = nil) {
            let features = AdapterValidationTests.tiny.features(of: target)
            let stem = "base_model.model.model.layers.\(layer).\(target.hfGroup).\(target.rawValue)"
            let a = aShape ?? [rank, features.in]
            let b = bShape ?? [features.out, rank]
            tensors.append(.init(name: stem + ".lora_A.weight", shape: a, values: values(a.reduce(1, *), seed: layer * 10 + 1)))
            tensors.append(.init(name: stem + ".lora_B.weight", shape: b, values: values(b.reduce(1, *), seed: layer * 10 + 2)))
        }

        mutating func remove(_ suffix: String) { tensors.removeAll { $0.name.hasSuffix(suffix) } }

        func values(_ count: Int, seed: Int) -> [Float] {
            (0 ..< count).map { Float(sin(Double($0 * 7 + seed))) * 0.5 }
        }

        func write(in test: XCTestCase) throws -> String {
            let folder = try test.temporaryFolder().appendingPathComponent("adapter")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let config = try JSONSerialization.data(withJSONObject: self.config)
            try config.write(to: folder.appendingPathComponent("adapter_config.json"))
            let weights = try rawWeights ?? SafeTensorsWriter.encode(tensors, metadata: ["format": "pt"])
            try weights.write(to: folder.appendingPathComponent("adapter_model.safetensors"))
            return folder.path
        }
    }

    func load(_ adapter: TinyAdapter) throws -> LoRAAdapterFile {
        try AdapterLoader.load(path: adapter.write(in: self), name: "tiny", base: Self.tiny)
    }

    /// Loading must fail with a message holding every one of `fragments`.
    func assertRefused(_ adapter: TinyAdapter, _ fragments: String..., tensor: String? = nil,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try adapter.write(in: self)
        do {
            let loaded = try AdapterLoader.load(path: path, name: "tiny", base: Self.tiny)
            XCTFail("loaded \(loaded.modules.count) modules; expected refusal with \(fragments)", file: file, line: line)
        } catch {
            let text = error.description
            for fragment in fragments {
                XCTAssertTrue(text.contains(fragment), "'\(fragment)' not in: \(text)", file: file, line: line)
            }
            XCTAssertTrue(text.contains(path), "path not in: \(text)", file: file, line: line)
            if let tensor { XCTAssertEqual(error.tensor, tensor, text, file: file, line: line) }
        }
    }

    static func name(_ layer: Int, _ target: LoRATarget, _ ab: String) -> String {
        "base_model.model.model.layers.\(layer).\(target.hfGroup).\(target.rawValue).lora_\(ab).weight"
    }

    // MARK: - Valid

    func testTinyAdapterLoads() throws {
        let adapter = try load(TinyAdapter())
        XCTAssertEqual(adapter.modules.count, 4)
        XCTAssertEqual(adapter.targets, [.q, .v])
        XCTAssertEqual(adapter.modules.map(\.scale), [2, 2, 2, 2])
        XCTAssertEqual(adapter.modules.map(\.layer), [0, 0, 1, 1])
        XCTAssertEqual(adapter.modules.map(\.target), [.q, .v, .q, .v])
    }

    func testHalfPrecisionWeightsLoad() throws {
        // F16 and BF16 copies of a tiny adapter with values exact in both formats.
        for dtype in ["F16", "BF16"] {
            var adapter = TinyAdapter(targets: [.v], layers: [0])
            let a: [Float] = (0 ..< 16).map { Float($0 % 5) * 0.25 - 0.5 }
            let b: [Float] = (0 ..< 8).map { Float($0 % 3) * -1.5 }
            let header = "{\"\(Self.name(0, .v, "A"))\":{\"dtype\":\"\(dtype)\",\"shape\":[2,8],\"data_offsets\":[0,32]},"
                + "\"\(Self.name(0, .v, "B"))\":{\"dtype\":\"\(dtype)\",\"shape\":[4,2],\"data_offsets\":[32,48]}}"
            var bytes = lengthPrefix(header)
            for value in a + b {
                let bits: UInt16 = dtype == "F16" ? Float16(value).bitPattern : UInt16(value.bitPattern >> 16)
                bytes += [UInt8(bits & 0xff), UInt8(bits >> 8)]
            }
            adapter.rawWeights = Data(bytes)
            let loaded = try load(adapter)
            XCTAssertEqual(loaded.modules.first?.a, a, dtype)
            XCTAssertEqual(loaded.modules.first?.b, b, dtype)
        }
    }

    // MARK: - Refusals

    func testRefusesCorruptSafetensors() throws {
        let good = try SafeTensorsWriter.encode(TinyAdapter().tensors)
        var truncated = TinyAdapter()
        truncated.rawWeights = good.prefix(good.count - 10)
        try assertRefused(truncated, "truncated")

        var absurd = TinyAdapter()
        absurd.rawWeights = Data([UInt8](repeating: 0xFF, count: 8)) + good.dropFirst(8)
        try assertRefused(absurd, "absurd")

        var outOfRange = TinyAdapter()
        let header = "{\"\(Self.name(0, .v, "A"))\":{\"dtype\":\"F32\",\"shape\":[2,8],\"data_offsets\":[0,64]},"
            + "\"\(Self.name(0, .v, "B"))\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[64,96]}}"
        outOfRange.rawWeights = Data(lengthPrefix(header) + [UInt8](repeating: 0, count: 80))
        try assertRefused(outOfRange, "run past the end", tensor: Self.name(0, .v, "B"))

        var ints = TinyAdapter()
        let intHeader = "{\"\(Self.name(0, .v, "A"))\":{\"dtype\":\"I32\",\"shape\":[2,8],\"data_offsets\":[0,64]},"
            + "\"\(Self.name(0, .v, "B"))\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[64,96]}}"
        ints.rawWeights = Data(lengthPrefix(intHeader) + [UInt8](repeating: 0, count: 96))
        try assertRefused(ints, "expected a floating-point tensor", tensor: Self.name(0, .v, "A"))
    }

    func testRefusesWrongShapes() throws {
        var wideA = TinyAdapter(targets: [.v], layers: [0])
        wideA.tensors = []
        wideA.add(layer: 0, target: .v, rank: 2, aShape: [2, 9])
        try assertRefused(wideA, "[2, 9]", "[2, 8]", "maybe wrong base model?", tensor: Self.name(0, .v, "A"))

        var tallB = TinyAdapter(targets: [.q], layers: [1])
        tallB.tensors = []
        tallB.add(layer: 1, target: .q, rank: 2, bShape: [4, 2])
        tallB.config["target_modules"] = ["q_proj"]
        try assertRefused(tallB, "[4, 2]", "[8, 2]", tensor: Self.name(1, .q, "B"))

        var oneD = TinyAdapter(targets: [.v], layers: [0])
        oneD.tensors = []
        oneD.add(layer: 0, target: .v, rank: 2, aShape: [16])
        try assertRefused(oneD, "not 2-D", tensor: Self.name(0, .v, "A"))

        var rankMismatch = TinyAdapter()
        rankMismatch.config["r"] = 4
        try assertRefused(rankMismatch, "rank differs from r/rank_pattern")

        var layerOutOfRange = TinyAdapter()
        layerOutOfRange.add(layer: 5, target: .q, rank: 2)
        try assertRefused(layerOutOfRange, "layer 5 is out of range", "maybe wrong base model?", tensor: Self.name(5, .q, "A"))
    }

    func testRefusesUnknownModules() throws {
        for name in ["base_model.model.lm_head.lora_A.weight", "base_model.model.model.embed_tokens.lora_A.weight",
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_A.bias",
                     "base_model.model.model.layers.0.mlp.q_proj.lora_A.weight",
                     "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
                     "model.layers.0.self_attn.q_proj.lora_A.weight"] {
            var adapter = TinyAdapter()
            adapter.tensors.append(.init(name: name, shape: [2, 8], values: [Float](repeating: 0.1, count: 16)))
            try assertRefused(adapter, "not a LoRA weight of a known projection", tensor: name)
        }
    }

    func testRefusesRankZero() throws {
        var configRank = TinyAdapter()
        configRank.config["r"] = 0
        try assertRefused(configRank, "'r'", "must be positive")

        var tensorRank = TinyAdapter(targets: [.v], layers: [0])
        tensorRank.tensors = []
        tensorRank.add(layer: 0, target: .v, rank: 0)
        try assertRefused(tensorRank, "rank is 0", tensor: Self.name(0, .v, "A"))
    }

    func testRefusesNonFiniteWeights() throws {
        for bad in [Float.nan, .infinity] {
            var adapter = TinyAdapter()
            let index = try XCTUnwrap(adapter.tensors.firstIndex { $0.name == Self.name(1, .v, "B") })
            adapter.tensors[index].values[3] = bad
            try assertRefused(adapter, "non-finite", "element 3", tensor: Self.name(1, .v, "B"))
        }
    }

    func testRefusesUnpairedTensors() throws {
        var noB = TinyAdapter()
        noB.remove("layers.1.self_attn.q_proj.lora_B.weight")
        try assertRefused(noB, "has no matching", "lora_B", tensor: Self.name(1, .q, "A"))

        var noA = TinyAdapter()
        noA.remove("layers.0.self_attn.v_proj.lora_A.weight")
        try assertRefused(noA, "has no matching", "lora_A", tensor: Self.name(0, .v, "B"))

        var empty = TinyAdapter()
        empty.tensors = []
        try assertRefused(empty, "no LoRA tensors")
    }

    func testRefusesUnsupportedConfigs() throws {
        let cases: [(String, Any, String)] = [
            ("use_dora", true, "DoRA is not supported"),
            ("bias", "all", "only \"none\" is supported"),
            ("bias", "lora_only", "only \"none\" is supported"),
            ("modules_to_save", ["lm_head"], "modules_to_save"),
            ("peft_type", "PREFIX_TUNING", "only LORA"),
            ("lora_bias", true, "bias terms are not supported"),
            ("layer_replication", [[0, 1]], "layer_replication"),
            ("target_modules", 3, "list of names or a regular expression"),
            ("r", "eight", "not an integer"),
            ("lora_alpha", "sixteen", "not a number"),
            ("rank_pattern", ["q_proj": 0], "must be a positive integer"),
        ]
        for (key, value, message) in cases {
            var adapter = TinyAdapter()
            adapter.config[key] = value
            try assertRefused(adapter, message)
        }
    }

    func testRefusesMissingOrBrokenFiles() throws {
        let adapter = TinyAdapter()
        let folder = try adapter.write(in: self)
        try FileManager.default.removeItem(atPath: folder + "/adapter_model.safetensors")
        XCTAssertThrowsError(try AdapterLoader.load(path: folder, name: "x", base: Self.tiny)) {
            XCTAssertTrue("\($0)".contains("adapter_model.safetensors is missing"), "\($0)")
        }
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: folder + "/adapter_config.json"))
        XCTAssertThrowsError(try AdapterLoader.load(path: folder, name: "x", base: Self.tiny)) {
            XCTAssertTrue("\($0)".contains("not valid JSON"), "\($0)")
        }
        try FileManager.default.removeItem(atPath: folder + "/adapter_config.json")
        XCTAssertThrowsError(try AdapterLoader.load(path: folder, name: "x", base: Self.tiny)) {
            XCTAssertTrue("\($0)".contains("cannot read adapter_config.json"), "\($0)")
        }
        XCTAssertThrowsError(try AdapterLoader.load(path: folder + "/nope", name: "x", base: Self.tiny)) {
            XCTAssertTrue("\($0)".contains("no such file"), "\($0)")
        }
        // A file that is neither GGUF nor a folder.
        let notGGUF = folder + "/x.gguf"
        try Data("hello world, not gguf".utf8).write(to: URL(fileURLWithPath: notGGUF))
        XCTAssertThrowsError(try AdapterLoader.load(path: notGGUF, name: "x", base: Self.tiny)) {
            XCTAssertTrue("\($0)".contains("cannot read as GGUF"), "\($0)")
        }
    }

    // MARK: - Config options

    func testTargetModulesSelectModules() throws {
        var untargeted = TinyAdapter()
        untargeted.add(layer: 0, target: .k, rank: 2)
        try assertRefused(untargeted, "not selected by target_modules", tensor: Self.name(0, .k, "A"))

        var regex = TinyAdapter(targets: [.q, .v], layers: [1])
        regex.config["target_modules"] = #".*\.layers\.1\.self_attn\.(q|v)_proj"#
        XCTAssertEqual(try load(regex).modules.count, 2)
        regex.add(layer: 0, target: .q, rank: 2)
        try assertRefused(regex, "not selected", tensor: Self.name(0, .q, "A"))

        // A regex must match the whole name (re.fullmatch), not a part of it.
        var partial = TinyAdapter(targets: [.q], layers: [0])
        partial.config["target_modules"] = "q_proj"
        try assertRefused(partial, "not selected")

        var allLinear = TinyAdapter(targets: LoRATarget.allCases, layers: [0, 1])
        allLinear.config["target_modules"] = "all-linear"
        let all = try load(allLinear)
        XCTAssertEqual(all.targets, Set(LoRATarget.allCases))
        XCTAssertEqual(all.modules.count, 14)

        var layers = TinyAdapter(targets: [.q, .v], layers: [1])
        layers.config["layers_to_transform"] = [1]
        XCTAssertEqual(try load(layers).modules.count, 2)
        layers.config["layers_pattern"] = "layers"
        layers.config["layers_to_transform"] = 1
        XCTAssertEqual(try load(layers).modules.count, 2)
        layers.config["layers_pattern"] = "blocks"
        try assertRefused(layers, "not selected")
        layers.config["layers_pattern"] = "layers"
        layers.add(layer: 0, target: .v, rank: 2)
        try assertRefused(layers, "not selected", tensor: Self.name(0, .v, "A"))

        var excluded = TinyAdapter()
        excluded.config["exclude_modules"] = ["model.layers.0.self_attn.v_proj"]
        try assertRefused(excluded, "not selected", tensor: Self.name(0, .v, "A"))

        // fan_in_fan_out has no effect on nn.Linear (PEFT resets it), so the layout is the usual one.
        var fanInFanOut = TinyAdapter()
        fanInFanOut.config["fan_in_fan_out"] = true
        XCTAssertEqual(try load(fanInFanOut).modules, try load(TinyAdapter()).modules)
    }

    func testRankAndAlphaPatternsAndRSLoRA() throws {
        // r 2, alpha 4; v_proj everywhere rank 4; layer 1 q_proj alpha 8.
        var adapter = TinyAdapter(targets: [.q], layers: [0, 1])
        adapter.add(layer: 0, target: .v, rank: 4)
        adapter.add(layer: 1, target: .v, rank: 4)
        adapter.config["rank_pattern"] = ["v_proj": 4]
        adapter.config["alpha_pattern"] = [#"model\.layers\.1\.self_attn\.q_proj"#: 8]
        let loaded = try load(adapter)
        func module(_ layer: Int, _ target: LoRATarget) throws -> LoRAModuleWeights {
            try XCTUnwrap(loaded.module(layer: layer, target: target))
        }
        XCTAssertEqual(try module(0, .q).rank, 2)
        XCTAssertEqual(try module(0, .q).scale, 4.0 / 2)
        XCTAssertEqual(try module(1, .q).scale, 8.0 / 2)
        XCTAssertEqual(try module(0, .v).rank, 4)
        XCTAssertEqual(try module(0, .v).scale, 4.0 / 4)
        XCTAssertEqual(try module(1, .v).alpha, 4)

        adapter.config["use_rslora"] = true
        let rs = try load(adapter)
        XCTAssertEqual(rs.module(layer: 0, target: .q)?.scale, Float(4.0 / 2.0.squareRoot()))
        XCTAssertEqual(rs.module(layer: 1, target: .q)?.scale, Float(8.0 / 2.0.squareRoot()))
        XCTAssertEqual(rs.module(layer: 1, target: .v)?.scale, Float(4.0 / 2.0))

        // A pattern must match a dotted suffix: "_proj" alone matches no module name.
        var suffix = TinyAdapter()
        suffix.config["rank_pattern"] = ["_proj": 4]
        XCTAssertEqual(try load(suffix).modules.map(\.rank), [2, 2, 2, 2])

        // Conflicting patterns are refused rather than resolved by an order JSON does not keep.
        var conflict = TinyAdapter()
        conflict.config["rank_pattern"] = ["q_proj": 2, #"layers\.0\.self_attn\.q_proj"#: 3]
        try assertRefused(conflict, "rank_pattern", "different values")

        // The writer records per-module ranks and alphas so a round trip keeps them.
        let out = try temporaryFolder().appendingPathComponent("written").path
        try PEFTWriter.write(loaded, to: out, base: Self.tiny)
        XCTAssertEqual(try AdapterLoader.load(path: out, name: "w", base: Self.tiny).modules, loaded.modules)
    }

    // MARK: - Rotary permutation

    func testRotaryPermutation() {
        // One head of size 4, one column: HF rows [0 1 2 3] → GGUF [0 2 1 3] (numpy reshape/swapaxes by hand).
        XCTAssertEqual(RotaryPermutation.hfToGGUF([0, 1, 2, 3], columns: 1, heads: 1), [0, 2, 1, 3])
        // Two heads of size 4.
        XCTAssertEqual(RotaryPermutation.hfToGGUF([0, 1, 2, 3, 4, 5, 6, 7], columns: 1, heads: 2), [0, 2, 1, 3, 4, 6, 5, 7])
        // Head size 6: [0 1 2 | 3 4 5] → [0 3 1 4 2 5].
        XCTAssertEqual(RotaryPermutation.hfToGGUF([0, 1, 2, 3, 4, 5], columns: 1, heads: 1), [0, 3, 1, 4, 2, 5])
        // Rows move whole.
        XCTAssertEqual(RotaryPermutation.hfToGGUF([0, 10, 1, 11, 2, 12, 3, 13], columns: 2, heads: 1),
                       [0, 10, 2, 12, 1, 11, 3, 13])
        let matrix = (0 ..< 9 * 64 * 3).map(Float.init)
        let permuted = RotaryPermutation.hfToGGUF(matrix, columns: 3, heads: 9)
        XCTAssertEqual(permuted, numpyStylePermute(matrix, heads: 9, columns: 3))
        XCTAssertEqual(RotaryPermutation.ggufToHF(permuted, columns: 3, heads: 9), matrix)
    }

    func testPEFTLoadPermutesQAndKOnly() throws {
        let adapter = TinyAdapter(targets: [.q, .k, .v], layers: [0])
        var config = adapter
        config.config["target_modules"] = ["q_proj", "k_proj", "v_proj"]
        let loaded = try load(config)
        for tensor in adapter.tensors where tensor.name.hasSuffix("lora_B.weight") {
            let target: LoRATarget = tensor.name.contains("q_proj") ? .q : tensor.name.contains("k_proj") ? .k : .v
            let module = try XCTUnwrap(loaded.module(layer: 0, target: target))
            switch target {
            case .q: XCTAssertEqual(module.b, numpyStylePermute(tensor.values, heads: 2, columns: 2))
            case .k: XCTAssertEqual(module.b, numpyStylePermute(tensor.values, heads: 1, columns: 2))
            default: XCTAssertEqual(module.b, tensor.values)
            }
        }
    }
}
