import Foundation

/// The merge step of byte-level BPE, over token ids: a piece starts as one token per byte and
/// adjacent pairs are merged, lowest merge rank first and, among equal ranks, leftmost first
/// (the order of Hugging Face tokenizers' `Word::merge_all`), until no pair has a merge.
///
/// A byte whose single-byte token is missing from the vocabulary (SmolLM2 lacks 0x04, 0xF1, ...)
/// is dropped, as both Hugging Face (a BPE without `unk_token`) and llama.cpp do.
final class BPEModel: Sendable {
    /// `byteToken[b]`: the token of the single byte `b`, or -1 when the vocabulary lacks it.
    let byteToken: [Int32]
    /// `(left << 32 | right)` → `(rank << 32 | merged)`.
    let merges: [UInt64: UInt64]
    /// With `ignore_merges`: the token of every vocabulary byte string.
    let wholeTokens: [ArraySlice<UInt8>: Int32]?
    let cache = WordCache()

    init(byteToken: [Int32], merges: [UInt64: UInt64], wholeTokens: [ArraySlice<UInt8>: Int32]?) {
        self.byteToken = byteToken
        self.merges = merges
        self.wholeTokens = wholeTokens
    }

    @inline(__always) static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Appends the tokens of one pre-tokenized piece to `out`.
    func encode(_ word: ArraySlice<UInt8>, into out: inout [Int32]) {
        if word.count == 1 {
            let id = byteToken[Int(word.first!)]
            if id >= 0 { out.append(id) }
            return
        }
        if let wholeTokens, let id = wholeTokens[word] {
            out.append(id)
            return
        }
        let cacheable = word.count <= WordCache.maxWordBytes
        if cacheable, let hit = cache[word] {
            out.append(contentsOf: hit)
            return
        }
        let start = out.count
        merge(word, into: &out)
        if cacheable { cache[word] = Array(out[start...]) }
    }

    /// The merge loop, uncached.
    func merge(_ word: ArraySlice<UInt8>, into out: inout [Int32]) {
        var sym = [Int32]()  // [n] token id of each symbol; -1 once merged into its left neighbour
        sym.reserveCapacity(word.count)
        for b in word {
            let id = byteToken[Int(b)]
            if id >= 0 { sym.append(id) }
        }
        let n = sym.count
        guard n > 1 else { out.append(contentsOf: sym); return }
        var prev = [Int32](unsafeUninitializedCapacity: n) { buf, count in  // [n]
            for i in 0..<n { buf[i] = Int32(i) - 1 }
            count = n
        }
        var next = [Int32](unsafeUninitializedCapacity: n) { buf, count in  // [n], -1 at the end
            for i in 0..<n { buf[i] = i + 1 < n ? Int32(i + 1) : -1 }
            count = n
        }
        var heap = MinHeap()  // entries: rank << 32 | position of the left symbol
        heap.reserve(n)
        for i in 0..<(n - 1) {
            if let m = merges[Self.pairKey(sym[i], sym[i + 1])] {
                heap.push(m & 0xFFFF_FFFF_0000_0000 | UInt64(i))
            }
        }
        while let top = heap.pop() {
            let pos = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            guard sym[pos] >= 0 else { continue }
            let right = Int(next[pos])
            guard right >= 0,
                  let m = merges[Self.pairKey(sym[pos], sym[right])], m >> 32 == rank
            else { continue }  // a stale entry: one side has merged since it was queued
            sym[pos] = Int32(truncatingIfNeeded: m)
            sym[right] = -1
            let after = next[right]
            next[pos] = after
            if after >= 0 { prev[Int(after)] = Int32(pos) }
            let before = prev[pos]
            if before >= 0, let m = merges[Self.pairKey(sym[Int(before)], sym[pos])] {
                heap.push(m & 0xFFFF_FFFF_0000_0000 | UInt64(before))
            }
            if after >= 0, let m = merges[Self.pairKey(sym[pos], sym[Int(after)])] {
                heap.push(m & 0xFFFF_FFFF_0000_0000 | UInt64(pos))
            }
        }
        var i = 0
        while i >= 0 {
            out.append(sym[i])
            i = Int(next[i])
        }
    }
}

/// A binary min-heap of packed `UInt64` keys.
struct MinHeap {
    private var items: [UInt64] = []

    mutating func reserve(_ n: Int) { items.reserveCapacity(n) }

    mutating func push(_ x: UInt64) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent] <= x { break }
            items[i] = items[parent]
            i = parent
        }
        items[i] = x
    }

    mutating func pop() -> UInt64? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        let n = items.count
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            let r = l + 1
            let c = r < n && items[r] < items[l] ? r : l
            if items[c] >= last { break }
            items[i] = items[c]
            i = c
        }
        items[i] = last
        return top
    }
}

/// Tokens of recently seen pieces, shared by every thread that encodes with one tokenizer.
/// `@unchecked Sendable`: the dictionary is only touched while `lock` is held.
final class WordCache: @unchecked Sendable {
    static let maxWordBytes = 256
    static let capacity = 1 << 16

    private let lock = NSLock()
    private var entries: [ArraySlice<UInt8>: [Int32]] = [:]

    subscript(word: ArraySlice<UInt8>) -> [Int32]? {
        get {
            lock.lock(); defer { lock.unlock() }
            return entries[word]
        }
        set {
            // Copy the key so the cache does not keep the caller's whole text alive.
            let key = Array(word)[...]
            lock.lock(); defer { lock.unlock() }
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = newValue
        }
    }
}
