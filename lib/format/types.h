/*
 * Tensor type ids (ggml's numbering, as in GGUF files) and their sizes:
 * the common vocabulary of every model source.
 */
#ifndef BITNET_TYPES_H
#define BITNET_TYPES_H

#include <stdint.h>

/* ggml tensor type ids that libbitnet knows (34-36 as in bitnet.cpp files). */
enum bitnet_ggml_type {
    GGML_T_F32 = 0, GGML_T_F16 = 1, GGML_T_Q4_0 = 2, GGML_T_Q4_1 = 3,
    GGML_T_Q5_0 = 6, GGML_T_Q5_1 = 7, GGML_T_Q8_0 = 8, GGML_T_Q8_1 = 9,
    GGML_T_Q2_K = 10, GGML_T_Q3_K = 11, GGML_T_Q4_K = 12, GGML_T_Q5_K = 13,
    GGML_T_Q6_K = 14, GGML_T_Q8_K = 15, GGML_T_I8 = 24, GGML_T_I16 = 25,
    GGML_T_I32 = 26, GGML_T_I64 = 27, GGML_T_F64 = 28, GGML_T_BF16 = 30,
    GGML_T_TQ1_0 = 34, GGML_T_TQ2_0 = 35, GGML_T_I2_S = 36
};

/* Bytes of a tensor of `type` with n elements per row (ne0) and rows rows;
 * 0 for an unknown type or a row length that is not a block multiple.
 * I2_S: ne0*rows/4 + 32. */
uint64_t bitnet__ggml_nbytes(uint32_t type, uint64_t ne0, uint64_t rows);
const char *bitnet__ggml_type_name(uint32_t type);
/* 1 when the id is one of enum bitnet_ggml_type. */
int bitnet__ggml_type_known(uint32_t type);

#endif /* BITNET_TYPES_H */
