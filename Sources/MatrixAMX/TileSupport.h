// What both tile files share: the tile configuration and the bfloat16 split. Internal to MatrixAMX.
#ifndef MATRIX_AMX_TILE_SUPPORT_H
#define MATRIX_AMX_TILE_SUPPORT_H

#include <immintrin.h>
#include <stdint.h>

typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) TileConfig;

// Eight tiles of 16 rows x 64 bytes. A constant: gcc -O2 dropped the stores of a configuration built on the stack
// before ldtilecfg.
static const TileConfig SIXTEEN_BY_64 = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

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

// 16 dwords, dword i = (a[i], b[i]): the bfloat16 pairs a tile row or VNNI row holds.
static inline __m512i pair_words(__m256i a, __m256i b) {
    return _mm512_or_si512(_mm512_cvtepu16_epi32(a), _mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
}

// A token tile (16 rows x 32 bfloat16) and the room a block's token tiles take (three at most): see
// amx_pack_token_tiles.
enum { PART = 512, TOKEN_BLOCK = 3 * PART };

// How many rows of a token tile each of `count` tokens owns (up to 3, one per part), and so how many tiles a block's
// three parts take: token t's part k is row t + count·(k mod owned) of tile k / owned.
static inline int owned_rows(int count) { const int k = 16 / count; return k > 3 ? 3 : k; }
static inline int token_tiles(int count) { const int k = owned_rows(count); return (3 + k - 1) / k; }

#endif
