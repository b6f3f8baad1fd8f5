/*
 * The bundled model, models/tinystories-bitnet.gguf, against the references
 * written by models/train.py from the trained PyTorch model:
 *
 *  - metadata: architecture, shapes and special tokens as exported;
 *  - tokenizer: libbitnet's tokenisation of fixed texts equals the Python
 *    tokenizer's ids (models/tinystories-bitnet.ref.tok.txt);
 *  - logits: libbitnet's logits of the reference sequences agree with the
 *    fake-quantised PyTorch forward pass (tolerances: models/README.md);
 *  - perplexity (only when BITNET_SHARED_DATA holds the TinyStories text):
 *    the held-out text tokenises to the same ids as in Python, and the
 *    perplexity over a fixed slice of it is within 1 % of PyTorch's.
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

#include "bitnet.h"
#include "test_util.h"

#ifndef MODEL_DIR
# error "MODEL_DIR must be defined by the build"
#endif
#define BASE MODEL_DIR "/tinystories-bitnet"

/* Tolerances against the PyTorch reference; see models/README.md. */
#define MIN_COSINE   0.999   /* per position                              */
#define MAX_ABS      0.5     /* any logit                                 */
#define MAX_TOP1_BAD 4       /* top-1 disagreements allowed in all rows,  */
#define TOP1_MARGIN  0.15    /* and only where the reference's top-1 lead
                                over its top-2 is below this              */
#define PPL_REL      0.01    /* |ppl - ppl_ref| / ppl_ref                 */

/* ---------------------------------------------------------------------- */
/* small parsing helpers                                                  */

/* Parse whitespace-separated integers from s into out (at most cap). */
static size_t parse_ids(const char *s, int32_t *out, size_t cap)
{
    size_t n = 0;
    char *end;
    for (;;) {
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        assert_true(n < cap);
        out[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

/* Value of "key value" line in the ppl reference text, or NULL. */
static const char *ref_value(const char *text, const char *key)
{
    size_t kl = strlen(key);
    const char *p = text;
    while (p && *p) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return p + kl + 1;
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return NULL;
}

static double ref_num(const char *text, const char *key)
{
    const char *v = ref_value(text, key);
    if (!v)
        fail_msg("key %s missing from the perplexity reference", key);
    return strtod(v, NULL);
}

static bitnet_model *load_model(void)
{
    bitnet_model *m = NULL;
    int rc = bitnet_model_load_file(&m, BASE ".gguf", NULL);
    if (rc != BITNET_OK)
        fail_msg("cannot load %s: %s", BASE ".gguf", bitnet_last_error());
    return m;
}

static bitnet_context *make_ctx(bitnet_model *m, int32_t n_ctx, int32_t n_threads)
{
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    bitnet_context *c = NULL;
    int rc = bitnet_context_create(&c, m, &cp);
    if (rc != BITNET_OK)
        fail_msg("context: %s", bitnet_last_error());
    return c;
}

/* ---------------------------------------------------------------------- */

static void test_metadata(void **state)
{
    (void)state;
    size_t len = 0;
    char *file = bt_read_file(BASE ".gguf", &len);
    assert_non_null(file);
    assert_true(len < 8u * 1024 * 1024);
    free(file);

    bitnet_model *m = load_model();
    assert_string_equal(bitnet_model_arch(m), "bitnet-b1.58");
    assert_int_equal(bitnet_model_n_vocab(m), 2048);
    assert_int_equal(bitnet_model_n_embd(m), 128);
    assert_int_equal(bitnet_model_n_layer(m), 6);
    assert_int_equal(bitnet_model_n_ctx_train(m), 256);
    assert_int_equal(bitnet_token_bos(m), 2045);
    assert_int_equal(bitnet_token_eos(m), 2046);
    assert_int_equal(bitnet_token_eot(m), 2047);
    assert_true(bitnet_token_is_eog(m, 2046));
    assert_true(bitnet_token_is_eog(m, 2047));
    assert_false(bitnet_token_is_eog(m, 2045));
    char buf[64];
    size_t n = 0;
    assert_int_equal(bitnet_model_meta(m, "tokenizer.ggml.pre", buf, sizeof buf, &n), BITNET_OK);
    assert_string_equal(buf, "llama-bpe");
    assert_int_equal(bitnet_model_meta(m, "general.license", buf, sizeof buf, &n), BITNET_OK);
    assert_string_equal(buf, "CDLA-Sharing-1.0");
    bitnet_model_free(m);
}

/* Undo the escaping of a "..." line of the tokenizer reference into UTF-8. */
static size_t unescape(const char *s, char *out)
{
    size_t n = 0;
    assert_true(*s == '"');
    s++;
    while (*s && *s != '"') {
        if (*s != '\\') {
            out[n++] = *s++;
            continue;
        }
        s++;
        char c = *s++;
        if (c == 'n')
            out[n++] = '\n';
        else if (c == 't')
            out[n++] = '\t';
        else if (c == '"' || c == '\\')
            out[n++] = c;
        else if (c == 'u') {
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                char h = *s++;
                cp = cp * 16 + (unsigned)(h <= '9' ? h - '0' : (h | 32) - 'a' + 10);
            }
            if (cp < 0x80) {
                out[n++] = (char)cp;
            } else if (cp < 0x800) {
                out[n++] = (char)(0xc0 | (cp >> 6));
                out[n++] = (char)(0x80 | (cp & 0x3f));
            } else {
                out[n++] = (char)(0xe0 | (cp >> 12));
                out[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                out[n++] = (char)(0x80 | (cp & 0x3f));
            }
        } else {
            fail_msg("bad escape \\%c", c);
        }
    }
    assert_true(*s == '"');
    return n;
}

static void test_tokenizer(void **state)
{
    (void)state;
    size_t len = 0;
    char *ref = bt_read_file(BASE ".ref.tok.txt", &len);
    assert_non_null(ref);
    bitnet_model *m = load_model();
    int checked = 0;
    char *line = ref;
    char *text = malloc(len + 1);
    int32_t *want = malloc(sizeof(int32_t) * (len + 1));
    int32_t *got = malloc(sizeof(int32_t) * (len + 2));
    assert_non_null(text);
    assert_non_null(want);
    assert_non_null(got);
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        if (*line == '#') {
            line = next;
            continue;
        }
        size_t tl = unescape(line, text);
        assert_non_null(next);
        line = next;
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t nw = parse_ids(line, want, len + 1);
        size_t ng = 0;
        assert_int_equal(bitnet_tokenize(m, text, tl, 0, got, len + 2, &ng), BITNET_OK);
        assert_int_equal(ng, nw);
        assert_memory_equal(got, want, nw * sizeof(int32_t));
        /* with BOS */
        assert_int_equal(bitnet_tokenize(m, text, tl, BITNET_TOKENIZE_ADD_BOS,
                                         got, len + 2, &ng), BITNET_OK);
        assert_int_equal(ng, nw + 1);
        assert_int_equal(got[0], bitnet_token_bos(m));
        assert_memory_equal(got + 1, want, nw * sizeof(int32_t));
        checked++;
        line = next;
    }
    assert_true(checked >= 5);
    free(text);
    free(want);
    free(got);
    free(ref);
    bitnet_model_free(m);
}

/* Compare one row of logits; returns the cosine, updates *max_abs. */
static double compare_row(const float *got, const float *ref, int n, double *max_abs,
                          int *top1_bad, double *worst_margin)
{
    double dot = 0, ng = 0, nr = 0;
    int ag = 0, ar = 0, ar2 = -1;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d > *max_abs)
            *max_abs = d;
        dot += (double)got[i] * ref[i];
        ng += (double)got[i] * got[i];
        nr += (double)ref[i] * ref[i];
        if (got[i] > got[ag])
            ag = i;
        if (ref[i] > ref[ar])
            ar = i;
    }
    for (int i = 0; i < n; i++)
        if (i != ar && (ar2 < 0 || ref[i] > ref[ar2]))
            ar2 = i;
    if (ag != ar) {
        double margin = (double)ref[ar] - ref[ar2];
        (*top1_bad)++;
        if (margin > *worst_margin)
            *worst_margin = margin;
    }
    return dot / sqrt(ng * nr);
}

