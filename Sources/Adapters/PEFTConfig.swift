import Foundation

/// The parts of a PEFT `adapter_config.json` that decide what a LoRA adapter does, parsed and checked.
///
/// Options that change the math in ways we do not implement (DoRA, bias training, `modules_to_save`, …) are refused
/// here, before any weights are read. Defaults follow PEFT's `LoraConfig`.
public struct PEFTConfig: Sendable, Equatable {
    /// How `target_modules` selects modules.
    public enum TargetModules: Sendable, Equatable {
        /// Exact names or dotted suffixes (`"q_proj"` matches `model.layers.0.self_attn.q_proj`).
        case names([String])
        /// A regular expression that must match the whole module name (`re.fullmatch`).
        case regex(String)
        /// Every linear layer except the output head.
        case allLinear
    }

    public var r: Int
    public var loraAlpha: Double
    public var targetModules: TargetModules
    public var excludeModules: TargetModules?
    public var useRSLoRA: Bool
    /// Pattern → rank, matched against module names as PEFT's `get_pattern_key` does.
    public var rankPattern: [String: Int]
    /// Pattern → alpha.
    public var alphaPattern: [String: Double]
    public var layersToTransform: [Int]?
    public var layersPattern: [String]?
    /// Accepted but without effect: PEFT resets it to false for `nn.Linear`, and LoRA tensors keep their layout.
    public var fanInFanOut: Bool
    public var baseModelName: String?

    public init(r: Int, loraAlpha: Double, targetModules: TargetModules, excludeModules: TargetModules? = nil,
                useRSLoRA: Bool = false, rankPattern: [String: Int] = [:], alphaPattern: [String: Double] = [:],
                layersToTransform: [Int]? = nil, layersPattern: [String]? = nil, fanInFanOut: Bool = false,
                baseModelName: String? = nil) {
        self.r = r
        self.loraAlpha = loraAlpha
        self.targetModules = targetModules
        self.excludeModules = excludeModules
        self.useRSLoRA = useRSLoRA
        self.rankPattern = rankPattern
        self.alphaPattern = alphaPattern
        self.layersToTransform = layersToTransform
        self.layersPattern = layersPattern
        self.fanInFanOut = fanInFanOut
        self.baseModelName = baseModelName
    }

    // MARK: - Parsing

    /// Parses `adapter_config.json` bytes. `path` is used in messages.
    public static func parse(_ data: Data, path: String) throws(AdapterError) -> PEFTConfig {
        func fail(_ key: String?, _ message: String, hint: String? = nil) -> AdapterError {
            AdapterError(path: path, tensor: nil, (key.map { "adapter_config.json '\($0)': " } ?? "adapter_config.json: ") + message,
                         hint: hint)
        }
        guard data.count <= 16_000_000 else { throw fail(nil, "file is \(data.count) bytes; too large for a config") }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw fail(nil, "not valid JSON (\(error.localizedDescription))")
        }
        guard let object = json as? [String: Any] else { throw fail(nil, "not a JSON object") }
        func isSet(_ key: String) -> Bool {
            guard let value = object[key], !(value is NSNull) else { return false }
            if let list = value as? [Any] { return !list.isEmpty }
            if let map = value as? [String: Any] { return !map.isEmpty }
            if let flag = jsonBool(value) { return flag }
            return true
        }

        if let type = object["peft_type"], !(type is NSNull) {
            guard let name = type as? String, name.uppercased() == "LORA" else {
                throw fail("peft_type", "is \(type); only LORA adapters are supported")
            }
        }
        if isSet("use_dora") { throw fail("use_dora", "DoRA is not supported", hint: "merge or retrain without use_dora") }
        if let bias = object["bias"], !(bias is NSNull) {
            guard let name = bias as? String, name == "none" else {
                throw fail("bias", "is \(bias); only \"none\" is supported (trained biases would change the base weights)")
            }
        }
        if isSet("lora_bias") { throw fail("lora_bias", "LoRA bias terms are not supported") }
        if isSet("modules_to_save") {
            throw fail("modules_to_save", "fully trained modules (\(object["modules_to_save"] ?? "")) are not supported; "
                + "only LoRA deltas can be served")
        }
        for key in ["layer_replication", "target_parameters", "trainable_token_indices", "use_qalora"] where isSet(key) {
            throw fail(key, "is set; not supported")
        }

