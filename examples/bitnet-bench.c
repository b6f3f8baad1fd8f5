/*
 * bitnet-bench: prompt-processing and generation speed, like llama-bench.
 *
 *   bitnet-bench -m MODEL [-p 128] [-n 64] [-t 1,2] [-r 3] [--json]
 *                [--head auto|f16|int8|q8_0|q6_k] [--int8-head]
 *
 * pp<P>: one eval call of P tokens on an empty context (P / seconds).
 * tg<N>: N evals of one token each on an empty context (N / seconds).
 * Each test runs once as a warm-up, then -r times; the median is reported.
 * -p, -n and -t take comma-separated lists; 0 skips a test.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bitnet.h"

#define MAX_LIST 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bitnet-bench -m MODEL [-p 128] [-n 64] [-t 1,2] [-r 3] [--json] [--head H]\n"
        "  -m, --model F      GGUF model file\n"
        "  -p, --n-prompt L   prompt lengths (comma list; 0 skips; default 128)\n"
        "  -n, --n-gen L      generated token counts (comma list; 0 skips; default 64)\n"
        "  -t, --threads L    thread counts (comma list; default: number of CPUs)\n"
        "  -r, --repetitions N  timed runs per test (default 3); the median is reported\n"
        "  --json             print a JSON array instead of a table\n"
        "  --head H           output head format: auto (the file's, default), f16, int8,\n"
        "                     q8_0, q6_k (converted at load when the file's differs)\n"
        "  --int8-head        same as --head int8\n");
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "bitnet-bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

static int parse_list(const char *s, int *v, int *n, int min, int max)
{
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
    double median;
    double *samples;
    int n_samples;
} result;

/* One run of a test; returns tokens/s or a negative value on error. */
static double run_once(bitnet_context *ctx, const int32_t *toks, int pp, int tg)
{
    bitnet_context_reset(ctx);
    double t0 = now();
    if (pp > 0) {
        if (bitnet_context_eval(ctx, toks, (size_t)pp, 0) != BITNET_OK)
            return -1.0;
    } else {
        for (int i = 0; i < tg; i++)
            if (bitnet_context_eval(ctx, &toks[i], 1, 0) != BITNET_OK)
                return -1.0;
    }
    double dt = now() - t0;
    return (double)(pp > 0 ? pp : tg) / (dt > 0 ? dt : 1e-9);
}

int main(int argc, char **argv)
{
    const char *model_path = NULL;
    int pps[MAX_LIST] = { 128 }, n_pp = 1;
    int tgs[MAX_LIST] = { 64 }, n_tg = 1;
    int ths[MAX_LIST] = { 0 }, n_th = 0;
    int reps = 3, json = 0, head = BITNET_HEAD_AUTO;
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
                return fail("bad value for", a);
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!has_val || parse_list(argv[++i], tgs, &n_tg, 0, 1 << 20))
                return fail("bad value for", a);
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!has_val || parse_list(argv[++i], ths, &n_th, 1, 256))
                return fail("bad value for", a);
        } else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
            int r[MAX_LIST], nr;
            if (!has_val || parse_list(argv[++i], r, &nr, 1, 1000) || nr != 1)
                return fail("bad value for", a);
            reps = r[0];
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--int8-head")) {
            head = BITNET_HEAD_INT8;
        } else if (!strcmp(a, "--head")) {
            if (!has_val) return fail("missing value for", a);
            const char *v = argv[++i];
            head = -1;
            for (int h = 0; h < 5; h++)
                if (!strcmp(v, head_names[h]))
                    head = h;
            if (head < 0)
                return fail("bad value for --head (auto, f16, int8, q8_0, q6_k)", v);
        } else {
            return fail("unknown argument (see --help)", a);
        }
    }
    if (!model_path)
        return fail("no model given (-m MODEL; see --help)", NULL);
    if (n_th == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        ths[0] = nc >= 1 && nc <= 256 ? (int)nc : 1;
        n_th = 1;
    }

    double t0 = now();
    bitnet_model *model = NULL;
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.head_type = head;
    if (bitnet_model_load_file(&model, model_path, &mp) != BITNET_OK)
        return fail("cannot load model", bitnet_last_error());
    double load_s = now() - t0;

    int32_t n_vocab = bitnet_model_n_vocab(model);
    int max_len = 1;
    for (int i = 0; i < n_pp; i++) if (pps[i] > max_len) max_len = pps[i];
    for (int i = 0; i < n_tg; i++) if (tgs[i] > max_len) max_len = tgs[i];
    int32_t *toks = malloc((size_t)max_len * sizeof(*toks));
    int n_res_max = n_th * (n_pp + n_tg);
    result *res = calloc((size_t)n_res_max, sizeof(*res));
    double *samples = malloc((size_t)n_res_max * (size_t)reps * sizeof(double));
    if (!toks || !res || !samples) {
        free(toks); free(res); free(samples);
        bitnet_model_free(model);
        return fail("out of memory", NULL);
    }
    uint64_t rng = 0x853c49e6748fea9bull;
    for (int i = 0; i < max_len; i++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        toks[i] = (int32_t)((rng >> 33) % (uint64_t)n_vocab);
    }

    int n_res = 0, status = 0;
    for (int ti = 0; ti < n_th && !status; ti++) {
        bitnet_context_params cp;
        bitnet_context_params_init(&cp);
        cp.n_threads = ths[ti];
        cp.n_ctx = max_len;
        cp.n_batch = max_len;
        bitnet_context *ctx = NULL;
        if (bitnet_context_create(&ctx, model, &cp) != BITNET_OK) {
            status = fail("cannot create context", bitnet_last_error());
            break;
        }
        int nt = ths[ti];
        for (int k = 0; k < n_pp + n_tg && !status; k++) {
            int pp = k < n_pp ? pps[k] : 0;
            int tg = k < n_pp ? 0 : tgs[k - n_pp];
            if (pp == 0 && tg == 0)
                continue;
            result *r = &res[n_res++];
            snprintf(r->test, sizeof(r->test), pp ? "pp%d" : "tg%d", pp ? pp : tg);
            r->threads = nt;
            r->samples = samples + (size_t)(n_res - 1) * (size_t)reps;
            if (run_once(ctx, toks, pp, tg) < 0) {          /* warm-up */
                status = fail("eval failed", bitnet_last_error());
                break;
            }
            for (int j = 0; j < reps; j++) {
                double v = run_once(ctx, toks, pp, tg);
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
                fprintf(stderr, "  %s threads %d: %.2f t/s\n", r->test, nt, r->median);
        }
        bitnet_context_free(ctx);
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
                       "\"int8_head\": %s}%s\n", load_s, rss_mib, head_names[head],
                       head == BITNET_HEAD_INT8 ? "true" : "false", i + 1 < n_res ? "," : "");
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
            printf("| %-8s | %7s | %12s | %s\n", "test", "threads", "t/s (median)", "samples");
            printf("| -------- | ------- | ------------ | -------\n");
            for (int i = 0; i < n_res; i++) {
                result *r = &res[i];
                printf("| %-8s | %7d | %12.2f | ", r->test, r->threads, r->median);
                for (int j = 0; j < r->n_samples; j++)
                    printf("%s%.2f", j ? " " : "", r->samples[j]);
                printf("\n");
            }
        }
    }
    free(toks);
    free(res);
    free(samples);
    bitnet_model_free(model);
    return status;
}
