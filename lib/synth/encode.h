/*
 * Tensor encoders shared by the synthetic model writer and the converter.
 */
#ifndef BITNET_ENCODE_H
#define BITNET_ENCODE_H

#include <stddef.h>
#include <stdint.h>

/* Encode n floats as `type` (F32, F16, BF16, Q8_0, Q4_0, Q6_K; n a multiple
 * of the type's block). */
void bitnet__encode_floats(uint32_t type, const float *x, size_t n, uint8_t *o);
/* Encode rows x cols ternary values t with tensor scale s as `type` (I2_S:
 * rows*cols % 128 == 0, without the trailing scale; TQ2_0/TQ1_0: cols %
 * 256 == 0; F32/F16: t * s, tmp holds rows*cols floats). */
void bitnet__encode_ternary(uint32_t type, const int8_t *t, int32_t rows,
                            int32_t cols, float s, uint8_t *o, float *tmp);

#endif /* BITNET_ENCODE_H */
