// AMX tile products for MatrixAMX.h. Compiled with AMX and AVX-512 flags (Package.swift); nothing here runs unless
// the caller found AMX-BF16 and AVX-512-BF16 on the CPU and amx_request_permission() returned 1.
#include "MatrixAMX.h"

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

// bf16(x), rounded to nearest even, and the remainder x - bf16(x), exact in f32.
static inline __m256i high_part(__m512 x, __m512 *rest) {
    __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
    *rest = _mm512_sub_ps(x, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
    return h;
}

// hi = bf16(x), lo = bf16(x - hi).
static inline void split(__m512 x, __m256i *hi, __m256i *lo) {
    __m512 rest;
    *hi = high_part(x, &rest);
    *lo = (__m256i)_mm512_cvtneps_pbh(rest);
}

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
                    __m512i hi = _mm512_or_si512(_mm512_cvtepu16_epi32(h0), _mm512_slli_epi32(_mm512_cvtepu16_epi32(h1), 16));
                    __m512i lo = _mm512_or_si512(_mm512_cvtepu16_epi32(l0), _mm512_slli_epi32(_mm512_cvtepu16_epi32(l1), 16));
                    _mm512_storeu_si512(hi32 + p * 16, hi);
                    _mm512_storeu_si512(lo32 + p * 16, lo);
                }
            }
        }
    }
}

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) TileConfig;

// Eight tiles of 16 rows x 64 bytes: for the dense products 0-3 the 32 x 32 block of C, 4-5 two A blocks, 6-7 two
// B blocks. A constant: gcc -O2 dropped the stores of a configuration built on the stack before ldtilecfg.
static const TileConfig SIXTEEN_BY_64 = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

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

// MARK: - Quantized weight rows against a few tokens

// Tokens for the quantized products are split in three: hi, mid = bf16(x - hi), lo = bf16(x - hi - mid) carry
// all 24 significand bits of f32, and the weights' integers are exact in bfloat16, so each tile product is as
// exact as an f32 one (a two-way split, 16 bits, moved the logits ~1e-3 off the reference after 30 layers).
enum { TOKEN_BLOCK = 3 * HALF };

size_t amx_token_pack_count(int blocks) { return (size_t)blocks * TOKEN_BLOCK; }

void amx_pack_tokens(const float *x, long ldx, int count, int blocks, uint16_t *packed, float *sums) {
    // Per block: the hi, mid and lo tiles, each 16 pairs x 16 tokens x 2, tokens past count zero (a product with
    // 8 columns measured 3 times slower than with 16, so the tiles are always 16 wide).
    for (int b = 0; b < blocks; b++) {
        uint32_t *tile32 = (uint32_t *)(packed + (size_t)b * TOKEN_BLOCK);
        for (int t = 0; t < 16; t++) {
            __m512 x0 = _mm512_setzero_ps(), x1 = _mm512_setzero_ps();
            if (t < count) {
                const float *src = x + (size_t)t * ldx + b * 32;
                x0 = _mm512_loadu_ps(src);
                x1 = _mm512_loadu_ps(src + 16);
            }
            sums[b * 16 + t] = _mm512_reduce_add_ps(_mm512_add_ps(x0, x1));
            uint32_t parts[3][16];
            // hi, then the exact remainder split again: x - hi - mid has at most 8 significant bits left, so lo is
            // exact and hi + mid + lo = x.
            __m512 rest0, rest1;
            __m256i h0 = high_part(x0, &rest0), h1 = high_part(x1, &rest1), m0, l0, m1, l1;
            split(rest0, &m0, &l0);
            split(rest1, &m1, &l1);
            _mm256_storeu_si256((__m256i *)parts[0], h0); _mm256_storeu_si256((__m256i *)parts[0] + 1, h1);
            _mm256_storeu_si256((__m256i *)parts[1], m0); _mm256_storeu_si256((__m256i *)parts[1] + 1, m1);
            _mm256_storeu_si256((__m256i *)parts[2], l0); _mm256_storeu_si256((__m256i *)parts[2] + 1, l1);
            for (int k = 0; k < 3; k++)
                for (int p = 0; p < 16; p++) tile32[k * 256 + p * 16 + t] = parts[k][p];
        }
    }
}

