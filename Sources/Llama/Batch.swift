/// One step of work for the forward pass: tokens from one or more sequences, each at its
/// own position with its own KV cache. A sequence's tokens must be consecutive rows with
/// consecutive positions (a prefill chunk, or one decode token).
public struct Batch {
    public var tokens: [Int32] = []
    public var positions: [Int] = []
    public var caches: [KVCache] = []
    /// Rows whose logits are wanted; the output holds them in this order.
    public var logitRows: [Int] = []
    /// Unmerged adapters: each group lists its rows and a scale per row.
    public var adapters: [AdapterGroup] = []
    /// Merged adapters: rows that use replacement weights.
    public var merged: [MergedGroup] = []

    public init() {}

    public var count: Int { tokens.count }

    /// Appends the tokens of one sequence starting at `position`; with `logits`, asks for
    /// the logits of its last token. Returns the rows used.
    @discardableResult
    public mutating func add(_ tokens: some Collection<Int32>, startingAt position: Int, cache: KVCache, logits: Bool) -> Range<Int> {
        let start = self.tokens.count
        for (i, t) in tokens.enumerated() {
            self.tokens.append(t)
            positions.append(position + i)
            caches.append(cache)
        }
        if logits && !tokens.isEmpty { logitRows.append(self.tokens.count - 1) }
        return start..<self.tokens.count
    }

    /// Applies `adapter` at `scale` to `rows`.
    public mutating func apply(_ adapter: LoRAAdapter, scale: Float = 1, rows: Range<Int>) {
        if let i = adapters.firstIndex(where: { $0.adapter === adapter }) {
            adapters[i].rows.append(contentsOf: rows)
            adapters[i].scales.append(contentsOf: repeatElement(scale, count: rows.count))
        } else {
            adapters.append(AdapterGroup(adapter: adapter, rows: Array(rows), scales: Array(repeating: scale, count: rows.count)))
        }
    }

    /// Runs `rows` with the merged weights `weights`.
    public mutating func apply(_ weights: MergedWeights, rows: Range<Int>) {
        if let i = merged.firstIndex(where: { $0.weights === weights }) {
            merged[i].rows.append(contentsOf: rows)
        } else {
            merged.append(MergedGroup(weights: weights, rows: Array(rows)))
        }
    }
}

public struct AdapterGroup {
    public let adapter: LoRAAdapter
    public var rows: [Int]
    public var scales: [Float]
}

public struct MergedGroup {
    public let weights: MergedWeights
    public var rows: [Int]
}
