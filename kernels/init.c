/*
 * Fill the kernel table: every C reference first, then each ISA the flags
 * allow, in order (dav1d style). Flags are an argument: no global state.
 */
#include "bitnet.h"
#include "kernels_impl.h"
#include "kernels_config.h"

#define SET(k, fn, isa) do { (k)->fn = bitnet__##fn##_##isa; \
                             (k)->name_##fn = #isa; } while (0)

#if defined(__x86_64__) || defined(_M_X64)
static void init_x86(bitnet_kernels *k, uint32_t flags)
{
    if (!(flags & BITNET_CPU_AVX2))
        return;
#if BITNET_HAVE_AVX2
    SET(k, quant_act, avx2);
    SET(k, tgemv, avx2);
    SET(k, tgemm, avx2);
    SET(k, rmsnorm, avx2);
    SET(k, rope, avx2);
    SET(k, dot_f16, avx2);
    SET(k, axpy_f16, avx2);
    SET(k, head_f16, avx2);
    SET(k, head_i8, avx2);
    SET(k, head_q8_0, avx2);
    SET(k, head_q4_0, avx2);
    SET(k, head_q6_k, avx2);
#endif
    /* AVX-VNNI (256-bit) is not implied by AVX-512 VNNI nor the reverse:
     * no early return here. */
    if (flags & BITNET_CPU_AVX_VNNI) {
#if BITNET_HAVE_AVXVNNI
        SET(k, tgemv, avxvnni);
        SET(k, tgemm, avxvnni);
#endif
    }
    if (!(flags & BITNET_CPU_AVX512))
        return;
#if BITNET_HAVE_AVX512
    SET(k, tgemv, avx512);
    SET(k, tgemm, avx512);
    SET(k, head_f16, avx512);
    SET(k, head_i8, avx512);
    SET(k, head_q8_0, avx512);
    SET(k, head_q6_k, avx512);
#endif
    if (!(flags & BITNET_CPU_AMX))
        return;
#if BITNET_HAVE_AMX
    SET(k, tgemm, amx);
#endif
}
#endif

#if defined(__aarch64__)
static void init_arm(bitnet_kernels *k, uint32_t flags)
{
    if (!(flags & BITNET_CPU_NEON))
        return;
#if BITNET_HAVE_NEON
    SET(k, quant_act, neon);
    SET(k, rope, neon);
    SET(k, tgemv, neon);
    SET(k, tgemm, neon);
    SET(k, dot_f16, neon);
    SET(k, axpy_f16, neon);
    SET(k, head_f16, neon);
    SET(k, head_i8, neon);
#endif
    if (!(flags & BITNET_CPU_DOTPROD))
        return;
#if BITNET_HAVE_DOTPROD
    SET(k, tgemv, dotprod);
    SET(k, tgemm, dotprod);
    SET(k, head_i8, dotprod);
#endif
}
#endif

void bitnet__kernels_init(bitnet_kernels *k, uint32_t flags)
{
    SET(k, quant_act, ref);
    SET(k, tgemv, ref);
    SET(k, tgemm, ref);
    SET(k, rmsnorm, ref);
    SET(k, rope, ref);
    SET(k, softmax, ref);
    SET(k, dot_f16, ref);
    SET(k, axpy_f16, ref);
    SET(k, head_f16, ref);
    SET(k, head_f32, ref);
    SET(k, head_bf16, ref);
    SET(k, head_q8_0, ref);
    SET(k, head_q4_0, ref);
    SET(k, head_q6_k, ref);
    SET(k, head_i8, ref);
    SET(k, quant_q8_0, ref);
    SET(k, quant_q8_k, ref);
#if defined(__x86_64__) || defined(_M_X64)
    init_x86(k, flags);
#elif defined(__aarch64__)
    init_arm(k, flags);
#else
    (void)flags;
#endif
    bitnet__layer_kernels_init(&k->layer, flags);
}
