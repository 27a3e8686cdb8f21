/* multitoken-probe: the MultiTokenDot loop in C, hot in cache: one Q4_1 row x 8 tokens with the blocks converted to
 * f32 (256-bit, as MultiTokenDot), the same with constant weights (what the multiply-adds and loads alone cost),
 * 2 rows x 4 tokens; built for AVX-512 also the 512-bit loops of TensorAVX512's MultiTokenDotAVX512 (1 row x 8
 * tokens, with and without the conversion, and 2 rows x 8 tokens). Prints the minimum over 15 alternating rounds in
 * ns per 32-weight block and token; an argument runs one mode only (0-5: two copies side by side).
 *   clang -O2 -mavx2 -mfma -mf16c bench/tools/multitoken-probe.c -o /tmp/mtp && /tmp/mtp               (256-bit)
 *   clang -O2 -march=skylake-avx512 bench/tools/multitoken-probe.c -o /tmp/mtp && /tmp/mtp             (both)
 * Session 9, Xeon VM, 512 columns: 256-bit 1x8 1.05-1.16, 512-bit 1x8 0.74-0.83, 512-bit 2x8 0.70-0.76. */
#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#define COLS 512
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

#ifdef __AVX512F__
static inline void deq512(const uint8_t* blk, __m512 w[2]) {
  __m128 dm = _mm_cvtph_ps(_mm_cvtsi32_si128(*(const int*)blk));
  __m512 d = _mm512_broadcastss_ps(dm), m = _mm512_broadcastss_ps(_mm_movehdup_ps(dm));
  __m128i v = _mm_loadu_si128((const __m128i*)(blk+4)), mask=_mm_set1_epi8(15);
  __m128i lo=_mm_and_si128(v,mask), hi=_mm_and_si128(_mm_srli_epi16(v,4),mask);
  w[0]=_mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(lo)),d,m);
  w[1]=_mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(hi)),d,m);
}
__attribute__((noinline)) void row8z(const uint8_t* row, const float* x, float* out, int constw) {
  __m512 a[16]; for(int t=0;t<16;t++) a[t]=_mm512_setzero_ps();
  __m512 w[2];
  for (int b=0;b<BLOCKS;b++){
    if (constw) { for(int j=0;j<2;j++) w[j]=_mm512_set1_ps(0.5f+j); } else deq512(row+20*b,w);
    const float* xb=x+32*b;
    for(int t=0;t<8;t++) { a[t]=_mm512_fmadd_ps(w[0],_mm512_loadu_ps(xb+t*COLS),a[t]); a[8+t]=_mm512_fmadd_ps(w[1],_mm512_loadu_ps(xb+t*COLS+16),a[8+t]); }
  }
  for(int t=0;t<8;t++){ out[t]=_mm512_reduce_add_ps(_mm512_add_ps(a[t],a[8+t])); }
}

__attribute__((noinline)) void rows2x8z(const uint8_t* r0, const uint8_t* r1, const float* x, float* out) {
  __m512 a[16]; for(int t=0;t<16;t++) a[t]=_mm512_setzero_ps();
  __m512 w[2], v[2];
  for (int b=0;b<BLOCKS;b++){
    deq512(r0+20*b,w); deq512(r1+20*b,v);
    const float* xb=x+32*b;
    for(int j=0;j<2;j++) for(int t=0;t<8;t++){ __m512 xv=_mm512_loadu_ps(xb+t*COLS+16*j); a[t]=_mm512_fmadd_ps(w[j],xv,a[t]); a[8+t]=_mm512_fmadd_ps(v[j],xv,a[8+t]); }
  }
  for(int t=0;t<16;t++){ out[t]=_mm512_reduce_add_ps(a[t]); }
}
#endif
double now(){struct timespec t; clock_gettime(CLOCK_MONOTONIC,&t); return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){ int only=argc>1?atoi(argv[1]):-1;
  uint8_t* W=malloc(ROWS*BLOCKS*20); for(int i=0;i<ROWS*BLOCKS*20;i++) W[i]=rand();
  for(int r=0;r<ROWS*BLOCKS;r++){ *(uint16_t*)(W+20*r)=0x3800; *(uint16_t*)(W+20*r+2)=0xBC00; }
  float* x=aligned_alloc(64,8*COLS*4); for(int i=0;i<8*COLS;i++) x[i]=(i%100)*0.01f;
  float out[8*ROWS]; int REP=400;
  double best[6]={1e9,1e9,1e9,1e9,1e9,1e9};
  for(int rep=0;rep<15;rep++) for(int mode=0;mode<6;mode++){ if(only>=0 && mode!=only) continue;
    double t0=now();
    for(int k=0;k<REP/4;k++) {
      
#ifdef __AVX512F__
      if(mode==5) for(int r=0;r<ROWS;r+=2) rows2x8z(W+r*BLOCKS*20,W+(r+1)*BLOCKS*20,x,out+8*r); else if(mode>=3) for(int r=0;r<ROWS;r++) row8z(W+r*BLOCKS*20,x,out+8*r,mode-3); else
#else
      if(mode>=3) continue; else
#endif
      if(mode<2) for(int r=0;r<ROWS;r++) row8(W+r*BLOCKS*20,x,out+8*r,mode);
      else for(int r=0;r<ROWS;r+=2) rows2x4(W+r*BLOCKS*20,W+(r+1)*BLOCKS*20,x,out+8*r);
    }
    double s=now()-t0;
    int tok = mode==2?4:8;
    double ns=s*1e9/((double)(REP/4)*ROWS*BLOCKS*tok); if(ns<best[mode])best[mode]=ns;
  }
  const char* names[6]={"ymm 1x8","ymm 1x8 const w","ymm 2x4","zmm 1x8","zmm 1x8 const w","zmm 2x8"};
  for(int m=0;m<6;m++) if(best[m]<1e9) printf("%-16s %.2f ns per block-token (min of 15)\n",names[m],best[m]);
  printf("%f\n",out[5]);
}
