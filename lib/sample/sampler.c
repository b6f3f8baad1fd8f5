/*
 * Sampler: logit bias -> penalties -> grammar mask -> top-k -> min-p/top-p ->
 * temperature -> seeded draw.
 *
 * Determinism. The same seed and the same logits give the same token on every
 * platform: the PRNG is xoshiro256** seeded through splitmix64, uniform
 * doubles take the top 53 bits, probabilities are computed in double with an
 * exp built from basic IEEE operations only (bitnet__exp_neg), every sum runs
 * in a fixed order, and candidates are ordered by (logit descending, id
 * ascending), a total order, so the sort routine cannot change the result.
 *
 * top-p and min-p both keep a prefix of the sorted candidates, so they
 * commute as long as top-p measures mass against the total of the set it is
 * given (after top-k). min-p is therefore applied first as a cheap filter,
 * which means only its survivors are sorted: this is what keeps a full-size
 * (128k) vocabulary fast when top-k is off.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/internal.h"
#include "base/rng.h"
#include "sample/grammar.h"
#include "sample/sampler.h"

#if defined(__clang__)
/* Keep a*b+c as two rounded operations everywhere (bit-exact results). GCC
 * does not contract in ISO C mode (-std=c11), which the build uses. */
# pragma STDC FP_CONTRACT OFF
#endif

/* Largest penalty window accepted: bounds the history allocation. */
#define BN_MAX_PENALTY_LAST_N (1 << 24)

typedef struct bn_cand {
    float logit;
    int32_t id;
} bn_cand;

struct bitnet_sampler {
    bitnet_sampler_params p;     /* merged; logit_bias points at bias below */
    int32_t n_vocab;
    bitnet_logit_bias *bias;     /* copy of the caller's array */
    size_t n_bias;
    uint64_t rng[4];             /* xoshiro256** state */
    int32_t *hist;               /* ring of the last penalty_last_n tokens */
    int32_t hist_len;            /* valid entries (<= penalty_last_n) */
    int32_t hist_pos;            /* next write position */
    int32_t *count;              /* n_vocab zeros between calls */
    float *work;                 /* n_vocab adjusted logits */
    bn_cand *cand;               /* n_vocab candidates */
    bn_cand *tmp;                /* n_vocab: radix sort scratch */
    double *w;                   /* n_vocab weights */
    /* grammar (all NULL without one) */
    bn_grammar *gram;
    bn_gmatch *gm;
    const struct gtables *gt;    /* the model's token tables (shared) */
    uint64_t *allowed;           /* n_vocab bits, the last mask */
    int g_done;                  /* an end-of-generation token was accepted */
};

/* ---- PRNG (base/rng.h) ------------------------------------------------ */

static void rng_seed(uint64_t st[4], uint64_t seed)
{
    bitnet__rng_seed(st, seed);
}

