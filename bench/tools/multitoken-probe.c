/* multitoken-probe: the MultiTokenDot loop (one Q4_1 row of 1536 weights against 8 tokens) in C, hot in
 * cache, with the blocks converted to f32 (mode 0), with constant weights instead (mode 1: what the multiply-adds
 * and loads alone cost), and as 2 rows x 4 tokens (mode 2). Prints ns per 32-weight block and token.
 *   clang -O2 -mavx2 -mfma -mf16c bench/tools/multitoken-probe.c -o /tmp/multitoken-probe && /tmp/multitoken-probe */
#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#define COLS 1536
#define BLOCKS (COLS/32)
#define ROWS 256
static inline void deq(const uint8_t* blk, __m256 w[4]) {
  __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(*(const int*)blk));
  __m256 d = _mm256_broadcastss_ps(dm), m = _mm256_broadcastss_ps(_mm_movehdup_ps(dm));
  __m128i v = _mm_loadu_si128((const __m128i*)(blk+4)), mask=_mm_set1_epi8(15);
  __m128i lo=_mm_and_si128(v,mask), hi=_mm_and_si128(_mm_srli_epi16(v,4),mask);
  w[0]=_mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)),d,m);
  w[1]=_mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(lo,lo))),d,m);
  w[2]=_mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)),d,m);
  w[3]=_mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(hi,hi))),d,m);
}
__attribute__((noinline)) void row8(const uint8_t* row, const float* x, float* out, int constw) {
  __m256 a[8]; for(int t=0;t<8;t++) a[t]=_mm256_setzero_ps();
  __m256 w[4];
  for (int b=0;b<BLOCKS;b++){
    if (constw) { for(int j=0;j<4;j++) w[j]=_mm256_set1_ps(0.5f+j); } else deq(row+20*b,w);
    const float* xb=x+32*b;
    for(int j=0;j<4;j++) for(int t=0;t<8;t++) a[t]=_mm256_fmadd_ps(w[j],_mm256_loadu_ps(xb+t*COLS+8*j),a[t]);
  }
  for(int t=0;t<8;t++){ float s[8]; _mm256_storeu_ps(s,a[t]); out[t]=s[0]+s[1]+s[2]+s[3]+s[4]+s[5]+s[6]+s[7]; }
}
// 2 rows x 4 tokens
__attribute__((noinline)) void rows2x4(const uint8_t* r0, const uint8_t* r1, const float* x, float* out) {
  __m256 a[8]; for(int t=0;t<8;t++) a[t]=_mm256_setzero_ps();
  __m256 w[4], v[4];
  for (int b=0;b<BLOCKS;b++){
    deq(r0+20*b,w); deq(r1+20*b,v);
    const float* xb=x+32*b;
    for(int j=0;j<4;j++) for(int t=0;t<4;t++){ __m256 xv=_mm256_loadu_ps(xb+t*COLS+8*j); a[t]=_mm256_fmadd_ps(w[j],xv,a[t]); a[4+t]=_mm256_fmadd_ps(v[j],xv,a[4+t]); }
  }
  for(int t=0;t<8;t++){ float s[8]; _mm256_storeu_ps(s,a[t]); out[t]=s[0]+s[1]+s[2]+s[3]+s[4]+s[5]+s[6]+s[7]; }
}
double now(){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  uint8_t* W=malloc(ROWS*BLOCKS*20); for(int i=0;i<ROWS*BLOCKS*20;i++) W[i]=rand();
  for(int r=0;r<ROWS*BLOCKS;r++){ *(uint16_t*)(W+20*r)=0x3800; *(uint16_t*)(W+20*r+2)=0xBC00; }
  float* x=aligned_alloc(64,8*COLS*4); for(int i=0;i<8*COLS;i++) x[i]=(i%100)*0.01f;
  float out[8*ROWS]; int REP=400;
  for(int mode=0;mode<3;mode++){
    double t0=now();
    for(int k=0;k<REP;k++) {
      if(mode<2) for(int r=0;r<ROWS;r++) row8(W+r*BLOCKS*20,x,out+8*r,mode);
      else for(int r=0;r<ROWS;r+=2) rows2x4(W+r*BLOCKS*20,W+(r+1)*BLOCKS*20,x,out+8*r);
    }
    double s=now()-t0;
    int tok = mode<2?8:4;
    printf("mode %d: %.2f ns per block-token\n",mode, s*1e9/((double)REP*ROWS*BLOCKS*tok));
  }
  printf("%f\n",out[5]);
}
