import Foundation
import GGUF
import MatrixAMX
import Tensor

/// A weight matrix `[rows = out features, cols = in features]`, row-major: either quantized
/// blocks inside the memory-mapped GGUF (the base model: no copy, so loading touches no
/// fresh memory) or owned f32 values (merged adapters, tiny test models).
///
/// `@unchecked Sendable`: the storage is written once while loading and only read after.
public final class WeightMatrix: @unchecked Sendable {
    public enum Storage {
        /// ggml blocks of `type`, `rowBytes` per row; `owner` keeps the mapping alive.
        case quantized(type: GGMLType, blocks: UnsafeRawPointer, rowBytes: Int, owner: AnyObject)
        /// f32 values, `[rows, cols]`.
        case f32(UnsafeMutableBufferPointer<Float>)
    }

    public let rows: Int
    public let cols: Int
    public let storage: Storage
    /// This matrix in MatrixAMX's tile layout (`tileWeights`): made once (at engine start, at a merged adapter's load,
    /// or by the first tile product; never by the trainer, which dequantizes) and kept, as many bytes again as the
    /// storage.
    private var tileLayout: UnsafeMutableRawPointer?
    private let tileLayoutLock = NSLock()

    /// A matrix that owns a copy of `values` (row-major `[rows, cols]`).
    public init(rows: Int, cols: Int, copying values: [Float]) {
        precondition(values.count == rows * cols, "WeightMatrix: \(values.count) values for [\(rows), \(cols)]")
        let buf = UnsafeMutableBufferPointer<Float>.allocate(capacity: rows * cols)
        _ = buf.initialize(from: values)
        self.rows = rows
        self.cols = cols
        storage = .f32(buf)
    }

    /// A GGUF tensor stored `[ne0 = cols, ne1 = rows]`, used in place.
    public init(file: GGUFFile, tensor info: GGUFTensorInfo) throws(LlamaError) {
        guard info.shape.count == 2 else { throw LlamaError("tensor '\(info.name)' is not a matrix: shape \(info.shape)") }
        guard info.type.canDequantize else {
            throw LlamaError("tensor '\(info.name)' has type \(info.type); supported: f32, f16, bf16, q4_0, q4_1, q8_0")
        }
        cols = info.shape[0]
        rows = info.shape[1]
        storage = .quantized(type: info.type, blocks: file.data(of: info).baseAddress!,
                             rowBytes: info.byteCount / rows, owner: file)
    }

    deinit {
        if case .f32(let buf) = storage { buf.deallocate() }
        tileLayout?.deallocate()
    }

    /// Bytes of weight data (what one full pass over the matrix reads).
    public var byteCount: Int {
        switch storage {
        case .quantized(_, _, let rowBytes, _): rows * rowBytes
        case .f32: rows * cols * 4
        }
    }

