/*
 * The context thread pool: every thread runs each region once, barriers
 * order the stages, many short regions in a row (the decode pattern).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "base/threadpool.h"

#define N_SLOTS 64
#define N_STAGES 20

typedef struct job {
    bitnet_threadpool *tp;
    int stage[N_SLOTS];     /* stage s: slot i = stage s-1 value of slot (i+1)%N + 1 */
    int seen[N_SLOTS][N_STAGES];
    int calls[257];
    int bad;
} job;

static void region(void *arg, int ith, int nth)
{
    job *j = arg;
    j->calls[ith]++;
    for (int s = 0; s < N_STAGES; s++) {
        /* read neighbours' values of the previous stage */
        for (int i = ith; i < N_SLOTS; i += nth)
            j->seen[i][s] = j->stage[(i + 1) % N_SLOTS];
        bitnet__threadpool_barrier(j->tp);
        for (int i = ith; i < N_SLOTS; i += nth)
            j->stage[i] = j->seen[i][s] + 1;
        bitnet__threadpool_barrier(j->tp);
    }
}

static void run_with(int n)
{
    bitnet_threadpool *tp = NULL;
    assert_int_equal(bitnet__threadpool_create(&tp, n), BITNET_OK);
    assert_int_equal(bitnet__threadpool_n(tp), n);
    job *j = calloc(1, sizeof(*j));
    assert_non_null(j);
    j->tp = tp;
    for (int r = 0; r < 50; r++) {
        memset(j->stage, 0, sizeof(j->stage));
        bitnet__threadpool_run(tp, region, j);
        for (int i = 0; i < N_SLOTS; i++)
            assert_int_equal(j->stage[i], N_STAGES);
    }
    for (int t = 0; t < n; t++)
        assert_int_equal(j->calls[t], 50);
    free(j);
    bitnet__threadpool_free(tp);
}

static void test_pool(void **state)
{
    (void)state;
    run_with(1);
    run_with(2);
    run_with(3);
    run_with(5);
    bitnet__threadpool_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
