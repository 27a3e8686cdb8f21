#ifndef MATRIX_AMX_H
#define MATRIX_AMX_H

#include <stddef.h>
#include <stdint.h>

// Single-precision matrix products on Intel AMX tiles (Sapphire Rapids and later): dense ones for the trainer,
// quantized weight rows against tokens for the engine (second half of this file).
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

// Products of quantized weight rows (ggml Q4_1 and Q8_0 blocks of 32) with tokens, 16 at a time, for the engine's
// batched decode and prompts. The 4-bit (or 8-bit) integers are exact in bfloat16, and the activations are split
// in three (hi + mid + lo, all 24 bits of f32), so Σ W·x = Σ_blocks d·(Σ q·x_hi + Σ q·x_mid + Σ q·x_lo) + m·Σ x
// loses nothing to bfloat16: three tile products a block, scaled per block and row in f32 registers.

/// uint16 elements of `amx_pack_tokens`' output for `blocks` 32-column blocks (room for 16 tokens).
size_t amx_token_pack_count(int blocks);

/// Packs tokens x[0..<count] (count 1...16, row stride ldx, blocks · 32 columns) for `amx_q4_1_rows` and
/// `amx_q8_0_rows`; `sums` gets Σ x over each block and token ([blocks][16], zero past count).
void amx_pack_tokens(const float *x, long ldx, int count, int blocks, uint16_t *packed, float *sums);

/// out[t · ldo + r] = Σ_c W[r, c] · x[t, c] for t in 0..<count (as packed) and r in 0..<rows, W the Q4_1 rows at
/// `w` (rowBytes apart, `blocks` blocks each). Configures this thread's tiles.
void amx_q4_1_rows(const uint8_t *w, long row_bytes, int rows, int blocks, const uint16_t *packed, const float *sums,
                   int count, float *out, long ldo);

/// As amx_q4_1_rows, W in Q8_0 blocks.
void amx_q8_0_rows(const uint8_t *w, long row_bytes, int rows, int blocks, const uint16_t *packed, int count,
                   float *out, long ldo);

#ifdef __cplusplus
}
#endif

#endif