static uint64_t rng_next(uint64_t st[4])
{
    return bitnet__rng_next(st);
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_double(uint64_t st[4])
{
    return (double)(rng_next(st) >> 11) * 0x1.0p-53;
}

/* ---- portable exp ----------------------------------------------------- */

double bitnet__exp_neg(double x)
{
    if (!(x <= 0.0))
        return x != x ? x : 1.0;   /* NaN stays NaN; callers never pass > 0 */
    if (x < -700.0)
        return 0.0;                /* < 1e-304: nothing next to exp(0) = 1 */
    /* x = k*ln2 + r, |r| <= ln2/2; ln2 split so k*LN2_HI is exact. */
    static const double LN2_HI = 6.93147180369123816490e-01;
    static const double LN2_LO = 1.90821492927058770002e-10;
    static const double INV_LN2 = 1.44269504088896338700e+00;
    /* k = round(x / ln2), halves away from zero; integer conversion, so no
     * libm call and the same result everywhere. */
    double kd = (double)(int)(x * INV_LN2 - 0.5);
    double r = (x - kd * LN2_HI) - kd * LN2_LO;
    /* Taylor series to r^13/13!: truncation < 2e-17 for |r| <= 0.35. */
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* Scale by 2^k (k in [-1010, 0]: a normal power of two, exact). */
    int k = (int)kd;
    uint64_t bits = (uint64_t)(k + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof(scale));
    return p * scale;
}

/* ---- construction ----------------------------------------------------- */

static int check_params(const bitnet_sampler_params *p, int32_t n_vocab)
{
    if (p->reserved0 != 0)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: reserved0 must be 0");
    if (!isfinite(p->temperature))
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: temperature must be finite "
                             "(<= 0 means greedy)");
    if (p->top_k < 0)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: top_k %d is negative (0 = off)",
                             (int)p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: top_p %g outside (0, 1] "
                             "(1 = off)", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: min_p %g outside [0, 1] "
                             "(0 = off)", (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: repeat_penalty %g must be > 0 "
                             "and finite (1 = off)", (double)p->repeat_penalty);
    if (!isfinite(p->frequency_penalty))
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: frequency_penalty must be finite");
    if (!isfinite(p->presence_penalty))
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: presence_penalty must be finite");
    if (p->penalty_last_n < 0 || p->penalty_last_n > BN_MAX_PENALTY_LAST_N)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: penalty_last_n %d outside "
                             "[0, %d]", (int)p->penalty_last_n,
                             BN_MAX_PENALTY_LAST_N);
    if (p->n_logit_bias > 0 && !p->logit_bias)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "sampler params: n_logit_bias is %zu but "
                             "logit_bias is NULL", p->n_logit_bias);
    for (size_t i = 0; i < p->n_logit_bias; i++) {
        const bitnet_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0 || b->token >= n_vocab)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "sampler params: logit_bias[%zu] token %d "
                                 "outside the vocabulary [0, %d)", i,
                                 (int)b->token, (int)n_vocab);
        if (isnan(b->bias) || (isinf(b->bias) && b->bias > 0))
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "sampler params: logit_bias[%zu] bias must be "
                                 "finite or -INFINITY", i);
    }
    return BITNET_OK;
}

/* A model's token tables for grammars: every token's bytes and the trie of
 * them (end-of-generation tokens are kept out of the trie: the matcher
 * allows them only where the grammar may end). Built once per model and
 * kept with it (bitnet__model_attachment): reading 128k pieces and sorting
 * them into the trie takes a few hundred ms, which every grammar sampler
 * (a server request with a response_format) would otherwise pay. Read-only
 * once built, so samplers on any thread share it. */
struct gtables {
    int32_t n_vocab;
    char *pieces;                /* every token's bytes, back to back */
    size_t *piece_off;           /* n_vocab + 1 */
    uint8_t *is_eog;             /* n_vocab flags */
    bn_vtrie *trie;
};

static void gtables_free(void *obj)
{
    struct gtables *t = obj;
    if (!t)
        return;
    bitnet__vtrie_free(t->trie);
    free(t->pieces);
    free(t->piece_off);
    free(t->is_eog);
    free(t);
}

static int gtables_build(const bitnet_model *model, void **obj)
{
    const size_t nv = (size_t)bitnet_model_n_vocab(model);
    struct gtables *t = calloc(1, sizeof(*t));
    uint32_t *len = malloc(nv * sizeof(*len));
    const char **ptr = malloc(nv * sizeof(*ptr));
    size_t cap = 1 << 16, used = 0;
    int rc = BITNET_E_NOMEM;
    if (!t || !len || !ptr)
        goto out;
    t->n_vocab = (int32_t)nv;
    t->piece_off = malloc((nv + 1) * sizeof(*t->piece_off));
    t->is_eog = calloc(nv, 1);
    t->pieces = malloc(cap);
    if (!t->piece_off || !t->is_eog || !t->pieces)
        goto out;
    for (size_t i = 0; i < nv; i++) {
        size_t n = 0;
        t->piece_off[i] = used;
        int r = bitnet_token_to_piece(model, (int32_t)i, 0, t->pieces + used,
                                      cap - used, &n);
        if (r == BITNET_E_BUFFER_TOO_SMALL) {
            while (cap - used < n)
                cap *= 2;
            char *np = realloc(t->pieces, cap);
            if (!np)
                goto out;
            t->pieces = np;
            r = bitnet_token_to_piece(model, (int32_t)i, 0, t->pieces + used,
                                      cap - used, &n);
        }
        if (r != BITNET_OK) {
            rc = r;
            goto out;
        }
        used += n;
        t->is_eog[i] = (uint8_t)(bitnet_token_is_eog(model, (int32_t)i) != 0);
    }
    t->piece_off[nv] = used;
    bitnet__clear_error();
    for (size_t i = 0; i < nv; i++) {
        ptr[i] = t->pieces + t->piece_off[i];
        len[i] = t->is_eog[i] ? 0 : (uint32_t)(t->piece_off[i + 1] - t->piece_off[i]);
    }
    rc = bitnet__vtrie_build(&t->trie, ptr, len, t->n_vocab);
out:
    free(len);
    free(ptr);
    if (rc != BITNET_OK) {
        gtables_free(t);
        t = NULL;
        if (rc == BITNET_E_NOMEM)
            bitnet__error(BITNET_E_NOMEM, "bitnet_sampler_create: out of memory "
                          "(grammar tables)");
    }
    *obj = t;
    return rc;
}

