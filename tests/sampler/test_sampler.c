/*
 * Sampler: determinism, greedy, the candidate sets left by top-k / top-p /
 * min-p, the distribution of draws (chi-square), penalties and bias, and
 * argument validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "sample/sampler.h"
#include "test_util.h"

/* Plain params: no truncation, temperature 1, no penalties. */
static bitnet_sampler_params plain(void)
{
    bitnet_sampler_params p;
    bitnet_sampler_params_init(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static bitnet_sampler *make(int32_t n_vocab, const bitnet_sampler_params *p)
{
    bitnet_sampler *s = NULL;
    int rc = bitnet__sampler_create_n(&s, n_vocab, p);
    if (rc != BITNET_OK)
        fprintf(stderr, "create: %s\n", bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    assert_non_null(s);
    return s;
}

/* Deterministic pseudo-random logits for tests (LCG; not the sampler's). */
static void fill_logits(float *l, int n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (int i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        l[i] = (float)((x >> 8) & 0xffff) / 65536.0f * 8.0f - 4.0f;
    }
}

static void test_defaults(void **state)
{
    (void)state;
    bitnet_sampler_params p;
    bitnet_sampler_params_init(&p);
    assert_int_equal(p.struct_size, sizeof(p));
    assert_true(p.seed == 0);
    assert_true(p.temperature == 0.8f);
    assert_int_equal(p.top_k, 40);
    assert_true(p.top_p == 0.95f);
    assert_true(p.min_p == 0.05f);
    assert_true(p.repeat_penalty == 1.0f);
    assert_true(p.frequency_penalty == 0.0f);
    assert_true(p.presence_penalty == 0.0f);
    assert_int_equal(p.penalty_last_n, 64);
    assert_null(p.logit_bias);
    /* NULL params means defaults. */
    bitnet_sampler *s = make(10, NULL);
    bitnet_sampler_free(s);
}

static void test_determinism(void **state)
{
    (void)state;
    enum { NV = 1000, N = 2000 };
    float *l = malloc(NV * sizeof(float));
    int32_t *a = malloc(N * sizeof(int32_t));
    assert_non_null(l);
    assert_non_null(a);
    bitnet_sampler_params p;
    bitnet_sampler_params_init(&p);       /* the defaults: k, p, min-p, T */
    p.seed = 1234;
    p.top_k = 0;                          /* let the full path be exercised */
    bitnet_sampler *s1 = make(NV, &p);
    bitnet_sampler *s2 = make(NV, &p);
    p.seed = 1235;
    bitnet_sampler *s3 = make(NV, &p);
    int differ = 0;
    for (int i = 0; i < N; i++) {
        fill_logits(l, NV, (uint32_t)(i % 7));
        int32_t t1, t2, t3;
        assert_int_equal(bitnet_sampler_sample_logits(s1, l, NV, &t1), BITNET_OK);
        assert_int_equal(bitnet_sampler_sample_logits(s2, l, NV, &t2), BITNET_OK);
        assert_int_equal(bitnet_sampler_sample_logits(s3, l, NV, &t3), BITNET_OK);
        assert_int_equal(t1, t2);
        assert_true(t1 >= 0 && t1 < NV);
        differ += t1 != t3;
        a[i] = t1;
    }
    assert_true(differ > 0);   /* another seed gives another stream */
    /* reset re-seeds: the same stream again */
    bitnet_sampler_reset(s1);
    for (int i = 0; i < N; i++) {
        fill_logits(l, NV, (uint32_t)(i % 7));
        int32_t t;
        assert_int_equal(bitnet_sampler_sample_logits(s1, l, NV, &t), BITNET_OK);
        assert_int_equal(t, a[i]);
    }
    bitnet_sampler_free(s1);
    bitnet_sampler_free(s2);
    bitnet_sampler_free(s3);
    free(l);
    free(a);
}

static void test_greedy(void **state)
{
    (void)state;
    enum { NV = 517 };
    float l[NV];
    for (float temp = 0.0f; temp >= -1.0f; temp -= 1.0f) {
        bitnet_sampler_params p;
        bitnet_sampler_params_init(&p);
        p.temperature = temp;
        bitnet_sampler *s = make(NV, &p);
        for (uint32_t r = 0; r < 50; r++) {
            fill_logits(l, NV, r);
            int best = 0;
            for (int i = 1; i < NV; i++)
                if (l[i] > l[best])
                    best = i;
            int32_t t;
            assert_int_equal(bitnet_sampler_sample_logits(s, l, NV, &t), BITNET_OK);
            assert_int_equal(t, best);
        }
        /* ties go to the lowest id */
        for (int i = 0; i < NV; i++)
            l[i] = 0.0f;
        l[300] = 5.0f;
        l[100] = 5.0f;
        l[400] = 5.0f;
        int32_t t;
        assert_int_equal(bitnet_sampler_sample_logits(s, l, NV, &t), BITNET_OK);
        assert_int_equal(t, 100);
        /* a ban on the best moves it to the next */
        bitnet_sampler_free(s);
        bitnet_logit_bias b = { 100, -INFINITY };
        p.logit_bias = &b;
        p.n_logit_bias = 1;
        s = make(NV, &p);
        assert_int_equal(bitnet_sampler_sample_logits(s, l, NV, &t), BITNET_OK);
        assert_int_equal(t, 300);
        bitnet_sampler_free(s);
    }
}

/* Candidates as a bitmap for set comparison. */
static void cands(bitnet_sampler *s, const float *l, int nv, int32_t *ids,
                  double *pr, size_t *n)
{
    int rc = bitnet__sampler_candidates(s, l, (size_t)nv, ids, pr, n);
    if (rc != BITNET_OK)
        fprintf(stderr, "candidates: %s\n", bitnet_last_error());
    assert_int_equal(rc, BITNET_OK);
    double sum = 0;
    for (size_t i = 0; i < *n; i++)
        sum += pr[i];
    assert_true(fabs(sum - 1.0) < 1e-12);
}

static void test_top_k(void **state)
{
    (void)state;
    enum { NV = 300 };
    float l[NV];
    int32_t ids[NV];
    double pr[NV];
    size_t n;
    fill_logits(l, NV, 99);
    /* make a tie at the boundary: ids 10 and 20 share the 5th best value */
    for (int i = 0; i < NV; i++)
        l[i] = fminf(l[i], 3.0f);
    l[250] = 9.0f; l[3] = 8.0f; l[77] = 7.0f; l[150] = 6.0f;
    l[20] = 5.0f; l[10] = 5.0f;
    bitnet_sampler_params p = plain();
    p.top_k = 5;
    bitnet_sampler *s = make(NV, &p);
    cands(s, l, NV, ids, pr, &n);
    assert_int_equal(n, 5);
    const int32_t want[5] = { 250, 3, 77, 150, 10 };
    for (int i = 0; i < 5; i++)
        assert_int_equal(ids[i], want[i]);
    /* the probabilities are the softmax over the kept five */
    double z = 0;
    for (int i = 0; i < 5; i++)
        z += exp((double)l[want[i]] - 9.0);
    for (int i = 0; i < 5; i++)
        assert_true(fabs(pr[i] - exp((double)l[want[i]] - 9.0) / z) < 1e-12);
    bitnet_sampler_free(s);

    /* signed zeros are one value: ties go by id */
    l[40] = 0.0f;
    l[30] = -0.0f;
    l[35] = 0.0f;
    /* top_k larger than the vocabulary, and 0: everything is kept */
    for (int k = 0; k <= NV + 5; k += NV + 5) {
        p.top_k = k;
        s = make(NV, &p);
        cands(s, l, NV, ids, pr, &n);
        assert_int_equal(n, NV);
        for (int i = 1; i < NV; i++)
            assert_true(l[ids[i - 1]] > l[ids[i]] ||
                        (l[ids[i - 1]] == l[ids[i]] && ids[i - 1] < ids[i]));
        int z30 = -1, z35 = -1, z40 = -1;
        for (int i = 0; i < NV; i++) {
            if (ids[i] == 30) z30 = i;
            if (ids[i] == 35) z35 = i;
            if (ids[i] == 40) z40 = i;
        }
        assert_true(z30 >= 0 && z30 < z35 && z35 < z40);
        bitnet_sampler_free(s);
    }
    /* random check: top-k picks exactly the k largest by (logit, -id) */
    for (uint32_t r = 0; r < 20; r++) {
        fill_logits(l, NV, 1000 + r);
        p.top_k = 1 + (int)(r * 7 % 60);
        s = make(NV, &p);
        cands(s, l, NV, ids, pr, &n);
        assert_int_equal(n, (size_t)p.top_k);
        float kth = l[ids[n - 1]];
        int above = 0;
        for (int i = 0; i < NV; i++)
            above += l[i] > kth;
        assert_true(above < p.top_k);
        for (size_t i = 0; i < n; i++)
            assert_true(l[ids[i]] >= kth);
        bitnet_sampler_free(s);
    }
}

/* Hand-made distribution 0.5, 0.25, 0.15, 0.1 over ids 2, 0, 3, 1. */
static void hand_logits(float l[4])
{
    l[2] = logf(0.5f);
    l[0] = logf(0.25f);
    l[3] = logf(0.15f);
    l[1] = logf(0.1f);
}

static void test_top_p(void **state)
{
    (void)state;
    float l[4];
    int32_t ids[4];
    double pr[4];
    size_t n;
    hand_logits(l);
    static const struct { float top_p; size_t keep; } cases[] = {
        { 0.3f, 1 }, { 0.45f, 1 }, { 0.6f, 2 }, { 0.7f, 2 }, { 0.8f, 3 },
        { 0.89f, 3 }, { 0.95f, 4 }, { 1.0f, 4 },
    };
    const int32_t order[4] = { 2, 0, 3, 1 };
    const double prob[4] = { 0.5, 0.25, 0.15, 0.1 };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        bitnet_sampler_params p = plain();
        p.top_p = cases[c].top_p;
        bitnet_sampler *s = make(4, &p);
        cands(s, l, 4, ids, pr, &n);
        assert_int_equal(n, cases[c].keep);
        double z = 0;
        for (size_t i = 0; i < n; i++)
            z += prob[i];
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(ids[i], order[i]);
            assert_true(fabs(pr[i] - prob[i] / z) < 1e-6);
        }
        bitnet_sampler_free(s);
    }
    /* top-p after top-k measures against the top-k set: with k = 2 the set
     * is {0.5, 0.25} -> {2/3, 1/3}; top_p 0.6 keeps only the first. */
    bitnet_sampler_params p = plain();
    p.top_k = 2;
    p.top_p = 0.6f;
    bitnet_sampler *s = make(4, &p);
    cands(s, l, 4, ids, pr, &n);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 2);
    bitnet_sampler_free(s);
}

