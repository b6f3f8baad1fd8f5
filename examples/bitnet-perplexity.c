/*
 * bitnet-perplexity: perplexity of a model on a text file.
 *
 *   bitnet-perplexity [-m MODEL] -f TEXT [-c CTX] [-t N]
 *
 * Method (the one llama-perplexity uses, so numbers are comparable): the
 * text is tokenized with BOS, cut into non-overlapping windows of CTX tokens
 * whose first token is replaced by BOS, each window is evaluated from an
 * empty context, and only the second half of each window is scored: for
 * positions j in [CTX/2, CTX-1) the negative log-likelihood of token j+1
 * under the logits of position j (log-softmax in double precision).
 * perplexity = exp(mean NLL). Tokens after the last full window are unused.
 *
 * stdout: one line per window with the running perplexity, then the final
 * line "perplexity: X.XXXX (N tokens scored)". stderr: progress bar (on a
 * terminal) and speed.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bitnet.h"
#include "example_util.h"

static const char *prog = "bitnet-perplexity";

static void usage(FILE *f)
{
    fprintf(f,
"usage: bitnet-perplexity [-m MODEL] -f TEXT [-c CTX] [-t N] [--head H]\n"
"\n"
"Perplexity over non-overlapping windows of CTX tokens, scoring the second\n"
"half of each window (as llama-perplexity does).\n"
"\n"
"  -m, --model FILE     GGUF model file (default: the bundled model)\n"
"  -f, --file FILE      text file (UTF-8)\n"
"  -c, --ctx-size N     window length in tokens (default 512, or the model's\n"
"                       training context when smaller); at least 8\n"
"  -t, --threads N      threads; 0 = all CPUs (0)\n"
"  --head H             output head: auto (the file's, default), f16, int8,\n"
"                       q8_0, q6_k (converted at load when the file's differs)\n"
"  -h, --help           show this help\n");
}

/* -log softmax(logits)[tok], in double. */
static double nll(const float *logits, int32_t n_vocab, int32_t tok)
{
    double mx = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > mx)
            mx = logits[i];
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        sum += exp((double)logits[i] - mx);
    return -(((double)logits[tok] - mx) - log(sum));
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *text_path = NULL;
    long n_ctx = 0, n_threads = 0;
    int head = BITNET_HEAD_AUTO;
    static const char *const head_names[] = { "auto", "f16", "int8", "q8_0", "q6_k" };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(s) (strcmp(a, (s)) == 0)
#define NEED_ARG() do { if (!v) return ex_fail(prog, "option %s needs a value (see --help)", a); i++; } while (0)
        if (IS("-h") || IS("--help")) {
            usage(stdout);
            return 0;
        } else if (IS("-m") || IS("--model")) {
            NEED_ARG(); model_path = v;
        } else if (IS("-f") || IS("--file")) {
            NEED_ARG(); text_path = v;
        } else if (IS("-c") || IS("--ctx-size")) {
            NEED_ARG();
            if (ex_opt_long(prog, a, v, 8, 1L << 24, &n_ctx))
                return 1;
        } else if (IS("-t") || IS("--threads")) {
            NEED_ARG();
            if (ex_opt_long(prog, a, v, 0, 256, &n_threads))
                return 1;
        } else if (IS("--head")) {
            NEED_ARG();
            head = -1;
            for (int h = 0; h < 5; h++)
                if (strcmp(v, head_names[h]) == 0)
                    head = h;
            if (head < 0)
                return ex_fail(prog, "invalid value '%s' for %s (auto, f16, int8, q8_0, q6_k)", v, a);
        } else {
            return ex_fail(prog, "unknown option '%s' (see --help)", a);
        }
