import MatrixAMX
import Tensor

/// The trainer's large matrix products on AMX tiles (MatrixAMX): C = A · op(B) with each operand split into two
/// bfloat16 halves, relative error ~4e-6 (f32's own is ~1e-7 on these sums; plain bfloat16 would be ~2e-3).
/// Packing, then the product, each split over the pool; every element of C is summed the same way however the
/// columns are split, so the bits do not depend on the thread count.
final class TileProducts {
    /// A right operand packed once for many products (the output head).
    final class PackedOperand {
        let storage: UnsafeMutablePointer<UInt16>
        let n: Int, k: Int

        /// Packs op(B) [k, n]: B stored [n, k] when `transposed`, else [k, n], row stride ldb.
        init(b: UnsafePointer<Float>, ldb: Int, transposed: Bool, n: Int, k: Int, pool: ThreadPool) {
            self.n = n
            self.k = k
            storage = .allocate(capacity: amx_packed_count(Int32(n), Int32(k)))
            TileProducts.packColumns(b, ldb: ldb, transposed: transposed, n: n, k: k, into: storage, pool: pool)
        }

        deinit { storage.deallocate() }
    }

    let pool: ThreadPool
    private var left = Scratch()
    private var right = Scratch()

    init(pool: ThreadPool) { self.pool = pool }

    deinit {
        left.release()
        right.release()
    }

    /// C[m, n] = A[m, k] · op(B), A row-major with row stride lda; op(B) as in `PackedOperand.init`.
    func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  transposedB: Bool, c: UnsafeMutablePointer<Float>, ldc: Int) {
        let packedB = right.reserve(amx_packed_count(Int32(n), Int32(k)))
        Self.packColumns(b, ldb: ldb, transposed: transposedB, n: n, k: k, into: packedB, pool: pool)
        multiply(m: m, n: n, k: k, a: a, lda: lda, packedB: packedB, c: c, ldc: ldc)
    }

    /// C[m, n] = A[m, k] · op(B) for an operand packed beforehand.
    func multiply(m: Int, a: UnsafePointer<Float>, lda: Int, b: PackedOperand, c: UnsafeMutablePointer<Float>, ldc: Int) {
        multiply(m: m, n: b.n, k: b.k, a: a, lda: lda, packedB: b.storage, c: c, ldc: ldc)
    }

    private func multiply(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, packedB: UnsafePointer<UInt16>,
                          c: UnsafeMutablePointer<Float>, ldc: Int) {
        let packedA = left.reserve(amx_packed_count(Int32(m), Int32(k)))
        let rowBlocks = (m + 31) / 32
        pool.parallelFor(rowBlocks) { blk in
            amx_pack_rows(a, lda, Int32(m), Int32(k), Int32(blk * 32), Int32(blk * 32 + 32), packedA)
        }
        // Parts of whole 32-row or 32-column blocks, about two a thread. Each part reads all of the other operand,
        // so the longer side is split: rows for the model's products (1024 tokens against 576-960 outputs), columns
        // for the logits (49152).
        let splitRows = m >= n
        let blocks = ((splitRows ? m : n) + 31) / 32
        let parts = min(blocks, 2 * pool.threadCount)
        let per = (blocks + parts - 1) / parts
        pool.parallelFor(parts) { part in
            let lo = part * per * 32, hi = min(splitRows ? m : n, (part + 1) * per * 32)
            guard lo < hi else { return }
            if splitRows {
                amx_multiply(packedA + amx_packed_row_offset(Int32(lo), Int32(k)), packedB, Int32(hi - lo), Int32(n), Int32(k),
                             c + lo * ldc, ldc, 0, Int32(n))
            } else {
                amx_multiply(packedA, packedB, Int32(m), Int32(n), Int32(k), c, ldc, Int32(lo), Int32(hi))
            }
        }
    }

    private static func packColumns(_ b: UnsafePointer<Float>, ldb: Int, transposed: Bool, n: Int, k: Int,
                                    into packed: UnsafeMutablePointer<UInt16>, pool: ThreadPool) {
        let blocks = (n + 31) / 32
        pool.parallelFor(blocks) { blk in
            amx_pack_columns(b, ldb, transposed ? 1 : 0, Int32(n), Int32(k), Int32(blk * 32), Int32(blk * 32 + 32), packed)
        }
    }

    /// A buffer that grows to the largest request and is reused.
    private struct Scratch {
        var pointer: UnsafeMutablePointer<UInt16>?
        var capacity = 0

        mutating func reserve(_ count: Int) -> UnsafeMutablePointer<UInt16> {
            if let pointer, capacity >= count { return pointer }
            pointer?.deallocate()
            pointer = .allocate(capacity: count)
            capacity = count
            return pointer!
        }

        func release() { pointer?.deallocate() }
    }
}