static void test_min_p(void **state)
{
    (void)state;
    float l[4];
    int32_t ids[4];
    double pr[4];
    size_t n;
    hand_logits(l);
    /* keep p_i >= min_p * 0.5 */
    static const struct { float min_p; size_t keep; } cases[] = {
        { 0.0f, 4 }, { 0.1f, 4 }, { 0.19f, 4 }, { 0.21f, 3 }, { 0.29f, 3 },
        { 0.31f, 2 }, { 0.49f, 2 }, { 0.51f, 1 }, { 1.0f, 1 },
    };
    const int32_t order[4] = { 2, 0, 3, 1 };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        bitnet_sampler_params p = plain();
        p.min_p = cases[c].min_p;
        bitnet_sampler *s = make(4, &p);
        cands(s, l, 4, ids, pr, &n);
        assert_int_equal(n, cases[c].keep);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(ids[i], order[i]);
        bitnet_sampler_free(s);
    }
    /* min-p and top-p together: the shorter prefix wins */
    bitnet_sampler_params p = plain();
    p.min_p = 0.21f;   /* 3 */
    p.top_p = 0.6f;    /* 2 */
    bitnet_sampler *s = make(4, &p);
    cands(s, l, 4, ids, pr, &n);
    assert_int_equal(n, 2);
    bitnet_sampler_free(s);
    p.min_p = 0.31f;   /* 2 */
    p.top_p = 0.89f;   /* 3 */
    s = make(4, &p);
    cands(s, l, 4, ids, pr, &n);
    assert_int_equal(n, 2);
    bitnet_sampler_free(s);
}