        let r: Int
        if let value = object["r"], !(value is NSNull) {
            guard let int = jsonInt(value) else { throw fail("r", "is \(value), not an integer") }
            r = int
        } else {
            r = 8
        }
        guard r > 0 else { throw fail("r", "rank \(r) must be positive") }
        let alpha: Double
        if let value = object["lora_alpha"], !(value is NSNull) {
            guard let number = jsonDouble(value), number.isFinite else { throw fail("lora_alpha", "is \(value), not a number") }
            alpha = number
        } else {
            alpha = 8
        }

        func modules(_ key: String) throws(AdapterError) -> TargetModules? {
            guard let value = object[key], !(value is NSNull) else { return nil }
            if let string = value as? String {
                if string == "all-linear" { return .allLinear }
                guard (try? Regex(string)) != nil else { throw fail(key, "'\(string)' is not a regular expression we can use") }
                return .regex(string)
            }
            if let list = value as? [Any] {
                var names: [String] = []
                for item in list {
                    guard let name = item as? String else { throw fail(key, "list holds a non-string \(item)") }
                    names.append(name)
                }
                return .names(names)
            }
            throw fail(key, "must be a list of names or a regular expression string")
        }
        // PEFT's default for Llama when target_modules is null.
        let targets = try modules("target_modules") ?? .names(["q_proj", "v_proj"])
        let exclude = try modules("exclude_modules")

        var rankPattern: [String: Int] = [:]
        if let value = object["rank_pattern"], !(value is NSNull) {
            guard let map = value as? [String: Any] else { throw fail("rank_pattern", "is not an object") }
            for (pattern, item) in map {
                guard let rank = jsonInt(item), rank > 0 else { throw fail("rank_pattern", "rank \(item) for '\(pattern)' must be a positive integer") }
                guard (try? Regex(pattern)) != nil else { throw fail("rank_pattern", "'\(pattern)' is not a regular expression we can use") }
                rankPattern[pattern] = rank
            }
        }
        var alphaPattern: [String: Double] = [:]
        if let value = object["alpha_pattern"], !(value is NSNull) {
            guard let map = value as? [String: Any] else { throw fail("alpha_pattern", "is not an object") }
            for (pattern, item) in map {
                guard let number = jsonDouble(item), number.isFinite else { throw fail("alpha_pattern", "alpha \(item) for '\(pattern)' is not a number") }
                guard (try? Regex(pattern)) != nil else { throw fail("alpha_pattern", "'\(pattern)' is not a regular expression we can use") }
                alphaPattern[pattern] = number
            }
        }

        var layers: [Int]?
        if let value = object["layers_to_transform"], !(value is NSNull) {
            if let single = jsonInt(value) {
                layers = [single]
            } else if let list = value as? [Any] {
                var out: [Int] = []
                for item in list {
                    guard let layer = jsonInt(item) else { throw fail("layers_to_transform", "holds a non-integer \(item)") }
                    out.append(layer)
                }
                layers = out
            } else {
                throw fail("layers_to_transform", "must be an integer or a list of integers")
            }
        }
        var layersPattern: [String]?
        if let value = object["layers_pattern"], !(value is NSNull) {
            if let string = value as? String {
                layersPattern = [string]
            } else if let list = value as? [Any] {
                layersPattern = list.compactMap { $0 as? String }
                guard layersPattern?.count == list.count else { throw fail("layers_pattern", "holds a non-string") }
            } else {
                throw fail("layers_pattern", "must be a string or a list of strings")
            }
            for pattern in layersPattern ?? [] where (try? Regex(pattern)) == nil {
                throw fail("layers_pattern", "'\(pattern)' is not a regular expression we can use")
            }
        }

