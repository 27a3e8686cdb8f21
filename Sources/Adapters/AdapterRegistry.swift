import Foundation
import Llama
import Synchronization

/// What `AdapterRegistry.list()` reports about one adapter.
public struct AdapterInfo: Sendable, Equatable {
    public var name: String
    /// Canonical path of the folder or `.gguf` file.
    public var path: String
    public var format: AdapterFormat
    public var rank: Int
    public var alpha: Double
    /// The adapter-level scale: `alpha / r`, `alpha / sqrt(r)` with rsLoRA (1 for a GGUF LoRA without alpha).
    /// Modules named in `rank_pattern` / `alpha_pattern` have their own.
    public var scale: Float
    /// PEFT module names (`q_proj`, …) in projection order.
    public var targets: [String]
    /// Bytes on disk.
    public var fileBytes: Int
    /// Bytes of memory the adapter holds when resident (deltas, or dense merged weights).
    public var sizeBytes: Int
    public var resident: Bool
    public var merged: Bool
    /// Successful lookups so far.
    public var requestsServed: Int
    /// Handles not yet released.
    public var activeRequests: Int
}

/// What a directory scan did with one entry.
public struct AdapterScanResult: Sendable {
    public var name: String
    public var path: String
    public var outcome: Result<AdapterInfo, AdapterRegistryError>
}

/// The adapters a server can use, by name. Thread-safe.
///
/// - `register` loads, validates and converts on the caller's thread; only the final insert takes the lock, so a
///   slow load never stalls `lookup` from the engine. On any error nothing is registered.
/// - `lookup` returns a retained `AdapterHandle`. `remove` makes later lookups fail at once; requests that hold a
///   handle keep the weights alive until they release it.
/// - With a resident budget, idle adapters (no live handle) are evicted least recently used first whenever the
///   resident total exceeds it; they stay registered and are reloaded (again on the caller's thread) by the next
///   lookup. Adapters in use are never evicted, so the total may exceed the budget while they are busy.
/// - Paths are confined to the configured roots (`AdapterRoots`); reloads check again.
public final class AdapterRegistry: Sendable {
    public let roots: AdapterRoots
    /// Resident bytes allowed before idle adapters are evicted; nil for no limit.
    public let residentBudget: Int?
    public let config: LlamaConfiguration
    private let weights: LlamaWeights
    private let state = Mutex(State())

    /// - Parameters:
    ///   - config, weights: the base model; merged adapters copy and modify its weights.
    ///   - roots: the folders adapters may come from (each must exist).
    ///   - residentBudget: bytes; nil for no limit.
    public init(config: LlamaConfiguration, weights: LlamaWeights, roots: [String],
                residentBudget: Int? = nil) throws(AdapterRegistryError) {
        self.config = config
        self.weights = weights
        self.roots = try AdapterRoots(roots)
        if let residentBudget, residentBudget < 0 { throw .badBudget(residentBudget) }
        self.residentBudget = residentBudget
    }

    public convenience init(model: LlamaModel, roots: [String], residentBudget: Int? = nil) throws(AdapterRegistryError) {
        try self.init(config: model.config, weights: model.weights, roots: roots, residentBudget: residentBudget)
    }

    // MARK: - State (under the lock)

    struct Entry {
        let id: UInt64
        let name: String
        let path: String
        let merged: Bool
        var file: FileSummary
        var sizeBytes: Int
        var payload: ResidentAdapter?
        var lastUsed: UInt64
        var active = 0
        var served = 0
    }

    struct FileSummary {
        var format: AdapterFormat
        var rank: Int
        var alpha: Double
        var scale: Float
        var targets: [String]
        var fileBytes: Int

        init(_ file: LoRAAdapterFile) {
            format = file.format
            rank = file.rank
            alpha = file.alpha
            if file.format == .gguf && file.alpha == 0 {
                scale = 1
            } else {
                scale = Float(file.useRSLoRA ? file.alpha / Double(file.rank).squareRoot() : file.alpha / Double(file.rank))
            }
            targets = file.targets.sorted().map(\.rawValue)
            fileBytes = file.byteSize
        }
    }

    struct State {
        var entries: [String: Entry] = [:]
        var residentBytes = 0
        var clock: UInt64 = 0
        var nextID: UInt64 = 1