static void check_logits(int32_t n_threads, int split)
{
    size_t tl = 0, ll = 0;
    char *toks = bt_read_file(BASE ".ref.tokens.txt", &tl);
    char *lg = bt_read_file(BASE ".ref.logits.f32", &ll);
    assert_non_null(toks);
    assert_non_null(lg);
    bitnet_model *m = load_model();
    const int nv = bitnet_model_n_vocab(m);
    bitnet_context *c = make_ctx(m, 0, n_threads);
    int32_t ids[512];
    size_t rows_done = 0;
    double max_abs = 0, min_cos = 1, worst_margin = 0;
    int top1_bad = 0;
    char *line = toks;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        size_t n = parse_ids(line, ids, 512);
        assert_true(n > 1);
        assert_true((rows_done + n) * (size_t)nv * 4 <= ll);
        bitnet_context_reset(c);
        /* split: evaluate in two calls (numerics must not change) */
        size_t first = split && n >= 3 ? n / 3 : n;
        for (size_t s = 0; s < n; s += first) {
            size_t cnt = n - s < first ? n - s : first;
            int rc = bitnet_context_eval(c, ids + s, cnt, BITNET_EVAL_ALL_LOGITS);
            if (rc != BITNET_OK)
                fail_msg("eval: %s", bitnet_last_error());
            for (size_t i = 0; i < cnt; i++) {
                const float *got = NULL;
                assert_int_equal(bitnet_context_logits(c, (int32_t)i, &got), BITNET_OK);
                float *ref = (float *)lg + (rows_done + s + i) * (size_t)nv;
                double cs = compare_row(got, ref, nv, &max_abs, &top1_bad, &worst_margin);
                if (cs < min_cos)
                    min_cos = cs;
            }
        }
        rows_done += n;
        line = next;
    }
    assert_int_equal(rows_done * (size_t)nv * 4, ll);
    printf("# logits vs PyTorch (%zu positions, %d thread(s)%s): min cosine %.6f, "
           "max abs %.4f, top-1 disagreements %d (largest reference margin %.4f)\n",
           rows_done, n_threads, split ? ", split eval" : "", min_cos, max_abs,
           top1_bad, worst_margin);
    assert_true(min_cos >= MIN_COSINE);
    assert_true(max_abs <= MAX_ABS);
    assert_true(top1_bad <= MAX_TOP1_BAD);
    assert_true(worst_margin < TOP1_MARGIN);
    bitnet_context_free(c);
    bitnet_model_free(m);
    free(toks);
    free(lg);
}

