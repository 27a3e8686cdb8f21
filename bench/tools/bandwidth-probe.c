/* bandwidth-probe: how fast this machine streams memory that is not in cache (256 MiB, read five times),
 * with one thread and with two, each reading its own half. Decode of one token reads every weight once
 * (~98 MB for the default model), so this is the ceiling a memory-bound decode step meets.
 *   gcc -O2 -mavx2 -pthread bench/tools/bandwidth-probe.c -o /tmp/bandwidth-probe && /tmp/bandwidth-probe
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BYTES (256L << 20)
#define PASSES 5
static char *buf;
static int threads;

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

static void *reader(void *arg) {
    long id = (long)arg, part = BYTES / threads;
    __m256i acc = _mm256_setzero_si256();
    for (int pass = 0; pass < PASSES; pass++)
        for (long i = id * part; i < (id + 1) * part; i += 128) {
            acc = _mm256_add_epi32(acc, _mm256_load_si256((const void *)(buf + i)));
            acc = _mm256_add_epi32(acc, _mm256_load_si256((const void *)(buf + i + 32)));
            acc = _mm256_add_epi32(acc, _mm256_load_si256((const void *)(buf + i + 64)));
            acc = _mm256_add_epi32(acc, _mm256_load_si256((const void *)(buf + i + 96)));
        }
    return (void *)(long)_mm256_extract_epi32(acc, 0);  /* keeps the loads */
}

int main(void) {
    buf = aligned_alloc(64, BYTES);
    memset(buf, 1, BYTES);
    for (threads = 1; threads <= 2; threads++) {
        pthread_t t[2];
        double start = now();
        for (long i = 0; i < threads; i++) pthread_create(&t[i], NULL, reader, (void *)i);
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        printf("%d thread%s: %.1f GB/s\n", threads, threads > 1 ? "s" : "", (double)PASSES * BYTES / (now() - start) / 1e9);
    }
    return 0;
}
