/*
 * The context thread pool: every thread runs each region once, barriers
 * order the stages, many short regions in a row (the decode pattern);
 * regions on fewer threads than the pool has, mixed with full ones; the
 * thread-count rule.
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

/* Runs on fewer threads than the pool has, mixed with full runs: fn sees
 * the run's count, only threads 0..nth-1 are called, barriers wait for
 * exactly those. */
typedef struct sub_job {
    bitnet_threadpool *tp;
    int nth_seen[257];
    int calls[257];
    int stage[N_SLOTS];
    int seen[N_SLOTS];
} sub_job;

static void sub_region(void *arg, int ith, int nth)
{
    sub_job *j = arg;
    j->calls[ith]++;
    j->nth_seen[ith] = nth;
    for (int s = 0; s < 4; s++) {
        for (int i = ith; i < N_SLOTS; i += nth)
            j->seen[i] = j->stage[(i + 1) % N_SLOTS];
        bitnet__threadpool_barrier(j->tp);
        for (int i = ith; i < N_SLOTS; i += nth)
            j->stage[i] = j->seen[i] + 1;
        bitnet__threadpool_barrier(j->tp);
    }
}

static void test_pool_subset(void **state)
{
    (void)state;
    const int n = 4;
    bitnet_threadpool *tp = NULL;
    assert_int_equal(bitnet__threadpool_create(&tp, n), BITNET_OK);
    sub_job *j = calloc(1, sizeof(*j));
    assert_non_null(j);
    j->tp = tp;
    int want_calls[257] = { 0 };
    /* counts out of range are clamped to [1, n] */
    static const int seq[] = { 1, 2, 4, 3, 1, 1, 2, 2, 4, 0, 9, 3, 2, 1, 4 };
    for (int rep = 0; rep < 40; rep++) {
        for (size_t k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
            int nth = seq[(k + (size_t)rep) % (sizeof(seq) / sizeof(seq[0]))];
            int eff = nth < 1 ? 1 : nth > n ? n : nth;
            memset(j->stage, 0, sizeof(j->stage));
            memset(j->nth_seen, 0, sizeof(j->nth_seen));
            bitnet__threadpool_run_n(tp, sub_region, j, nth);
            for (int i = 0; i < N_SLOTS; i++)
                assert_int_equal(j->stage[i], 4);
            for (int t = 0; t < n; t++)
                assert_int_equal(j->nth_seen[t], t < eff ? eff : 0);
            for (int t = 0; t < eff; t++)
                want_calls[t]++;
        }
    }
    for (int t = 0; t < n; t++)
        assert_int_equal(j->calls[t], want_calls[t]);
    free(j);
    bitnet__threadpool_free(tp);
}

static void test_threads_for_work(void **state)
{
    (void)state;
    const double u = BITNET__WORK_PER_THREAD;
    assert_int_equal(bitnet__threads_for_work(8, 0), 1);
    assert_int_equal(bitnet__threads_for_work(8, -5), 1);
    assert_int_equal(bitnet__threads_for_work(8, u * 0.99), 1);
    assert_int_equal(bitnet__threads_for_work(8, u * 2), 2);
    assert_int_equal(bitnet__threads_for_work(8, u * 3.5), 3);
    assert_int_equal(bitnet__threads_for_work(8, u * 1000), 8);
    assert_int_equal(bitnet__threads_for_work(1, u * 1000), 1);
    assert_int_equal(bitnet__threads_for_work(0, u * 1000), 1);
}

static void test_tuner(void **state)
{
    (void)state;
    bitnet_thread_tuner t;
    memset(&t, 0, sizeof(t));           /* zero-filled is ready to use */
    assert_int_equal(bitnet__tuner_choose(&t, 1), 1);
    assert_int_equal(bitnet__tuner_choose(&t, 0), 1);
    /* the wanted count is measured first, then one thread is tried */
    assert_int_equal(bitnet__tuner_choose(&t, 2), 2);
    bitnet__tuner_record(&t, 2, 1.0, 1.0);
    assert_int_equal(bitnet__tuner_choose(&t, 2), 1);
    bitnet__tuner_record(&t, 1, 3.0, 1.0);          /* slower: keep 2 */
    for (int i = 1; i < 16; i++) {
        assert_int_equal(bitnet__tuner_choose(&t, 2), 2);
        bitnet__tuner_record(&t, 2, 1.0, 1.0);
    }
    /* the losing try doubled the interval to 16 steps */
    assert_int_equal(bitnet__tuner_choose(&t, 2), 1);
    bitnet__tuner_record(&t, 1, 0.5, 1.0);          /* the load changed */
    for (int i = 1; i < 8; i++) {
        assert_int_equal(bitnet__tuner_choose(&t, 2), 1);
        bitnet__tuner_record(&t, 1, 0.5, 1.0);
    }
    /* the winner is used; the other is tried again after 8 steps */
    assert_int_equal(bitnet__tuner_choose(&t, 2), 2);
    bitnet__tuner_record(&t, 2, 0.25, 1.0);         /* and wins back */
    assert_int_equal(bitnet__tuner_choose(&t, 2), 2);
    bitnet__tuner_record(&t, 2, 0.25, 2.0);
    /* costs are per unit of work; bad reports are ignored */
    bitnet__tuner_record(&t, 2, -1.0, 1.0);
    bitnet__tuner_record(&t, 2, 1.0, 0.0);
    assert_int_equal(bitnet__tuner_choose(&t, 2), 2);
    /* the interval is capped: a choice that keeps losing is still tried */
    bitnet__tuner_init(&t);
    bitnet__tuner_choose(&t, 4);
    bitnet__tuner_record(&t, 4, 1.0, 1.0);
    int tries = 0;
    for (int i = 0; i < 4000; i++) {
        int n = bitnet__tuner_choose(&t, 4);
        tries += n == 1;
        bitnet__tuner_record(&t, n, n == 1 ? 9.0 : 1.0, 1.0);
    }
    assert_true(tries >= 4000 / 512 && tries <= 16);
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
        cmocka_unit_test(test_pool_subset),
        cmocka_unit_test(test_threads_for_work),
        cmocka_unit_test(test_tuner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
