/* sgemm-probe: how many GFLOP/s OpenBLAS sgemm reaches on this machine, single-threaded.
 * Build and run one copy, then two at once, to see whether the two vCPUs share FP throughput:
 *   gcc -O2 bench/tools/sgemm-probe.c -o /tmp/sgemm-probe -I/usr/include/x86_64-linux-gnu -lopenblas
 *   /tmp/sgemm-probe; (/tmp/sgemm-probe & /tmp/sgemm-probe; wait)
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){openblas_set_num_threads(1);int M=1024,N=1024,K=1024;
  float*A=malloc(4L*M*K),*B=malloc(4L*N*K),*C=malloc(4L*M*N);
  for(long i=0;i<(long)M*K;i++)A[i]=1; for(long i=0;i<(long)N*K;i++)B[i]=1;
  double t=now(); for(int r=0;r<10;r++) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,N,K,1,A,K,B,N,0,C,N);
  t=now()-t; printf("%.1f GFLOP/s\n",10*2.0*M*N*K/t/1e9);}