        let rsLoRA = object["use_rslora"].flatMap(jsonBool) ?? false
        let fanInFanOut = object["fan_in_fan_out"].flatMap(jsonBool) ?? false
        return PEFTConfig(r: r, loraAlpha: alpha, targetModules: targets, excludeModules: exclude, useRSLoRA: rsLoRA,
                          rankPattern: rankPattern, alphaPattern: alphaPattern, layersToTransform: layers,
                          layersPattern: layersPattern, fanInFanOut: fanInFanOut,
                          baseModelName: object["base_model_name_or_path"] as? String)
    }

    // MARK: - Matching (PEFT's check_target_module_exists and get_pattern_key)

    /// Whether PEFT would put a LoRA layer on the module named `key` (e.g. `model.layers.3.self_attn.q_proj`).
    public func targets(_ key: String) -> Bool {
        if let excludeModules, Self.matches(excludeModules, key, layerFilter: nil) { return false }
        return Self.matches(targetModules, key, layerFilter: layerFilter)
    }

    private var layerFilter: ((String) -> Bool)? {
        guard let layersToTransform else { return nil }
        let patterns = layersPattern ?? []
        return { key in
            // PEFT: r".*\.[^.]*\.(\d+)\." by default, else r".*\.{pattern}\.(\d+)\." for each pattern.
            let sources = patterns.isEmpty ? [#".*\.[^.]*\.(\d+)\..*"#] : patterns.map { #".*\.(?:"# + $0 + #")\.(\d+)\..*"# }
            for source in sources {
                guard let regex = try? Regex(source), let match = try? regex.wholeMatch(in: key),
                      match.output.count > 1, let digits = match.output[1].substring, let layer = Int(digits) else { continue }
                return layersToTransform.contains(layer)
            }
            return false
        }
    }

    private static func matches(_ modules: TargetModules, _ key: String, layerFilter: ((String) -> Bool)?) -> Bool {
        switch modules {
        case .allLinear:
            return LoRATarget.allCases.contains { key.hasSuffix(".\($0.rawValue)") } && (layerFilter?(key) ?? true)
        case .regex(let source):
            // PEFT ignores layers_to_transform when target_modules is a regex.
            guard let regex = try? Regex(source) else { return false }
            return (try? regex.wholeMatch(in: key)) != nil
        case .names(let names):
            guard names.contains(where: { key == $0 || key.hasSuffix("." + $0) }) else { return false }
            return layerFilter?(key) ?? true
        }
    }

    /// The rank and alpha PEFT gives module `key`, after `rank_pattern` / `alpha_pattern`.
    /// Throws if several patterns match with different values (PEFT would pick by dict order, which JSON does not keep).
    public func rankAndAlpha(for key: String, path: String) throws(AdapterError) -> (rank: Int, alpha: Double) {
        let rank = try Self.patternValue(rankPattern, key: key, configKey: "rank_pattern", path: path) ?? r
        let alpha = try Self.patternValue(alphaPattern, key: key, configKey: "alpha_pattern", path: path) ?? loraAlpha
        return (rank, alpha)
    }

    /// The scale PEFT uses for a module with this rank and alpha.
    public func scale(rank: Int, alpha: Double) -> Float {
        Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }

    private static func patternValue<Value: Equatable>(_ patterns: [String: Value], key: String, configKey: String,
                                                       path: String) throws(AdapterError) -> Value? {
        // PEFT: re.match(rf"(.*\.)?({pattern})$", key) — the pattern must match a dotted suffix of the name.
        var found: [(String, Value)] = []
        for (pattern, value) in patterns {
            guard let regex = try? Regex(#"(?:.*\.)?(?:"# + pattern + ")") else { continue }
            if (try? regex.wholeMatch(in: key)) != nil { found.append((pattern, value)) }
        }
        guard let first = found.first else { return nil }
        if found.contains(where: { $0.1 != first.1 }) {
            throw AdapterError(path: path, tensor: nil,
                               "adapter_config.json '\(configKey)': patterns \(found.map(\.0).sorted()) all match '\(key)' "
                                   + "with different values")
        }
        return first.1
    }
}

// MARK: - JSON number helpers (JSONSerialization yields NSNumber)

func jsonInt(_ value: Any) -> Int? {
    if let int = value as? Int { return int }
    if let double = value as? Double, double.rounded() == double, abs(double) < 9.0e15 { return Int(double) }
    return nil
}

func jsonDouble(_ value: Any) -> Double? {
    if value is String { return nil }
    if let double = value as? Double { return double }
    if let int = value as? Int { return Double(int) }
    return nil
}

func jsonBool(_ value: Any) -> Bool? {
    if let bool = value as? Bool { return bool }
    return nil
}
