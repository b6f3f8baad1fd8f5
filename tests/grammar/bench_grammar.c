/*
 * Benchmark: the cost of the grammar mask on a real vocabulary.
 *
 *   bench_grammar [VOCAB.gguf [MODEL.gguf [THREADS]]]
 *
 * Loads the vocabulary (default: the Llama-3 vocabulary from the shared test
 * material, 128256 tokens), then runs a sampler over random logits for a few
 * hundred steps with a JSON grammar, accepting each sampled token, and
 * reports per step: the whole sample call with the grammar, the same call
 * without one, and the mask computation alone (trie walk plus applying it).
 * With MODEL it also times one decode step (one token, THREADS threads,
 * default 2) so the two figures come from the same run. Prints figures;
 * asserts nothing about time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"
#include "base/internal.h"
#include "sample/grammar.h"

#define STEPS 400

static const char *const grammars[][2] = {
    { "any JSON value", "{}" },
    { "schema (object)",
      "{\"type\":\"object\",\"properties\":{"
      "\"name\":{\"type\":\"string\"},"
      "\"age\":{\"type\":\"integer\"},"
      "\"email\":{\"type\":\"string\",\"maxLength\":40},"
      "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"}},"
      "\"born\":{\"type\":\"string\",\"format\":\"date\"}},"
      "\"required\":[\"name\",\"age\",\"tags\"]}" },
};

static void fill(float *l, int32_t n, uint32_t *x)
{
    for (int32_t i = 0; i < n; i++) {
        *x = *x * 1664525u + 1013904223u;
        l[i] = (float)((*x >> 8) & 0xffff) / 65536.0f * 10.0f - 5.0f;
    }
}

/* A JSON document as a model might write it, fed token by token. */
static const char doc[] =
    "{\"name\": \"Alice Smith\", \"age\": 42, \"email\": \"alice@example.org\", "
    "\"tags\": [\"climbing\", \"chess\", \"Ünïcödé ✓\"], \"born\": \"1983-04-12\", "
    "\"scores\": [1.5, -20, 3e5, 0.125], \"active\": true, \"boss\": null, "
    "\"address\": {\"city\": \"Zürich\", \"zip\": \"8001\", \"lines\": "
    "[\"Bahnhofstrasse 1\", \"2nd floor\"]}}";

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return v[n / 2];
}

static double decode_step_ms(const char *path, int threads)
{
    bitnet_model *m;
    if (bitnet_model_load_file(&m, path, NULL) != BITNET_OK) {
        fprintf(stderr, "model: %s\n", bitnet_last_error());
        return -1;
    }
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = 256;
    cp.n_threads = threads;
    bitnet_context *ctx;
    if (bitnet_context_create(&ctx, m, &cp) != BITNET_OK) {
        fprintf(stderr, "context: %s\n", bitnet_last_error());
        bitnet_model_free(m);
        return -1;
    }
    int32_t tok = 1;
    double t[32];
    bitnet_context_eval(ctx, &tok, 1, 0);   /* warm up */
    for (int i = 0; i < 32; i++) {
        double t0 = bitnet__now();
        bitnet_context_eval(ctx, &tok, 1, 0);
        t[i] = (bitnet__now() - t0) * 1e3;
    }
    bitnet_context_free(ctx);
    bitnet_model_free(m);
    return median(t, 32);
}

/* CPU time of this thread: the machine may be shared, and the mask runs on
 * one thread, so this is closer to its cost on an idle machine. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double mean(const double *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    return s / n;
}

/* The mask alone, uncached and cached, at every token of doc under the
 * any-JSON grammar. */
