// Quantized weights (ggml Q4_1 and Q8_0) against tokens on AMX tiles, for the engine's batched decode and prompts;
// see MatrixAMX.h. Compiled with AMX and AVX-512 flags; runs only where AMXTiles.available.
#include "MatrixAMX.h"
#include "TileSupport.h"

#include <immintrin.h>
#include <string.h>

// Bytes of one 16-row group's block in the tile layout: Q4_1 d[16] and m[16] (f16), then the 16 x 16 bytes of
// nibbles, byte p of row j at p·16 + j; Q8_0 d[16], then 16 x 16 pairs (q[j][p], q[j][p + 16]) at (p·16 + j)·2.
// The same bytes as ggml's blocks, transposed so that one 16-byte load is one row of the weight tile.
enum { Q4_BLOCK = 320, Q8_BLOCK = 544 };
// Token groups converted weights are shared by in one pass: with 4 their sums, results and tiles stay in L1 (48 KB);
// 8 overflowed it and ran 1.7 times slower a token than 4 (bench/tools/amx-rows-probe.c, 128 and 512 tokens).
enum { MAX_GROUPS = 4 };

size_t amx_tile_weights_bytes(int q4, int rows, int blocks) {
    return (size_t)((rows + 15) / 16) * (size_t)blocks * (q4 ? Q4_BLOCK : Q8_BLOCK);
}

void amx_tile_weights(int q4, const uint8_t *w, long row_bytes, int rows, int blocks, int g0, int g1, uint8_t *out) {
    const int gb = q4 ? Q4_BLOCK : Q8_BLOCK, bb = q4 ? 20 : 34;
    for (int g = g0; g < g1; g++)
        for (int b = 0; b < blocks; b++) {
            uint8_t *o = out + ((size_t)g * blocks + b) * gb;
            memset(o, 0, gb);
            uint8_t *q = o + (q4 ? 64 : 32);
            for (int j = 0; j < 16 && g * 16 + j < rows; j++) {
                const uint8_t *blk = w + (size_t)(g * 16 + j) * row_bytes + (size_t)b * bb;
                memcpy(o + 2 * j, blk, 2);
                if (q4) {
                    memcpy(o + 32 + 2 * j, blk + 2, 2);
                    for (int p = 0; p < 16; p++) q[p * 16 + j] = blk[4 + p];
                } else {
                    for (int p = 0; p < 16; p++) {
                        q[(p * 16 + j) * 2] = blk[2 + p];
                        q[(p * 16 + j) * 2 + 1] = blk[18 + p];
                    }
                }
            }
        }
}

size_t amx_token_tiles_count(int groups, int blocks) { return (size_t)groups * (size_t)blocks * TOKEN_BLOCK; }

void amx_pack_token_tiles(const float *x, long ldx, int count, int b0, int b1, uint16_t *tiles, float *sums) {
    const int owned = owned_rows(count), ntiles = token_tiles(count);
    for (int b = b0; b < b1; b++) {
        uint32_t *tile = (uint32_t *)(tiles + (size_t)b * TOKEN_BLOCK);
        // Rows no part lands on are zeros: past count · owned in each tile, past count · (parts left) in the last.
        for (int i = 0; i < ntiles; i++) {
            const int parts = 3 - i * owned < owned ? 3 - i * owned : owned;
            memset(tile + i * 256 + count * parts * 16, 0, (size_t)(16 - count * parts) * 64);
        }
        for (int t = 0; t < count; t++) {
            __m512 x0 = _mm512_loadu_ps(x + (size_t)t * ldx + b * 32);
            __m512 x1 = _mm512_loadu_ps(x + (size_t)t * ldx + b * 32 + 16);
            sums[b * 16 + t] = _mm512_reduce_add_ps(_mm512_add_ps(x0, x1));
            // hi, then the exact remainder split again: x - hi - mid has at most 8 significant bits left, so lo is
            // exact and hi + mid + lo = x. Dword p of a row holds x[p] and x[p + 16].
            for (int k = 0; k < 3; k++) {
                __m512 r0 = x0, r1 = x1;
                const __m256i h0 = k < 2 ? high_part(x0, &r0) : (__m256i)_mm512_cvtneps_pbh(x0);
                const __m256i h1 = k < 2 ? high_part(x1, &r1) : (__m256i)_mm512_cvtneps_pbh(x1);
                _mm512_storeu_si512(tile + (k / owned) * 256 + (t + count * (k % owned)) * 16, pair_words(h0, h1));
                x0 = r0;
                x1 = r1;
            }
        }
    }
}

