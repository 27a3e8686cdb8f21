// libuv from Debian's libuv1-dev.
#include <uv.h>
