/* fma-probe: the 8-wide f32 multiply-add rate of one core (ten independent chains, no memory).
 *   clang -O2 -mavx2 -mfma bench/tools/fma-probe.c -o /tmp/fma-probe && /tmp/fma-probe
 * One FMA a cycle is the peak of Zen 1 (two 128-bit FMA pipes); the figure is the effective clock. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
int main(){ __m256 a[10]; for(int i=0;i<10;i++)a[i]=_mm256_set1_ps(i*0.001f);
 __m256 b=_mm256_set1_ps(0.9999f), c=_mm256_set1_ps(0.0001f);
 struct timespec t0,t1; clock_gettime(CLOCK_MONOTONIC,&t0);
 long N=200000000;
 for(long n=0;n<N;n++){ for(int i=0;i<10;i++) a[i]=_mm256_fmadd_ps(a[i],b,c);}
 clock_gettime(CLOCK_MONOTONIC,&t1);
 double s=(t1.tv_sec-t0.tv_sec)+(t1.tv_nsec-t0.tv_nsec)*1e-9;
 float r=0; for(int i=0;i<10;i++) r+=a[i][0];
 printf("%.2f G ymm-FMA/s  (%.1f GFLOP/s) %f\n", N*10/s/1e9, N*10*16/s/1e9, r);}