        mutating func tick() -> UInt64 {
            clock += 1
            return clock
        }

        /// Evicts idle resident adapters, least recently used first, until the total fits `budget`.
        /// Returns what was evicted so the caller can let it go after unlocking.
        mutating func evict(toFit budget: Int?, sparing spared: String?) -> [ResidentAdapter] {
            guard let budget else { return [] }
            var evicted: [ResidentAdapter] = []
            while residentBytes > budget {
                let idle = entries.values.filter { $0.payload != nil && $0.active == 0 && $0.name != spared }
                guard let victim = idle.min(by: { $0.lastUsed < $1.lastUsed }), let payload = victim.payload else { break }
                entries[victim.name]?.payload = nil
                residentBytes -= victim.sizeBytes
                evicted.append(payload)
            }
            return evicted
        }

        func info(_ e: Entry) -> AdapterInfo {
            AdapterInfo(name: e.name, path: e.path, format: e.file.format, rank: e.file.rank, alpha: e.file.alpha,
                        scale: e.file.scale, targets: e.file.targets, fileBytes: e.file.fileBytes, sizeBytes: e.sizeBytes,
                        resident: e.payload != nil, merged: e.merged, requestsServed: e.served, activeRequests: e.active)
        }
    }

    // MARK: - Public API

    /// Loads, validates and converts the adapter at `path` (a PEFT folder or a GGUF LoRA file inside the roots;
    /// relative paths are looked up under each root) and registers it as `name`. The adapter is resident afterwards.
    @discardableResult
    public func register(name: String, path: String, merged: Bool = false) throws(AdapterRegistryError) -> AdapterInfo {
        try Self.validate(name: name)
        let resolved = try roots.resolve(path)
        if state.withLock({ $0.entries[name] != nil }) { throw .alreadyRegistered(name: name) }

        let (file, payload) = try load(name: name, path: resolved, merged: merged)   // no lock held
        let size = payload.byteCount
        if let residentBudget, size > residentBudget {
            throw .overBudget(name: name, bytes: size, budget: residentBudget)
        }
        let budget = residentBudget
        let (info, evicted) = try state.withLock { s throws(AdapterRegistryError) -> (AdapterInfo, [ResidentAdapter]) in
            guard s.entries[name] == nil else { throw .alreadyRegistered(name: name) }
            let entry = Entry(id: s.nextID, name: name, path: resolved, merged: merged, file: FileSummary(file),
                              sizeBytes: size, payload: payload, lastUsed: s.tick())
            s.nextID += 1
            s.entries[name] = entry
            s.residentBytes += size
            let evicted = s.evict(toFit: budget, sparing: name)
            return (s.info(s.entries[name] ?? entry), evicted)
        }
        _ = evicted   // deallocated here, outside the lock
        return info
    }

    /// Unregisters `name`. Later lookups fail at once; live handles keep their weights until released.
    public func remove(name: String) throws(AdapterRegistryError) {
        let removed = try state.withLock { s throws(AdapterRegistryError) -> Entry in
            guard let entry = s.entries.removeValue(forKey: name) else { throw .notFound(name: name) }
            if entry.payload != nil { s.residentBytes -= entry.sizeBytes }
            return entry
        }
        _ = removed
    }

    /// A handle on `name` for one request, reloading the adapter first if it was evicted (on this thread, without
    /// holding the lock). Throws `.notFound` at once for an unknown or removed name. Concurrent lookups of the same
    /// evicted adapter may each load it; the first to finish installs its copy and the others use that one.
    public func lookup(_ name: String) throws(AdapterRegistryError) -> AdapterHandle {
        enum Step { case ready(ResidentAdapter, UInt64), reload(String, Bool, UInt64) }
        let step = try state.withLock { s throws(AdapterRegistryError) -> Step in
            guard var entry = s.entries[name] else { throw .notFound(name: name) }
            guard let payload = entry.payload else { return .reload(entry.path, entry.merged, entry.id) }
            entry.active += 1
            entry.served += 1
            entry.lastUsed = s.tick()
            s.entries[name] = entry
            return .ready(payload, entry.id)
        }
        switch step {
        case .ready(let payload, let id):
            return AdapterHandle(name: name, adapter: payload, registry: self, entryID: id)
        case .reload(let path, let merged, let id):
            // Check the confinement again: the path was canonical when registered, but links may have changed since.
            let resolved = try roots.resolve(path)
            let (file, loaded) = try load(name: name, path: resolved, merged: merged)
            let budget = residentBudget
            let (payload, evicted) = try state.withLock { s throws(AdapterRegistryError) -> (ResidentAdapter, [ResidentAdapter]) in
                guard var entry = s.entries[name], entry.id == id else { throw .notFound(name: name) }
                if entry.payload == nil {   // else another lookup reloaded it first: use that copy
                    entry.payload = loaded
                    entry.file = FileSummary(file)
                    entry.sizeBytes = loaded.byteCount
                    s.residentBytes += entry.sizeBytes
                }
                entry.active += 1
                entry.served += 1
                entry.lastUsed = s.tick()
                s.entries[name] = entry
                return (entry.payload ?? loaded, s.evict(toFit: budget, sparing: name))
            }
            _ = evicted
            return AdapterHandle(name: name, adapter: payload, registry: self, entryID: id)
        }
    }

