import Llama
import Synchronization

/// An adapter in the form the forward pass uses.
public enum ResidentAdapter: Sendable {
    /// Low-rank deltas added beside the shared base weights.
    case unmerged(LoRAAdapter)
    /// Dense replacement weights for the targeted projections.
    case merged(MergedWeights)

    /// Bytes of memory held (A and B, or the dense f32 copies).
    public var byteCount: Int {
        switch self {
        case .unmerged(let adapter): adapter.byteCount
        case .merged(let weights): weights.byteCount
        }
    }
}

/// A registered adapter held by one request. While a handle lives its weights stay in memory, even if the adapter
/// is removed from the registry or would otherwise be evicted. Call `release()` when the request ends (dropping the
/// last reference releases too); release is idempotent.
public final class AdapterHandle: Sendable {
    public let name: String
    public let adapter: ResidentAdapter
    private let registry: AdapterRegistry
    private let entryID: UInt64
    private let released = Atomic<Bool>(false)

    init(name: String, adapter: ResidentAdapter, registry: AdapterRegistry, entryID: UInt64) {
        self.name = name
        self.adapter = adapter
        self.registry = registry
        self.entryID = entryID
    }

    deinit { release() }

    public var isMerged: Bool {
        if case .merged = adapter { return true }
        return false
    }

    /// Marks the request done; the registry may then evict the adapter when memory is short.
    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        registry.release(name: name, entryID: entryID)
    }

    /// Runs `rows` of `batch` with this adapter. `scale` multiplies the adapter's own `alpha / r` for unmerged
    /// adapters; a merged adapter has its scale folded in and ignores it.
    public func apply(to batch: inout Batch, rows: Range<Int>, scale: Float = 1) {
        switch adapter {
        case .unmerged(let lora): batch.apply(lora, scale: scale, rows: rows)
        case .merged(let weights): batch.apply(weights, rows: rows)
        }
    }
}
