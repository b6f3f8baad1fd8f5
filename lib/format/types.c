/*
 * Tensor types (ggml type ids): names and byte sizes. Shared by every
 * source format; the ids are those of GGUF files (34-36 as bitnet.cpp).
 */
#include <stddef.h>
#include <stdint.h>

#include "format/types.h"

/* ---- tensor types ---------------------------------------------------- */

typedef struct type_info {
    const char *name;
    uint32_t blck;       /* elements per block */
    uint32_t size;       /* bytes per block */
} type_info;

static const type_info *type_get(uint32_t t)
{
    static const type_info tab[] = {
        [GGML_T_F32] = { "f32", 1, 4 },
        [GGML_T_F16] = { "f16", 1, 2 },
        [GGML_T_Q4_0] = { "q4_0", 32, 18 },
        [GGML_T_Q4_1] = { "q4_1", 32, 20 },
        [GGML_T_Q5_0] = { "q5_0", 32, 22 },
        [GGML_T_Q5_1] = { "q5_1", 32, 24 },
        [GGML_T_Q8_0] = { "q8_0", 32, 34 },
        [GGML_T_Q8_1] = { "q8_1", 32, 36 },
        [GGML_T_Q2_K] = { "q2_k", 256, 84 },
        [GGML_T_Q3_K] = { "q3_k", 256, 110 },
        [GGML_T_Q4_K] = { "q4_k", 256, 144 },
        [GGML_T_Q5_K] = { "q5_k", 256, 176 },
        [GGML_T_Q6_K] = { "q6_k", 256, 210 },
        [GGML_T_Q8_K] = { "q8_k", 256, 292 },
        [GGML_T_I8] = { "i8", 1, 1 },
        [GGML_T_I16] = { "i16", 1, 2 },
        [GGML_T_I32] = { "i32", 1, 4 },
        [GGML_T_I64] = { "i64", 1, 8 },
        [GGML_T_F64] = { "f64", 1, 8 },
        [GGML_T_BF16] = { "bf16", 1, 2 },
        [GGML_T_TQ1_0] = { "tq1_0", 256, 54 },
        [GGML_T_TQ2_0] = { "tq2_0", 256, 66 },
        [GGML_T_I2_S] = { "i2_s", 128, 32 },   /* + 32 trailing bytes */
    };
    if (t >= sizeof(tab) / sizeof(tab[0]) || !tab[t].name)
        return NULL;
    return &tab[t];
}

const char *bitnet__ggml_type_name(uint32_t type)
{
    const type_info *ti = type_get(type);
    if (ti) return ti->name;
    if (type == 39) return "39 (TL2 in bitnet.cpp, MXFP4 in llama.cpp)";
    return "unknown";
}

uint64_t bitnet__ggml_nbytes(uint32_t type, uint64_t ne0, uint64_t rows)
{
    const type_info *ti = type_get(type);
    if (!ti || ne0 == 0 || rows == 0)
        return 0;
    if (ne0 > UINT64_MAX / rows)
        return 0;
    uint64_t n = ne0 * rows;
    if (type == GGML_T_I2_S) {
        /* 128-element blocks over the flattened tensor, 2 bits each, then
         * the f32 scale padded to 32 bytes (format.md §4.3) */
        if (n % 128 != 0)
            return 0;
        return n / 4 + 32;
    }
    if (ne0 % ti->blck != 0)
        return 0;
    uint64_t blocks = n / ti->blck;
    if (blocks > UINT64_MAX / ti->size)
        return 0;
    return blocks * ti->size;
}

int bitnet__ggml_type_known(uint32_t type)
{
    return type_get(type) != NULL;
}
