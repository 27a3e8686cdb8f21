import CBLAS

/// The only door to OpenBLAS. All matrices are row-major.
public enum BLAS {
    /// Threads OpenBLAS may use for one call.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// C[m, n] = alpha · A[m, k] · op(B) + beta · C, where op(B) = Bᵀ for B stored [n, k]
    /// (`transposeB`, the layout of weights `[out, in]`), or B stored [k, n].
    /// `lda`, `ldb`, `ldc` are row strides in elements.
    @inlinable
    public static func sgemm(
        m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, transposeB: Bool,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
        transposeA: Bool = false
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "sgemm: negative size")
        precondition(lda >= (transposeA ? m : k) && ldc >= n && ldb >= (transposeB ? k : n), "sgemm: stride too small")
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// y[m] = alpha · A[m, n] · x[n] + beta · y, A row-major with row stride `lda`.
    @inlinable
    public static func sgemv(m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        precondition(m >= 0 && n >= 0 && lda >= n, "sgemv: bad sizes")
        if m == 0 { return }
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }
}
