/* See model_check.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "model_check.h"

void bt_assert_same_weights(const bitnet_model *a, const bitnet_model *b)
{
    assert_int_equal(a->n_layer, b->n_layer);
    for (int32_t i = 0; i < a->n_layer; i++) {
        const bitnet_tmat *x = &a->layers[i].wq, *y = &b->layers[i].wq;
        for (int k = 0; k < 7; k++) {
            assert_int_equal(x[k].rows, y[k].rows);
            assert_int_equal(x[k].cols, y[k].cols);
            assert_true(x[k].scale == y[k].scale);
            assert_int_equal(x[k].size, y[k].size);
            assert_memory_equal(x[k].data, y[k].data, x[k].size);
        }
    }
}