    /// Writes rows `range` as f32 into `out` (`[range.count, cols]`).
    public func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        switch storage {
        case .quantized(let type, let blocks, let rowBytes, _):
            Dequantize.run(blocks + range.lowerBound * rowBytes, type: type, count: range.count * cols, into: out)
        case .f32(let buf):
            out.update(from: buf.baseAddress! + range.lowerBound * cols, count: range.count * cols)
        }
    }

    /// The whole matrix as f32, `[rows, cols]`.
    public func dense() -> [Float] {
        [Float](unsafeUninitializedCapacity: rows * cols) { buf, n in
            dequantizeRows(0..<rows, into: buf.baseAddress!)
            n = rows * cols
        }
    }

    /// Whether `dot` takes the activations quantized by `QuantizedDot.quantize` (else as f32).
    var takesQuantizedActivations: Bool {
        guard case .quantized(let type, _, _, _) = storage else { return false }
        switch type {
        case .q4_0, .q4_1, .q8_0: return cols % 32 == 0
        default: return false
        }
    }

    /// Σ_c W[row, c] · x[c]: from `xq`/`meta` (`QuantizedDot.quantize` of x) when
    /// `takesQuantizedActivations`, else from `x` itself.
    @inline(__always)
    func dot(row: Int, _ x: UnsafePointer<Float>, _ xq: UnsafePointer<Int16>, _ meta: UnsafePointer<Float>) -> Float {
        switch storage {
        case .quantized(let type, let blocks, let rowBytes, _):
            let p = blocks + row * rowBytes
            switch type {
            case .q4_1 where cols % 32 == 0: return QuantizedDot.q4_1(p, xq, meta, blocks: cols / 32)
            case .q8_0 where cols % 32 == 0: return QuantizedDot.q8_0(p, xq, meta, blocks: cols / 32)
            case .q4_0 where cols % 32 == 0: return QuantizedDot.q4_0(p, xq, meta, blocks: cols / 32)
            case .f16: return QuantizedDot.f16(p, x, count: cols)
            case .f32: return Kernels.dot(p.assumingMemoryBound(to: Float.self), x, count: cols)
            default:
                var tmp = [Float](repeating: 0, count: cols)
                return tmp.withUnsafeMutableBufferPointer { t in
                    Dequantize.run(p, type: type, count: cols, into: t.baseAddress!)
                    return Kernels.dot(t.baseAddress!, x, count: cols)
                }
            }
        case .f32(let buf):
            return Kernels.dot(buf.baseAddress! + row * cols, x, count: cols)
        }
    }

    /// Whether `MatmulRunner` may take this matrix to the AMX tiles: Q4_1 and Q8_0 rows (`amx_tile_rows`) and f32
    /// rows (merged adapters, `amx_f32_tile_rows`) of whole 32-column blocks.
    var hasTileKernel: Bool {
        switch storage {
        case .quantized(let type, _, _, _): return cols % 32 == 0 && (type == .q4_1 || type == .q8_0)
        case .f32: return cols % 32 == 0
        }
    }

    /// Bytes of the tile layout once made (0 before).
    var tileLayoutBytes: Int {
        tileLayoutLock.lock()
        defer { tileLayoutLock.unlock() }
        return tileLayout == nil ? 0 : tileLayoutByteCount
    }

    private var tileLayoutByteCount: Int {
        switch storage {
        case .quantized(let type, _, _, _): amx_tile_weights_bytes(type == .q4_1 ? 1 : 0, Int32(rows), Int32(cols / 32))
        case .f32: amx_f32_tile_weights_count(Int32(rows), Int32(cols / 32)) * 2
        }
    }

    /// The matrix in its tile layout, made the first time (over `pool`'s threads, or this one): quantized blocks
    /// repacked for `amx_tile_rows` (16 rows' blocks together, transposed), f32 values split into bfloat16 hi and lo
    /// for `amx_f32_tile_rows`. Only when `hasTileKernel`.
    func tileWeights(pool: ThreadPool?) -> UnsafeRawPointer {
        tileLayoutLock.lock()
        defer { tileLayoutLock.unlock() }
        if let layout = tileLayout { return UnsafeRawPointer(layout) }
        let layout = UnsafeMutableRawPointer.allocate(byteCount: tileLayoutByteCount, alignment: 64)
        let count = Int32(cols / 32), total = Int32(rows)
        let repack: (Int32, Int32) -> Void   // 16-row groups [g0, g1)
        switch storage {
        case .quantized(let type, let blocks, let rowBytes, _):
            let q4: Int32 = type == .q4_1 ? 1 : 0, w = blocks.assumingMemoryBound(to: UInt8.self)
            let out = layout.assumingMemoryBound(to: UInt8.self)
            repack = { g0, g1 in amx_tile_weights(q4, w, rowBytes, total, count, g0, g1, out) }
        case .f32(let buf):
            let w = UnsafePointer(buf.baseAddress!), out = layout.assumingMemoryBound(to: UInt16.self), ldw = cols
            repack = { g0, g1 in amx_f32_tile_weights(w, ldw, total, count, g0, g1, out) }
        }
        let groups = (rows + 15) / 16, parts = max(1, min(groups, 4 * (pool?.threadCount ?? 1))), per = (groups + parts - 1) / parts
        let pack = { (part: Int) in
            let g0 = part * per, g1 = min(groups, g0 + per)
            if g0 < g1 { repack(Int32(g0), Int32(g1)) }
        }
        if let pool { pool.parallelFor(parts, pack) } else { (0..<parts).forEach(pack) }
        tileLayout = layout
        return UnsafeRawPointer(layout)
    }

    /// Whether `dot(row:tokens:...)` has a kernel for this storage.
    var hasMultiTokenKernel: Bool {
        if case .f32 = storage { return cols % 32 == 0 }
        return takesQuantizedActivations
    }

    /// `out[t · ldo + r] = Σ_c W[row + r, c] · x[t · cols + c]` for t in 0..<count (1...MultiTokenDot.maxTokens)
    /// and r in 0..<rows (1 or 2), c over the columns of the 32-blocks `blocks`; with `accumulate`, `+=`.
    /// Only when `hasMultiTokenKernel`; `kernel` one of `MultiTokenDot.Kernel.runnable`.
    @inline(__always)
    func dot(row: Int, rows: Int, blocks range: Range<Int>, tokens x: UnsafePointer<Float>, count: Int,
             out: UnsafeMutablePointer<Float>, ldo: Int, accumulate: Bool, kernel: MultiTokenDot.Kernel) {
        let n = range.count, xr = x + 32 * range.lowerBound
        switch storage {
        case .quantized(let type, let blocks, let rowBytes, _):
            let p = blocks + row * rowBytes + type.blockBytes * range.lowerBound
            switch type {
            case .q4_1: MultiTokenDot.q4_1(p, rows: rows, rowBytes: rowBytes, blocks: n, xr, ldx: cols, tokens: count, out,
                                           ldo: ldo, accumulate: accumulate, kernel: kernel)
            case .q4_0: MultiTokenDot.q4_0(p, rows: rows, rowBytes: rowBytes, blocks: n, xr, ldx: cols, tokens: count, out,
                                           ldo: ldo, accumulate: accumulate, kernel: kernel)
            case .q8_0: MultiTokenDot.q8_0(p, rows: rows, rowBytes: rowBytes, blocks: n, xr, ldx: cols, tokens: count, out,
                                           ldo: ldo, accumulate: accumulate, kernel: kernel)
            default: preconditionFailure("WeightMatrix: no multi-token kernel for \(type)")
            }
        case .f32(let buf):
            MultiTokenDot.f32(buf.baseAddress! + row * cols + 32 * range.lowerBound, rows: rows, rowFloats: cols, blocks: n, xr,
                              ldx: cols, tokens: count, out, ldo: ldo, accumulate: accumulate, kernel: kernel)
        }
    }
}

