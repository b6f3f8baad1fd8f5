/*
 * The per-layer part of the kernel table (kernels/layer.h): references
 * first, then each ISA the flags allow.
 */
#include "bitnet.h"
#include "kernels_impl.h"
#include "kernels_config.h"

#define SET(k, fn, isa) do { (k)->fn = bitnet__##fn##_##isa; \
                             (k)->name_##fn = #isa; } while (0)

void bitnet__layer_kernels_init(bitnet_layer_kernels *k, uint32_t flags)
{
    SET(k, rope_table, ref);
    SET(k, rope_norm, ref);
    SET(k, relu2_mul, ref);
    SET(k, silu_mul, ref);
    SET(k, add, ref);
    SET(k, to_f16, ref);
    SET(k, attn_f16, ref);
#if defined(__x86_64__) || defined(_M_X64)
    if (!(flags & BITNET_CPU_AVX2))
        return;
# if BITNET_HAVE_AVX2
    SET(k, rope_norm, avx2);
    SET(k, relu2_mul, avx2);
    SET(k, add, avx2);
    SET(k, to_f16, avx2);
    SET(k, attn_f16, avx2);
# endif
# if BITNET_HAVE_AVX512
    /* attention only: the other entries touch a few thousand floats per
     * token, and the AVX2 ones are within noise of a 16-lane loop */
    if (flags & BITNET_CPU_AVX512)
        SET(k, attn_f16, avx512);
# endif
#elif defined(__aarch64__)
    if (!(flags & BITNET_CPU_NEON))
        return;
# if BITNET_HAVE_NEON
    SET(k, rope_norm, neon);
    SET(k, relu2_mul, neon);
    SET(k, add, neon);
    SET(k, to_f16, neon);
    SET(k, attn_f16, neon);
# endif
#else
    (void)flags;
#endif
}
