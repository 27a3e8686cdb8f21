import Foundation
import Llama
import Tensor

/// Measures the model runtime without HTTP: prompt processing, single-stream decode and
/// batched decode, each on fresh caches, timing only the forward passes.
public struct RuntimeBenchmark {
    public struct Result: Sendable {
        public var name: String
        public var tokens: Int
        public var seconds: Double
        public var tokensPerSecond: Double { Double(tokens) / seconds }
    }

    public let model: LlamaModel
    public init(model: LlamaModel) { self.model = model }

    /// Arbitrary but valid ids, deterministic.
    func tokens(_ n: Int, seed: Int) -> [Int32] {
        (0..<n).map { Int32(100 + (($0 &* 7919 &+ seed &* 104_729) % 20_000)) }
    }

    /// One forward pass over a `length`-token prompt (logits of the last row only), best of `repeats`.
    public func promptProcessing(length: Int, repeats: Int = 3) throws -> Result {
        let ws = Workspace()
        var logits: [Float] = []
        var best = Double.infinity
        for r in 0..<repeats {
            let cache = model.makeCache(maxLength: length)
            var batch = Batch()
            let rows = batch.add(tokens(length, seed: r), startingAt: 0, cache: cache, logits: false)
            batch.logitRows = [rows.upperBound - 1]
            let t0 = DispatchTime.now().uptimeNanoseconds
            try model.forward(batch, workspace: ws, logits: &logits)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return Result(name: "prompt processing (\(length) tokens)", tokens: length, seconds: best)
    }

    /// Tokens cached per stream before decode starts unless said (every figure in bench/README before session 7).
    public static let defaultContext = 16

    /// `streams` sequences, each with a `context`-token prompt already cached, decode `steps`
    /// tokens together: one batched forward pass per step with one token from each.
    public func decode(streams: Int, steps: Int, context: Int = defaultContext, adapters: AdapterMix = .none) throws -> Result {
        let ws = Workspace()
        var logits: [Float] = []
        let caches = (0..<streams).map { _ in model.makeCache(maxLength: context + steps + 1) }
        for (s, cache) in caches.enumerated() {
            var batch = Batch()
            batch.add(tokens(context, seed: s), startingAt: 0, cache: cache, logits: false)
            try model.forward(batch, workspace: ws, logits: &logits)
        }
        var next = [Int32](repeating: 1, count: streams)
        let t0 = DispatchTime.now().uptimeNanoseconds
        for step in 0..<steps {
            var batch = Batch()
            for s in 0..<streams {
                let rows = batch.add([next[s]], startingAt: context + step, cache: caches[s], logits: true)
                switch adapters {
                case .none: break
                case .unmerged(let list, _): if let a = list[s % list.count] { batch.apply(a, rows: rows) }
                case .merged(let list, _): if let w = list[s % list.count] { batch.apply(w, rows: rows) }
                }
            }
            try model.forward(batch, workspace: ws, logits: &logits)
            let vocab = model.config.vocabSize
            logits.withUnsafeBufferPointer { l in
                for s in 0..<streams {
                    var best = 0
                    for v in 1..<vocab where l[s * vocab + v] > l[s * vocab + best] { best = v }
                    next[s] = Int32(best)
                }
            }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        var name = streams == 1 ? "generation, 1 stream (\(steps) tokens)" : "batched decode, \(streams) streams (\(steps) steps)"
        if context != Self.defaultContext { name += ", \(context) tokens cached" }
        if case .none = adapters {} else { name += ", \(adapters.label)" }
        return Result(name: name, tokens: streams * steps, seconds: seconds)
    }
}

/// Which adapter each decoding stream runs with (stream s takes entry s mod count; nil = base).
public enum AdapterMix: Sendable {
    case none
    case unmerged([LoRAAdapter?], label: String)
    case merged([MergedWeights?], label: String)

    var label: String {
        switch self {
        case .none: "base"
        case .unmerged(_, let label), .merged(_, let label): label
        }
    }
}

extension RuntimeBenchmark {
    /// The multi-token kernels this process uses ("avx512" or "avx2"), for the record.
    public static var kernelName: String { AMXTiles.available ? "amx+" + CPUFeatures.kernelName : CPUFeatures.kernelName }

    /// Products of `tokens` activation rows with one weight matrix, repeated on one thread:
    /// with a matrix that fits in cache this measures the kernel's arithmetic, not memory.
    /// Returns the time per 32-weight block and token.
    public func matrixProduct(layer: Int, _ p: Projection, tokens: Int, repeats: Int) -> (gigabytesPerSecond: Double, nanosecondsPerBlockToken: Double) {
        let w = model.weights.layers[layer].weight(p)
        let x = (0..<tokens * w.cols).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
        var y = [Float](repeating: 0, count: tokens * w.rows)
        let runner = MatmulRunner(pool: ThreadPool(threads: 1), maxCols: w.cols)
        let t0 = DispatchTime.now().uptimeNanoseconds
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                for _ in 0..<repeats { runner.matmul(w, input: xb.baseAddress!, output: yb.baseAddress!, n: tokens) }
            }
        }
        let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return (Double(w.byteCount * repeats) / s / 1e9, s * 1e9 / Double(w.rows * w.cols / 32 * tokens * repeats))
    }

    /// The same products over every projection of every layer in turn, one thread: each matrix is read from
    /// memory (the model is larger than the caches), as in a decode step, where `matrixProduct` keeps one in cache.
    public func allProjections(tokens: Int, repeats: Int) -> (gigabytesPerSecond: Double, nanosecondsPerBlockToken: Double) {
        let matrices = model.weights.layers.flatMap { layer in Projection.allCases.map { layer.weight($0) } }
        let widest = matrices.map(\.cols).max() ?? 0
        let x = (0..<tokens * widest).map { Float(($0 * 7919) % 1000) / 1000 - 0.5 }
        var y = [Float](repeating: 0, count: tokens * (matrices.map(\.rows).max() ?? 0))
        let runner = MatmulRunner(pool: ThreadPool(threads: 1), maxCols: widest)
        let t0 = DispatchTime.now().uptimeNanoseconds
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
                for _ in 0..<repeats {
                    for w in matrices { runner.matmul(w, input: xb.baseAddress!, output: yb.baseAddress!, n: tokens) }
                }
            }
        }
        let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let bytes = matrices.reduce(0) { $0 + $1.byteCount }, blocks = matrices.reduce(0) { $0 + $1.rows * $1.cols / 32 }
        return (Double(bytes * repeats) / s / 1e9, s * 1e9 / Double(blocks * tokens * repeats))
    }
}
