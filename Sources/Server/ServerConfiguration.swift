import Foundation
import JSON

/// Everything the server can be told, with its default. Read from a JSON file (config/serve.json
/// documents every key) and then overridden by command-line flags.
public struct ServerConfiguration: Sendable, Equatable {
    // Network
    public var host = "127.0.0.1"
    public var port = 8080
    // Model and engine
    public var model: String? = nil              // nil: the default model in models/
    public var threads = 2
    public var batchTokenBudget = 128            // tokens per engine step (decode + prompt chunks); see config/README.md
    public var maxRunningSequences = 32
    public var maxQueuedRequests = 256           // past it: 429
    public var prefixCacheMB = 64                // 0: no prefix caching
    public var contextSize = 0                   // 0: the model's own context length
    public var defaultMaxTokens = 512            // when a request gives no max_tokens
    // Adapters
    public var adaptersDirectory = "adapters"
    public var adapterRoots: [String] = []       // further folders runtime loads may read from
    public var adapterMemoryBudgetMB = 1024
    // HTTP limits
    public var maxBodyBytes = 8 << 20
    public var maxHeaderBytes = 16 << 10
    public var headerTimeoutSeconds = 10.0
    public var bodyTimeoutSeconds = 30.0         // longest pause while a request body arrives
    public var idleTimeoutSeconds = 60.0
    public var maxConnections = 1024
    public var shutdownDeadlineSeconds = 30.0
    // Access
    public var apiKeys: [String] = []            // empty: inference needs no key
    public var adminKeys: [String] = []          // empty: admin endpoints accept the API keys (or none)
    // Logging
    public var logLevel = "info"

    public init() {}

    /// The keys of the file, in the order config/serve.json documents them.
    public static let keys = [
        "host", "port", "model", "threads", "batch_token_budget", "max_running_sequences", "max_queued_requests",
        "prefix_cache_mb", "context_size", "default_max_tokens", "adapters_dir", "adapter_roots", "adapter_memory_budget_mb",
        "max_body_bytes", "max_header_bytes", "header_timeout_s", "body_timeout_s", "idle_timeout_s", "max_connections",
        "shutdown_deadline_s", "api_keys", "admin_keys", "log_level",
    ]

    /// Reads a configuration file; unknown keys and wrong types are errors naming the key.
    public init(file path: String) throws(ConfigurationError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("cannot read configuration file \(path)")
        }
        let root: JSONValue
        do { root = try JSONParser.parse([UInt8](data)) } catch {
            throw ConfigurationError("\(path): invalid JSON: \(error)")
        }
        guard let object = root.objectValue else { throw ConfigurationError("\(path): the top level must be an object") }
        self.init()
        for (key, value) in object.members {
            try apply(key: key, value: value, file: path)
        }
        try validate()
    }

    private mutating func apply(key: String, value: JSONValue, file: String) throws(ConfigurationError) {
        func int() throws(ConfigurationError) -> Int {
            guard let v = value.intValue else { throw ConfigurationError("\(file): '\(key)' must be an integer") }
            return v
        }
        func double() throws(ConfigurationError) -> Double {
            guard let v = value.doubleValue else { throw ConfigurationError("\(file): '\(key)' must be a number") }
            return v
        }
        func string() throws(ConfigurationError) -> String {
            guard let v = value.stringValue else { throw ConfigurationError("\(file): '\(key)' must be a string") }
            return v
        }
        func strings() throws(ConfigurationError) -> [String] {
            guard let a = value.arrayValue else { throw ConfigurationError("\(file): '\(key)' must be a list of strings") }
            var out: [String] = []
            for v in a {
                guard let s = v.stringValue else { throw ConfigurationError("\(file): '\(key)' must be a list of strings") }
                out.append(s)
            }
            return out
        }
        switch key {
        case "host": host = try string()
        case "port": port = try int()
        case "model": model = value.isNull ? nil : try string()
        case "threads": threads = try int()
        case "batch_token_budget": batchTokenBudget = try int()
        case "max_running_sequences": maxRunningSequences = try int()
        case "max_queued_requests": maxQueuedRequests = try int()
        case "prefix_cache_mb": prefixCacheMB = try int()
        case "context_size": contextSize = try int()
        case "default_max_tokens": defaultMaxTokens = try int()
        case "adapters_dir": adaptersDirectory = try string()
        case "adapter_roots": adapterRoots = try strings()
        case "adapter_memory_budget_mb": adapterMemoryBudgetMB = try int()
        case "max_body_bytes": maxBodyBytes = try int()
        case "max_header_bytes": maxHeaderBytes = try int()
        case "header_timeout_s": headerTimeoutSeconds = try double()
        case "body_timeout_s": bodyTimeoutSeconds = try double()
        case "idle_timeout_s": idleTimeoutSeconds = try double()
        case "max_connections": maxConnections = try int()
        case "shutdown_deadline_s": shutdownDeadlineSeconds = try double()
        case "api_keys": apiKeys = try strings()
        case "admin_keys": adminKeys = try strings()
        case "log_level": logLevel = try string()
        default:
            if key.hasPrefix("_") { return }   // "_comment" and the like
            throw ConfigurationError("\(file): unknown key '\(key)' (known: \(Self.keys.joined(separator: ", ")))")
        }
    }

    /// Range checks, so a bad value fails at start-up with its name rather than later.
    public func validate() throws(ConfigurationError) {
        func check(_ ok: Bool, _ message: String) throws(ConfigurationError) { if !ok { throw ConfigurationError(message) } }
        try check((0...65535).contains(port), "port must be 0...65535 (got \(port))")
        try check((1...256).contains(threads), "threads must be 1...256 (got \(threads))")
        try check(batchTokenBudget >= 1, "batch_token_budget must be at least 1")
        try check(maxRunningSequences >= 1, "max_running_sequences must be at least 1")
        try check(maxQueuedRequests >= 0, "max_queued_requests must not be negative")
        try check((0...65536).contains(prefixCacheMB), "prefix_cache_mb must be 0...65536 (0: off)")
        try check(contextSize >= 0, "context_size must not be negative (0: the model's)")
        try check(defaultMaxTokens >= 1, "default_max_tokens must be at least 1")
        try check(adapterMemoryBudgetMB >= 1, "adapter_memory_budget_mb must be at least 1")
        try check(maxBodyBytes >= 1024, "max_body_bytes must be at least 1024")
        try check(maxHeaderBytes >= 1024, "max_header_bytes must be at least 1024")
        try check(headerTimeoutSeconds > 0 && bodyTimeoutSeconds > 0 && idleTimeoutSeconds > 0, "timeouts must be positive")
        try check(maxConnections >= 1, "max_connections must be at least 1")
        try check(shutdownDeadlineSeconds >= 0, "shutdown_deadline_s must not be negative")
        try check(["debug", "info", "warning", "error"].contains(logLevel), "log_level must be debug, info, warning or error")
    }
}

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ message: String) { description = message }
}
