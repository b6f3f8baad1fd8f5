/* The AMX GEMM with emulated tiles but its AVX-512 weight unpacking kept
 * (over SIMDe). */
#include "simde_shim.h"
#define BITNET_AMX_EMULATE 1
#define BITNET_AMX_EMULATE_SIMD 1
#define TGEMM_AMX bitnet__tgemm_amxemu_simd
#include "x86/amx/ternary.c"
