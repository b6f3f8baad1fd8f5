/*
 * bitnet-cli: generate text with a BitNet model, one-shot or as a chat.
 *
 *   bitnet-cli [-m MODEL] -p "Once upon a time" -n 64
 *   bitnet-cli -m MODEL -cnv --system "You are a helpful assistant"
 *
 * Flags follow llama-cli's. Generated text streams to stdout as complete
 * UTF-8 characters; diagnostics, the load progress bar (on a terminal) and
 * the timing summary go to stderr. Uses only the public API (bitnet.h).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bitnet.h"
#include "example_util.h"

#ifndef BITNET_DEFAULT_MODEL_PATH
# define BITNET_DEFAULT_MODEL_PATH "models/tinystories-bitnet.gguf"
#endif

static const char *prog = "bitnet-cli";

static void usage(FILE *f)
{
    fprintf(f,
"usage: bitnet-cli [-m MODEL] [-p PROMPT | -f FILE] [options]\n"
"\n"
"Generate text with a BitNet b1.58 model (GGUF). Without -m the bundled\n"
"default model is used: $BITNET_DEFAULT_MODEL, else\n"
"  %s\n"
"\n"
"  -m, --model FILE        GGUF model file\n"
"  -p, --prompt TEXT       prompt (in -cnv mode: the system message, unless\n"
"                          --system is given)\n"
"  -f, --file FILE         read the prompt from a file\n"
"  -n, --n-predict N       tokens to generate per answer; -1 = until an\n"
"                          end-of-generation token or a full context (128)\n"
"  -t, --threads N         threads; 0 = all CPUs (0)\n"
"  -c, --ctx-size N        context length in tokens; 0 = the model's, at\n"
"                          most 4096 (0)\n"
"  -s, --seed N            sampling seed; -1 = random, printed at the end (-1)\n"
"      --temp X            temperature; <= 0 = greedy (0.8)\n"
"      --top-k N           keep the N most likely tokens; 0 = off (40)\n"
"      --top-p X           nucleus mass in (0, 1]; 1 = off (0.95)\n"
"      --min-p X           relative probability floor in [0, 1]; 0 = off (0.05)\n"
"      --repeat-penalty X  > 0; 1 = off (1.0)\n"
"      --repeat-last-n N   penalty window in tokens (64)\n"
"  -cnv, --conversation    chat: read user turns from stdin until EOF\n"
"      --system TEXT       system message for -cnv\n"
"      --chat-template NAME  bitnet, llama3, falcon3 or chatml (default: the\n"
"                          model's template, else bitnet)\n"
"  -h, --help              show this help\n",
        BITNET_DEFAULT_MODEL_PATH);
}

static int die(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return 1;
}

static int parse_float(const char *s, float *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !isfinite(v) || fabs(v) > 1e30)
        return -1;
    *out = (float)v;
    return 0;
}

static int progress_bar(void *user, float p)
{
    int *last = user;
    int pct = (int)(p * 100.0f + 0.5f);
    if (pct == *last)
        return 0;
    *last = pct;
    int filled = pct * 30 / 100;
    fprintf(stderr, "\rloading [%.*s%*s] %3d%%", filled,
            "##############################", 30 - filled, "", pct);
    if (pct >= 100)
        fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

/* ---- generation state ------------------------------------------------- */

typedef struct gen {
    const bitnet_model *model;
    bitnet_context *ctx;
    bitnet_sampler *smp;
    bitnet_detokenizer *detok;
    int32_t *toks;          /* tokens in the context, in order */
    size_t n_toks, cap_toks;
    char *piece;            /* detokenizer output buffer */
    size_t cap_piece;
    long long seed;         /* printed with the timing when >= 0 */
    double t_prompt, t_gen; /* seconds */
    long n_prompt, n_gen;   /* tokens */
} gen;

static int push_tok(gen *g, int32_t t)
{
    if (g->n_toks == g->cap_toks) {
        size_t nc = g->cap_toks ? g->cap_toks * 2 : 256;
        int32_t *nt = realloc(g->toks, nc * sizeof(*nt));
        if (!nt)
            return -1;
        g->toks = nt;
        g->cap_toks = nc;
    }
    g->toks[g->n_toks++] = t;
    return 0;
}

/* Append text to a growing string (for the chat history). */
typedef struct strbuf {
    char *s;
    size_t n, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->n + n + 1)
            nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns)
            return -1;
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