/* The grammar parts of a sampler: the compiled grammar, a matcher, the
 * mask buffer, and the model's token tables. */
static int setup_grammar(bitnet_sampler *s, const bitnet_model *model)
{
    int rc = bitnet__grammar_parse(s->p.grammar, s->p.grammar_root, &s->gram);
    if (rc != BITNET_OK)
        return rc;
    rc = bitnet__gmatch_create(&s->gm, s->gram);
    if (rc != BITNET_OK)
        return rc;
    s->allowed = malloc((((size_t)s->n_vocab + 63) / 64) * sizeof(*s->allowed));
    if (!s->allowed)
        return bitnet__error(BITNET_E_NOMEM, "bitnet_sampler_create: out of memory "
                             "(grammar tables)");
    void *obj = NULL;
    rc = bitnet__model_attachment(model, gtables_build, gtables_free, &obj);
    if (rc != BITNET_OK)
        return rc;
    s->gt = obj;
    if (s->gt->n_vocab != s->n_vocab)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_sampler_create: the "
                             "grammar's vocabulary has %d tokens, the sampler %d",
                             (int)s->gt->n_vocab, (int)s->n_vocab);
    return BITNET_OK;
}

static int create_impl(bitnet_sampler **out, int32_t n_vocab,
                       const bitnet_model *model,
                       const bitnet_sampler_params *params)
{
    if (!out)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_create: out is NULL");
    *out = NULL;
    if (n_vocab <= 0)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_create: vocabulary size %d",
                             (int)n_vocab);
    bitnet_sampler_params p;
    bitnet_sampler_params_init(&p);
    if (params) {
        int rc = bitnet__params_merge(&p, sizeof(p), params,
                                      "bitnet_sampler_create");
        if (rc != BITNET_OK)
            return rc;
    }
    int rc = check_params(&p, n_vocab);
    if (rc != BITNET_OK)
        return rc;

    bitnet_sampler *s = calloc(1, sizeof(*s));
    if (!s)
        goto nomem;
    s->p = p;
    s->n_vocab = n_vocab;
    size_t nv = (size_t)n_vocab;
    if (p.n_logit_bias > 0) {
        if (p.n_logit_bias > SIZE_MAX / sizeof(*s->bias))
            goto nomem;
        s->bias = malloc(p.n_logit_bias * sizeof(*s->bias));
        if (!s->bias)
            goto nomem;
        memcpy(s->bias, p.logit_bias, p.n_logit_bias * sizeof(*s->bias));
        s->n_bias = p.n_logit_bias;
    }
    s->p.logit_bias = s->bias;
    if (p.penalty_last_n > 0) {
        s->hist = malloc((size_t)p.penalty_last_n * sizeof(*s->hist));
        if (!s->hist)
            goto nomem;
    }
    s->count = calloc(nv, sizeof(*s->count));
    s->work = malloc(nv * sizeof(*s->work));
    s->cand = malloc(nv * sizeof(*s->cand));
    s->tmp = malloc(nv * sizeof(*s->tmp));
    s->w = malloc(nv * sizeof(*s->w));
    if (!s->count || !s->work || !s->cand || !s->tmp || !s->w)
        goto nomem;
    rng_seed(s->rng, p.seed);
    if (p.grammar) {
        if (!model) {
            bitnet_sampler_free(s);
            return bitnet__error(BITNET_E_INVALID_ARG, "sampler params: a "
                                 "grammar needs the model's vocabulary "
                                 "(use bitnet_sampler_create)");
        }
        rc = setup_grammar(s, model);
        if (rc != BITNET_OK) {
            bitnet_sampler_free(s);
            return rc;
        }
    }
    /* The grammar strings were compiled; do not keep the caller's pointers. */
    s->p.grammar = NULL;
    s->p.grammar_root = NULL;
    *out = s;
    return BITNET_OK;
