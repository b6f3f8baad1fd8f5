/*
 * Checks on the library's private model structures, for the tests that link
 * the internal library (bitnet_internal_dep). Include after <cmocka.h>.
 */
#ifndef BITNET_TEST_MODEL_CHECK_H
#define BITNET_TEST_MODEL_CHECK_H

#include "model/model.h"

/* The seven ternary matrices of every layer of a and b are identical (rows,
 * columns, scale and packed bytes). */
void bt_assert_same_weights(const bitnet_model *a, const bitnet_model *b);

#endif /* BITNET_TEST_MODEL_CHECK_H */