static void test_temperature(void **state)
{
    (void)state;
    float l[4];
    int32_t ids[4];
    double pr[4];
    size_t n;
    hand_logits(l);
    const int32_t order[4] = { 2, 0, 3, 1 };
    const float temps[] = { 0.25f, 0.5f, 1.0f, 2.0f, 10.0f };
    for (size_t t = 0; t < sizeof(temps) / sizeof(temps[0]); t++) {
        bitnet_sampler_params p = plain();
        p.temperature = temps[t];
        bitnet_sampler *s = make(4, &p);
        cands(s, l, 4, ids, pr, &n);
        assert_int_equal(n, 4);
        double z = 0, e[4];
        for (int i = 0; i < 4; i++)
            z += e[i] = exp((double)l[order[i]] / temps[t]);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(ids[i], order[i]);
            assert_true(fabs(pr[i] - e[i] / z) < 1e-12);
        }
        bitnet_sampler_free(s);
    }
    /* temperature is applied after min-p: a high temperature does not bring
     * back what min-p removed */
    bitnet_sampler_params p = plain();
    p.temperature = 5.0f;
    p.min_p = 0.31f;
    bitnet_sampler *s = make(4, &p);
    cands(s, l, 4, ids, pr, &n);
    assert_int_equal(n, 2);
    bitnet_sampler_free(s);
}