static int walk_doc(bitnet_model *m, const char *grammar)
{
    const int32_t nv = bitnet_model_n_vocab(m);
    int32_t toks[512];
    size_t nt;
    if (bitnet_tokenize(m, doc, sizeof(doc) - 1, 0, toks, 512, &nt) != BITNET_OK)
        return 1;
    char **pieces = malloc((size_t)nv * sizeof(*pieces));
    uint32_t *len = malloc((size_t)nv * sizeof(*len));
    uint64_t *allowed = malloc(((size_t)nv + 63) / 64 * 8);
    for (int32_t i = 0; i < nv; i++) {
        char buf[512];
        size_t n = 0;
        bitnet_token_to_piece(m, i, 0, buf, sizeof(buf), &n);
        pieces[i] = malloc(n + 1);
        memcpy(pieces[i], buf, n);
        len[i] = bitnet_token_is_eog(m, i) ? 0 : (uint32_t)n;
    }
    bn_grammar *g;
    bn_gmatch *gm;
    bn_vtrie *t;
    double t0 = bitnet__now();
    if (bitnet__vtrie_build(&t, (const char *const *)pieces, len, nv) != BITNET_OK)
        return 1;
    double t_trie = (bitnet__now() - t0) * 1e3;
    if (bitnet__grammar_parse(grammar, NULL, &g) != BITNET_OK ||
        bitnet__gmatch_create(&gm, g) != BITNET_OK) {
        fprintf(stderr, "grammar: %s\n", bitnet_last_error());
        return 1;
    }
    double cold[512], warm[512], cold_cpu[512], warm_cpu[512];
    int allowed_sum = 0;
    for (size_t i = 0; i < nt; i++) {
        /* Each figure is the fastest of 3 runs (the machine is shared). */
        cold[i] = warm[i] = cold_cpu[i] = warm_cpu[i] = 1e30;
        for (int r = 0; r < 3; r++) {
            /* nothing cached: every transition is computed on the way */
            bitnet__gmatch_drop_cache(gm, 1);
            double a = bitnet__now(), ac = cpu_now();
            bitnet__gmatch_mask(gm, t, allowed, nv);
            double b = bitnet__now(), bc = cpu_now();
            /* transitions known, the mask itself not cached */
            bitnet__gmatch_drop_cache(gm, 0);
            bitnet__gmatch_mask(gm, t, allowed, nv);
            double c = bitnet__now(), cc = cpu_now();
            if ((b - a) * 1e3 < cold[i]) cold[i] = (b - a) * 1e3;
            if ((c - b) * 1e3 < warm[i]) warm[i] = (c - b) * 1e3;
            if ((bc - ac) * 1e3 < cold_cpu[i]) cold_cpu[i] = (bc - ac) * 1e3;
            if ((cc - bc) * 1e3 < warm_cpu[i]) warm_cpu[i] = (cc - bc) * 1e3;
        }
        if (getenv("BENCH_TRACE"))
            fprintf(stderr, "%zu %.3f %.3f\n", i, cold[i], warm[i]);
        if (!((allowed[toks[i] >> 6] >> (toks[i] & 63)) & 1)) {
            fprintf(stderr, "token %zu of the document not allowed\n", i);
            return 1;
        }
        for (int32_t k = 0; k < nv; k++)
            allowed_sum += (int)((allowed[k >> 6] >> (k & 63)) & 1);
        if (bitnet__gmatch_feed(gm, pieces[toks[i]], len[toks[i]]) != 1)
            return 1;
    }
    if (!bitnet__gmatch_can_end(gm))
        return 1;
    printf("trie of %d pieces built in %.1f ms\n", (int)nv, t_trie);
    printf("mask along a %zu-token JSON document (any-JSON grammar; on "
           "average %d tokens allowed per step):\n", nt, allowed_sum / (int)nt);
    double *v[4] = { cold, cold_cpu, warm, warm_cpu };
    static const char *const what[4] = {
        "trie walk, nothing cached,     wall", "trie walk, nothing cached,     CPU ",
        "trie walk, transitions known, wall", "trie walk, transitions known, CPU ",
    };
    for (int k = 0; k < 4; k++) {
        double mk = mean(v[k], (int)nt), dk = median(v[k], (int)nt);
        printf("  %s  mean %6.3f ms  median %6.3f  max %6.3f\n", what[k], mk, dk,
               v[k][nt - 1]);
    }
    bitnet__vtrie_free(t);
    bitnet__gmatch_free(gm);
    bitnet__grammar_free(g);
    for (int32_t i = 0; i < nv; i++)
        free(pieces[i]);
    free(pieces);
    free(len);
    free(allowed);
    return 0;
}