/* Feed one token to the detokenizer and print the complete text. */
static int emit(gen *g, int32_t tok, strbuf *collect, int flush)
{
    size_t n = 0;
    int rc;
    for (;;) {
        rc = flush ? bitnet_detokenizer_flush(g->detok, g->piece, g->cap_piece, &n)
                   : bitnet_detokenizer_feed(g->detok, tok, g->piece, g->cap_piece, &n);
        if (rc != BITNET_E_BUFFER_TOO_SMALL)
            break;
        size_t nc = g->cap_piece * 2;
        char *np = realloc(g->piece, nc);
        if (!np)
            return BITNET_E_NOMEM;
        g->piece = np;
        g->cap_piece = nc;
    }
    if (rc != BITNET_OK)
        return rc;
    if (n > 0) {
        fwrite(g->piece, 1, n, stdout);
        fflush(stdout);
        if (collect && sb_add(collect, g->piece, n) != 0)
            return BITNET_E_NOMEM;
    }
    return BITNET_OK;
}

/* Evaluate toks[from..n_toks) (the part of the prompt not yet in the
 * context) and record the prompt timing. */
static int eval_prompt(gen *g, size_t from)
{
    size_t n = g->n_toks - from;
    if (n == 0)
        return BITNET_OK;
    if ((size_t)bitnet_context_pos(g->ctx) + n > (size_t)bitnet_context_n_ctx(g->ctx)) {
        fprintf(stderr, "%s: the prompt (%zu tokens) does not fit in the "
                "context (%d tokens; use -c)\n", prog, g->n_toks,
                (int)bitnet_context_n_ctx(g->ctx));
        return BITNET_E_CONTEXT_FULL;
    }
    double t0 = ex_now();
    int rc = bitnet_context_eval(g->ctx, g->toks + from, n, 0);
    g->t_prompt += ex_now() - t0;
    if (rc != BITNET_OK) {
        fprintf(stderr, "%s: eval: %s\n", prog, bitnet_last_error());
        return rc;
    }
    g->n_prompt += (long)n;
    for (size_t i = from; i < g->n_toks; i++)
        bitnet_sampler_accept(g->smp, g->toks[i]);
    return BITNET_OK;
}

/* Sample up to n_predict tokens (-1: unbounded) after the prompt has been
 * evaluated. Streams text; collects it when collect is not NULL. The last
 * sampled token is not evaluated (nothing would use its logits), so an EOG
 * token never enters the context. */
static int generate(gen *g, long n_predict, strbuf *collect)
{
    double t0 = ex_now();
    long produced = 0;
    int rc = BITNET_OK;
    while (n_predict < 0 || produced < n_predict) {
        int32_t tok;
        rc = bitnet_sampler_sample(g->smp, g->ctx, -1, &tok);
        if (rc != BITNET_OK) {
            fprintf(stderr, "\n%s: sample: %s\n", prog, bitnet_last_error());
            break;
        }
        bitnet_sampler_accept(g->smp, tok);
        produced++;
        if (bitnet_token_is_eog(g->model, tok))
            break;
        if ((rc = emit(g, tok, collect, 0)) != BITNET_OK) {
            fprintf(stderr, "\n%s: detokenize: %s\n", prog, bitnet_last_error());
            break;
        }
        if (n_predict >= 0 && produced == n_predict)
            break;
        if (bitnet_context_pos(g->ctx) + 1 > bitnet_context_n_ctx(g->ctx)) {
            fprintf(stderr, "\n%s: context full (%d tokens); stopping\n", prog,
                    (int)bitnet_context_n_ctx(g->ctx));
            break;
        }
        if (push_tok(g, tok) != 0) {
            rc = BITNET_E_NOMEM;
            break;
        }
        rc = bitnet_context_eval(g->ctx, &tok, 1, 0);
        if (rc != BITNET_OK) {
            fprintf(stderr, "\n%s: eval: %s\n", prog, bitnet_last_error());
            break;
        }
    }
    int frc = emit(g, 0, collect, 1);
    if (rc == BITNET_OK)
        rc = frc;
    g->t_gen += ex_now() - t0;
    g->n_gen += produced;
    return rc;
}

static void timing(const gen *g)
{
    if (g->seed >= 0)
        fprintf(stderr, "\nseed: %lld", g->seed);
    fprintf(stderr, "\nprompt:     %5ld tokens in %8.3f s (%8.2f tokens/s)\n",
            g->n_prompt, g->t_prompt,
            g->t_prompt > 0 ? (double)g->n_prompt / g->t_prompt : 0.0);
    fprintf(stderr, "generation: %5ld tokens in %8.3f s (%8.2f tokens/s)\n",
            g->n_gen, g->t_gen,
            g->t_gen > 0 ? (double)g->n_gen / g->t_gen : 0.0);
}

