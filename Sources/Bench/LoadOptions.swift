import Foundation
import JSON

/// Everything one load run is told: from a scenario file (`--scenario`), then overridden by flags.
/// Scenario keys are the flags in snake_case (see `scenarioKeys`).
public struct LoadOptions: Sendable {
    public var name: String?
    public var url = BenchURL(host: "127.0.0.1", port: 8080)
    // Load shape: closed loop (clients) or open loop (rate); until a duration or a request count.
    public var clients: Int? = nil
    public var rate: Double? = nil
    public var duration: Double? = nil
    public var requests: Int? = nil
    // Requests
    public var promptsFile: String? = nil
    public var promptTokens = 128
    public var maxTokens: ClosedRange<Int> = 128...128
    public var stream = true
    public var apiKey: String? = nil
    public var temperature: Double? = nil
    /// Extra top-level fields merged into every request body.
    public var extraBody = JSONObject()
    public var timeout = 300.0
    public var seed: UInt64 = 1
    /// Open loop: most requests in flight at once (more wait, and their wait counts in their latency).
    public var maxConnections = 256
    // Model mix
    public var model: String? = nil
    public var adapters: [String] = []
    public var adapterCount: Int? = nil
    public var adapterPrefix = "bench-"
    public var distribution = AdapterDistribution.uniform
    public var baseFraction = 0.0
    // Adapter churn through the admin API
    public var churnRate: Double? = nil
    public var churnPath: String? = nil
    public var churnKeep = 4
    public var churnPrefix = "churn-"
    public var churnMerged = false
    public var adminKey: String? = nil
    // Output
    public var jsonPath: String? = nil
    public var plotPath: String? = nil

    public init() {}

    /// The adapter names: the explicit list, else `adapterCount` names `prefix0 … prefix(N-1)`.
    public var adapterNames: [String] {
        if !adapters.isEmpty { return adapters }
        guard let adapterCount, adapterCount > 0 else { return [] }
        return (0..<adapterCount).map { "\(adapterPrefix)\($0)" }
    }

    /// True when requests arrive by a Poisson process rather than from a fixed set of clients.
    public var isOpenLoop: Bool { rate != nil }

    /// When neither a duration nor a request count is given.
    public static let defaultRequests = 100

    /// Checks ranges and combinations; call after flags were applied.
    public func validate() throws(BenchError) {
        if clients != nil && rate != nil { throw BenchError("give either --clients or --rate, not both") }
        if let clients, clients < 1 || clients > 4096 { throw BenchError("--clients must be in 1…4096, not \(clients)") }
        if let rate, !(rate > 0 && rate.isFinite) { throw BenchError("--rate must be a positive number of requests/s, not \(rate)") }
        if let duration, !(duration > 0 && duration.isFinite) { throw BenchError("--duration must be positive seconds, not \(duration)") }
        if let requests, requests < 1 { throw BenchError("--requests must be at least 1, not \(requests)") }
        if promptsFile == nil && promptTokens < 1 { throw BenchError("--prompt-tokens must be at least 1, not \(promptTokens)") }
        if maxTokens.lowerBound < 1 { throw BenchError("--max-tokens must be at least 1, not \(maxTokens.lowerBound)") }
        if !(timeout > 0 && timeout.isFinite) { throw BenchError("--timeout must be positive seconds, not \(timeout)") }
        if maxConnections < 1 || maxConnections > 4096 { throw BenchError("--max-connections must be in 1…4096, not \(maxConnections)") }
        if let adapterCount, adapterCount < 0 || adapterCount > 100_000 {
            throw BenchError("--adapter-count must be in 0…100000, not \(adapterCount)")
        }
        if !(0...1).contains(baseFraction) { throw BenchError("--base-fraction must be in 0…1, not \(baseFraction)") }
        if let churnRate {
            guard churnRate > 0 && churnRate.isFinite else { throw BenchError("--churn-rate must be positive, not \(churnRate)") }
            guard churnPath != nil else { throw BenchError("--churn-rate needs --churn-path (the adapter to load under fresh names)") }
        }
        if churnKeep < 0 { throw BenchError("--churn-keep must be at least 0, not \(churnKeep)") }
    }

    // MARK: - Parsing helpers shared by flags and scenario files

    /// `N` or `A-B`.
    public static func parseMaxTokens(_ text: String) throws(BenchError) -> ClosedRange<Int> {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.count == 1, let n = Int(parts[0]), n >= 1 { return n...n }
        if parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 1, a <= b { return a...b }
        throw BenchError("max tokens '\(text)': expected a positive number N or a range A-B with A ≤ B")
    }

