/// The keys and values of one sequence, for every layer: `k[layer]` is `[capacity, kvDim]`,
/// row-major, row p holding position p. It grows by doubling, copying what it holds.
///
/// Owned by the engine thread; a sequence's cache is touched only by the forward pass
/// that runs it. `@unchecked Sendable` so that it can be handed to that thread.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let kvDim: Int
    public let maxLength: Int
    public private(set) var capacity: Int
    /// Positions written so far (the next position to fill).
    public var length: Int = 0
    private(set) var k: [UnsafeMutablePointer<Float>]
    private(set) var v: [UnsafeMutablePointer<Float>]

    public init(config: LlamaConfiguration, maxLength: Int, initialCapacity: Int = 64) {
        layerCount = config.layerCount
        kvDim = config.kvDim
        self.maxLength = maxLength
        capacity = max(1, min(initialCapacity, maxLength))
        k = (0..<config.layerCount).map { _ in .allocate(capacity: 1) }
        v = (0..<config.layerCount).map { _ in .allocate(capacity: 1) }
        let cap = capacity
        capacity = 0
        reserve(cap)
    }

    deinit {
        for p in k { p.deallocate() }
        for p in v { p.deallocate() }
    }

    /// Bytes held by this cache.
    public var byteCount: Int { 2 * layerCount * capacity * kvDim * MemoryLayout<Float>.size }

    /// Makes room for positions `0..<n` (n ≤ maxLength).
    public func reserve(_ n: Int) {
        precondition(n <= maxLength, "KVCache.reserve(\(n)) beyond maxLength \(maxLength)")
        guard n > capacity else { return }
        var newCap = max(capacity * 2, 16)
        while newCap < n { newCap *= 2 }
        newCap = min(newCap, maxLength)
        for l in 0..<layerCount {
            let nk = UnsafeMutablePointer<Float>.allocate(capacity: newCap * kvDim)
            let nv = UnsafeMutablePointer<Float>.allocate(capacity: newCap * kvDim)
            if capacity > 0 {
                nk.update(from: k[l], count: capacity * kvDim)
                nv.update(from: v[l], count: capacity * kvDim)
            }
            k[l].deallocate()
            v[l].deallocate()
            k[l] = nk
            v[l] = nv
        }
        capacity = newCap
    }

    /// Makes positions 0..<n a copy of `source`'s, which holds at least n, and forgets the rest
    /// (a cached prompt prefix taken over by a new sequence).
    public func copyPrefix(_ n: Int, from source: KVCache) {
        precondition(source.layerCount == layerCount && source.kvDim == kvDim, "KVCache.copyPrefix: caches of different models")
        precondition(n >= 0 && n <= source.length, "KVCache.copyPrefix(\(n)) beyond the source's \(source.length) positions")
        reserve(n)
        for l in 0..<layerCount {
            k[l].update(from: source.k[l], count: n * kvDim)
            v[l].update(from: source.v[l], count: n * kvDim)
        }
        length = n
    }

    /// Forgets positions from `n` on (for reuse or rollback).
    public func truncate(to n: Int) { length = min(length, max(0, n)) }
}