/* Pearson chi-square of `draws` draws against expected probabilities. */
static double chi_square(bitnet_sampler *s, const float *l, int nv,
                         const double *expect, int draws)
{
    long *obs = calloc((size_t)nv, sizeof(long));
    assert_non_null(obs);
    for (int i = 0; i < draws; i++) {
        int32_t t;
        assert_int_equal(bitnet_sampler_sample_logits(s, l, (size_t)nv, &t),
                         BITNET_OK);
        assert_true(t >= 0 && t < nv);
        obs[t]++;
    }
    double chi = 0;
    for (int i = 0; i < nv; i++) {
        if (expect[i] == 0.0) {
            assert_int_equal(obs[i], 0);   /* removed tokens never appear */
            continue;
        }
        double e = expect[i] * draws;
        chi += (obs[i] - e) * (obs[i] - e) / e;
    }
    free(obs);
    return chi;
}

static void test_distribution(void **state)
{
    (void)state;
    enum { NV = 6, DRAWS = 100000 };
    const float l[NV] = { 1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -3.0f };
    /* Upper 0.1% points of the chi-square distribution (tables). */
    const double crit_df5 = 20.515, crit_df3 = 16.266;

    /* 1. full distribution at temperature 0.7 */
    bitnet_sampler_params p = plain();
    p.temperature = 0.7f;
    p.seed = 42;
    bitnet_sampler *s = make(NV, &p);
    double e[NV], z = 0;
    for (int i = 0; i < NV; i++)
        z += e[i] = exp((double)l[i] / 0.7);
    for (int i = 0; i < NV; i++)
        e[i] /= z;
    double chi = chi_square(s, l, NV, e, DRAWS);
    printf("chi-square (df 5, T 0.7): %.3f (critical %.3f)\n", chi, crit_df5);
    assert_true(chi < crit_df5);
    bitnet_sampler_free(s);

    /* 2. truncated by top-k 4 at temperature 1.3: renormalised over
     *    ids 3, 0, 1, 4 */
    p.temperature = 1.3f;
    p.top_k = 4;
    p.seed = 7;
    s = make(NV, &p);
    z = 0;
    for (int i = 0; i < NV; i++) {
        e[i] = (i == 2 || i == 5) ? 0.0 : exp((double)l[i] / 1.3);
        z += e[i];
    }
    for (int i = 0; i < NV; i++)
        e[i] /= z;
    chi = chi_square(s, l, NV, e, DRAWS);
    printf("chi-square (df 3, top-k 4, T 1.3): %.3f (critical %.3f)\n", chi,
           crit_df3);
    assert_true(chi < crit_df3);
    bitnet_sampler_free(s);
}