    /// `a,b,c` (spaces around names dropped, empty names skipped).
    public static func parseNameList(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    // MARK: - Scenario files

    /// Keys a scenario file may hold. `server` (an object) is for bench/run-scenario.sh and ignored
    /// here, as are keys starting with `_` (comments).
    public static let scenarioKeys: Set<String> = [
        "name", "description", "url", "clients", "rate", "duration", "requests", "prompts", "prompt_tokens",
        "max_tokens", "stream", "api_key", "temperature", "extra_body", "timeout", "seed", "max_connections",
        "model", "adapters", "adapter_count", "adapter_prefix", "distribution", "base_fraction",
        "churn_rate", "churn_path", "churn_keep", "churn_prefix", "churn_merged", "admin_key", "json", "plot", "server",
    ]

    /// Applies a scenario file; unknown keys and wrong types are errors naming the key.
    public mutating func apply(scenarioFile path: String) throws(BenchError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw BenchError("cannot read scenario \(path)") }
        let root: JSONValue
        do { root = try JSONParser.parse([UInt8](data)) } catch { throw BenchError("scenario \(path): invalid JSON: \(error)") }
        guard let object = root.objectValue else { throw BenchError("scenario \(path): the top level must be an object") }
        try apply(scenario: object, file: path)
    }

    public mutating func apply(scenario object: JSONObject, file: String) throws(BenchError) {
        for (key, value) in object.members {
            if key.hasPrefix("_") { continue }
            guard Self.scenarioKeys.contains(key) else {
                throw BenchError("scenario \(file): unknown key '\(key)'")
            }
            let field = ScenarioField(file: file, key: key, value: value)
            switch key {
            case "name": name = try field.string()
            case "description": _ = try field.string()
            case "url": url = try BenchURL(parsing: try field.string())
            case "clients": clients = try field.int(); rate = nil
            case "rate": rate = try field.double(); clients = nil
            case "duration": duration = try field.double()
            case "requests": requests = try field.int()
            case "prompts": promptsFile = try field.string()
            case "prompt_tokens": promptTokens = try field.int()
            case "max_tokens":
                if let n = value.intValue { maxTokens = try Self.parseMaxTokens(String(n)) }
                else { maxTokens = try Self.parseMaxTokens(try field.string()) }
            case "stream": stream = try field.bool()
            case "api_key": apiKey = try field.string()
            case "temperature": temperature = try field.double()
            case "extra_body":
                guard let o = value.objectValue else { throw field.typeError("an object") }
                extraBody = o
            case "timeout": timeout = try field.double()
            case "seed": seed = UInt64(truncatingIfNeeded: try field.int())
            case "max_connections": maxConnections = try field.int()
            case "model": model = try field.string()
            case "adapters":
                if let list = value.arrayValue {
                    adapters = try list.map { element throws(BenchError) in
                        guard let s = element.stringValue else { throw field.typeError("an array of strings") }
                        return s
                    }
                } else {
                    adapters = Self.parseNameList(try field.string())
                }
            case "adapter_count": adapterCount = try field.int()
            case "adapter_prefix": adapterPrefix = try field.string()
            case "distribution": distribution = try AdapterDistribution(parsing: try field.string())
            case "base_fraction": baseFraction = try field.double()
            case "churn_rate": churnRate = try field.double()
            case "churn_path": churnPath = try field.string()
            case "churn_keep": churnKeep = try field.int()
            case "churn_prefix": churnPrefix = try field.string()
            case "churn_merged": churnMerged = try field.bool()
            case "admin_key": adminKey = try field.string()
            case "json": jsonPath = try field.string()
            case "plot": plotPath = try field.string()
            case "server":
                guard value.objectValue != nil else { throw field.typeError("an object") }
            default: break
            }
        }
    }
}

/// One member of a scenario file, with typed readers whose errors name the file and key.
struct ScenarioField {
    let file: String
    let key: String
    let value: JSONValue

    func typeError(_ expected: String) -> BenchError {
        BenchError("scenario \(file): '\(key)' must be \(expected), not \(value.typeName)")
    }
    func string() throws(BenchError) -> String {
        guard let s = value.stringValue else { throw typeError("a string") }
        return s
    }
    func int() throws(BenchError) -> Int {
        guard let i = value.intValue else { throw typeError("an integer") }
        return i
    }
    func double() throws(BenchError) -> Double {
        guard let d = value.doubleValue else { throw typeError("a number") }
        return d
    }
    func bool() throws(BenchError) -> Bool {
        guard let b = value.boolValue else { throw typeError("true or false") }
        return b
    }
}