/// Matrix products over a thread pool. BLAS runs single-threaded inside each work unit:
/// the pool, not OpenBLAS, splits the work, so quantized tiles can be dequantized in parallel.
public final class MatmulRunner: @unchecked Sendable {
    public let pool: ThreadPool
    static let tileRows = 64
    static let smallBatch = 4
    /// Up to this many tokens, quantized matrices use `MultiTokenDot` (2+) or `QuantizedDot` (1);
    /// beyond it sgemm over dequantized tiles, whose packing then pays off (crossover measured
    /// with `serve bench runtime --kernels` and 32-128 stream decode, bench/README.md). With AMX
    /// (`usesTiles`), Q4_1 and Q8_0 matrices take the tile kernel from 2 tokens up instead.
    static let multiTokenMax = 64
    private var scratch: [UnsafeMutablePointer<Float>]
    private let scratchCapacity: Int
    // Activations quantized for the integer dot kernels: per token, blockValues int16 and blockMeta floats a block.
    private let quantized: UnsafeMutablePointer<Int16>
    private let blockMeta: UnsafeMutablePointer<Float>
    private let maxCols: Int
    /// Tokens packed for the tile kernels (`tileProduct`): groups of 16, grown on demand.
    private var tokenTiles: UnsafeMutablePointer<UInt16>?
    private var tokenSums: UnsafeMutablePointer<Float>?
    private var tokenGroupCapacity = 0
    /// Q4_1 and Q8_0 products of 2 tokens or more on AMX tiles, where the CPU has them (AMXTiles). Against the
    /// AVX-512 kernels (bench/ab.sh medians, bench/README.md "AMX tiles"): 8-stream decode 260.5 -> 287.4 tokens/s
    /// (343.2 with the packing split), 32 streams 281.8 -> 505.2, 512-token prompts 602.0 -> 725.2.
    public var usesTiles = AMXTiles.available

    /// `maxCols`: the widest matrix this runner will see.
    public init(pool: ThreadPool, maxCols: Int) {
        self.pool = pool
        scratchCapacity = Self.tileRows * maxCols
        scratch = (0..<pool.threadCount).map { _ in .allocate(capacity: Self.tileRows * maxCols) }
        self.maxCols = maxCols
        quantized = .allocate(capacity: Self.smallBatch * maxCols / 32 * QuantizedDot.blockValues)
        blockMeta = .allocate(capacity: Self.smallBatch * (maxCols / 32 + 1) * QuantizedDot.blockMeta)
    }