static void test_penalties(void **state)
{
    (void)state;
    enum { NV = 8 };
    const float l[NV] = { 2.0f, -1.0f, 0.5f, 3.0f, 0.0f, -2.0f, 1.0f, 4.0f };
    float out[NV];
    bitnet_sampler_params p = plain();
    p.repeat_penalty = 2.0f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.penalty_last_n = 4;
    bitnet_logit_bias bias[3] = { { 6, 1.5f }, { 7, -INFINITY }, { 6, 0.25f } };
    p.logit_bias = bias;
    p.n_logit_bias = 3;
    bitnet_sampler *s = make(NV, &p);
    bias[0].bias = 100.0f;   /* the sampler keeps its own copy */

    /* no history yet: only the bias */
    assert_int_equal(bitnet__sampler_adjust(s, l, NV, out), BITNET_OK);
    for (int i = 0; i < 6; i++)
        assert_true(out[i] == l[i]);
    assert_true(out[6] == 1.0f + 1.5f + 0.25f);
    assert_true(isinf(out[7]) && out[7] < 0);

    /* history 3 0 3 1 4 9->... : accept 5, 3, 0, 3, 1 -> window (last 4)
     * is 3 0 3 1: counts 3:2, 0:1, 1:1 */
    const int32_t acc[5] = { 5, 3, 0, 3, 1 };
    for (int i = 0; i < 5; i++)
        assert_int_equal(bitnet_sampler_accept(s, acc[i]), BITNET_OK);
    assert_int_equal(bitnet__sampler_adjust(s, l, NV, out), BITNET_OK);
    /* positive logits are divided, negative multiplied, then
     * count*frequency + presence subtracted */
    assert_true(out[3] == 3.0f / 2.0f - 2 * 0.5f - 0.25f);
    assert_true(out[0] == 2.0f / 2.0f - 1 * 0.5f - 0.25f);
    assert_true(out[1] == -1.0f * 2.0f - 1 * 0.5f - 0.25f);
    assert_true(out[5] == l[5]);   /* left the window */
    assert_true(out[2] == l[2]);
    assert_true(out[4] == l[4]);
    /* zero logits count as non-positive (multiplied: stays 0) */
    assert_int_equal(bitnet_sampler_accept(s, 4), BITNET_OK);
    assert_int_equal(bitnet__sampler_adjust(s, l, NV, out), BITNET_OK);
    assert_true(out[4] == 0.0f - 0.5f - 0.25f);
    /* the adjusted values persist across calls without drift */
    float again[NV];
    assert_int_equal(bitnet__sampler_adjust(s, l, NV, again), BITNET_OK);
    assert_memory_equal(out, again, sizeof(out));

    /* reset clears the history */
    bitnet_sampler_reset(s);
    assert_int_equal(bitnet__sampler_adjust(s, l, NV, out), BITNET_OK);
    for (int i = 0; i < 6; i++)
        assert_true(out[i] == l[i]);
    bitnet_sampler_free(s);

    /* penalty_last_n 0: no history, no penalties */
    p.penalty_last_n = 0;
    p.n_logit_bias = 0;
    p.logit_bias = NULL;
    s = make(NV, &p);
    assert_int_equal(bitnet_sampler_accept(s, 3), BITNET_OK);
    assert_int_equal(bitnet__sampler_adjust(s, l, NV, out), BITNET_OK);
    assert_memory_equal(out, l, sizeof(out));
    bitnet_sampler_free(s);

    /* behaviour: greedy picks 7 (4.0); after accepting 7 with a repeat
     * penalty of 2 it drops to 2.0 and 3 (3.0) wins */
    p = plain();
    p.temperature = 0.0f;
    p.repeat_penalty = 2.0f;
    s = make(NV, &p);
    int32_t t;
    assert_int_equal(bitnet_sampler_sample_logits(s, l, NV, &t), BITNET_OK);
    assert_int_equal(t, 7);
    assert_int_equal(bitnet_sampler_accept(s, t), BITNET_OK);
    assert_int_equal(bitnet_sampler_sample_logits(s, l, NV, &t), BITNET_OK);
    assert_int_equal(t, 3);
    bitnet_sampler_free(s);
}

