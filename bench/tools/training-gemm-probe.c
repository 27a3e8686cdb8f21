/* training-gemm-probe: OpenBLAS sgemm (one thread) on the shapes of one `serve train` step of 8 x 128 tokens
 * (SmolLM2-135M), each C split into 1, 2, 3, 4, 6 or 8 blocks along its longer side and the blocks run one after
 * another, as LoRATrainingModel's Gemm hands them to the pool: GFLOP/s per block count. Each block repacks the
 * operand it does not split; the last eight lines are the output head (logits, then their gradient) for chunks of
 * 64, 128, 256 and 512 prediction rows.
 *   cc -O2 -I/usr/include/x86_64-linux-gnu/openblas-pthread bench/tools/training-gemm-probe.c \
 *      -L/usr/lib/x86_64-linux-gnu/openblas-pthread -lopenblas -o /tmp/training-gemm-probe && /tmp/training-gemm-probe
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
// row-major C[m,n] = op(A) op(B); A [m,k]; B [n,k] if tb else [k,n]
static void call(int m,int n,int k,float*a,int lda,float*b,int ldb,int tb,float*c,int ldc){
  cblas_sgemm(CblasRowMajor,CblasNoTrans,tb?CblasTrans:CblasNoTrans,m,n,k,1.f,a,lda,b,ldb,0.f,c,ldc);}
static double run(int m,int n,int k,int tb,int parts,int rows,float*a,float*b,float*c){
  double best=1e9;
  for(int r=0;r<3;r++){double t0=now();
    int side=rows?m:n; int blk=(side+parts-1)/parts;
    for(int p=0;p<parts;p++){int lo=p*blk,len=(lo+blk<side?lo+blk:side)-lo; if(len<=0)continue;
      if(rows) call(len,n,k,a+(long)lo*k,k,b,tb?k:n,tb,c+(long)lo*n,n);
      else call(m,len,k,a,k,tb?b+(long)lo*k:b+lo,tb?k:n,tb,c+lo,n);}
    double t=now()-t0; if(t<best)best=t;}
  return best;}
int main(){openblas_set_num_threads(1);
  int S[][4]={{1024,960,576,1},{1024,576,576,1},{1024,3072,576,1},{1024,576,1536,1},
              {1024,1536,576,0},{1024,576,3072,0},{1024,576,576,0},{1024,576,960,0},
              {64,49152,576,1},{64,576,49152,0},{128,49152,576,1},{128,576,49152,0},{256,49152,576,1},{256,576,49152,0},{512,49152,576,1},{512,576,49152,0}};
  float*a=malloc(sizeof(float)*100*1024*1024),*b=malloc(sizeof(float)*30*1024*1024),*c=malloc(sizeof(float)*16*1024*1024);
  for(long i=0;i<100L*1024*1024;i++)a[i]=(i%7)*0.01f; for(long i=0;i<30L*1024*1024;i++)b[i]=(i%5)*0.01f;
  for(int s=0;s<16;s++){int m=S[s][0],n=S[s][1],k=S[s][2],tb=S[s][3];double fl=2.0*m*n*k;
    int rows=m>=n; 
    printf("m%5d n%5d k%5d tb%d split %s:",m,n,k,tb,rows?"rows":"cols");
    int P[]={1,2,3,4,6,8}; for(int i=0;i<6;i++) printf(" %d:%5.1f",P[i],fl/run(m,n,k,tb,P[i],rows,a,b,c)*1e-9); printf("\n");}
}
