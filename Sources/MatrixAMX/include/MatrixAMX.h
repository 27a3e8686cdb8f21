#ifndef MATRIX_AMX_H
#define MATRIX_AMX_H

#include <stddef.h>
#include <stdint.h>

// Single-precision matrix products on Intel AMX tiles (Sapphire Rapids and later): dense ones for the trainer,
// quantized weights against tokens for the engine (second half of this file).
//
// Dense: each f32 operand is split into two bfloat16 numbers, hi = bf16(x) and lo = bf16(x - hi), which together
// carry 16 of f32's 24 significand bits, and C = A·Bᵀ is summed as Ahi·Bhi + Ahi·Blo + Alo·Bhi in f32 on the
// tiles (the dropped Alo·Blo is 2^-16 of the rest): three bf16 tile products, each 16 times the f32 FMA rate.
// Relative error ~4e-6 on the trainer's shapes, against ~1e-7 for f32 and ~2e-3 for plain bf16.
//
// Operands are packed first: A (the activations) row-wise, B (the weights) in AMX's pair-interleaved layout.
// Rows, columns and the summed dimension are padded with zeros to multiples of 32, so any shape works.
// Every call here may only run once amx_request_permission() returned 1 and on a CPU with AMX-BF16 and
// AVX-512-BF16 (the caller checks /proc/cpuinfo). Nothing allocates; packing and products take ranges so a
// thread pool can split them, and each output element is computed the same way whatever the split.

#ifdef __cplusplus
extern "C" {
#endif

/// Asks Linux for the AMX tile state (arch_prctl ARCH_REQ_XCOMP_PERM); 1 if granted, 0 if not.
int amx_request_permission(void);

/// uint16 elements of a packed A with m rows and k columns (also of a packed B with m columns).
size_t amx_packed_count(int m, int k);

/// Where row r0 (a multiple of 32) of a packed A with k columns starts: rows [r0, r0 + count) from there are a
/// packed A of their own, for products over a range of rows.
size_t amx_packed_row_offset(int r0, int k);

/// Packs rows [r0, r1) of A [m, k] (row-major, row stride lda) into `packed`; r0 a multiple of 16.
/// Rows up to the next multiple of 32 past m, and columns past k, are written as zeros.
void amx_pack_rows(const float *a, long lda, int m, int k, int r0, int r1, uint16_t *packed);

/// Packs columns [c0, c1) of op(B) [k, n] into `packed`, c0 a multiple of 16; B is stored [n, k] (`transposed` = 1,
/// the usual layout of a weight matrix in x·Wᵀ) or [k, n] (`transposed` = 0), row stride ldb.
void amx_pack_columns(const float *b, long ldb, int transposed, int n, int k, int c0, int c1, uint16_t *packed);

/// C[0..<m, c0..<c1] = A · op(B) for packed A [m, k] and packed B [k, n], C row-major with row stride ldc;
/// c0 a multiple of 32. Configures this thread's tiles first.
void amx_multiply(const uint16_t *a, const uint16_t *b, int m, int n, int k, float *c, long ldc, int c0, int c1);

// Products of quantized weights (ggml Q4_1 and Q8_0 blocks of 32) with tokens, for the engine's batched decode and
// prompts (QuantizedTiles.c). The weights are first repacked into a tile layout (the same bytes per block, 16 rows'
// blocks together and transposed, so that a weight tile is a few shifts and a table lookup away). The 4-bit (8-bit)
// integers are exact in bfloat16, and each activation is split in three (hi + mid + lo, all 24 bits of f32), so
// Σ W·x = Σ_blocks d·(Σ q·x_hi + Σ q·x_mid + Σ q·x_lo) + m·Σ x loses nothing to bfloat16; a block's three parts of
// up to 5 tokens share one tile (the rows of 6-8 tokens two), and each block's sums are scaled by d (plus m·Σx for
// Q4_1) in f32 registers.

/// Bytes of the tile layout of a Q4_1 (`q4` = 1) or Q8_0 matrix of `rows` rows, `blocks` blocks each.
size_t amx_tile_weights_bytes(int q4, int rows, int blocks);

/// Writes 16-row groups [g0, g1) of the Q4_1 / Q8_0 rows at `w` (`row_bytes` apart) into the tile layout `out` of
/// the whole matrix; rows past `rows` are zeros.
void amx_tile_weights(int q4, const uint8_t *w, long row_bytes, int rows, int blocks, int g0, int g1, uint8_t *out);

/// uint16 elements of the packed tokens of `groups` groups of 16 over `blocks` blocks.
size_t amx_token_tiles_count(int groups, int blocks);

/// Packs blocks [b0, b1) of one group of tokens x[0..<count] (count 1...16, row stride ldx) into `tiles` (that
/// group's, `amx_token_tiles_count(1, blocks)`); `sums` ([blocks][16]) gets Σ x over each block and token.
void amx_pack_token_tiles(const float *x, long ldx, int count, int b0, int b1, uint16_t *tiles, float *sums);

/// out[t · ldo + r] = Σ_c W[r, c] · x[t, c] for the n tokens packed in `tiles`/`sums` (groups of 16, then the rest,
/// one after another) and the rows r of 16-row groups [g0, g1) (below `rows`), W in the tile layout `tw`.
/// Configures this thread's tiles.
void amx_tile_rows(int q4, const uint8_t *tw, int rows, int blocks, int g0, int g1, const uint16_t *tiles,
                   const float *sums, int n, float *out, long ldo);

// f32 weights (merged adapters) against tokens (F32Tiles.c): each weight split once into bfloat16 hi + lo (w to
// 2^-18 of itself), the tokens packed by amx_pack_token_tiles (three exact parts), every block's products summed in
// the tiles (no scale a block).

/// uint16 elements of the tile layout of an f32 matrix of `rows` rows and `blocks` 32-column blocks.
size_t amx_f32_tile_weights_count(int rows, int blocks);

/// Writes 16-row groups [g0, g1) of the f32 rows `w` (row stride ldw, blocks · 32 columns) into the tile layout `out`
/// of the whole matrix; rows past `rows` are zeros.
void amx_f32_tile_weights(const float *w, long ldw, int rows, int blocks, int g0, int g1, uint16_t *out);

/// As amx_tile_rows, for an f32 matrix in its tile layout `tw` (`sums` not needed).
void amx_f32_tile_rows(const uint16_t *tw, int rows, int blocks, int g0, int g1, const uint16_t *tiles, int n,
                       float *out, long ldo);

#ifdef __cplusplus
}
#endif

#endif