nomem:
    bitnet_sampler_free(s);
    return bitnet__error(BITNET_E_NOMEM,
                         "bitnet_sampler_create: out of memory (vocabulary "
                         "of %d tokens)", (int)n_vocab);
}

int bitnet__sampler_create_n(bitnet_sampler **out, int32_t n_vocab,
                             const bitnet_sampler_params *params)
{
    return create_impl(out, n_vocab, NULL, params);
}

int bitnet_sampler_create(bitnet_sampler **out, const bitnet_model *model,
                          const bitnet_sampler_params *params)
{
    bitnet__clear_error();
    if (!out)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_create: out is NULL");
    *out = NULL;
    if (!model)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_create: model is NULL");
    int32_t n_vocab = bitnet_model_n_vocab(model);
    bitnet__clear_error();
    return create_impl(out, n_vocab, model, params);
}

void bitnet_sampler_free(bitnet_sampler *s)
{
    if (!s)
        return;
    free(s->bias);
    free(s->hist);
    free(s->count);
    free(s->work);
    free(s->cand);
    free(s->tmp);
    free(s->w);
    bitnet__gmatch_free(s->gm);
    bitnet__grammar_free(s->gram);
    free(s->allowed);
    free(s);
}

void bitnet_sampler_reset(bitnet_sampler *s)
{
    bitnet__clear_error();
    if (!s)
        return;
    s->hist_len = 0;
    s->hist_pos = 0;
    rng_seed(s->rng, s->p.seed);
    if (s->gm) {
        bitnet__gmatch_reset(s->gm);
        s->g_done = 0;
    }
}

static int grammar_accept(bitnet_sampler *s, int32_t token)
{
    if (s->g_done)
        return bitnet__error(BITNET_E_GRAMMAR, "bitnet_sampler_accept: the "
                             "grammar is complete (an end-of-generation token "
                             "was accepted); reset the sampler");
    if (s->gt->is_eog[token]) {
        if (!bitnet__gmatch_can_end(s->gm))
            return bitnet__error(BITNET_E_GRAMMAR, "bitnet_sampler_accept: "
                                 "end-of-generation token %d where the "
                                 "grammar cannot end", (int)token);
        s->g_done = 1;
        return BITNET_OK;
    }
    const char *b = s->gt->pieces + s->gt->piece_off[token];
    size_t n = s->gt->piece_off[token + 1] - s->gt->piece_off[token];
    if (n == 0)
        return bitnet__error(BITNET_E_GRAMMAR, "bitnet_sampler_accept: token "
                             "%d has no text, which the grammar cannot match",
                             (int)token);
    int rc = bitnet__gmatch_feed(s->gm, b, n);
    if (rc < 0)
        return bitnet__error(rc, "bitnet_sampler_accept: out of memory");
    if (rc == 0)
        return bitnet__error(BITNET_E_GRAMMAR, "bitnet_sampler_accept: token "
                             "%d ('%.*s') is not allowed by the grammar here",
                             (int)token, (int)(n > 64 ? 64 : n), b);
    return BITNET_OK;
}

int bitnet_sampler_accept(bitnet_sampler *s, int32_t token)
{
    bitnet__clear_error();
    if (!s)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_accept: sampler is NULL");
    if (token < 0 || token >= s->n_vocab)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_accept: token %d outside the "
                             "vocabulary [0, %d)", (int)token, (int)s->n_vocab);
    if (s->gm) {
        int rc = grammar_accept(s, token);
        if (rc != BITNET_OK)
            return rc;
    }
    int32_t n = s->p.penalty_last_n;
    if (n == 0)
        return BITNET_OK;
    s->hist[s->hist_pos] = token;
    s->hist_pos = s->hist_pos + 1 == n ? 0 : s->hist_pos + 1;
    if (s->hist_len < n)
        s->hist_len++;
    return BITNET_OK;
}

/* ---- the chain -------------------------------------------------------- */