/* Tokenize into a fresh array. */
static int tokenize(const bitnet_model *m, const char *text, uint32_t flags,
                    int32_t **out, size_t *n)
{
    size_t len = strlen(text), need = 0;
    int rc = bitnet_tokenize(m, text, len, flags, NULL, 0, &need);
    if (rc != BITNET_OK && rc != BITNET_E_BUFFER_TOO_SMALL)
        return rc;
    int32_t *ids = malloc((need ? need : 1) * sizeof(*ids));
    if (!ids)
        return BITNET_E_NOMEM;
    rc = bitnet_tokenize(m, text, len, flags, ids, need, n);
    if (rc != BITNET_OK) {
        free(ids);
        return rc;
    }
    *out = ids;
    return BITNET_OK;
}

/* ---- the two modes ---------------------------------------------------- */

static int one_shot(gen *g, const char *prompt, long n_predict)
{
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = tokenize(g->model, prompt,
                      BITNET_TOKENIZE_ADD_BOS | BITNET_TOKENIZE_PARSE_SPECIAL,
                      &ids, &n);
    if (rc != BITNET_OK) {
        fprintf(stderr, "%s: tokenize: %s\n", prog, bitnet_last_error());
        return 1;
    }
    if (n == 0) {
        /* a vocabulary without BOS and an empty prompt: nothing to start
         * from */
        free(ids);
        fprintf(stderr, "%s: the prompt is empty and the model has no BOS "
                "token\n", prog);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        if (push_tok(g, ids[i]) != 0) {
            free(ids);
            return die("out of memory", "", "");
        }
    free(ids);
    if (g->n_toks > (size_t)bitnet_context_n_ctx(g->ctx)) {
        fprintf(stderr, "%s: the prompt (%zu tokens) does not fit in the "
                "context (%d tokens; use -c)\n", prog, g->n_toks,
                (int)bitnet_context_n_ctx(g->ctx));
        return 1;
    }
    fputs(prompt, stdout);
    fflush(stdout);
    if (eval_prompt(g, 0) != BITNET_OK)
        return 1;
    rc = generate(g, n_predict, NULL);
    fputc('\n', stdout);
    fflush(stdout);
    timing(g);
    return rc == BITNET_OK ? 0 : 1;
}

typedef struct chat {
    bitnet_chat_message *msgs;
    size_t n, cap;
} chat;

static int chat_add(chat *c, const char *role, const char *content)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 8;
        bitnet_chat_message *nm = realloc(c->msgs, nc * sizeof(*nm));
        if (!nm)
            return -1;
        c->msgs = nm;
        c->cap = nc;
    }
    char *dup = malloc(strlen(content) + 1);
    if (!dup)
        return -1;
    strcpy(dup, content);
    c->msgs[c->n].role = role;
    c->msgs[c->n].content = dup;
    c->n++;
    return 0;
}

static void chat_free(chat *c)
{
    for (size_t i = 0; i < c->n; i++)
        free((char *)c->msgs[i].content);
    free(c->msgs);
}

/* The conversation's tokens: template markup as control tokens, what the
 * user typed always as plain text (so typing "<|eot_id|>" cannot end a turn). */
static int chat_tokens(const bitnet_model *m, const char *tmpl, const chat *c,
                       int32_t **out, size_t *n)
{
    size_t need = 0;
    int rc = bitnet_chat_tokenize(m, tmpl, c->msgs, c->n, 1, NULL, 0, &need);
    if (rc != BITNET_E_BUFFER_TOO_SMALL && rc != BITNET_OK)
        return rc;
    int32_t *ids = malloc((need ? need : 1) * sizeof(*ids));
    if (!ids)
        return BITNET_E_NOMEM;
    rc = bitnet_chat_tokenize(m, tmpl, c->msgs, c->n, 1, ids, need, n);
    if (rc != BITNET_OK) {
        free(ids);
        return rc;
    }
    *out = ids;
    return BITNET_OK;
}

