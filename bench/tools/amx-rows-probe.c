/* amx-rows-probe: MatrixAMX's quantized tile kernel (amx_tile_rows, what MatmulRunner runs for 2+ tokens on AMX
 * machines) on a random Q4_1 (or Q8_0) matrix of 576 columns: repacked with amx_tile_weights, the worst error
 * against a Double sum of the dequantized weights, and the best of 200 runs in ns per 16-row block.
 *   cc -O2 -mamx-tile -mamx-bf16 -mavx512f -mavx512bf16 -mavx512bw -mavx512vl -mf16c -mfma \
 *      -ISources/MatrixAMX/include bench/tools/amx-rows-probe.c Sources/MatrixAMX/*.c -lm -o /tmp/amx-rows-probe
 *   /tmp/amx-rows-probe [TOKENS (default 8)] [ROWS (default 1536; given: every row is checked)] [Q4 (1, or 0: Q8_0)]
 */
#include "MatrixAMX.h"
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }
int main(int argc, char **argv) {
    if (!amx_request_permission()) { fprintf(stderr, "no AMX tile permission\n"); return 1; }
    const int count = argc > 1 ? atoi(argv[1]) : 8, rows = argc > 2 ? atoi(argv[2]) : 1536, q4 = argc > 3 ? atoi(argv[3]) : 1;
    const int cols = 576, blocks = cols / 32, bb = q4 ? 20 : 34;
    const long rb = (long)blocks * bb;
    uint8_t *w = malloc(rows * rb);
    for (long i = 0; i < rows * rb; i++) w[i] = rand();
    for (int r = 0; r < rows; r++)
        for (int b = 0; b < blocks; b++) {
            uint16_t d = _cvtss_sh(0.01f * (1 + rand() % 5), 0), m = _cvtss_sh(-0.05f, 0);
            memcpy(w + r * rb + b * bb, &d, 2);
            if (q4) memcpy(w + r * rb + b * bb + 2, &m, 2);
        }
    float *x = malloc(4L * count * cols);
    for (int i = 0; i < count * cols; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
    const int groups = (count + 15) / 16;
    uint8_t *tw = aligned_alloc(64, amx_tile_weights_bytes(q4, rows, blocks));
    amx_tile_weights(q4, w, rb, rows, blocks, 0, (rows + 15) / 16, tw);
    uint16_t *tiles = aligned_alloc(64, 2 * amx_token_tiles_count(groups, blocks));
    float *sums = malloc(4L * blocks * 16 * groups), *out = malloc(4L * count * rows);
    for (int g = 0; g < groups; g++)
        amx_pack_token_tiles(x + g * 16 * cols, cols, count - g * 16 < 16 ? count - g * 16 : 16, 0, blocks,
                             tiles + amx_token_tiles_count(g, blocks), sums + g * blocks * 16);
    amx_tile_rows(q4, tw, rows, blocks, 0, (rows + 15) / 16, tiles, sums, count, out, rows);
    double worst = 0;
    for (int t = 0; t < count; t++)
        for (int r = 0; r < rows; r += argc > 2 ? 1 : 7) {
            double s = 0;
            for (int b = 0; b < blocks; b++) {
                const uint8_t *blk = w + r * rb + b * bb;
                uint16_t dh, mh = 0;
                memcpy(&dh, blk, 2);
                if (q4) memcpy(&mh, blk + 2, 2);
                const float d = _cvtsh_ss(dh), m = _cvtsh_ss(mh);
                for (int j = 0; j < 32; j++) {
                    const float q = q4 ? (j < 16 ? blk[4 + j] & 15 : blk[4 + j - 16] >> 4) : (float)(int8_t)blk[2 + j];
                    s += (d * q + m) * (double)x[t * cols + b * 32 + j];
                }
            }
            const double e = fabs(s - out[t * rows + r]);
            if (e > worst) worst = e;
        }
    double best = 1e9;
    for (int rep = 0; rep < 200; rep++) {
        const double t0 = now();
        amx_tile_rows(q4, tw, rows, blocks, 0, (rows + 15) / 16, tiles, sums, count, out, rows);
        const double t = now() - t0;
        if (t < best) best = t;
    }
    printf("%s, %d tokens, %d rows: %.1f ns per 16-row block (%.2f ns per block, row and token), max error %.2e\n",
           q4 ? "Q4_1" : "Q8_0", count, rows, best * 1e9 / ((rows + 15) / 16 * blocks), best * 1e9 / ((double)rows * blocks * count), worst);
    return 0;
}
