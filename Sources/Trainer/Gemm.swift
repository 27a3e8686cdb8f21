import Tensor

/// Matrix products for training, split over a thread pool: on AMX tiles (TileProducts) where the CPU has them and
/// the product is a large plain one (the base model's and the output head's), else each block of C's rows (or
/// columns) is one single-threaded OpenBLAS call. Either way the split depends only on the shapes, so results do not
/// depend on scheduling or on the number of threads.
struct Gemm {
    let pool: ThreadPool
    /// nil where AMX is absent or turned off (`LORASERVE_KERNELS=avx512`).
    let tiles: TileProducts?

    init(pool: ThreadPool, tiles: Bool = AMXTiles.available) {
        self.pool = pool
        self.tiles = tiles ? TileProducts(pool: pool) : nil
    }

    /// Whether a product of this shape goes to the tiles: C = A · op(B) alone (no scaling, no accumulation, A not
    /// transposed), every side at least 64 (the LoRA products, with a side of the rank, stay on OpenBLAS).
    func onTiles(m: Int, n: Int, k: Int, alpha: Float, transA: Bool, beta: Float) -> Bool {
        tiles != nil && alpha == 1 && beta == 0 && !transA && min(m, n, k) >= 64
    }

    /// C[m, n] = alpha · op(A) · op(B) + beta · C, row-major. op(A) = A stored [m, k], or Aᵀ with A stored [k, m]
    /// (`transA`); op(B) = B stored [k, n], or Bᵀ with B stored [n, k] (`transB`).
    func callAsFunction(m: Int, n: Int, k: Int, alpha: Float = 1,
                        a: UnsafePointer<Float>, lda: Int, transA: Bool = false,
                        b: UnsafePointer<Float>, ldb: Int, transB: Bool = false,
                        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if let tiles, onTiles(m: m, n: n, k: k, alpha: alpha, transA: transA, beta: beta) {
            tiles.multiply(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, transposedB: transB, c: c, ldc: ldc)
            return
        }
        let work = Double(m) * Double(n) * Double(k)
        if work < 1_048_576 {
            BLAS.sgemm(m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, transposeB: transB,
                       beta: beta, c: c, ldc: ldc, transposeA: transA)
            return
        }
        // Split the longer side of C into up to 8 blocks of at least 256, whatever the thread count: the same
        // blocks (so the same bits) with 1 thread or 4, and with more than 256 rows or columns several per thread,
        // so a thread slowed down by other processes does not hold up the rest. Each block repacks the whole
        // operand it does not split, so narrower blocks cost more than they balance: with a minimum of 64, the
        // logits' gradient (256 × 49152 · 49152 × 576) went in 8 blocks of 72 columns and ran at 64 GFLOP/s a core,
        // against 80-86 in one or two (bench/README, "Training").
        let splitRows = m >= n
        let side = splitRows ? m : n
        let parts = max(1, min(8, side / 256))
        let block = (side + parts - 1) / parts
        pool.parallelFor(parts) { part in
            let lo = part * block
            let len = min(side, lo + block) - lo
            if len <= 0 { return }
            if splitRows {
                // Rows lo..<lo+len of op(A): A + lo·lda when stored [m, k], A + lo when stored [k, m].
                BLAS.sgemm(m: len, n: n, k: k, alpha: alpha, a: transA ? a + lo : a + lo * lda, lda: lda,
                           b: b, ldb: ldb, transposeB: transB, beta: beta, c: c + lo * ldc, ldc: ldc, transposeA: transA)
            } else {
                // Columns lo..<lo+len of op(B): B + lo·ldb when stored [n, k], B + lo when stored [k, n].
                BLAS.sgemm(m: m, n: len, k: k, alpha: alpha, a: a, lda: lda,
                           b: transB ? b + lo * ldb : b + lo, ldb: ldb, transposeB: transB,
                           beta: beta, c: c + lo, ldc: ldc, transposeA: transA)
            }
        }
    }
}
