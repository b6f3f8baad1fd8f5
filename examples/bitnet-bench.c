/*
 * bitnet-bench: prompt-processing and generation speed, like llama-bench.
 *
 *   bitnet-bench [-m MODEL] [-p 128] [-n 64] [-t 1,2] [-r 3] [-d 0]
 *                [--parallel 1,8] [--json] [--head auto|f16|int8|q8_0|q6_k] [--int8-head]
 *                [--no-mmap]
 *
 * pp<P>: one eval call of P tokens on an empty context (P / seconds).
 * tg<N>: N evals of one token each on an empty context (N / seconds).
 * With -d D every context already holds D tokens when a test starts (as
 * llama-bench's -d); the D tokens are evaluated once, outside the timing.
 * With --parallel S, S sequences (contexts) run together through
 * bitnet_context_eval_multi: pp evaluates the S prompts of P tokens (each
 * its own) in one call, tg makes N steps in which each sequence advances by
 * one token; tokens/s counts the tokens of all sequences.
 * Each test runs once as a warm-up, then -r times; the median is reported.
 * -p, -n, -t, -d and --parallel take comma-separated lists; 0 skips a test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bitnet.h"
#include "example_util.h"

#define MAX_LIST 16
#define MAX_SEQ 256

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bitnet-bench [-m MODEL] [-p 128] [-n 64] [-t 1,2] [-r 3] [-d 0] [--parallel 1]\n"
        "                    [--json] [--head H] [--int8-head] [--no-mmap]\n"
        "  -m, --model F      GGUF model file (default: the bundled model)\n"
        "  -p, --n-prompt L   prompt lengths (comma list; 0 skips; default 128)\n"
        "  -n, --n-gen L      generated token counts (comma list; 0 skips; default 64)\n"
        "  -t, --threads L    thread counts (comma list; 0 = all CPUs; default 0)\n"
        "  -r, --repetitions N  timed runs per test (default 3); the median is reported\n"
        "  -d, --n-depth L    tokens already in the cache when a test starts (comma list;\n"
        "                     default 0)\n"
        "  --parallel L       sequences evaluated together (comma list; default 1)\n"
        "  --json             print a JSON array instead of a table\n"
        "  --head H           output head format: auto (the file's, default), f16, int8,\n"
        "                     q8_0, q6_k (converted at load when the file's differs)\n"
        "  --int8-head        same as --head int8\n"
        "  --no-mmap          read the file into memory (BITNET_MODEL_NO_MMAP) instead of\n"
        "                     mapping it\n");
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "bitnet-bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

static int bad_value(const char *opt, const char *v, const char *range)
{
    return ex_fail("bitnet-bench", "invalid value '%s' for %s (%s)", v, opt, range);
}

static int parse_list(const char *s, int *v, int *n, int min, int max)
{
    if (!s)
        return -1;
    *n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < min || x > max || *n == MAX_LIST)
            return -1;
        v[(*n)++] = (int)x;
        if (*end == '\0')
            return 0;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct result {
    char test[32];
    int threads;
    int parallel;
    int depth;
    double median;
    double *samples;
    int n_samples;
} result;

/* One run of a test on n_seq contexts holding `depth` tokens each;
 * returns tokens/s (all sequences) or a negative value on error. */
static double run_once(bitnet_context **ctx, int n_seq, const int32_t *toks, int stride,
                       int depth, int pp, int tg)
{
    const int32_t *tp[MAX_SEQ];
    size_t nt[MAX_SEQ];
    for (int i = 0; i < n_seq; i++)
        if (bitnet_context_rewind(ctx[i], depth) != BITNET_OK)
            return -1.0;
    double t0 = ex_now();
    if (pp > 0) {
        for (int i = 0; i < n_seq; i++) {
            tp[i] = toks + (size_t)i * (size_t)stride;
            nt[i] = (size_t)pp;
        }
        if (bitnet_context_eval_multi(ctx, tp, nt, (size_t)n_seq, 0) != BITNET_OK)
            return -1.0;
    } else {
        for (int k = 0; k < tg; k++) {
            for (int i = 0; i < n_seq; i++) {
                tp[i] = toks + (size_t)i * (size_t)stride + k;
                nt[i] = 1;
            }
            if (bitnet_context_eval_multi(ctx, tp, nt, (size_t)n_seq, 0) != BITNET_OK)
                return -1.0;
        }
    }
    double dt = ex_now() - t0;
    return (double)n_seq * (double)(pp > 0 ? pp : tg) / (dt > 0 ? dt : 1e-9);
}

/* Contexts for one (threads, parallel, depth) group: the first with all
 * the threads (its pool runs every step), the others with one; each holds
 * `depth` tokens of its own (copied from the first where they agree). */