static int check_call(const bitnet_sampler *s, const float *logits,
                      size_t n_logits, const char *fn)
{
    if (!s)
        return bitnet__error(BITNET_E_INVALID_ARG, "%s: sampler is NULL", fn);
    if (!logits)
        return bitnet__error(BITNET_E_INVALID_ARG, "%s: logits is NULL", fn);
    if (n_logits != (size_t)s->n_vocab)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "%s: %zu logits for a vocabulary of %d", fn,
                             n_logits, (int)s->n_vocab);
    return BITNET_OK;
}

/* Steps 1-2 into s->work: logit bias, then penalties. */
static int adjust(bitnet_sampler *s, const float *logits, const char *fn)
{
    const int32_t nv = s->n_vocab;
    float *work = s->work;
    for (int32_t i = 0; i < nv; i++) {
        float l = logits[i];
        if (isnan(l) || (isinf(l) && l > 0))
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "%s: logit of token %d is %s (logits must "
                                 "be finite or -inf)", fn, (int)i,
                                 isnan(l) ? "NaN" : "+inf");
        work[i] = l;
    }
    for (size_t i = 0; i < s->n_bias; i++)
        work[s->bias[i].token] += s->bias[i].bias;

    const bitnet_sampler_params *p = &s->p;
    if (s->hist_len > 0 && (p->repeat_penalty != 1.0f ||
                            p->frequency_penalty != 0.0f ||
                            p->presence_penalty != 0.0f)) {
        for (int32_t i = 0; i < s->hist_len; i++)
            s->count[s->hist[i]]++;
        /* Visit each distinct token once; zeroing the count marks it done
         * and leaves the array clear for the next call. */
        for (int32_t i = 0; i < s->hist_len; i++) {
            int32_t t = s->hist[i];
            int32_t c = s->count[t];
            if (c == 0)
                continue;
            s->count[t] = 0;
            float l = work[t];
            if (l > 0.0f)
                l /= p->repeat_penalty;
            else
                l *= p->repeat_penalty;
            l -= (float)c * p->frequency_penalty + p->presence_penalty;
            work[t] = l;
        }
    }
    return BITNET_OK;
}

/* Total order: higher logit first, then lower id. */
static inline int cand_better(const bn_cand *a, const bn_cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb)
{
    const bn_cand *a = pa, *b = pb;
    if (cand_better(a, b))
        return -1;
    if (cand_better(b, a))
        return 1;
    return 0;
}

/* Sort key: unsigned order = descending logit. Logits are never NaN and
 * -0.0 was folded into +0.0 when the candidates were collected. */
static inline uint32_t desc_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);   /* ascending */
    return ~u;
}

/* Sort c[0..n) by (logit descending, id ascending). c must be in ascending
 * id order on entry: the LSD radix sort is stable, so ties keep it. Small
 * sets use qsort with the same total order; both give identical results. */
static void sort_cands(bn_cand *c, bn_cand *tmp, size_t n)
{
    if (n <= 256) {
        qsort(c, n, sizeof(*c), cand_cmp);
        return;
    }
    bn_cand *src = c, *dst = tmp;
    for (int shift = 0; shift < 32; shift += 8) {
        size_t cnt[256] = { 0 };
        for (size_t i = 0; i < n; i++)
            cnt[(desc_key(src[i].logit) >> shift) & 0xff]++;
        size_t sum = 0;
        for (int b = 0; b < 256; b++) {
            size_t t = cnt[b];
            cnt[b] = sum;
            sum += t;
        }
        for (size_t i = 0; i < n; i++)
            dst[cnt[(desc_key(src[i].logit) >> shift) & 0xff]++] = src[i];
        bn_cand *t = src;
        src = dst;
        dst = t;
    }
    /* four passes: the result is back in c */
}

/* Keep the k best of c[0..n) in c[0..k), using a min-heap on the worst. */
static void select_top_k(bn_cand *c, size_t n, size_t k)
{
    /* Heapify c[0..k) with the worst element at the root. */
    for (size_t start = k / 2; start-- > 0;) {
        size_t i = start;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < k && cand_better(&c[m], &c[l])) m = l;
            if (r < k && cand_better(&c[m], &c[r])) m = r;
            if (m == i) break;
            bn_cand t = c[i]; c[i] = c[m]; c[m] = t;
            i = m;
        }
    }
    for (size_t j = k; j < n; j++) {
        if (!cand_better(&c[j], &c[0]))
            continue;
        c[0] = c[j];
        size_t i = 0;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < k && cand_better(&c[m], &c[l])) m = l;
            if (r < k && cand_better(&c[m], &c[r])) m = r;
            if (m == i) break;
            bn_cand t = c[i]; c[i] = c[m]; c[m] = t;
            i = m;
        }
    }
}

