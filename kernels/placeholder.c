/* Placeholder until the kernel module lands: no kernels. */
#include <stdlib.h>
#include "kernels.h"

uint32_t bitnet__cpu_detect(void) { return 0; }
size_t bitnet__tmat_packed_size(int32_t rows, int32_t cols)
{
    return (size_t)rows * (size_t)((cols + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD) / 4;
}
void bitnet__tmat_pack(uint8_t *dst, const int8_t *t, int32_t rows, int32_t cols)
{
    (void)dst; (void)t; (void)rows; (void)cols;
}
int bitnet__tmat_get(const bitnet_tmat *w, int32_t row, int32_t col)
{
    (void)w; (void)row; (void)col;
    return 0;
}
void bitnet__kernels_init(bitnet_kernels *k, uint32_t flags)
{
    (void)flags;
    *k = (bitnet_kernels){0};
    k->name_quant_act = k->name_tgemv = k->name_tgemm = k->name_rmsnorm =
    k->name_rope = k->name_softmax = k->name_dot_f16 = k->name_axpy_f16 =
    k->name_head_f16 = k->name_head_i8 = "none";
}