// One 16-row group's block to the weight tile `bt` (16 rows of 16 pairs, a row per byte or pair index p): Q4_1
// nibbles through a table of their bfloat16 values (the index words q | q >> 4 << 16, vpermw reading 5 bits of each).
static inline __attribute__((always_inline)) void convert_q4(const uint8_t *blk, uint16_t *bt, __m512i table) {
    const uint8_t *q = blk + 64;
#pragma GCC unroll 16
    for (int p = 0; p < 16; p++) {
        const __m512i x = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + p * 16)));
        _mm512_store_si512(bt + p * 32, _mm512_permutexvar_epi16(_mm512_or_si512(x, _mm512_slli_epi32(x, 12)), table));
    }
}

// Q8_0: int8 -> f32 -> bfloat16, exact (|q| <= 128 needs 8 significant bits).
static inline __attribute__((always_inline)) void convert_q8(const uint8_t *blk, uint16_t *bt) {
    const uint8_t *q = blk + 32;
#pragma GCC unroll 16
    for (int p = 0; p < 16; p++) {
        const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + p * 32))));
        const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(q + p * 32 + 16))));
        _mm512_store_si512(bt + p * 32, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
}

// A block's products for one token group and the weight groups in tiles 2 (and 3 when `pair`): token tiles in 5-7
// (as many as the group needs), sums of the parts in tiles 0 (and 1), stored to c0 (c1). Two weight groups keep two
// chains of products in flight (a tile load waits for every product still reading that tile).
static inline __attribute__((always_inline)) void products(const uint16_t *xt, int ntiles, int pair, float *c0, float *c1) {
    _tile_zero(0);
    _tile_loadd(5, xt, 64);
    if (pair) {
        _tile_zero(1);
        _tile_dpbf16ps(0, 5, 2); _tile_dpbf16ps(1, 5, 3);
        if (ntiles > 1) { _tile_loadd(6, xt + PART, 64); _tile_dpbf16ps(0, 6, 2); _tile_dpbf16ps(1, 6, 3); }
        if (ntiles > 2) { _tile_loadd(7, xt + 2 * PART, 64); _tile_dpbf16ps(0, 7, 2); _tile_dpbf16ps(1, 7, 3); }
        _tile_stored(0, c0, 64);
        _tile_stored(1, c1, 64);
    } else {
        _tile_dpbf16ps(0, 5, 2);
        if (ntiles > 1) { _tile_loadd(6, xt + PART, 64); _tile_dpbf16ps(0, 6, 2); }
        if (ntiles > 2) { _tile_loadd(7, xt + 2 * PART, 64); _tile_dpbf16ps(0, 7, 2); }
        _tile_stored(0, c0, 64);
    }
}