static int make_contexts(bitnet_model *model, bitnet_context **ctx, int n_seq, int threads,
                         int depth, int max_len, const int32_t *dtoks)
{
    for (int i = 0; i < n_seq; i++) {
        bitnet_context_params cp;
        bitnet_context_params_init(&cp);
        cp.n_threads = i == 0 ? threads : 1;
        cp.n_ctx = depth + max_len;
        cp.n_batch = max_len;
        if (bitnet_context_create(&ctx[i], model, &cp) != BITNET_OK)
            return fail("cannot create context", bitnet_last_error());
    }
    if (depth > 0) {
        /* one depth prompt, evaluated once on the threaded context, then
         * forked: the tests measure the steps, not this */
        if (bitnet_context_eval(ctx[0], dtoks, (size_t)depth, 0) != BITNET_OK)
            return fail("eval failed", bitnet_last_error());
        for (int i = 1; i < n_seq; i++)
            if (bitnet_context_copy(ctx[i], ctx[0]) != BITNET_OK)
                return fail("copy failed", bitnet_last_error());
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL;
    int pps[MAX_LIST] = { 128 }, n_pp = 1;
    int tgs[MAX_LIST] = { 64 }, n_tg = 1;
    int ths[MAX_LIST] = { 0 }, n_th = 0;
    int pars[MAX_LIST] = { 1 }, n_par = 1;
    int deps[MAX_LIST] = { 0 }, n_dep = 1;
    int reps = 3, json = 0, head = BITNET_HEAD_AUTO, no_mmap = 0;
    static const char *const head_names[] = { "auto", "f16", "int8", "q8_0", "q6_k" };

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!has_val) return fail("missing value for", a);
            model_path = argv[++i];
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!has_val || parse_list(argv[++i], pps, &n_pp, 0, 1 << 20))
                return bad_value(a, has_val ? argv[i] : "", "up to 16 integers from 0 to 1048576");
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!has_val || parse_list(argv[++i], tgs, &n_tg, 0, 1 << 20))
                return bad_value(a, has_val ? argv[i] : "", "up to 16 integers from 0 to 1048576");
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!has_val || parse_list(argv[++i], ths, &n_th, 0, 256))
                return bad_value(a, has_val ? argv[i] : "", "up to 16 integers from 0 to 256; 0 = all CPUs");
            for (int k = 0; k < n_th; k++)
                ths[k] = ex_threads(ths[k]);
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            int r[MAX_LIST], nr;
            if (!has_val || parse_list(argv[++i], r, &nr, 1, 1000) || nr != 1)
                return bad_value(a, has_val ? argv[i] : "", "an integer from 1 to 1000");
            reps = r[0];
        } else if (!strcmp(a, "-d") || !strcmp(a, "--n-depth")) {
            if (!has_val || parse_list(argv[++i], deps, &n_dep, 0, 1 << 20))
                return bad_value(a, has_val ? argv[i] : "", "up to 16 integers from 0 to 1048576");
        } else if (!strcmp(a, "--parallel")) {
            if (!has_val || parse_list(argv[++i], pars, &n_par, 1, MAX_SEQ))
                return bad_value(a, has_val ? argv[i] : "", "up to 16 integers from 1 to 256");
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--int8-head")) {
            head = BITNET_HEAD_INT8;
        } else if (!strcmp(a, "--no-mmap")) {
            no_mmap = 1;
        } else if (!strcmp(a, "--head")) {
            if (!has_val) return fail("missing value for", a);
            const char *v = argv[++i];
            head = -1;
            for (int h = 0; h < 5; h++)
                if (!strcmp(v, head_names[h]))
                    head = h;
            if (head < 0)
                return bad_value(a, v, "auto, f16, int8, q8_0 or q6_k");
        } else {
            return fail("unknown argument (see --help)", a);
        }
    }
    if (!model_path)
        model_path = ex_default_model();
    if (n_th == 0) {
        ths[0] = ex_threads(0);
        n_th = 1;
    }

    double t0 = ex_now();
    bitnet_model *model = NULL;
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.head_type = head;
    if (no_mmap)
        mp.flags |= BITNET_MODEL_NO_MMAP;
    if (bitnet_model_load_file(&model, model_path, &mp) != BITNET_OK)
        return ex_fail("bitnet-bench", "cannot load '%s': %s", model_path, bitnet_last_error());
    double load_s = ex_now() - t0;

    int32_t n_vocab = bitnet_model_n_vocab(model);
    int max_len = 1, max_par = 1, max_dep = 0;
    for (int i = 0; i < n_pp; i++) if (pps[i] > max_len) max_len = pps[i];
    for (int i = 0; i < n_tg; i++) if (tgs[i] > max_len) max_len = tgs[i];
    for (int i = 0; i < n_par; i++) if (pars[i] > max_par) max_par = pars[i];
    for (int i = 0; i < n_dep; i++) if (deps[i] > max_dep) max_dep = deps[i];
    /* max_par rows of max_len tokens (one prompt per sequence), then the
     * depth prompt */
    size_t n_toks = (size_t)max_par * (size_t)max_len + (size_t)max_dep;
    int32_t *toks = malloc(n_toks * sizeof(*toks));
    bitnet_context **ctx = calloc((size_t)max_par, sizeof(*ctx));
    int n_res_max = n_th * n_par * n_dep * (n_pp + n_tg);
    result *res = calloc((size_t)n_res_max, sizeof(*res));
    double *samples = malloc((size_t)n_res_max * (size_t)reps * sizeof(double));
    if (!toks || !ctx || !res || !samples) {
        free(toks); free(ctx); free(res); free(samples);
        bitnet_model_free(model);
        return fail("out of memory", NULL);
    }
    uint64_t rng = 0x853c49e6748fea9bull;
    for (size_t i = 0; i < n_toks; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((rng >> 33) % (uint64_t)n_vocab);
    }

    int n_res = 0, status = 0;
    for (int g = 0; g < n_th * n_par * n_dep && !status; g++) {
        int nt = ths[g / (n_par * n_dep)], np = pars[g / n_dep % n_par], depth = deps[g % n_dep];
        status = make_contexts(model, ctx, np, nt, depth, max_len,
                               toks + (size_t)max_par * (size_t)max_len);
        for (int k = 0; k < n_pp + n_tg && !status; k++) {
            int pp = k < n_pp ? pps[k] : 0;
            int tg = k < n_pp ? 0 : tgs[k - n_pp];
            if (pp == 0 && tg == 0)
                continue;
            result *r = &res[n_res++];
            snprintf(r->test, sizeof(r->test), pp ? "pp%d" : "tg%d", pp ? pp : tg);
            r->threads = nt;
            r->parallel = np;
            r->depth = depth;
            r->samples = samples + (size_t)(n_res - 1) * (size_t)reps;
            if (run_once(ctx, np, toks, max_len, depth, pp, tg) < 0) {          /* warm-up */
                status = fail("eval failed", bitnet_last_error());
                break;
            }
            for (int j = 0; j < reps; j++) {
                double v = run_once(ctx, np, toks, max_len, depth, pp, tg);
                if (v < 0) {
                    status = fail("eval failed", bitnet_last_error());
                    break;
                }
                r->samples[r->n_samples++] = v;
            }
            double sorted[1000];
            memcpy(sorted, r->samples, (size_t)r->n_samples * sizeof(double));
            qsort(sorted, (size_t)r->n_samples, sizeof(double), cmp_double);
            int h = r->n_samples / 2;
            r->median = r->n_samples % 2 ? sorted[h] : 0.5 * (sorted[h - 1] + sorted[h]);
            if (!json)
                fprintf(stderr, "  %s threads %d parallel %d depth %d: %.2f t/s\n",
                        r->test, nt, np, depth, r->median);
        }
        for (int i = 0; i < np; i++) {
            bitnet_context_free(ctx[i]);
            ctx[i] = NULL;
        }
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double rss_mib = (double)ru.ru_maxrss / 1024.0;     /* Linux: KiB */

    if (!status) {
        if (json) {
            printf("[\n");
            for (int i = 0; i < n_res; i++) {
                result *r = &res[i];
                printf("  {\"test\": \"%s\", \"threads\": %d, \"tokens_per_s\": %.3f, \"samples\": [",
                       r->test, r->threads, r->median);
                for (int j = 0; j < r->n_samples; j++)
                    printf("%s%.3f", j ? ", " : "", r->samples[j]);
                printf("], \"load_s\": %.3f, \"peak_rss_mib\": %.1f, \"head\": \"%s\", "
                       "\"int8_head\": %s, \"parallel\": %d, \"depth\": %d}%s\n",
                       load_s, rss_mib, head_names[head],
                       head == BITNET_HEAD_INT8 ? "true" : "false", r->parallel, r->depth,
                       i + 1 < n_res ? "," : "");
            }
            printf("]\n");
        } else {
            printf("model: %s (%s, %d layers, n_embd %d, n_vocab %d)%s%s%s\n", model_path,
                   bitnet_model_arch(model), (int)bitnet_model_n_layer(model),
                   (int)bitnet_model_n_embd(model), (int)n_vocab,
                   head == BITNET_HEAD_AUTO ? "" : ", ",
                   head == BITNET_HEAD_AUTO ? "" : head_names[head],
                   head == BITNET_HEAD_AUTO ? "" : " head");
            printf("load time: %.3f s, peak RSS: %.1f MiB\n\n", load_s, rss_mib);
            printf("| %-8s | %7s | %8s | %6s | %12s | %s\n", "test", "threads", "parallel",
                   "depth", "t/s (median)", "samples");
            printf("| -------- | ------- | -------- | ------ | ------------ | -------\n");
            for (int i = 0; i < n_res; i++) {
                result *r = &res[i];
                printf("| %-8s | %7d | %8d | %6d | %12.2f | ", r->test, r->threads, r->parallel,
                       r->depth, r->median);
                for (int j = 0; j < r->n_samples; j++)
                    printf("%s%.2f", j ? " " : "", r->samples[j]);
                printf("\n");
            }
        }
    }
    free(toks);
    free(ctx);
    free(res);
    free(samples);
    bitnet_model_free(model);
    return status;
}
