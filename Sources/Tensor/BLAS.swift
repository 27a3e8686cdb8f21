import CBLAS

/// The only door to OpenBLAS. All matrices are row-major.
public enum BLAS {
    /// Threads OpenBLAS may use for one call.
    public static func setThreads(_ n: Int) { openblas_set_num_threads(Int32(max(1, n))) }
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// The kernel set OpenBLAS chose for this CPU at load time ("Haswell", "SkylakeX", "Prescott", …).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// The `OPENBLAS_CORETYPE` to restart with when OpenBLAS fell back to generic kernels on a CPU it does
    /// not know, else nil. Debian's OpenBLAS 0.3.21 takes a newer Xeon (family 6, model 207) for a
    /// "Prescott", whose SSE3 sgemm ran at ~25 GFLOP/s a core against 90-150 with the AVX-512 kernels
    /// (bench/README.md, "Intel Xeon machine"). The choice is made when the library loads, before `main`,
    /// so it can only be corrected by setting the variable and starting again (`serve` does).
    public static func coreTypeReplacement(current: String, avx512: Bool, avx2: Bool) -> String? {
        let wide = ["skylakex", "cooperlake", "sapphirerapids"]
        let current = current.lowercased()
        if avx512 { return wide.contains(current) ? nil : "SkylakeX" }
        if avx2 { return (wide + ["haswell", "zen"]).contains(current) ? nil : "Haswell" }
        return nil
    }

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