#undef IS
#undef NEED_ARG
    }
    if (!model_path)
        model_path = ex_default_model();
    if (!text_path)
        return ex_fail(prog, "no text: pass -f TEXT (see --help)");

    size_t text_len = 0;
    char *text = ex_read_file(text_path, &text_len);
    if (!text)
        return ex_fail(prog, "cannot read '%s': %s", text_path, strerror(errno));

    int status = 1;
    bitnet_model *model = NULL;
    bitnet_context *ctx = NULL;
    int32_t *toks = NULL;
    int tty = isatty(2);

    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    mp.head_type = head;
    if (bitnet_model_load_file(&model, model_path, &mp) != BITNET_OK) {
        ex_fail(prog, "cannot load '%s': %s", model_path, bitnet_last_error());
        goto out;
    }
    ex_warn_ctx(prog, n_ctx, bitnet_model_n_ctx_train(model));
    if (n_ctx == 0) {
        n_ctx = 512;
        int32_t train = bitnet_model_n_ctx_train(model);
        if (train > 0 && train < n_ctx)
            n_ctx = train;
    }
    const int32_t n_vocab = bitnet_model_n_vocab(model);
    const int32_t bos = bitnet_token_bos(model);

    size_t n_toks = 0;
    int rc = bitnet_tokenize(model, text, text_len, BITNET_TOKENIZE_ADD_BOS,
                             NULL, 0, &n_toks);
    if (rc != BITNET_OK && rc != BITNET_E_BUFFER_TOO_SMALL) {
        ex_fail(prog, "tokenize: %s", bitnet_last_error());
        goto out;
    }
    toks = malloc((n_toks ? n_toks : 1) * sizeof(*toks));
    if (!toks) {
        ex_fail(prog, "out of memory");
        goto out;
    }
    if (bitnet_tokenize(model, text, text_len, BITNET_TOKENIZE_ADD_BOS, toks,
                        n_toks, &n_toks) != BITNET_OK) {
        ex_fail(prog, "tokenize: %s", bitnet_last_error());
        goto out;
    }
    size_t n_windows = n_toks / (size_t)n_ctx;
    if (n_windows == 0) {
        ex_fail(prog, "the text has %zu tokens, fewer than one window of %ld (use a "
                "longer text or a smaller -c)", n_toks, n_ctx);
        goto out;
    }

    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = (int32_t)n_ctx;
    cp.n_threads = (int32_t)n_threads;
    if (bitnet_context_create(&ctx, model, &cp) != BITNET_OK) {
        ex_fail(prog, "cannot create a context: %s", bitnet_last_error());
        goto out;
    }

    fprintf(stderr, "%s: %zu tokens, %zu windows of %ld, scoring %ld tokens "
            "per window\n", prog, n_toks, n_windows, n_ctx, n_ctx - 1 - n_ctx / 2);
    const size_t first = (size_t)n_ctx / 2;
    double sum_nll = 0.0, t_eval = 0.0;
    long scored = 0;
    int32_t *win = malloc((size_t)n_ctx * sizeof(*win));
    if (!win) {
        ex_fail(prog, "out of memory");
        goto out;
    }
    for (size_t w = 0; w < n_windows; w++) {
        memcpy(win, toks + w * (size_t)n_ctx, (size_t)n_ctx * sizeof(*win));
        if (bos >= 0)
            win[0] = bos;
        bitnet_context_reset(ctx);
        double t0 = ex_now();
        rc = bitnet_context_eval(ctx, win, (size_t)n_ctx, BITNET_EVAL_ALL_LOGITS);
        t_eval += ex_now() - t0;
        if (rc != BITNET_OK) {
            free(win);
            ex_fail(prog, "eval: %s", bitnet_last_error());
            goto out;
        }
        for (size_t j = first; j + 1 < (size_t)n_ctx; j++) {
            const float *lg = NULL;
            if (bitnet_context_logits(ctx, (int32_t)j, &lg) != BITNET_OK) {
                free(win);
                ex_fail(prog, "logits: %s", bitnet_last_error());
                goto out;
            }
            sum_nll += nll(lg, n_vocab, win[j + 1]);
            scored++;
        }
        double ppl = exp(sum_nll / (double)scored);
        if (tty) {
            /* clear the bar's line, so the result line does not land
             * after it on a terminal; the bar is drawn again below */
            fputs("\r\033[K", stderr);
            fflush(stderr);
        }
        printf("[%zu/%zu] running perplexity %.4f\n", w + 1, n_windows, ppl);
        fflush(stdout);
        if (tty) {
            int filled = (int)((w + 1) * 30 / n_windows);
            fprintf(stderr, "\r[%.*s%*s] %zu/%zu  ppl %.4f  %.1f tokens/s",
                    filled, "##############################", 30 - filled, "",
                    w + 1, n_windows, ppl,
                    t_eval > 0 ? (double)((w + 1) * (size_t)n_ctx) / t_eval : 0.0);
            fflush(stderr);
        }
    }
    free(win);
    if (tty)
        fputc('\n', stderr);
    fprintf(stderr, "%s: evaluated %zu tokens in %.3f s (%.2f tokens/s)\n", prog,
            n_windows * (size_t)n_ctx, t_eval,
            t_eval > 0 ? (double)(n_windows * (size_t)n_ctx) / t_eval : 0.0);
    printf("perplexity: %.4f (%ld tokens scored)\n", exp(sum_nll / (double)scored),
           scored);
    status = 0;

out:
    free(toks);
    free(text);
    bitnet_context_free(ctx);
    bitnet_model_free(model);
    return status;
}
