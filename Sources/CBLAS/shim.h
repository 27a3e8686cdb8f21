// OpenBLAS from Debian's libopenblas-dev: cblas.h lives in /usr/include/x86_64-linux-gnu.
#include <cblas.h>
