// Partial ordering of candidate token ids by logit, without sorting the whole vocabulary.
//
// The rank order is a strict total order: higher logit first, ties broken by lower token id.
// Because it is total, every routine here is deterministic, and "first in rank" is exactly the
// greedy choice (argmax, ties to the lowest id). Logits must be NaN-free (the sampler maps NaN to
// -infinity first).

/// `ids` and `logits` views used by the selection routines. Not `Sendable`: lives inside one call.
struct RankedIDs {
    let ids: UnsafeMutableBufferPointer<Int32>  // [count] candidate token ids, permuted in place
    let logits: UnsafeBufferPointer<Float>  // [vocab], read only

    @inline(__always)
    func ranksBefore(_ a: Int32, _ b: Int32) -> Bool {
        let la = logits[Int(a)], lb = logits[Int(b)]
        return la > lb || (la == lb && a < b)
    }

    @inline(__always)
    private func before(_ i: Int, _ j: Int) -> Bool { ranksBefore(ids[i], ids[j]) }

    /// Rearranges `ids[lo..<hi]` so that `ids[lo..<lo+k]` hold its `k` best-ranked ids, in no
    /// particular order (quickselect with a median-of-three pivot; average O(hi - lo)).
    func select(_ lo: Int, _ hi: Int, k: Int) {
        guard k > 0, k < hi - lo else { return }
        let target = lo + k
        var lo = lo, hi = hi
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2
            // Median of ids[lo], ids[mid], ids[hi-1] goes to hi-1 as the pivot.
            if before(mid, lo) { ids.swapAt(mid, lo) }
            if before(hi - 1, lo) { ids.swapAt(hi - 1, lo) }
            if before(mid, hi - 1) { ids.swapAt(mid, hi - 1) }
            let pivot = ids[hi - 1]
            var store = lo
            for i in lo..<(hi - 1) where ranksBefore(ids[i], pivot) {
                ids.swapAt(i, store)
                store += 1
            }
            ids.swapAt(store, hi - 1)
            if store == target || store == target - 1 { return }
            if store < target { lo = store + 1 } else { hi = store }
        }
    }

    /// Sorts `ids[lo..<hi]` into rank order, in place (heapsort: no allocation, no recursion).
    func sort(_ lo: Int, _ hi: Int) {
        let n = hi - lo
        guard n > 1 else { return }
        for start in stride(from: n / 2 - 1, through: 0, by: -1) { siftDown(lo, start, n) }
        for end in stride(from: n - 1, to: 0, by: -1) {
            ids.swapAt(lo, lo + end)
            siftDown(lo, 0, end)
        }
    }

    /// Writes the `k` best-ranked ids among `0..<n` to `ids[0..<k]`, best first, in one pass over
    /// the ids with a heap of the `k` best so far (most ids lose one comparison with its root).
    /// For small `k` this is much cheaper than `select` over a whole vocabulary.
    func selectBest(among n: Int, k: Int) {
        let k = min(k, n)
        guard k > 0 else { return }
        for i in 0..<k { ids[i] = Int32(i) }
        for start in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(0, start, k) }
        var i = k
        while i < n {
            let candidate = Int32(truncatingIfNeeded: i)
            if ranksBefore(candidate, ids[0]) {
                ids[0] = candidate
                siftDown(0, 0, k)
            }
            i += 1
        }
        sort(0, k)
    }

    /// Heap of `ids[base..<base+end]` whose root ranks last ("max-heap under ranks later"):
    /// restores the heap below `start`.
    @inline(__always)
    private func siftDown(_ base: Int, _ start: Int, _ end: Int) {
        var root = start
        while true {
            var child = 2 * root + 1
            guard child < end else { return }
            if child + 1 < end, before(base + child, base + child + 1) { child += 1 }
            guard before(base + root, base + child) else { return }
            ids.swapAt(base + root, base + child)
            root = child
        }
    }
}