// Rows [16·g0, 16·g1) against `groups` token groups of `count` tokens each. `count` is a constant in every instance,
// so the scaling unrolls and one group's sums stay in registers. Weight groups two at a time, each block of them
// converted once for all token groups.
static inline __attribute__((always_inline)) void tile_rows(const int q4, const int count, const uint8_t *tw,
        int rows, int blocks, int g0, int g1, const uint16_t *tiles, const float *sums, int groups, float *out, long ldo) {
    const int gb = q4 ? Q4_BLOCK : Q8_BLOCK, owned = owned_rows(count), ntiles = token_tiles(count);
    uint16_t values[32];    // bfloat16 of i & 15, for the nibble indices
    for (int i = 0; i < 32; i++) {
        const float f = (float)(i & 15);
        uint32_t u;
        memcpy(&u, &f, 4);
        values[i] = (uint16_t)(u >> 16);
    }
    const __m512i table = _mm512_loadu_si512(values);
    uint16_t bt[2][2][16 * 32] __attribute__((aligned(64)));
    float c[2][MAX_GROUPS][2][16 * 16] __attribute__((aligned(64)));
    __m512 acc[MAX_GROUPS][2][16];
    for (int g = g0; g < g1; g += 2) {
        const int pair = g + 1 < g1;
        for (int tg = 0; tg < groups; tg++)
            for (int h = 0; h < 2; h++)
                for (int t = 0; t < count; t++) acc[tg][h][t] = _mm512_setzero_ps();
        const uint8_t *wg[2] = {tw + (size_t)g * blocks * gb, tw + (size_t)(g + pair) * blocks * gb};
        // A software pipeline: block b's products, then block b + 1's conversion, then block b - 1's scaling, so
        // that no vector load meets a tile store just made, nor a tile load vector stores just made (neither is
        // forwarded, each waits for the other to reach the cache).
        for (int b = -1; b <= blocks; b++) {
            if (b >= 0 && b < blocks) {
                _tile_loadd(2, bt[b & 1][0], 64);
                if (pair) _tile_loadd(3, bt[b & 1][1], 64);
                for (int tg = 0; tg < groups; tg++)
                    products(tiles + ((size_t)tg * blocks + b) * TOKEN_BLOCK, ntiles, pair, c[b & 1][tg][0], c[b & 1][tg][1]);
            }
            const int nb = b + 1, pb = b - 1;
            if (nb < blocks)
                for (int h = 0; h <= pair; h++) {
                    const uint8_t *blk = wg[h] + (size_t)nb * gb;
                    for (int l = 0; l < gb; l += 64) _mm_prefetch((const char *)blk + 8 * gb + l, _MM_HINT_T0);
                    if (q4) convert_q4(blk, bt[nb & 1][h], table);
                    else convert_q8(blk, bt[nb & 1][h]);
                }
            if (pb >= 0)
                for (int h = 0; h <= pair; h++) {
                    const uint8_t *blk = wg[h] + (size_t)pb * gb;
                    const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
                    const __m512 m = q4 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32))) : d;
                    for (int tg = 0; tg < groups; tg++) {
                        const float *cp = c[pb & 1][tg][h], *s = sums + ((size_t)tg * blocks + pb) * 16;
                        for (int t = 0; t < count; t++) {
                            __m512 sum = _mm512_load_ps(cp + t * 16);
                            if (owned > 1) sum = _mm512_add_ps(sum, _mm512_load_ps(cp + (t + count) * 16));
                            if (owned > 2) sum = _mm512_add_ps(sum, _mm512_load_ps(cp + (t + 2 * count) * 16));
                            acc[tg][h][t] = _mm512_fmadd_ps(sum, d, acc[tg][h][t]);
                            if (q4) acc[tg][h][t] = _mm512_fmadd_ps(_mm512_set1_ps(s[t]), m, acc[tg][h][t]);
                        }
                    }
                }
        }
        for (int h = 0; h <= pair; h++) {
            const int r0 = (g + h) * 16, nr = rows - r0 < 16 ? rows - r0 : 16;
            const __mmask16 mask = (__mmask16)((1u << nr) - 1);
            for (int tg = 0; tg < groups; tg++)
                for (int t = 0; t < count; t++)
                    _mm512_mask_storeu_ps(out + (size_t)(tg * 16 + t) * ldo + r0, mask, acc[tg][h][t]);
        }
    }
}

#define ONE_GROUP(q4, n) case n: tile_rows(q4, n, tw, rows, blocks, g0, g1, tiles, sums, 1, out, ldo); break;
#define ONE_GROUP_CASES(q4) \
    ONE_GROUP(q4, 1) ONE_GROUP(q4, 2) ONE_GROUP(q4, 3) ONE_GROUP(q4, 4) ONE_GROUP(q4, 5) ONE_GROUP(q4, 6) \
    ONE_GROUP(q4, 7) ONE_GROUP(q4, 8) ONE_GROUP(q4, 9) ONE_GROUP(q4, 10) ONE_GROUP(q4, 11) ONE_GROUP(q4, 12) \
    ONE_GROUP(q4, 13) ONE_GROUP(q4, 14) ONE_GROUP(q4, 15) ONE_GROUP(q4, 16)

void amx_tile_rows(int q4, const uint8_t *tw, int rows, int blocks, int g0, int g1, const uint16_t *tiles,
                   const float *sums, int n, float *out, long ldo) {
    _tile_loadconfig(&SIXTEEN_BY_64);
    const int full = n / 16, count = n % 16;
    // Whole groups of 16, up to MAX_GROUPS a pass (a lone one with its sums in registers), then the rest.
    for (int tg = 0; tg < full; tg += MAX_GROUPS) {
        const int groups = full - tg < MAX_GROUPS ? full - tg : MAX_GROUPS;
        const uint16_t *t = tiles + (size_t)tg * blocks * TOKEN_BLOCK;
        const float *s = sums + (size_t)tg * blocks * 16;
        float *o = out + (size_t)tg * 16 * ldo;
        if (q4) {
            if (groups == 1) tile_rows(1, 16, tw, rows, blocks, g0, g1, t, s, 1, o, ldo);
            else tile_rows(1, 16, tw, rows, blocks, g0, g1, t, s, groups, o, ldo);
        } else {
            if (groups == 1) tile_rows(0, 16, tw, rows, blocks, g0, g1, t, s, 1, o, ldo);
            else tile_rows(0, 16, tw, rows, blocks, g0, g1, t, s, groups, o, ldo);
        }
    }
    if (count > 0) {
        tiles += (size_t)full * blocks * TOKEN_BLOCK;
        sums += (size_t)full * blocks * 16;
        out += (size_t)full * 16 * ldo;
        if (q4) switch (count) { ONE_GROUP_CASES(1) }
        else switch (count) { ONE_GROUP_CASES(0) }
    }
    _tile_release();
}