    deinit {
        for s in scratch { s.deallocate() }
        quantized.deallocate()
        blockMeta.deallocate()
        tokenTiles?.deallocate()
        tokenSums?.deallocate()
    }

    /// output[n, rows] = input[n, cols] · Wᵀ
    public func matmul(_ w: WeightMatrix, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, n: Int) {
        if n == 0 || w.rows == 0 { return }
        if n > 1 && usesTiles && w.hasTileKernel {
            tileProduct(w, input: input, output: output, n: n)
            return
        }
        if n > 1 && n <= Self.multiTokenMax && w.hasMultiTokenKernel {
            multiTokenProduct(w, input: input, output: output, n: n)
            return
        }
        if n <= Self.smallBatch {
            // One token (or a few, for storage without a multi-token kernel): memory-bound, so
            // stream each weight row once and dot it with every input row.
            precondition(w.cols <= maxCols, "MatmulRunner: matrix wider than maxCols")
            let metaStride = (maxCols / 32 + 1) * QuantizedDot.blockMeta
            let stride = maxCols / 32 * QuantizedDot.blockValues
            if w.takesQuantizedActivations {
                for i in 0..<n {
                    QuantizedDot.quantize(input + i * w.cols, count: w.cols, into: quantized + i * stride,
                                          meta: blockMeta + i * metaStride)
                }
            }
            let xq = UnsafePointer(quantized), meta = UnsafePointer(blockMeta), cols = w.cols
            let chunk = rowChunk(w.rows, granularity: 32)
            pool.parallelFor((w.rows + chunk - 1) / chunk) { c in
                for row in c * chunk..<min(w.rows, (c + 1) * chunk) {
                    for i in 0..<n {
                        output[i * w.rows + row] = w.dot(row: row, input + i * cols, xq + i * stride, meta + i * metaStride)
                    }
                }
            }
            return
        }
        sgemmProduct(w, input: input, output: output, n: n)
    }

    /// Columns in ranges of this many 32-blocks when a matrix is wider: eight tokens' activations over
    /// a range (16 KB) then stay in L1 beside the chunk's weights, where a whole 1536-column row's
    /// (48 KB) were read from L2 for every row (`serve bench runtime --kernels`: down 1.22 ns a
    /// block and token against 0.83 for the 576-column q).
    static let columnBlocks = 16
    static let wholeRowBlocks = 24

    /// Work units of a matrix-vector product: about `chunksPerThread` a thread, contiguous rows, a multiple
    /// of `granularity`. Few large units, not many small ones: each unit claimed costs a cross-core atomic
    /// and starts a new weight stream, and with 16-row units (~13 000 a decode step) that cost 20-40% of an
    /// 8-stream step on the Xeon VM (in-process A/B, bench/README.md "Intel Xeon machine"); four a thread
    /// still lets a thread that ran late hand its last units to the other.
    static let chunksPerThread = 4

    func rowChunk(_ rows: Int, granularity: Int) -> Int {
        let units = pool.threadCount * Self.chunksPerThread
        let size = (rows + units - 1) / units
        return max(granularity, (size + granularity - 1) / granularity * granularity)
    }

    /// Rows in chunks (the unit of parallel work), each taken 16 rows at a time: every token group of
    /// those 16 rows reads their weights from L1, and wide rows are taken a column range at a time.
    private func multiTokenProduct(_ w: WeightMatrix, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, n: Int) {
        let rows = w.rows, cols = w.cols, group = MultiTokenDot.maxTokens, strip = 16
        let chunk = rowChunk(rows, granularity: strip), kernel = MultiTokenDot.Kernel.preferred
        let blocks = cols / 32
        let step = blocks <= Self.wholeRowBlocks ? blocks : Self.columnBlocks
        pool.parallelFor((rows + chunk - 1) / chunk) { c in
            for r0 in stride(from: c * chunk, to: min(rows, (c + 1) * chunk), by: strip) {
                let r1 = min(rows, r0 + strip)
                for b0 in stride(from: 0, to: blocks, by: step) {
                    let range = b0..<min(blocks, b0 + step)
                    var t0 = 0
                    while t0 < n {
                        let count = min(group, n - t0)
                        // Rows two at a time: the 512-bit kernel loads each activation once for both.
                        for row in stride(from: r0, to: r1, by: 2) {
                            w.dot(row: row, rows: min(2, r1 - row), blocks: range, tokens: input + t0 * cols,
                                  count: count, out: output + t0 * rows + row, ldo: rows, accumulate: b0 > 0, kernel: kernel)
                        }
                        t0 += count
                    }
                }
            }
        }
    }

