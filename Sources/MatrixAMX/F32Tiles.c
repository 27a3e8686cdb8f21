// f32 weights (merged adapters) against tokens on AMX tiles, for the engine; see MatrixAMX.h. Compiled with AMX and
// AVX-512 flags; runs only where AMXTiles.available.
#include "MatrixAMX.h"
#include "TileSupport.h"

#include <immintrin.h>
#include <string.h>

// One 16-row group's block of 32 columns: two weight tiles, hi = bf16(w) and lo = bf16(w - hi) (together w to
// 2^-18 of itself), each 16 rows p of 16 pairs (w[j][p], w[j][p + 16]) for the rows j, paired as the token tiles are.
enum { F32_BLOCK = 2 * PART };

size_t amx_f32_tile_weights_count(int rows, int blocks) {
    return (size_t)((rows + 15) / 16) * (size_t)blocks * F32_BLOCK;
}

void amx_f32_tile_weights(const float *w, long ldw, int rows, int blocks, int g0, int g1, uint16_t *out) {
    for (int g = g0; g < g1; g++)
        for (int b = 0; b < blocks; b++) {
            uint32_t *hi = (uint32_t *)(out + ((size_t)g * blocks + b) * F32_BLOCK), *lo = hi + 256;
            for (int j = 0; j < 16; j++) {
                const int r = g * 16 + j;
                __m512 x0 = _mm512_setzero_ps(), x1 = _mm512_setzero_ps();
                if (r < rows) {
                    x0 = _mm512_loadu_ps(w + (size_t)r * ldw + b * 32);
                    x1 = _mm512_loadu_ps(w + (size_t)r * ldw + b * 32 + 16);
                }
                __m256i h0, l0, h1, l1;
                split(x0, &h0, &l0);
                split(x1, &h1, &l1);
                uint32_t hv[16], lv[16];
                _mm512_storeu_si512(hv, pair_words(h0, h1));
                _mm512_storeu_si512(lv, pair_words(l0, l1));
                for (int p = 0; p < 16; p++) {
                    hi[p * 16 + j] = hv[p];
                    lo[p * 16 + j] = lv[p];
                }
            }
        }
}

// The token tiles (5, and 6 and 7 as `ntiles` says; PAIR_PRODUCTS: 5 and 6) times one block's weight tile w, summed
// into C tile c.
#define PRODUCTS(c, w) do { \
    _tile_dpbf16ps(c, 5, w); \
    if (ntiles > 1) _tile_dpbf16ps(c, 6, w); \
    if (ntiles > 2) _tile_dpbf16ps(c, 7, w); } while (0)
#define PAIR_PRODUCTS(c, w) do { \
    _tile_dpbf16ps(c, 5, w); \
    if (ntiles > 1) _tile_dpbf16ps(c, 6, w); } while (0)

// Unlike the quantized kernel there is no scale a block, so each C tile sums every block and leaves the tiles once.
// Tiles: C in 0 (and 1 for a second weight group), tokens in 5-7, weights hi in 2 (3), lo in 4 (and 7 when there
// are two groups, which needs the group's tokens in two tiles or fewer).
void amx_f32_tile_rows(const uint16_t *tw, int rows, int blocks, int g0, int g1, const uint16_t *tiles, int n,
                       float *out, long ldo) {
    _tile_loadconfig(&SIXTEEN_BY_64);
    float c[2][256] __attribute__((aligned(64)));
    for (int tg = 0; tg * 16 < n; tg++) {
        const int count = n - tg * 16 < 16 ? n - tg * 16 : 16, owned = owned_rows(count), ntiles = token_tiles(count);
        const uint16_t *xt = tiles + (size_t)tg * blocks * TOKEN_BLOCK;
        for (int g = g0; g < g1;) {
            const int pair = g + 1 < g1 && ntiles <= 2;
            const uint16_t *w0 = tw + (size_t)g * blocks * F32_BLOCK, *w1 = w0 + (size_t)blocks * F32_BLOCK;
            _tile_zero(0);
            if (pair) _tile_zero(1);
            for (int b = 0; b < blocks; b++) {
                const uint16_t *x = xt + (size_t)b * TOKEN_BLOCK, *wb = w0 + (size_t)b * F32_BLOCK;
                _tile_loadd(5, x, 64);
                if (ntiles > 1) _tile_loadd(6, x + PART, 64);
                if (ntiles > 2) _tile_loadd(7, x + 2 * PART, 64);
                _tile_loadd(2, wb, 64);
                _tile_loadd(4, wb + PART, 64);
                if (pair) {
                    const uint16_t *wb1 = w1 + (size_t)b * F32_BLOCK;
                    _tile_loadd(3, wb1, 64);
                    _tile_loadd(7, wb1 + PART, 64);
                    PAIR_PRODUCTS(0, 2); PAIR_PRODUCTS(1, 3); PAIR_PRODUCTS(0, 4); PAIR_PRODUCTS(1, 7);
                } else {
                    PRODUCTS(0, 2); PRODUCTS(0, 4);
                }
            }
            _tile_stored(0, c[0], 64);
            if (pair) _tile_stored(1, c[1], 64);
            for (int h = 0; h <= pair; h++) {
                const int r0 = (g + h) * 16, nr = rows - r0 < 16 ? rows - r0 : 16;
                const __mmask16 mask = (__mmask16)((1u << nr) - 1);
                for (int t = 0; t < count; t++) {
                    __m512 sum = _mm512_load_ps(c[h] + t * 16);
                    for (int k = 1; k < owned; k++) sum = _mm512_add_ps(sum, _mm512_load_ps(c[h] + (t + k * count) * 16));
                    _mm512_mask_storeu_ps(out + (size_t)(tg * 16 + t) * ldo + r0, mask, sum);
                }
            }
            g += 1 + pair;
        }
    }
    _tile_release();
}
