/*
 * bitnet-logits: evaluate token ids and write the logits as raw float32.
 *
 *   bitnet-logits -m MODEL (--tokens "ID ID ..." | --tokens-file F)
 *                 [-t THREADS] [--all] [--int8-head] -o OUT.f32
 *
 * All tokens are evaluated in one eval call. The output is little-endian
 * float32, row-major [n_rows][n_vocab]: every position with --all, else the
 * last one only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "example_util.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bitnet-logits [-m MODEL] (--tokens \"ID ID ...\" | --tokens-file F)\n"
        "                     [-t THREADS] [--all] [--int8-head] -o OUT.f32\n"
        "  -m, --model F       GGUF model file (default: the bundled model)\n"
        "  --tokens \"...\"      token ids separated by spaces or commas\n"
        "  --tokens-file F     file holding the token ids\n"
        "  -t, --threads N     threads; 0 = all CPUs (0)\n"
        "  --all               write the logits of every position (default: last)\n"
        "  --int8-head         use the int8 copy of the output head\n"
        "  -o, --output F      output file: float32 little-endian [rows][n_vocab]\n");
}

static int fail(const char *what, const char *detail)
{
    fprintf(stderr, "bitnet-logits: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

/* Parse ids separated by whitespace or commas. Returns 0 on success. */
static int parse_ids(const char *s, int32_t **ids, size_t *n)
{
    size_t cap = 64, cnt = 0;
    int32_t *v = malloc(cap * sizeof(*v));
    if (!v)
        return -1;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')
            p++;
        if (!*p)
            break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < INT32_MIN || x > INT32_MAX ||
            (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r' && *end != ',')) {
            free(v);
            return -1;
        }
        if (cnt == cap) {
            cap *= 2;
            int32_t *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                free(v);
                return -1;
            }
            v = nv;
        }
        v[cnt++] = (int32_t)x;
        p = end;
    }
    *ids = v;
    *n = cnt;
    return 0;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *tokens_arg = NULL, *tokens_file = NULL, *out_path = NULL;
    int threads = 0, all = 0, int8_head = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (!has_val) return fail("missing value for", a);
            model_path = argv[++i];
        } else if (!strcmp(a, "--tokens")) {
            if (!has_val) return fail("missing value for", a);
            tokens_arg = argv[++i];
        } else if (!strcmp(a, "--tokens-file")) {
            if (!has_val) return fail("missing value for", a);
            tokens_file = argv[++i];
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (!has_val) return fail("missing value for", a);
            out_path = argv[++i];
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            long t;
            if (!has_val) return fail("missing value for", a);
            if (ex_opt_long("bitnet-logits", a, argv[++i], 0, 256, &t))
                return 1;
            threads = (int)t;
        } else if (!strcmp(a, "--all")) {
            all = 1;
        } else if (!strcmp(a, "--int8-head")) {
            int8_head = 1;
        } else {
            return fail("unknown argument (see --help)", a);
        }
    }
    if (!model_path)
        model_path = ex_default_model();
    if (!out_path)
        return fail("no output file given (-o OUT.f32; see --help)", NULL);
    if (!tokens_arg == !tokens_file)
        return fail("give exactly one of --tokens and --tokens-file", NULL);

    char *text = NULL;
    if (tokens_file) {
        text = ex_read_file(tokens_file, NULL);
        if (!text)
            return fail("cannot read tokens file", tokens_file);
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int bad = parse_ids(tokens_file ? text : tokens_arg, &ids, &n_ids);
    free(text);
    if (bad)
        return fail("malformed token list (expected decimal ids)", NULL);
    if (n_ids == 0) {
        free(ids);
        return fail("no tokens given", NULL);
    }

    bitnet_model *model = NULL;
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    int rc = bitnet_model_load_file(&model, model_path, &mp);
    if (rc != BITNET_OK) {
        free(ids);
        return ex_fail("bitnet-logits", "cannot load '%s': %s", model_path,
                       bitnet_last_error());
    }
    int32_t n_vocab = bitnet_model_n_vocab(model);
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_threads = threads;
    int32_t n_ctx = bitnet_model_n_ctx_train(model);
    if (n_ctx > 4096)
        n_ctx = 4096;
    if ((size_t)n_ctx < n_ids)
        n_ctx = n_ids > (size_t)INT32_MAX ? INT32_MAX : (int32_t)n_ids;
    cp.n_ctx = n_ctx;
    if (int8_head)
        cp.flags |= BITNET_CONTEXT_INT8_HEAD;
    bitnet_context *ctx = NULL;
    rc = bitnet_context_create(&ctx, model, &cp);
    if (rc != BITNET_OK) {
        bitnet_model_free(model);
        free(ids);
        return fail("cannot create context", bitnet_last_error());
    }
    rc = bitnet_context_eval(ctx, ids, n_ids, all ? BITNET_EVAL_ALL_LOGITS : 0);
    if (rc != BITNET_OK) {
        bitnet_context_free(ctx);
        bitnet_model_free(model);
        free(ids);
        return fail("eval failed", bitnet_last_error());
    }

    FILE *f = fopen(out_path, "wb");
    int ok = f != NULL;
    size_t first = all ? 0 : n_ids - 1;
    for (size_t i = first; ok && i < n_ids; i++) {
        const float *lg;
        if (bitnet_context_logits(ctx, (int32_t)i, &lg) != BITNET_OK) {
            ok = 0;
            break;
        }
        for (int32_t j = 0; ok && j < n_vocab; j++) {
            uint32_t u;
            memcpy(&u, &lg[j], 4);
            unsigned char le[4] = { (unsigned char)u, (unsigned char)(u >> 8),
                                    (unsigned char)(u >> 16), (unsigned char)(u >> 24) };
            ok = fwrite(le, 1, 4, f) == 4;
        }
    }
    if (f && fclose(f) != 0)
        ok = 0;
    bitnet_context_free(ctx);
    bitnet_model_free(model);
    free(ids);
    if (!ok)
        return fail("cannot write output", out_path);
    return 0;
}
