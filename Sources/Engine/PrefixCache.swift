import Llama

/// Keys and values of recent prompts, for later prompts that begin with the same tokens under
/// the same adapters (vLLM's automatic prefix caching, llama.cpp's `cache_prompt`): a chat
/// template's system prompt, or the earlier turns of a conversation, are computed once.
///
/// Attention is causal, so positions 0..<c of a cached prompt are exactly what any prompt
/// sharing its first c tokens would compute: any common prefix is usable, not only whole
/// blocks. The key is the adapter set, because an adapter on any projection changes the hidden
/// states that every later layer's keys and values come from. Entries hold their adapters
/// weakly: an adapter removed from the registry and freed makes its entries unusable (and they
/// are dropped), and a new adapter that happens to reuse its address can never match them.
///
/// Bounded in bytes, least recently used out first. Touched only by the engine thread.
final class PrefixCache {
    /// Which adapters, at which scales, computed a prompt.
    struct AdapterKey: Equatable {
        let adapters: [ObjectIdentifier]
        let scales: [Float]
        let merged: ObjectIdentifier?

        init(_ payload: AdapterPayload) {
            adapters = payload.adapters.map { ObjectIdentifier($0.adapter) }
            scales = payload.adapters.map(\.scale)
            merged = payload.merged.map { ObjectIdentifier($0) }
        }
    }

    fileprivate struct WeakObject {
        weak var object: AnyObject?
    }

    final class Entry {
        let tokens: [Int32]
        let key: AdapterKey
        /// Positions 0..<tokens.count.
        let kv: KVCache
        fileprivate let owners: [WeakObject]
        fileprivate var lastUse: UInt64

        fileprivate init(tokens: [Int32], key: AdapterKey, kv: KVCache, owners: [WeakObject], lastUse: UInt64) {
            self.tokens = tokens
            self.key = key
            self.kv = kv
            self.owners = owners
            self.lastUse = lastUse
        }

        /// Whether every adapter it was computed with still exists.
        fileprivate var isUsable: Bool { owners.allSatisfy { $0.object != nil } }
    }

    /// A usable prefix: the first `length` positions of `entry`.
    struct Hit {
        let entry: Entry
        let length: Int
    }

    let capacityBytes: Int
    /// Shorter common prefixes are not worth a lookup hit (nor shorter prompts an entry).
    let minimumTokens: Int
    private var entries: [Entry] = []
    private(set) var byteCount = 0
    private var uses: UInt64 = 0

    init(capacityBytes: Int, minimumTokens: Int = 16) {
        self.capacityBytes = capacityBytes
        self.minimumTokens = max(1, minimumTokens)
    }

    var entryCount: Int { entries.count }

    /// The entry sharing the longest prefix with `prompt` under `adapters`, capped at
    /// `prompt.count - 1` so that the last prompt token still runs (its logits give the first
    /// sampled token); nil below `minimumTokens`.
    func lookup(_ prompt: [Int32], adapters: AdapterPayload) -> Hit? {
        dropUnusable()
        let key = AdapterKey(adapters)
        var best: Hit?
        for e in entries where e.key == key {
            let n = min(commonPrefix(e.tokens, prompt), prompt.count - 1)
            if n >= minimumTokens, n > (best?.length ?? 0) { best = Hit(entry: e, length: n) }
        }
        if let best { uses += 1; best.entry.lastUse = uses }
        return best
    }

    /// Keeps the prompt's positions, copied from `cache` (which holds at least the prompt), unless
    /// an entry already covers them; entries it covers are replaced. `makeCache(n)` makes an
    /// empty cache for n positions.
    func insert(_ prompt: [Int32], adapters: AdapterPayload, from cache: KVCache, makeCache: (Int) -> KVCache) {
        guard prompt.count >= minimumTokens, cache.length >= prompt.count else { return }
        dropUnusable()
        let key = AdapterKey(adapters)
        uses += 1
        if let covering = entries.first(where: { $0.key == key && commonPrefix($0.tokens, prompt) == prompt.count }) {
            covering.lastUse = uses
            return
        }
        let kv = makeCache(prompt.count)
        let bytes = Self.bytes(kv, prompt.count)
        guard bytes <= capacityBytes else { return }
        remove { $0.key == key && commonPrefix($0.tokens, prompt) == $0.tokens.count }
        while byteCount + bytes > capacityBytes, let oldest = entries.min(by: { $0.lastUse < $1.lastUse }) {
            remove { $0 === oldest }
        }
        kv.copyPrefix(prompt.count, from: cache)
        var owners = adapters.adapters.map { WeakObject(object: $0.adapter) }
        if let m = adapters.merged { owners.append(WeakObject(object: m)) }
        entries.append(Entry(tokens: prompt, key: key, kv: kv, owners: owners, lastUse: uses))
        byteCount += bytes
    }

    /// Bytes an entry of `n` positions accounts for: its keys and values.
    private static func bytes(_ kv: KVCache, _ n: Int) -> Int { 2 * kv.layerCount * n * kv.kvDim * MemoryLayout<Float>.size }

    private func remove(where predicate: (Entry) -> Bool) {
        entries.removeAll { e in
            guard predicate(e) else { return false }
            byteCount -= Self.bytes(e.kv, e.tokens.count)
            return true
        }
    }

    private func dropUnusable() { remove { !$0.isUsable } }

    private func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
        let n = min(a.count, b.count)
        var i = 0
        while i < n && a[i] == b[i] { i += 1 }
        return i
    }
}
