#include "simde_shim.h"
/* the quantised heads use intrinsics the shim does not map: the native
 * avx512 level tests them */
#define BITNET_HEAD_AVX512_I8_ONLY 1
#include "x86/avx512/head.c"