static void test_exp(void **state)
{
    (void)state;
    double worst = 0;
    for (int i = 0; i <= 200000; i++) {
        double x = -700.0 * i / 200000.0;
        double a = bitnet__exp_neg(x), b = exp(x);
        double r = fabs(a - b) / b;
        if (r > worst)
            worst = r;
    }
    printf("bitnet__exp_neg max relative error: %.3g\n", worst);
    assert_true(worst < 1e-15);
    assert_true(bitnet__exp_neg(0.0) == 1.0);
    assert_true(bitnet__exp_neg(-1000.0) == 0.0);
    assert_true(bitnet__exp_neg(-INFINITY) == 0.0);
}

static void expect_invalid(const bitnet_sampler_params *p, int code)
{
    bitnet_sampler *s = (bitnet_sampler *)(uintptr_t)1;
    assert_int_equal(bitnet__sampler_create_n(&s, 10, p), code);
    assert_null(s);
    assert_true(strlen(bitnet_last_error()) > 0);
}

static void test_invalid(void **state)
{
    (void)state;
    bitnet_sampler *s = (bitnet_sampler *)(uintptr_t)1;
    assert_int_equal(bitnet_sampler_create(NULL, NULL, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_create(&s, NULL, NULL), BITNET_E_INVALID_ARG);
    assert_null(s);
    assert_true(strlen(bitnet_last_error()) > 0);
    assert_int_equal(bitnet__sampler_create_n(&s, 0, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet__sampler_create_n(&s, -5, NULL), BITNET_E_INVALID_ARG);

    bitnet_sampler_params p;
#define BAD(field, value) do { bitnet_sampler_params_init(&p); p.field = value; \
        expect_invalid(&p, BITNET_E_INVALID_ARG); } while (0)
    BAD(reserved0, 1);
    BAD(temperature, NAN);
    BAD(temperature, INFINITY);
    BAD(top_k, -1);
    BAD(top_p, 0.0f);
    BAD(top_p, -0.5f);
    BAD(top_p, 1.01f);
    BAD(top_p, NAN);
    BAD(min_p, -0.01f);
    BAD(min_p, 1.5f);
    BAD(min_p, NAN);
    BAD(repeat_penalty, 0.0f);
    BAD(repeat_penalty, -1.0f);
    BAD(repeat_penalty, INFINITY);
    BAD(repeat_penalty, NAN);
    BAD(frequency_penalty, NAN);
    BAD(frequency_penalty, -INFINITY);
    BAD(presence_penalty, INFINITY);
    BAD(penalty_last_n, -1);
    BAD(penalty_last_n, INT32_MAX);
    BAD(n_logit_bias, 2);          /* with logit_bias NULL */
    bitnet_logit_bias b[2] = { { 3, 1.0f }, { 10, 1.0f } };
    bitnet_sampler_params_init(&p);
    p.logit_bias = b;
    p.n_logit_bias = 2;
    expect_invalid(&p, BITNET_E_INVALID_ARG);   /* token 10 of 10 */
    b[1].token = -1;
    expect_invalid(&p, BITNET_E_INVALID_ARG);
    b[1].token = 4;
    b[1].bias = NAN;
    expect_invalid(&p, BITNET_E_INVALID_ARG);
    b[1].bias = INFINITY;
    expect_invalid(&p, BITNET_E_INVALID_ARG);
    b[1].bias = -INFINITY;
    s = make(10, &p);
    bitnet_sampler_free(s);
#undef BAD

    /* params structs: too small, and larger with a non-zero tail */
    bitnet_sampler_params_init(&p);
    p.struct_size = 2;
    expect_invalid(&p, BITNET_E_INVALID_ARG);
    struct { bitnet_sampler_params p; uint64_t extra; } big;
    memset(&big, 0, sizeof(big));
    bitnet_sampler_params_init(&big.p);
    big.p.struct_size = sizeof(big);
    s = make(10, &big.p);             /* zero tail: fine */
    bitnet_sampler_free(s);
    big.extra = 1;
    expect_invalid(&big.p, BITNET_E_UNSUPPORTED);
    /* an older, shorter struct: the missing fields take defaults */
    bitnet_sampler_params_init(&p);
    p.struct_size = (uint32_t)offsetof(bitnet_sampler_params, top_k);
    p.top_k = -7;                     /* outside struct_size: ignored */
    s = make(10, &p);
    bitnet_sampler_free(s);

    /* calls */
    s = make(10, NULL);
    float l[10] = { 0 };
    int32_t t = 5;
    assert_int_equal(bitnet_sampler_sample_logits(NULL, l, 10, &t), BITNET_E_INVALID_ARG);
    assert_int_equal(t, -1);
    assert_int_equal(bitnet_sampler_sample_logits(s, NULL, 10, &t), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_sample_logits(s, l, 10, NULL), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_sample_logits(s, l, 9, &t), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_sample_logits(s, l, 11, &t), BITNET_E_INVALID_ARG);
    l[3] = NAN;
    assert_int_equal(bitnet_sampler_sample_logits(s, l, 10, &t), BITNET_E_INVALID_ARG);
    l[3] = INFINITY;
    assert_int_equal(bitnet_sampler_sample_logits(s, l, 10, &t), BITNET_E_INVALID_ARG);
    for (int i = 0; i < 10; i++)
        l[i] = -INFINITY;
    assert_int_equal(bitnet_sampler_sample_logits(s, l, 10, &t), BITNET_E_INVALID_ARG);
    assert_true(strstr(bitnet_last_error(), "-inf") != NULL);
    l[9] = -1e30f;   /* one finite logit: always chosen */
    assert_int_equal(bitnet_sampler_sample_logits(s, l, 10, &t), BITNET_OK);
    assert_int_equal(t, 9);
    assert_string_equal(bitnet_last_error(), "");
    assert_int_equal(bitnet_sampler_accept(NULL, 1), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_accept(s, -1), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_accept(s, 10), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_accept(s, 9), BITNET_OK);
    assert_int_equal(bitnet_sampler_sample(NULL, NULL, -1, &t), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_sample(s, NULL, -1, &t), BITNET_E_INVALID_ARG);
    assert_int_equal(bitnet_sampler_sample(s, NULL, -1, NULL), BITNET_E_INVALID_ARG);
    bitnet_sampler_reset(NULL);
    bitnet_sampler_free(NULL);
    bitnet_sampler_free(s);
}

/* Large vocabulary, default chain, with and without top-k: must agree with
 * a brute-force reference of the same chain. */
static void test_large_vocab(void **state)
{
    (void)state;
    enum { NV = 128256 };
    float *l = malloc(NV * sizeof(float));
    int32_t *ids = malloc(NV * sizeof(int32_t));
    double *pr = malloc(NV * sizeof(double));
    assert_non_null(l);
    assert_non_null(ids);
    assert_non_null(pr);
    fill_logits(l, NV, 5);
    for (int i = 0; i < NV; i++)
        l[i] *= 3.0f;
    const int ks[2] = { 40, 0 };
    for (int j = 0; j < 2; j++) {
        bitnet_sampler_params p;
        bitnet_sampler_params_init(&p);
        p.top_k = ks[j];
        bitnet_sampler *s = make(NV, &p);
        size_t n;
        cands(s, l, NV, ids, pr, &n);
        assert_true(n >= 1);
        /* reference: every id with p_i >= min_p * p_max at T=1 and, among
         * the sorted ones, within the top-p prefix */
        float mx = l[0];
        for (int i = 1; i < NV; i++)
            mx = fmaxf(mx, l[i]);
        size_t expect_min_p = 0;
        for (int i = 0; i < NV; i++)
            expect_min_p += exp((double)l[i] - mx) >= 0.05;
        if (ks[j] == 0)
            assert_true(n <= expect_min_p);
        for (size_t i = 0; i < n; i++)
            assert_true(exp((double)l[ids[i]] - mx) >= 0.05);
        for (size_t i = 1; i < n; i++)
            assert_true(l[ids[i - 1]] >= l[ids[i]]);
        int32_t t;
        for (int r = 0; r < 20; r++) {
            assert_int_equal(bitnet_sampler_sample_logits(s, l, NV, &t), BITNET_OK);
            int found = 0;
            for (size_t i = 0; i < n; i++)
                found |= ids[i] == t;
            assert_true(found);
        }
        bitnet_sampler_free(s);
    }
    free(l);
    free(ids);
    free(pr);
}


/* Through the public API on a real (synthetic) model and context. */
static void test_with_model(void **state)
{
    (void)state;
    char path[256];
    bt_tmp_path(path, sizeof(path), "test-sampler", ".gguf");
    bitnet_synth_params syp;
    bitnet_synth_params_init(&syp);
    syp.n_embd = 128;
    syp.n_layer = 1;
    syp.n_ff = 256;
    syp.n_vocab = 300;
    bitnet_model *m = NULL;
    int rc = bt_synth_model(&m, path, &syp);
    remove(path);
    assert_int_equal(rc, BITNET_OK);
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = 64;
    cp.n_threads = 1;
    bitnet_context *ctx = NULL;
    assert_int_equal(bitnet_context_create(&ctx, m, &cp), BITNET_OK);

    bitnet_sampler_params p;
    bitnet_sampler_params_init(&p);
    p.seed = 99;
    bitnet_sampler *a = NULL, *b = NULL;
    assert_int_equal(bitnet_sampler_create(&a, m, &p), BITNET_OK);
    assert_int_equal(bitnet_sampler_create(&b, m, &p), BITNET_OK);
    int32_t t;
    /* no eval yet: the context has no logits */
    assert_int_equal(bitnet_sampler_sample(a, ctx, -1, &t), BITNET_E_STATE);
    /* a bias token outside this model's vocabulary */
    bitnet_logit_bias bias = { 300, 1.0f };
    p.logit_bias = &bias;
    p.n_logit_bias = 1;
    bitnet_sampler *c = (bitnet_sampler *)(uintptr_t)1;
    assert_int_equal(bitnet_sampler_create(&c, m, &p), BITNET_E_INVALID_ARG);
    assert_null(c);

    const int32_t prompt[4] = { 1, 50, 100, 200 };
    assert_int_equal(bitnet_context_eval(ctx, prompt, 4, BITNET_EVAL_ALL_LOGITS), BITNET_OK);
    for (int i = -1; i < 4; i++) {
        const float *lg = NULL;
        assert_int_equal(bitnet_context_logits(ctx, i, &lg), BITNET_OK);
        int32_t t1, t2;
        assert_int_equal(bitnet_sampler_sample(a, ctx, i, &t1), BITNET_OK);
        assert_int_equal(bitnet_sampler_sample_logits(b, lg, 300, &t2), BITNET_OK);
        assert_int_equal(t1, t2);
        assert_int_equal(bitnet_sampler_accept(a, t1), BITNET_OK);
        assert_int_equal(bitnet_sampler_accept(b, t2), BITNET_OK);
    }
    assert_int_equal(bitnet_sampler_sample(a, ctx, 4, &t), BITNET_E_INVALID_ARG);

    /* a sampler made for another vocabulary size is refused */
    bitnet_sampler *other = make(301, NULL);
    assert_int_equal(bitnet_sampler_sample(other, ctx, -1, &t), BITNET_E_INVALID_ARG);
    bitnet_sampler_free(other);

    bitnet_sampler_free(a);
    bitnet_sampler_free(b);
    bitnet_context_free(ctx);
    bitnet_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_greedy),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_penalties),
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_large_vocab),
        cmocka_unit_test(test_with_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