// Converts block b of rows [0, n) (n <= 16) to bfloat16 rows of 32 in `a`, and their scales to d and m (one
// gather each way; zero past n): Q4_1 when `q4`, else Q8_0 (m zero). `offsets` holds r · row_bytes.
static inline void convert_block(const uint8_t *w, long row_bytes, int n, int b, int q4, __m512i table,
                                 __m512i offsets, uint16_t *a, float *d, float *m) {
    const int block_bytes = q4 ? 20 : 34;
    const __mmask16 present = (__mmask16)((1u << n) - 1);
    // The first four bytes of each row's block: d, then m (Q4_1) or two weights (Q8_0).
    __m512i head = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), present, offsets, w + (size_t)b * block_bytes, 1);
    _mm512_store_ps(d, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(head)));
    _mm512_store_ps(m, q4 ? _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(head, 16))) : _mm512_setzero_ps());
    const __m256i low = _mm256_set1_epi16(0x0F);
    for (int r = 0; r < n; r++) {
        const uint8_t *blk = w + (size_t)r * row_bytes + (size_t)b * block_bytes;
        if (q4) {
            __m256i bytes = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(blk + 4)));
            __m512i idx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(bytes, low)),
                                             _mm256_srli_epi16(bytes, 4), 1);
            _mm512_store_si512(a + r * 32, _mm512_permutexvar_epi16(idx, table));
        } else {
            // int8 -> f32 -> bfloat16, exact (|q| <= 128 needs 8 significant bits).
            __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 2))));
            __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(blk + 18))));
            _mm512_store_si512(a + r * 32, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

// The rows of both kernels, 32 at a time: each block's token tiles are loaded once for two 16-row groups. The
// tiles hand results back through memory, and neither a tile store nor a tile load is forwarded from or to vector
// instructions, so each block's work is ordered to leave time between them: convert the two groups' weights
// (vector stores), scale the previous block's two results into the accumulators (vector loads of what the tiles
// stored one block ago), then the tile loads, products and stores of this block.
enum { GROUPS = 2 };

static void quantized_rows(const uint8_t *w, long row_bytes, int rows, int blocks, const uint16_t *packed,
                           const float *sums, int count, float *out, long ldo, int q4) {
    // Tiles: 0-1 C of the two 16-row groups (16 rows x 16 tokens), 2-3 their weights (16 rows x 32), 5-7 the
    // tokens' hi, mid and lo (16 pairs x 16 tokens).
    configure();
    uint16_t values[32];    // bfloat16 of 0...15, indexed by the nibbles
    for (int i = 0; i < 32; i++) {
        float f = (float)(i & 15);
        uint32_t u;
        memcpy(&u, &f, 4);
        values[i] = (uint16_t)(u >> 16);
    }
    const __m512i table = _mm512_loadu_si512(values);
    const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                               _mm512_set1_epi32((int)row_bytes));
    uint16_t a[GROUPS][16 * 32] __attribute__((aligned(64)));
    float c[GROUPS][16 * 16] __attribute__((aligned(64)));
    float acc[GROUPS * 16][16] __attribute__((aligned(64)));
    float d[2][GROUPS][16] __attribute__((aligned(64))), m[2][GROUPS][16] __attribute__((aligned(64)));
    for (int r0 = 0; r0 < rows; r0 += GROUPS * 16) {
        const int nr = rows - r0 < GROUPS * 16 ? rows - r0 : GROUPS * 16, groups = (nr + 15) / 16;
        if (nr < GROUPS * 16) memset(a, 0, sizeof a);
        memset(acc, 0, sizeof acc);
        // The next 32 rows are one contiguous region: fetched a slice per block, a chunk ahead (16 rows walked
        // a block at a time are 16 short strides, which the hardware prefetchers follow badly).
        const char *next = (const char *)(w + (size_t)(r0 + nr) * row_bytes);
        const long next_lines = r0 + nr < rows ? ((long)(rows - r0 - nr < GROUPS * 16 ? rows - r0 - nr : GROUPS * 16) * row_bytes + 63) / 64 : 0;
        for (int b = 0; b <= blocks; b++) {
            const int cur = b & 1, prev = cur ^ 1;
            for (long l = next_lines * b / (blocks + 1); l < next_lines * (b + 1) / (blocks + 1); l++)
                _mm_prefetch(next + l * 64, _MM_HINT_T0);
            if (b < blocks)
                for (int g = 0; g < groups; g++) {
                    const int n = nr - g * 16 < 16 ? nr - g * 16 : 16;
                    convert_block(w + (size_t)(r0 + g * 16) * row_bytes, row_bytes, n, b, q4, table, offsets, a[g],
                                  d[cur][g], m[cur][g]);
                }
            if (b > 0) {
                const __m512 s = q4 ? _mm512_loadu_ps(sums + (b - 1) * 16) : _mm512_setzero_ps();
                for (int g = 0; g < groups; g++) {
                    const float *dp = d[prev][g], *mp = m[prev][g];
                    for (int r = 0; r < 16; r++) {
                        __m512 v = _mm512_fmadd_ps(_mm512_load_ps(c[g] + r * 16), _mm512_set1_ps(dp[r]),
                                                   _mm512_load_ps(acc[g * 16 + r]));
                        if (q4) v = _mm512_fmadd_ps(s, _mm512_set1_ps(mp[r]), v);
                        _mm512_store_ps(acc[g * 16 + r], v);
                    }
                }
            }
            if (b == blocks) break;
            // Two groups, two weight tiles: their chains of three products interleave (a tile load waits for
            // every product still reading that tile, so one shared weight tile serialised the groups).
            const uint16_t *xt = packed + (size_t)b * TOKEN_BLOCK;
            _tile_loadd(5, xt, 64);
            _tile_loadd(6, xt + HALF, 64);
            _tile_loadd(7, xt + 2 * HALF, 64);
            _tile_loadd(2, a[0], 64);
            _tile_zero(0);
            if (groups > 1) {
                _tile_loadd(3, a[1], 64);
                _tile_zero(1);
                _tile_dpbf16ps(0, 2, 5); _tile_dpbf16ps(1, 3, 5);
                _tile_dpbf16ps(0, 2, 6); _tile_dpbf16ps(1, 3, 6);
                _tile_dpbf16ps(0, 2, 7); _tile_dpbf16ps(1, 3, 7);
                _tile_stored(0, c[0], 64);
                _tile_stored(1, c[1], 64);
            } else {
                _tile_dpbf16ps(0, 2, 5); _tile_dpbf16ps(0, 2, 6); _tile_dpbf16ps(0, 2, 7);
                _tile_stored(0, c[0], 64);
            }
        }
        for (int g = 0; g < groups; g++) {
            const int n = nr - g * 16 < 16 ? nr - g * 16 : 16;
            float *o = out + r0 + g * 16;
            for (int t = 0; t < count; t++)
                for (int r = 0; r < n; r++) o[(size_t)t * ldo + r] = acc[g * 16 + r][t];
        }
    }
    _tile_release();
}

void amx_q4_1_rows(const uint8_t *w, long row_bytes, int rows, int blocks, const uint16_t *packed, const float *sums,
                   int count, float *out, long ldo) {
    quantized_rows(w, row_bytes, rows, blocks, packed, sums, count, out, ldo, 1);
}

void amx_q8_0_rows(const uint8_t *w, long row_bytes, int rows, int blocks, const uint16_t *packed, int count,
                   float *out, long ldo) {
    quantized_rows(w, row_bytes, rows, blocks, packed, NULL, count, out, ldo, 0);
}