/* Step 3, the grammar mask: -inf for every token the grammar does not allow
 * next; end-of-generation tokens only where the grammar may end. */
static int grammar_mask(bitnet_sampler *s, const char *fn)
{
    if (s->g_done)
        return bitnet__error(BITNET_E_GRAMMAR, "%s: the grammar is complete (an "
                             "end-of-generation token was accepted); reset "
                             "the sampler", fn);
    int rc = bitnet__gmatch_mask(s->gm, s->gt->trie, s->allowed, s->n_vocab);
    if (rc != BITNET_OK)
        return rc;
    const int can_end = bitnet__gmatch_can_end(s->gm);
    const int32_t nv = s->n_vocab;
    float *work = s->work;
    for (int32_t i0 = 0; i0 < nv; i0 += 64) {
        uint64_t bits = s->allowed[i0 >> 6];
        if (bits == ~0ull)
            continue;
        int32_t i1 = i0 + 64 < nv ? i0 + 64 : nv;
        for (int32_t i = i0; i < i1; i++)
            if (!((bits >> (i - i0)) & 1) && !(can_end && s->gt->is_eog[i]))
                work[i] = -INFINITY;
    }
    return BITNET_OK;
}

/* Runs the chain up to (not including) the draw. Leaves the survivors in
 * s->cand[0..*n_out), sorted, with their final unnormalised weights in
 * s->w[0..*n_out) and the sum in *sum. */
static int run_chain(bitnet_sampler *s, const float *logits, size_t *n_out,
                     double *sum, const char *fn)
{
    int rc = adjust(s, logits, fn);
    if (rc != BITNET_OK)
        return rc;
    if (s->gm && (rc = grammar_mask(s, fn)) != BITNET_OK)
        return rc;
    const bitnet_sampler_params *p = &s->p;
    const int32_t nv = s->n_vocab;
    const float *work = s->work;
    bn_cand *c = s->cand;
    double *w = s->w;

    size_t n = 0;
    int32_t best = -1;
    float best_l = -INFINITY;
    for (int32_t i = 0; i < nv; i++) {
        const float l = work[i] + 0.0f;   /* -0.0 -> +0.0 for the sort key */
        if (l == -INFINITY)               /* banned */
            continue;
        c[n].logit = l;
        c[n].id = i;
        if (l > best_l || best < 0) {
            best_l = l;
            best = i;
        }
        n++;
    }
    if (n == 0 && s->gm)
        return bitnet__error(BITNET_E_GRAMMAR,
                             "%s: no token is allowed here (by the grammar, "
                             "after the logit bias)", fn);
    if (n == 0)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "%s: every token has logit -inf (all banned)", fn);

    if (p->temperature <= 0.0f) {          /* greedy: ties to lowest id */
        c[0].logit = best_l;
        c[0].id = best;
        w[0] = 1.0;
        *n_out = 1;
        *sum = 1.0;
        return BITNET_OK;
    }

    int sorted = 0;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        select_top_k(c, n, (size_t)p->top_k);
        n = (size_t)p->top_k;
        qsort(c, n, sizeof(*c), cand_cmp);
        sorted = 1;
    }

    /* Weights at temperature 1 relative to the best logit, and their total
     * over the whole set (what top-p measures against). */
    const double lmax = best_l;
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        w[i] = bitnet__exp_neg((double)c[i].logit - lmax);
        total += w[i];
    }

    /* min-p: p_i >= min_p * p_max, i.e. w_i >= min_p (w_max = 1). */
    if (p->min_p > 0.0f) {
        const double mp = p->min_p;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (w[i] >= mp) {
                c[m] = c[i];
                w[m] = w[i];
                m++;
            }
        n = m;
    }
    if (!sorted) {
        sort_cands(c, s->tmp, n);
        for (size_t i = 0; i < n; i++)
            w[i] = bitnet__exp_neg((double)c[i].logit - lmax);
    }

    /* top-p: the shortest prefix whose mass reaches top_p of the total. */
    if (p->top_p < 1.0f) {
        const double target = (double)p->top_p * total;
        double cum = 0.0;
        size_t m = n;
        for (size_t i = 0; i < n; i++) {
            cum += w[i];
            if (cum >= target) {
                m = i + 1;
                break;
            }
        }
        n = m;
    }

    /* Temperature. */
    double s_w = 0.0;
    if (p->temperature != 1.0f) {
        const double t = p->temperature;
        for (size_t i = 0; i < n; i++) {
            w[i] = bitnet__exp_neg(((double)c[i].logit - lmax) / t);
            s_w += w[i];
        }
    } else {
        for (size_t i = 0; i < n; i++)
            s_w += w[i];
    }
    *n_out = n;
    *sum = s_w;
    return BITNET_OK;
}