    /// Every registered adapter, sorted by name.
    public func list() -> [AdapterInfo] {
        state.withLock { s in s.entries.values.sorted { $0.name < $1.name }.map { s.info($0) } }
    }

    /// One adapter's row of `list()`.
    public func info(_ name: String) -> AdapterInfo? {
        state.withLock { s in s.entries[name].map { s.info($0) } }
    }

    /// Bytes held by resident adapters.
    public var residentBytes: Int { state.withLock { $0.residentBytes } }

    /// Registers every adapter in `directory` (inside the roots): each sub-folder holding `adapter_config.json`
    /// under the folder's name, and each `*.gguf` file under its name without the extension. Hidden entries and
    /// other files are skipped. One bad adapter does not stop the scan: each result says what happened.
    public func scan(directory: String, merged: Bool = false) throws(AdapterRegistryError) -> [AdapterScanResult] {
        let folder = try roots.resolve(directory)
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        } catch {
            throw .noSuchPath(directory)
        }
        var results: [AdapterScanResult] = []
        for entry in names where !entry.hasPrefix(".") {
            let path = folder + "/" + entry
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            let name: String
            if isDirectory.boolValue {
                guard FileManager.default.fileExists(atPath: path + "/" + PEFTLoader.configFile) else { continue }
                name = entry
            } else if entry.lowercased().hasSuffix(".gguf") {
                name = String(entry.dropLast(".gguf".count))
            } else {
                continue
            }
            do {
                results.append(AdapterScanResult(name: name, path: path, outcome: .success(try register(name: name, path: path, merged: merged))))
            } catch {
                results.append(AdapterScanResult(name: name, path: path, outcome: .failure(error)))
            }
        }
        return results
    }

    // MARK: - Internals

    func release(name: String, entryID: UInt64) {
        let budget = residentBudget
        let evicted = state.withLock { s -> [ResidentAdapter] in
            guard var entry = s.entries[name], entry.id == entryID else { return [] }
            entry.active -= 1
            entry.lastUsed = s.tick()
            s.entries[name] = entry
            return s.evict(toFit: budget, sparing: nil)
        }
        _ = evicted
    }

    private func load(name: String, path: String, merged: Bool) throws(AdapterRegistryError) -> (LoRAAdapterFile, ResidentAdapter) {
        do {
            let file = try AdapterLoader.load(path: path, name: name, base: BaseModelShape(config))
            let payload: ResidentAdapter = merged
                ? .merged(try file.makeMergedWeights(base: weights, config: config))
                : .unmerged(try file.makeLoRAAdapter(for: config))
            return (file, payload)
        } catch {
            throw .invalidAdapter(error)
        }
    }

    static func validate(name: String) throws(AdapterRegistryError) {
        guard !name.isEmpty else { throw .invalidName(name, reason: "empty") }
        guard name.utf8.count <= 128 else { throw .invalidName(name, reason: "longer than 128 bytes") }
        guard !name.hasPrefix(".") else { throw .invalidName(name, reason: "starts with '.'") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:+@")
        if let bad = name.first(where: { !allowed.contains($0) }) {
            throw .invalidName(name, reason: "character '\(bad)' is not allowed (letters, digits and -_.:+@ only)")
        }
    }
}
