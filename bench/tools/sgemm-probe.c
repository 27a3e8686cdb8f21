/* sgemm-probe: how many GFLOP/s OpenBLAS sgemm reaches on this machine, single-threaded.
 * Build and run one copy, then two at once, to see whether the two vCPUs share FP throughput:
 *   gcc -O2 bench/tools/sgemm-probe.c -o /tmp/sgemm-probe -I/usr/include/x86_64-linux-gnu -lopenblas
 *   /tmp/sgemm-probe; (/tmp/sgemm-probe & /tmp/sgemm-probe; wait)
 * With arguments M N K, the shape the runtime uses: C[M,N] = A[M,K] · B[N,K]ᵀ (activations times a weight tile),
 *   /tmp/sgemm-probe 512 64 576     # a 512-token prefill against a 64-row tile of a 576-wide projection
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){openblas_set_num_threads(1);
  int square=argc<4, M=square?1024:atoi(argv[1]), N=square?1024:atoi(argv[2]), K=square?1024:atoi(argv[3]);
  float*A=malloc(4L*M*K),*B=malloc(4L*N*K),*C=malloc(4L*M*N);
  for(long i=0;i<(long)M*K;i++)A[i]=1; for(long i=0;i<(long)N*K;i++)B[i]=1;
  double flop=2.0*M*N*K; int reps=(int)(2e10/flop)+1;
  double t=now();
  for(int r=0;r<reps;r++){
    if(square) cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasNoTrans,M,N,K,1,A,K,B,N,0,C,N);
    else cblas_sgemm(CblasRowMajor,CblasNoTrans,CblasTrans,M,N,K,1,A,K,B,K,0,C,N);
  }
  t=now()-t; printf("M=%d N=%d K=%d: %.1f GFLOP/s\n",M,N,K,reps*flop/t/1e9);}
