// Dense f32 tile products for MatrixAMX.h (the trainer's; QuantizedTiles.c has the engine's). Compiled with AMX
// and AVX-512 flags (Package.swift); nothing here runs unless the caller found AMX-BF16 and AVX-512-BF16 on the CPU
// and amx_request_permission() returned 1.
#include "MatrixAMX.h"
#include "TileSupport.h"

#include <immintrin.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

// A packed operand is a grid of 16 x 32 blocks (16 rows or columns, 32 of the summed dimension), each 1024
// bfloat16: 512 of the hi halves, then 512 of the lo halves. A's blocks hold 16 rows of 32; B's hold 16 pairs of
// summed indices, each pair the two values of one column side by side (the layout TDPBF16PS reads).
enum { BLOCK = 1024, HALF = 512 };
// Blocking, for a core's L2 (2 MB): B is walked in panels of columns whose packed blocks fit PANEL_BYTES, and
// each 32-row A panel meets every column of the B panel, summing over up to PASS_BLOCKS blocks (1024 values) before
// its 32 x 32 blocks of C leave the tiles. Shorter passes (A in L1) measured slower: C goes back to the tiles once
// per pass. Where not even 32 columns of B fit PANEL_BYTES (the output head's gradient sums 49152 values), the
// passes go outermost instead, over all of C, so B is read from memory once.
enum { PASS_BLOCKS = 32 };
static const long PANEL_BYTES = 1 << 20;
static const long COLUMN_BLOCK_BYTES = BLOCK * 2 / 16;   // packed B bytes of one column for one summed block

static inline int round32(int x) { return (x + 31) & ~31; }

int amx_request_permission(void) {
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 ? 1 : 0;
}

size_t amx_packed_count(int m, int k) { return (size_t)round32(m) * (size_t)round32(k) * 2; }

size_t amx_packed_row_offset(int r0, int k) { return (size_t)(r0 / 16) * (size_t)(round32(k) / 32) * BLOCK; }

// Up to 16 floats from p (count of them valid, the rest zero).
static inline __m512 load_part(const float *p, int count) {
    if (count >= 16) return _mm512_loadu_ps(p);
    if (count <= 0) return _mm512_setzero_ps();
    return _mm512_maskz_loadu_ps((__mmask16)((1u << count) - 1), p);
}

void amx_pack_rows(const float *a, long lda, int m, int k, int r0, int r1, uint16_t *packed) {
    const int kbn = round32(k) / 32;
    if (r1 > round32(m)) r1 = round32(m);
    for (int r = r0; r < r1; r++) {
        for (int kb = 0; kb < kbn; kb++) {
            uint16_t *block = packed + ((size_t)(r / 16) * kbn + kb) * BLOCK + (r % 16) * 32;
            for (int h = 0; h < 2; h++) {
                const int col = kb * 32 + h * 16;
                __m512 x = r < m ? load_part(a + (size_t)r * lda + col, k - col) : _mm512_setzero_ps();
                __m256i hi, lo;
                split(x, &hi, &lo);
                _mm256_storeu_si256((__m256i *)(block + h * 16), hi);
                _mm256_storeu_si256((__m256i *)(block + HALF + h * 16), lo);
            }
        }
    }
}

void amx_pack_columns(const float *b, long ldb, int transposed, int n, int k, int c0, int c1, uint16_t *packed) {
    const int kbn = round32(k) / 32;
    if (c1 > round32(n)) c1 = round32(n);
    for (int c = c0; c < c1; c += 16) {
        for (int kb = 0; kb < kbn; kb++) {
            uint16_t *block = packed + ((size_t)(c / 16) * kbn + kb) * BLOCK;
            uint32_t *hi32 = (uint32_t *)block, *lo32 = (uint32_t *)(block + HALF);
            if (transposed) {
                // Column j of op(B) is row j of B: its 32 summed values become 16 pairs, one per row of the block.
                for (int j = 0; j < 16; j++) {
                    uint32_t hi[16], lo[16];
                    for (int h = 0; h < 2; h++) {
                        const int col = kb * 32 + h * 16;
                        __m512 x = c + j < n ? load_part(b + (size_t)(c + j) * ldb + col, k - col) : _mm512_setzero_ps();
                        __m256i vh, vl;
                        split(x, &vh, &vl);
                        _mm256_storeu_si256((__m256i *)hi + h, vh);
                        _mm256_storeu_si256((__m256i *)lo + h, vl);
                    }
                    for (int p = 0; p < 16; p++) {
                        hi32[p * 16 + j] = hi[p];
                        lo32[p * 16 + j] = lo[p];
                    }
                }
            } else {
                // Rows 2p and 2p+1 of B, 16 columns each, interleave into row p of the block.
                for (int p = 0; p < 16; p++) {
                    const int r = kb * 32 + 2 * p;
                    __m512 x0 = r < k ? load_part(b + (size_t)r * ldb + c, n - c) : _mm512_setzero_ps();
                    __m512 x1 = r + 1 < k ? load_part(b + (size_t)(r + 1) * ldb + c, n - c) : _mm512_setzero_ps();
                    __m256i h0, l0, h1, l1;
                    split(x0, &h0, &l0);
                    split(x1, &h1, &l1);
                    _mm512_storeu_si512(hi32 + p * 16, pair_words(h0, h1));
                    _mm512_storeu_si512(lo32 + p * 16, pair_words(l0, l1));
                }
            }
        }
    }
}

