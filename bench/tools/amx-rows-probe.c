/* amx-rows-probe: MatrixAMX's quantized-row tile kernel (amx_q4_1_rows, what MatmulRunner runs for 2+ tokens on
 * AMX machines) on a random 1536 x 576 Q4_1 matrix: the worst error against a Double sum of the dequantized
 * weights, and the best of 200 runs in ns per 16-row block. Rows that are not a multiple of 16 test the tail.
 *   cc -O2 -mamx-tile -mamx-bf16 -mavx512f -mavx512bf16 -mavx512bw -mavx512vl -mf16c -mfma \
 *      -ISources/MatrixAMX/include bench/tools/amx-rows-probe.c Sources/MatrixAMX/MatrixAMX.c -lm -o /tmp/amx-rows-probe
 *   /tmp/amx-rows-probe [TOKENS (1-16, default 8)] [ROWS (default 1536; given: every row is checked)]
 */
#include "MatrixAMX.h"
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include <immintrin.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  amx_request_permission();
  int rows=argc>2?atoi(argv[2]):1536, cols=576, blocks=cols/32; long rb=blocks*20; int count=argc>1?atoi(argv[1]):8;
  uint8_t*w=malloc(rows*rb); for(long i=0;i<rows*rb;i++)w[i]=rand();
  for(int r=0;r<rows;r++)for(int b=0;b<blocks;b++){uint16_t d=_cvtss_sh(0.01f*(1+rand()%5),0),m=_cvtss_sh(-0.05f,0); memcpy(w+r*rb+b*20,&d,2); memcpy(w+r*rb+b*20+2,&m,2);}
  float*x=malloc(4*16*cols); for(int i=0;i<16*cols;i++)x[i]=rand()/(float)RAND_MAX-0.5f;
  uint16_t*pk=aligned_alloc(64,2*amx_token_pack_count(blocks)); float*sums=malloc(4*blocks*16); float*out=malloc(4*16*rows);
  amx_pack_tokens(x,cols,count,blocks,pk,sums);
  amx_q4_1_rows(w,rb,rows,blocks,pk,sums,count,out,rows);
  // check
  double maxerr=0; for(int t=0;t<count;t++)for(int r=0;r<rows;r+=(argc>2?1:97)){double s=0; for(int b=0;b<blocks;b++){const uint8_t*blk=w+r*rb+b*20; uint16_t dh,mh; memcpy(&dh,blk,2); memcpy(&mh,blk+2,2); float d=_cvtsh_ss(dh),m=_cvtsh_ss(mh);
      for(int j=0;j<16;j++){s+=(d*(blk[4+j]&15)+m)*(double)x[t*cols+b*32+j]; s+=(d*(blk[4+j]>>4)+m)*(double)x[t*cols+b*32+16+j];}} double e=fabs(s-out[t*rows+r]); if(e>maxerr)maxerr=e;}
  double best=1e9; for(int rep=0;rep<200;rep++){double t0=now(); amx_q4_1_rows(w,rb,rows,blocks,pk,sums,count,out,rows); double t=now()-t0; if(t<best)best=t;}
  printf("count %d: %.1f ns per 16-row block (%.2f ns per block-row-token), max err %.2e\n",count,best*1e9/(rows/16*blocks),best*1e9/(rows*blocks*count),maxerr);
}
