/*
 * Ternary matrix packing (docs/kernels.md, "Weight layout").
 */
#include <string.h>

#include "kernels.h"

static int32_t pad_up(int32_t v, int32_t m) { return (v + m - 1) / m * m; }

size_t bitnet__tmat_packed_size(int32_t rows, int32_t cols)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    return (size_t)pad_up(rows, BITNET_TMAT_GROUP) *
           (size_t)pad_up(cols, BITNET_KPAD) / 4;
}

static size_t byte_index(int32_t nb, int32_t row, int32_t col)
{
    const size_t g = (size_t)(row / BITNET_TMAT_GROUP);
    const size_t i = (size_t)(row % BITNET_TMAT_GROUP);
    const size_t b = (size_t)(col / 128);
    return ((g * (size_t)nb + b) * BITNET_TMAT_GROUP + i) * 32 + (size_t)(col % 32);
}

void bitnet__tmat_pack(uint8_t *dst, const int8_t *t, int32_t rows, int32_t cols)
{
    const size_t size = bitnet__tmat_packed_size(rows, cols);
    if (!size)
        return;
    memset(dst, 0x55, size);                 /* code 1 everywhere: t = 0 */
    const int32_t nb = pad_up(cols, BITNET_KPAD) / 128;
    for (int32_t r = 0; r < rows; r++) {
        const int8_t *tr = t + (size_t)r * (size_t)cols;
        for (int32_t c = 0; c < cols; c++) {
            const int v = tr[c];
            const unsigned code = v > 0 ? 2u : v < 0 ? 0u : 1u;
            const unsigned sh = 6u - 2u * (unsigned)((c % 128) / 32);
            uint8_t *p = dst + byte_index(nb, r, c);
            *p = (uint8_t)((*p & ~(3u << sh)) | code << sh);
        }
    }
}

int bitnet__tmat_get(const bitnet_tmat *w, int32_t row, int32_t col)
{
    const int32_t nb = w->cols_padded / 128;
    const uint8_t byte = w->data[byte_index(nb, row, col)];
    const unsigned sh = 6u - 2u * (unsigned)((col % 128) / 32);
    return (int)((byte >> sh) & 3u) - 1;
}