// Tiles for the dense products: 0-3 the 32 x 32 block of C, 4-5 two A blocks, 6-7 two B blocks.
static void configure(void) { _tile_loadconfig(&SIXTEEN_BY_64); }

// C block (32 x 32 at ldc) += A rows [i, i+32) · B columns [j, j+32) over summed blocks [kb0, kb1); zeroed first
// when `first`.
static inline void block_product(const uint16_t *a, const uint16_t *b, int kbn, int i, int j, int kb0, int kb1,
                                 float *cb, long ldc, int first) {
    if (first) {
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
    } else {
        _tile_loadd(0, cb, ldc * 4); _tile_loadd(1, cb + 16, ldc * 4);
        _tile_loadd(2, cb + 16 * ldc, ldc * 4); _tile_loadd(3, cb + 16 * ldc + 16, ldc * 4);
    }
    const uint16_t *a0 = a + (size_t)(i / 16) * kbn * BLOCK, *a1 = a0 + (size_t)kbn * BLOCK;
    const uint16_t *b0 = b + (size_t)(j / 16) * kbn * BLOCK, *b1 = b0 + (size_t)kbn * BLOCK;
    for (int kb = kb0; kb < kb1; kb++) {
        const size_t o = (size_t)kb * BLOCK;
        // Eight tile loads for the three products: hi·lo, hi·hi, lo·hi.
        _tile_loadd(4, a0 + o, 64); _tile_loadd(5, a1 + o, 64);
        _tile_loadd(6, b0 + o + HALF, 64); _tile_loadd(7, b1 + o + HALF, 64);
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
        _tile_loadd(6, b0 + o, 64); _tile_loadd(7, b1 + o, 64);
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
        _tile_loadd(4, a0 + o + HALF, 64); _tile_loadd(5, a1 + o + HALF, 64);
        _tile_dpbf16ps(0, 4, 6); _tile_dpbf16ps(1, 4, 7); _tile_dpbf16ps(2, 5, 6); _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, cb, ldc * 4); _tile_stored(1, cb + 16, ldc * 4);
    _tile_stored(2, cb + 16 * ldc, ldc * 4); _tile_stored(3, cb + 16 * ldc + 16, ldc * 4);
}

static void product_block(const uint16_t *a, const uint16_t *b, int m, int kbn, float *c, long ldc, int i, int j,
                          int c1, int kb0, int kb1) {
    const int rows = m - i < 32 ? m - i : 32, cols = c1 - j < 32 ? c1 - j : 32;
    const int first = kb0 == 0;
    if (rows == 32 && cols == 32) {
        block_product(a, b, kbn, i, j, kb0, kb1, c + (size_t)i * ldc + j, ldc, first);
        return;
    }
    // A block at the bottom or right edge goes through a full 32 x 32 copy.
    float edge[32 * 32];
    memset(edge, 0, sizeof edge);
    if (!first)
        for (int r = 0; r < rows; r++) memcpy(edge + r * 32, c + (size_t)(i + r) * ldc + j, cols * 4);
    block_product(a, b, kbn, i, j, kb0, kb1, edge, 32, first);
    for (int r = 0; r < rows; r++) memcpy(c + (size_t)(i + r) * ldc + j, edge + r * 32, cols * 4);
}

void amx_multiply(const uint16_t *a, const uint16_t *b, int m, int n, int k, float *c, long ldc, int c0, int c1) {
    if (c1 > n) c1 = n;
    if (m <= 0 || c0 >= c1) return;
    configure();
    const int kbn = round32(k) / 32;
    const int panel = (int)(PANEL_BYTES / ((long)kbn * COLUMN_BLOCK_BYTES)) & ~31;
    if (panel < 32) {
        // Passes outermost, each over the summed blocks of all columns that fit PANEL_BYTES.
        int pass = (int)(PANEL_BYTES / ((long)round32(c1 - c0) * COLUMN_BLOCK_BYTES));
        pass = pass < 1 ? 1 : pass > PASS_BLOCKS ? PASS_BLOCKS : pass;
        for (int kb0 = 0; kb0 < kbn; kb0 += pass) {
            const int kb1 = kb0 + pass < kbn ? kb0 + pass : kbn;
            for (int i = 0; i < m; i += 32)
                for (int j = c0; j < c1; j += 32) product_block(a, b, m, kbn, c, ldc, i, j, c1, kb0, kb1);
        }
    } else {
        for (int p0 = c0; p0 < c1; p0 += panel) {
            const int p1 = p0 + panel < c1 ? p0 + panel : c1;
            for (int i = 0; i < m; i += 32)
                for (int kb0 = 0; kb0 < kbn; kb0 += PASS_BLOCKS) {
                    const int kb1 = kb0 + PASS_BLOCKS < kbn ? kb0 + PASS_BLOCKS : kbn;
                    for (int j = p0; j < p1; j += 32) product_block(a, b, m, kbn, c, ldc, i, j, p1, kb0, kb1);
                }
        }
    }
    _tile_release();
}