static void test_logits(void **state)
{
    (void)state;
    check_logits(1, 0);
}

static void test_logits_threads_split(void **state)
{
    (void)state;
    check_logits(2, 1);
}

static void test_perplexity(void **state)
{
    (void)state;
    char path[4096];
    size_t flen = 0;
    char *file = NULL;
    if (bt_shared_path(path, sizeof path, "text/tinystories-subset-lowercase.txt"))
        file = bt_read_file(path, &flen);
    if (!file)
        BT_SKIP("BITNET_SHARED_DATA/text/tinystories-subset-lowercase.txt not found: "
                "held-out perplexity check skipped");
    size_t rl = 0;
    char *ref = bt_read_file(BASE ".ref.ppl.txt", &rl);
    assert_non_null(ref);
    assert_int_equal(flen, (size_t)ref_num(ref, "file_bytes"));
    size_t off = (size_t)ref_num(ref, "held_offset");
    const size_t n_held = (size_t)ref_num(ref, "held_tokens");
    const int ctx = (int)ref_num(ref, "ctx");
    const int nwin = (int)ref_num(ref, "slice_windows");
    const double ppl_ref = ref_num(ref, "slice_ppl");
    assert_true(off < flen);

    bitnet_model *m = load_model();
    size_t cap = flen - off + 16, n = 0;
    int32_t *ids = malloc(cap * sizeof(int32_t));
    assert_non_null(ids);
    assert_int_equal(bitnet_tokenize(m, file + off, flen - off, 0, ids, cap, &n), BITNET_OK);
    /* the whole held-out text must tokenise exactly as in Python */
    assert_int_equal(n, n_held);
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = (h * 1000003u + (uint64_t)ids[i]) % ((uint64_t)1 << 61);
    const char *hv = ref_value(ref, "held_ids_hash");
    assert_non_null(hv);
    assert_true(h == strtoull(hv, NULL, 10));

    /* Windows as in train.py and examples/bitnet-perplexity: BOS + the
     * held-out ids cut into windows of ctx tokens, the first token of each
     * replaced by BOS; positions ctx/2 .. ctx-2 predict the next token. */
    bitnet_context *c = make_ctx(m, ctx, 0);
    const int nv = bitnet_model_n_vocab(m);
    int32_t *win = malloc((size_t)ctx * sizeof(int32_t));
    assert_non_null(win);
    assert_true((size_t)nwin * (size_t)ctx <= n + 1);
    double nll = 0;
    long scored = 0;
    for (int w = 0; w < nwin; w++) {
        /* seq = [BOS] ids...; window w = seq[w*ctx .. w*ctx+ctx) */
        const size_t s0 = (size_t)w * (size_t)ctx;
        if (w == 0)
            memcpy(win + 1, ids, (size_t)(ctx - 1) * sizeof(int32_t));
        else
            memcpy(win, ids + s0 - 1, (size_t)ctx * sizeof(int32_t));
        win[0] = bitnet_token_bos(m);
        bitnet_context_reset(c);
        int rc = bitnet_context_eval(c, win, (size_t)ctx, BITNET_EVAL_ALL_LOGITS);
        if (rc != BITNET_OK)
            fail_msg("eval: %s", bitnet_last_error());
        for (int i = ctx / 2; i < ctx - 1; i++) {
            const float *l = NULL;
            assert_int_equal(bitnet_context_logits(c, i, &l), BITNET_OK);
            double mx = l[0], se = 0;
            for (int k = 1; k < nv; k++)
                if (l[k] > mx)
                    mx = l[k];
            for (int k = 0; k < nv; k++)
                se += exp((double)l[k] - mx);
            nll -= (double)l[win[i + 1]] - mx - log(se);
            scored++;
        }
    }
    assert_int_equal(scored, (long)ref_num(ref, "slice_scored"));
    double ppl = exp(nll / (double)scored);
    printf("# held-out perplexity over %d windows of %d (%ld scored tokens): "
           "libbitnet %.4f, PyTorch %.4f (%+.3f %%)\n",
           nwin, ctx, scored, ppl, ppl_ref, 100.0 * (ppl - ppl_ref) / ppl_ref);
    assert_true(fabs(ppl - ppl_ref) <= PPL_REL * ppl_ref);
    free(win);
    bitnet_context_free(c);
    free(ids);
    bitnet_model_free(m);
    free(ref);
    free(file);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_logits),
        cmocka_unit_test(test_logits_threads_split),
        bt_shared_test(test_perplexity),
    };
    return BT_RUN(argc, argv, tests, NULL, NULL);
}