    /// Rows against the tokens on AMX tiles (MatrixAMX): the tokens packed once, in groups of 16, then the weights (in
    /// their tile layout) in chunks of 32-row pairs over the pool. Q4_1 / Q8_0: each block converted once for up to
    /// four groups of tokens and scaled per block; f32 (merged adapters): weights already in bfloat16 hi + lo.
    private func tileProduct(_ w: WeightMatrix, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, n: Int) {
        let weights = w.tileWeights(pool: pool)
        let rows = w.rows, cols = w.cols, blocks = cols / 32
        let groups = (n + 15) / 16
        precondition(cols <= maxCols, "MatmulRunner: matrix wider than maxCols")
        if groups > tokenGroupCapacity {
            tokenTiles?.deallocate()
            tokenSums?.deallocate()
            tokenTiles = .allocate(capacity: groups * amx_token_tiles_count(1, Int32(maxCols / 32)))
            tokenSums = .allocate(capacity: groups * maxCols / 32 * 16)
            tokenGroupCapacity = groups
        }
        let tiles = tokenTiles!, sums = tokenSums!, groupTiles = amx_token_tiles_count(1, Int32(blocks))
        // Packing in (group, block range) parts, so that one group of 8 decode tokens is split over the threads too
        // (it was ~5% of an 8-stream step on one thread).
        let ranges = max(1, min(blocks, 2 * pool.threadCount / groups)), perRange = (blocks + ranges - 1) / ranges
        pool.parallelFor(groups * ranges) { part in
            let g = part / ranges, b0 = (part % ranges) * perRange, b1 = min(blocks, b0 + perRange)
            guard b0 < b1 else { return }
            amx_pack_token_tiles(input + g * 16 * cols, cols, Int32(min(16, n - g * 16)), Int32(b0), Int32(b1),
                                 tiles + g * groupTiles, sums + g * blocks * 16)
        }
        let rowGroups = (rows + 15) / 16, chunk = rowChunk(rows, granularity: 32) / 16
        let product: (Int32, Int32) -> Void
        switch w.storage {
        case .quantized(let type, _, _, _):
            let q4: Int32 = type == .q4_1 ? 1 : 0, tw = weights.assumingMemoryBound(to: UInt8.self)
            product = { g0, g1 in
                amx_tile_rows(q4, tw, Int32(rows), Int32(blocks), g0, g1, tiles, sums, Int32(n), output, rows)
            }
        case .f32:
            let tw = weights.assumingMemoryBound(to: UInt16.self)
            product = { g0, g1 in amx_f32_tile_rows(tw, Int32(rows), Int32(blocks), g0, g1, tiles, Int32(n), output, rows) }
        }
        pool.parallelFor((rowGroups + chunk - 1) / chunk) { c in
            product(Int32(c * chunk), Int32(min(rowGroups, (c + 1) * chunk)))
        }
    }

    private func sgemmProduct(_ w: WeightMatrix, input: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, n: Int) {
        precondition(w.cols * Self.tileRows <= scratchCapacity, "MatmulRunner: matrix wider than maxCols")
        let tiles = (w.rows + Self.tileRows - 1) / Self.tileRows
        pool.parallelFor(tiles) { t, thread in
            let r0 = t * Self.tileRows
            let r1 = min(w.rows, r0 + Self.tileRows)
            let tile: UnsafePointer<Float>
            if case .f32(let buf) = w.storage {
                tile = UnsafePointer(buf.baseAddress! + r0 * w.cols)
            } else {
                w.dequantizeRows(r0..<r1, into: scratch[thread])
                tile = UnsafePointer(scratch[thread])
            }
            // output[n, r0..<r1] = input[n, cols] · tile[r1-r0, cols]ᵀ
            BLAS.sgemm(m: n, n: r1 - r0, k: w.cols, a: input, lda: w.cols, b: tile, ldb: w.cols,
                       transposeB: true, c: output + r0, ldc: w.rows)
        }
    }
}