static int conversation(gen *g, const char *tmpl_name, const char *system,
                        long n_predict)
{
    /* Choose the format: the one asked for, the model's, else bitnet. */
    const char *tmpl = tmpl_name;
    {
        const bitnet_chat_message probe = { "user", "" };
        size_t need;
        int rc = bitnet_chat_render(g->model, tmpl, &probe, 1, 1, NULL, 0, &need);
        if (rc == BITNET_E_NOT_FOUND) {
            if (tmpl)
                return die("%s", bitnet_last_error(), "");
            fprintf(stderr, "%s: the model has no recognised chat template; "
                    "using the bitnet format\n", prog);
            tmpl = "bitnet";
        }
    }
    chat c = { NULL, 0, 0 };
    if (system && *system && chat_add(&c, "system", system) != 0)
        return die("out of memory", "", "");
    char *line = NULL;
    size_t line_cap = 0;
    int status = 0;
    int interactive = isatty(0);
    for (;;) {
        fputs("\n> ", stdout);
        fflush(stdout);
        ssize_t len = getline(&line, &line_cap, stdin);
        if (len < 0)
            break;                                   /* EOF: done */
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!interactive)
            printf("%s\n", line);                    /* echo piped input */
        if (len == 0)
            continue;
        if (chat_add(&c, "user", line) != 0) {
            status = die("out of memory", "", "");
            break;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        int rc = chat_tokens(g->model, tmpl, &c, &ids, &n);
        if (rc != BITNET_OK) {
            status = die("chat template: %s", bitnet_last_error(), "");
            break;
        }
        /* Keep what the context already holds; evaluate only the rest. */
        size_t keep = 0;
        while (keep < n && keep < g->n_toks && ids[keep] == g->toks[keep])
            keep++;
        if (keep == n && n > 0)
            keep--;             /* re-evaluate the last token for its logits */
        g->n_toks = keep;
        bitnet_context_rewind(g->ctx, (int32_t)keep);
        for (size_t i = keep; i < n; i++)
            if (push_tok(g, ids[i]) != 0) {
                free(ids);
                status = die("out of memory", "", "");
                goto done;
            }
        free(ids);
        if (eval_prompt(g, keep) != BITNET_OK) {
            status = 1;
            break;
        }
        strbuf reply = { NULL, 0, 0 };
        if (sb_add(&reply, "", 0) != 0) {
            status = die("out of memory", "", "");
            break;
        }
        rc = generate(g, n_predict, &reply);
        if (rc == BITNET_OK && chat_add(&c, "assistant", reply.s) != 0)
            rc = BITNET_E_NOMEM;
        free(reply.s);
        if (rc != BITNET_OK) {
            status = 1;
            break;
        }
        fputc('\n', stdout);
    }
done:
    fputc('\n', stdout);
    fflush(stdout);
    free(line);
    chat_free(&c);
    timing(g);
    return status;
}

/* ---- main --------------------------------------------------------------- */

static uint64_t random_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000007ull ^ (uint64_t)ts.tv_nsec ^
                 ((uint64_t)getpid() << 32);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x & 0xffffffffull;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL;
    const char *system = NULL, *tmpl = NULL;
    long n_predict = 128, n_threads = 0, n_ctx = 0, seed = -1;
    int cnv = 0;
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(s) (strcmp(a, (s)) == 0)
#define NEED_ARG() do { if (!v) return die("option %s needs a value (see --help)", a, ""); i++; } while (0)
#define BAD_VALUE() return die("invalid value '%s' for %s (see --help)", v, a)
        if (IS("-h") || IS("--help")) {
            usage(stdout);
            return 0;
        } else if (IS("-m") || IS("--model")) {
            NEED_ARG(); model_path = v;
        } else if (IS("-p") || IS("--prompt")) {
            NEED_ARG(); prompt = v;
        } else if (IS("-f") || IS("--file")) {
            NEED_ARG(); prompt_file = v;
        } else if (IS("-n") || IS("--n-predict")) {
            NEED_ARG(); if (ex_parse_long(v, -1, 1L << 30, &n_predict)) BAD_VALUE();
        } else if (IS("-t") || IS("--threads")) {
            NEED_ARG(); if (ex_parse_long(v, 0, 256, &n_threads)) BAD_VALUE();
        } else if (IS("-c") || IS("--ctx-size")) {
            NEED_ARG(); if (ex_parse_long(v, 0, 1L << 24, &n_ctx)) BAD_VALUE();
        } else if (IS("-s") || IS("--seed")) {
            NEED_ARG(); if (ex_parse_long(v, -1, LONG_MAX, &seed)) BAD_VALUE();
        } else if (IS("--temp")) {
            NEED_ARG(); if (parse_float(v, &sp.temperature)) BAD_VALUE();
        } else if (IS("--top-k")) {
            long k;
            NEED_ARG(); if (ex_parse_long(v, 0, 0x7fffffffL, &k)) BAD_VALUE();
            sp.top_k = (int32_t)k;
        } else if (IS("--top-p")) {
            NEED_ARG(); if (parse_float(v, &sp.top_p)) BAD_VALUE();
        } else if (IS("--min-p")) {
            NEED_ARG(); if (parse_float(v, &sp.min_p)) BAD_VALUE();
        } else if (IS("--repeat-penalty")) {
            NEED_ARG(); if (parse_float(v, &sp.repeat_penalty)) BAD_VALUE();
        } else if (IS("--repeat-last-n")) {
            long k;
            NEED_ARG(); if (ex_parse_long(v, 0, 1L << 24, &k)) BAD_VALUE();
            sp.penalty_last_n = (int32_t)k;
        } else if (IS("-cnv") || IS("--conversation")) {
            cnv = 1;
        } else if (IS("--system")) {
            NEED_ARG(); system = v;
        } else if (IS("--chat-template")) {
            NEED_ARG(); tmpl = v;
        } else {
            return die("unknown option '%s' (see --help)", a, "");
        }