int bitnet__sampler_adjust(bitnet_sampler *s, const float *logits,
                           size_t n_logits, float *out)
{
    bitnet__clear_error();
    int rc = check_call(s, logits, n_logits, "bitnet__sampler_adjust");
    if (rc != BITNET_OK)
        return rc;
    if (!out)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet__sampler_adjust: out is NULL");
    rc = adjust(s, logits, "bitnet__sampler_adjust");
    if (rc != BITNET_OK)
        return rc;
    memcpy(out, s->work, (size_t)s->n_vocab * sizeof(*out));
    return BITNET_OK;
}

int bitnet__sampler_candidates(bitnet_sampler *s, const float *logits,
                               size_t n_logits, int32_t *ids, double *probs,
                               size_t *n_out)
{
    bitnet__clear_error();
    int rc = check_call(s, logits, n_logits, "bitnet__sampler_candidates");
    if (rc != BITNET_OK)
        return rc;
    if (!ids || !probs || !n_out)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet__sampler_candidates: NULL output");
    size_t n;
    double sum;
    rc = run_chain(s, logits, &n, &sum, "bitnet__sampler_candidates");
    if (rc != BITNET_OK)
        return rc;
    for (size_t i = 0; i < n; i++) {
        ids[i] = s->cand[i].id;
        probs[i] = s->w[i] / sum;
    }
    *n_out = n;
    return BITNET_OK;
}

static int sample_impl(bitnet_sampler *s, const float *logits,
                       int32_t *out_token, const char *fn)
{
    size_t n;
    double sum;
    int rc = run_chain(s, logits, &n, &sum, fn);
    if (rc != BITNET_OK)
        return rc;
    if (s->p.temperature <= 0.0f || n == 1) {
        if (s->p.temperature > 0.0f)
            (void)rng_next(s->rng);  /* one draw per sampled token, always */
        *out_token = s->cand[0].id;
        return BITNET_OK;
    }
    const double u = rng_double(s->rng) * sum;
    double cum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cum += s->w[i];
        if (u < cum) {
            *out_token = s->cand[i].id;
            return BITNET_OK;
        }
    }
    *out_token = s->cand[n - 1].id;  /* u == sum after rounding */
    return BITNET_OK;
}

int bitnet_sampler_sample_logits(bitnet_sampler *s, const float *logits,
                                 size_t n_logits, int32_t *out_token)
{
    bitnet__clear_error();
    if (!out_token)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_sample_logits: out_token is NULL");
    *out_token = -1;
    int rc = check_call(s, logits, n_logits, "bitnet_sampler_sample_logits");
    if (rc != BITNET_OK)
        return rc;
    return sample_impl(s, logits, out_token, "bitnet_sampler_sample_logits");
}

int bitnet_sampler_sample(bitnet_sampler *s, const bitnet_context *ctx,
                          int32_t i, int32_t *out_token)
{
    bitnet__clear_error();
    if (!out_token)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_sample: out_token is NULL");
    *out_token = -1;
    if (!s)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_sample: sampler is NULL");
    if (!ctx)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_sample: context is NULL");
    int32_t nv = bitnet_model_n_vocab(bitnet_context_model(ctx));
    if (nv != s->n_vocab)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_sampler_sample: the context's model has "
                             "%d tokens but the sampler was made for %d",
                             (int)nv, (int)s->n_vocab);
    const float *logits = NULL;
    int rc = bitnet_context_logits(ctx, i, &logits);
    if (rc != BITNET_OK)
        return rc;
    return sample_impl(s, logits, out_token, "bitnet_sampler_sample");
}