int main(int argc, char **argv)
{
    const char *vocab = argc > 1 ? argv[1] : NULL;
    char path[4096];
    if (!vocab) {
        const char *sd = getenv("BITNET_SHARED_DATA");
        if (!sd) {
            printf("no vocabulary given and BITNET_SHARED_DATA unset: skipped\n");
            return 77;
        }
        snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-llama-bpe.gguf", sd);
        vocab = path;
    }
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.flags = BITNET_MODEL_VOCAB_ONLY;
    bitnet_model *m;
    if (bitnet_model_load_file(&m, vocab, &mp) != BITNET_OK) {
        fprintf(stderr, "vocabulary: %s\n", bitnet_last_error());
        return 1;
    }
    const int32_t nv = bitnet_model_n_vocab(m);
    float *logits = malloc((size_t)nv * sizeof(*logits));
    if (!logits)
        return 1;
    printf("vocabulary: %s (%d tokens), %d steps\n", vocab, (int)nv, STEPS);
    static char gbuf[1 << 16];
    {
        size_t n;
        if (bitnet_json_schema_to_grammar("{}", gbuf, sizeof(gbuf), &n) != BITNET_OK ||
            walk_doc(m, gbuf) != 0) {
            fprintf(stderr, "document walk failed: %s\n", bitnet_last_error());
            return 1;
        }
    }
    for (size_t gi = 0; gi < sizeof(grammars) / sizeof(grammars[0]); gi++) {
        size_t n;
        if (bitnet_json_schema_to_grammar(grammars[gi][1], gbuf, sizeof(gbuf),
                                          &n) != BITNET_OK) {
            fprintf(stderr, "schema: %s\n", bitnet_last_error());
            return 1;
        }
        bitnet_sampler_params sp;
        bitnet_sampler_params_init(&sp);
        sp.temperature = 1.0f;
        sp.seed = 7;
        bitnet_sampler *plain, *con;
        double t0 = bitnet__now();
        sp.grammar = gbuf;
        if (bitnet_sampler_create(&con, m, &sp) != BITNET_OK) {
            fprintf(stderr, "sampler: %s\n", bitnet_last_error());
            return 1;
        }
        double t_create = (bitnet__now() - t0) * 1e3;
        sp.grammar = NULL;
        if (bitnet_sampler_create(&plain, m, &sp) != BITNET_OK)
            return 1;
        double tc[STEPS], tp[STEPS];
        double worst = 0.0, cold = 0.0;
        uint32_t x = 12345;
        int steps = 0, restarts = 0;
        for (int i = 0; i < STEPS; i++) {
            fill(logits, nv, &x);
            int32_t tok, tok2;
            double a = bitnet__now();
            int rc = bitnet_sampler_sample_logits(con, logits, (size_t)nv, &tok);
            double b = bitnet__now();
            bitnet_sampler_sample_logits(plain, logits, (size_t)nv, &tok2);
            double c = bitnet__now();
            if (rc != BITNET_OK) {
                fprintf(stderr, "sample: %s\n", bitnet_last_error());
                return 1;
            }
            tc[i] = (b - a) * 1e3;
            tp[i] = (c - b) * 1e3;
            if (i == 0)
                cold = tc[i];
            if (tc[i] > worst)
                worst = tc[i];
            steps++;
            if (bitnet_sampler_accept(con, tok) != BITNET_OK) {
                fprintf(stderr, "accept: %s\n", bitnet_last_error());
                return 1;
            }
            if (bitnet_token_is_eog(m, tok)) {   /* a complete value: again */
                bitnet_sampler_reset(con);
                restarts++;
            }
        }
        double mc = median(tc, steps), mpl = median(tp, steps);
        printf("\n%s: sampler create %.1f ms (trie of pieces, grammar)\n",
               grammars[gi][0], t_create);
        printf("  sample with grammar    median %7.3f ms  (first step %.3f, "
               "worst %.3f)\n", mc, cold, worst);
        printf("  sample without grammar median %7.3f ms\n", mpl);
        printf("  grammar mask cost      median %7.3f ms per step "
               "(%d values completed)\n", mc - mpl, restarts);
        bitnet_sampler_free(plain);
        bitnet_sampler_free(con);
    }
    if (argc > 2) {
        int threads = argc > 3 ? atoi(argv[3]) : 2;
        double d = decode_step_ms(argv[2], threads);
        if (d > 0)
            printf("\ndecode step (%s, %d threads): median %.2f ms\n", argv[2],
                   threads, d);
    }
    free(logits);
    bitnet_model_free(m);
    return 0;
}