#undef IS
#undef NEED_ARG
#undef BAD_VALUE
    }
    if (prompt && prompt_file)
        return die("use either -p or -f, not both", "", "");

    char *file_text = NULL;
    if (prompt_file) {
        file_text = ex_read_file(prompt_file, NULL);
        if (!file_text)
            return die("cannot read prompt file '%s': %s", prompt_file, strerror(errno));
        size_t l = strlen(file_text);
        if (l > 0 && file_text[l - 1] == '\n')
            file_text[l - 1] = '\0';        /* as llama-cli: drop one newline */
        prompt = file_text;
    }

    if (!model_path) {
        const char *env = getenv("BITNET_DEFAULT_MODEL");
        model_path = env && *env ? env : BITNET_DEFAULT_MODEL_PATH;
        if (access(model_path, R_OK) != 0) {
            free(file_text);
            return die("no model given (-m) and the default model '%s' does "
                       "not exist (set BITNET_DEFAULT_MODEL or pass -m)",
                       model_path, "");
        }
    }

    if (tmpl) {
        const bitnet_chat_message probe = { "user", "" };
        size_t need;
        if (bitnet_chat_render(NULL, tmpl, &probe, 1, 1, NULL, 0, &need) ==
            BITNET_E_NOT_FOUND) {
            free(file_text);
            return die("unknown chat template '%s' (bitnet, llama3, falcon3 "
                       "or chatml)", tmpl, "");
        }
    }
    sp.seed = seed >= 0 ? (uint64_t)seed : random_seed();

    int last_pct = -1;
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    if (isatty(2)) {
        mp.progress_fn = progress_bar;
        mp.progress_user = &last_pct;
    }
    gen g;
    memset(&g, 0, sizeof(g));
    bitnet_model *model = NULL;
    int status = 1;
    if (bitnet_model_load_file(&model, model_path, &mp) != BITNET_OK) {
        if (last_pct >= 0 && last_pct < 100)
            fputc('\n', stderr);
        die("cannot load '%s': %s", model_path, bitnet_last_error());
        goto out;
    }
    g.model = model;
    g.seed = seed < 0 && sp.temperature > 0.0f ? (long long)sp.seed : -1;

    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = (int32_t)n_ctx;
    cp.n_threads = (int32_t)n_threads;
    if (bitnet_context_create(&g.ctx, model, &cp) != BITNET_OK) {
        die("cannot create a context: %s", bitnet_last_error(), "");
        goto out;
    }
    if (bitnet_sampler_create(&g.smp, model, &sp) != BITNET_OK) {
        die("sampler: %s", bitnet_last_error(), "");
        goto out;
    }
    if (bitnet_detokenizer_create(&g.detok, model, 0) != BITNET_OK) {
        die("detokenizer: %s", bitnet_last_error(), "");
        goto out;
    }
    g.cap_piece = 256;
    g.piece = malloc(g.cap_piece);
    if (!g.piece) {
        die("out of memory", "", "");
        goto out;
    }

    if (cnv)
        status = conversation(&g, tmpl, system ? system : prompt, n_predict);
    else
        status = one_shot(&g, prompt ? prompt : "", n_predict);

out:
    free(g.piece);
    free(g.toks);
    bitnet_detokenizer_free(g.detok);
    bitnet_sampler_free(g.smp);
    bitnet_context_free(g.ctx);
    bitnet_model_free(model);
    free(file_text);
    return status;
}
