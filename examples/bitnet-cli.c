/*
 * bitnet-cli: generate text with a BitNet model: one-shot, interactive or
 * as a chat.
 *
 *   bitnet-cli [-m MODEL] -p "Once upon a time" -n 64
 *   bitnet-cli -m MODEL -cnv --system "You are a helpful assistant"
 *   bitnet-cli -m MODEL -i -r "User:" -p "User: hi\nBot:" --in-prefix " "
 *
 * Flags follow llama-cli's (and the command line bitnet.cpp's
 * run_inference.py builds). Generated text streams to stdout as complete
 * UTF-8 characters; diagnostics (the start-up line, the load progress bar
 * on a terminal, the timing summary) go to stderr. Uses only the public API
 * (bitnet.h).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bitnet.h"
#include "example_util.h"
#include "prompt_cache.h"
#include "cli.h"

const char *prog = "bitnet-cli";
int quiet;                    /* --log-disable: no notes or start-up line */

#define MAX_STOPS 8
#define MAX_BIAS 256

static void usage(FILE *f)
{
    fprintf(f,
"usage: bitnet-cli [-m MODEL] [-p PROMPT | -f FILE] [options]\n"
"\n"
"Generate text with a BitNet b1.58 model (GGUF). Without -m the bundled\n"
"model is used: $BITNET_DEFAULT_MODEL, else %s.\n"
"Without -p or -f a prompt piped to stdin is read.\n"
"\n"
"  -m, --model FILE        GGUF model file\n"
"  -p, --prompt TEXT       prompt (in -cnv mode: the system message, unless\n"
"                          --system is given)\n"
"  -f, --file FILE         read the prompt from a file ('-': stdin)\n"
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
"      --frequency-penalty X  subtract X times a token's count in the window (0)\n"
"      --presence-penalty X   subtract X from tokens seen in the window (0)\n"
"  -l, --logit-bias T(+|-)B  add B to (or subtract it from) token T's logit;\n"
"                          'T-inf' bans T; may be repeated\n"
"      --prompt-cache FILE  reuse the evaluated prompt saved in FILE (written\n"
"                          when absent or different)\n"
"      --no-mmap           read the model into memory instead of mapping it\n"
"  -i, --interactive       after generating, read a line from stdin and go on\n"
"  -r, --reverse-prompt S  in -i mode: stop generating when S appears and wait\n"
"                          for input (may be repeated)\n"
"      --in-prefix S       text added before every input line (-i)\n"
"      --in-suffix S       text added after every input line (-i)\n"
"      --grammar TEXT      constrain the output to a GBNF grammar (start rule\n"
"                          root); see docs/sampling.md\n"
"      --grammar-file F    read the GBNF grammar from a file\n"
"      --json-schema TEXT  constrain the output to JSON valid under this JSON\n"
"                          Schema ('{}': any JSON value)\n"
"      --json-schema-file F  read the JSON Schema from a file\n"
"  -cnv, --conversation    chat: read user turns from stdin until EOF; the\n"
"                          oldest turns are dropped when the context is full\n"
"      --system TEXT       system message for -cnv\n"
"      --chat-template NAME  bitnet, llama3, falcon3 or chatml (default: the\n"
"                          model's template, else bitnet)\n"
"      --log-disable       no start-up line, notes or progress bar\n"
"  -ngl, -b N              accepted and ignored (GPU layers, batch size)\n"
"      --version           print the version and exit\n"
"  -h, --help              show this help\n",
        ex_default_model());
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

/* "TOKEN+BIAS", "TOKEN-BIAS" or "TOKEN-inf" (llama-cli's --logit-bias). */
static int parse_bias(const char *s, bitnet_logit_bias *out)
{
    char *end;
    errno = 0;
    long t = strtol(s, &end, 10);
    if (end == s || errno || t < 0 || t > INT32_MAX || (*end != '+' && *end != '-'))
        return -1;
    float b;
    if (strcmp(end + 1, "inf") == 0 && *end == '-')
        b = -INFINITY;
    else if (parse_float(end + 1, &b) != 0 || end[1] == '-' || end[1] == '+')
        return -1;
    else if (*end == '-')
        b = -b;
    out->token = (int32_t)t;
    out->bias = b;
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

/* The start-up line: the model, its size and the kernels in use. */
static void startup_line(const bitnet_model *m, const char *path, long n_ctx)
{
    struct stat st;
    double mib = stat(path, &st) == 0 ? (double)st.st_size / (1024.0 * 1024.0) : 0.0;
    /* bitnet_system_info() lists "cpu features: ..." and one line per
     * kernel; the ternary matrix-vector kernel names the variant in use */
    const char *info = bitnet_system_info();
    const char *cpu = strstr(info, "cpu features:");
    const char *tg = strstr(info, "tgemv");
    int cpu_len = 0, tg_len = 0;
    if (cpu) {
        cpu += strlen("cpu features:");
        while (*cpu == ' ')
            cpu++;
        cpu_len = (int)strcspn(cpu, "\n");
    }
    if (tg) {
        tg += strlen("tgemv");
        while (*tg == ' ')
            tg++;
        tg_len = (int)strcspn(tg, "\n");
    }
    fprintf(stderr, "%s: model '%s': %s, %.1f MiB, %d layers, n_embd %d, context %ld "
            "(trained %d); libbitnet %s, kernels %.*s (cpu: %.*s)\n", prog, path,
            bitnet_model_arch(m), mib, (int)bitnet_model_n_layer(m),
            (int)bitnet_model_n_embd(m), n_ctx, (int)bitnet_model_n_ctx_train(m),
            bitnet_version_string(), tg_len, tg ? tg : "", cpu_len, cpu ? cpu : "");
}

/* ---- generation state (cli.h) ----------------------------------------- */

int push_tok(gen *g, int32_t t)
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


int sb_add(strbuf *b, const char *s, size_t n)
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
int eval_prompt(gen *g, size_t from)
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
    /* With a grammar only the answer is accepted (it must follow the
     * grammar from its start), so the prompt stays out of the history. */
    for (size_t i = from; i < g->n_toks && !g->constrained; i++)
        bitnet_sampler_accept(g->smp, g->toks[i]);
    return BITNET_OK;
}

/* Whether the text of this answer now ends a reverse prompt (looking only
 * at the part that the last piece could have completed). */
static int stopped(const gen *g, const strbuf *text, size_t before)
{
    for (int i = 0; i < g->n_stops; i++) {
        size_t l = strlen(g->stops[i]);
        size_t from = before > l ? before - l : 0;
        if (l > 0 && text->n >= l && strstr(text->s + from, g->stops[i]))
            return 1;
    }
    return 0;
}

/* Sample up to n_predict tokens (-1: unbounded) after the prompt has been
 * evaluated. Streams text; collects it when collect is not NULL (it must be
 * when g->n_stops > 0). The last sampled token is not evaluated when the
 * count is reached (nothing would use its logits; it is left in g->pending),
 * and an EOG token never enters the context. Generation also stops after a
 * reverse prompt, which is evaluated. */
int generate(gen *g, long n_predict, strbuf *collect)
{
    g->pending = -1;
    double t0 = ex_now();
    long produced = 0;
    int rc = BITNET_OK;
    if (g->constrained)   /* every answer follows the grammar from its start */
        bitnet_sampler_reset(g->smp);
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
        size_t before = collect ? collect->n : 0;
        if ((rc = emit(g, tok, collect, 0)) != BITNET_OK) {
            fprintf(stderr, "\n%s: detokenize: %s\n", prog, bitnet_last_error());
            break;
        }
        if (n_predict >= 0 && produced == n_predict) {
            g->pending = tok;
            break;
        }
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
        if (g->n_stops > 0 && collect && stopped(g, collect, before))
            break;
    }
    int frc = emit(g, 0, collect, 1);
    if (rc == BITNET_OK)
        rc = frc;
    g->t_gen += ex_now() - t0;
    g->n_gen += produced;
    return rc;
}

void timing(const gen *g)
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

/* ---- one-shot and interactive ------------------------------------------ */

/* Tokenize text and append it to the context's token list. */
static int push_text(gen *g, const char *text, uint32_t flags)
{
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenize(g->model, text, flags, &ids, &n) != BITNET_OK)
        return ex_fail(prog, "tokenize: %s", bitnet_last_error());
    for (size_t i = 0; i < n; i++)
        if (push_tok(g, ids[i]) != 0) {
            free(ids);
            return ex_fail(prog, "out of memory");
        }
    free(ids);
    return 0;
}

typedef struct run_opts {
    long n_predict;
    const char *prompt_cache;
    int interactive;
    const char *in_prefix, *in_suffix;
} run_opts;

/* -i: read lines from stdin, each added as in_prefix + line + in_suffix,
 * and generate after each, until EOF. */
static int interact(gen *g, const run_opts *o)
{
    char *line = NULL;
    size_t line_cap = 0;
    int status = 0, tty = isatty(0);
    for (;;) {
        if (o->in_prefix)
            fputs(o->in_prefix, stdout);
        fflush(stdout);
        ssize_t len = getline(&line, &line_cap, stdin);
        if (len < 0)
            break;                                   /* EOF: done */
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (!tty)
            fputs(line, stdout);                     /* echo piped input */
        fputc('\n', stdout);
        if (o->in_suffix)
            fputs(o->in_suffix, stdout);
        fflush(stdout);
        if (g->pending >= 0) {
            /* the answer's last token was shown (and recorded by the
             * sampler) but not evaluated: it enters the context first */
            int32_t t = g->pending;
            g->pending = -1;
            if (push_tok(g, t) != 0) {
                status = ex_fail(prog, "out of memory");
                break;
            }
            if (bitnet_context_eval(g->ctx, &t, 1, 0) != BITNET_OK) {
                status = ex_fail(prog, "eval: %s", bitnet_last_error());
                break;
            }
        }
        size_t from = g->n_toks;
        /* the line is plain text; the prefix and suffix may hold markup */
        if ((o->in_prefix && push_text(g, o->in_prefix, BITNET_TOKENIZE_PARSE_SPECIAL)) ||
            push_text(g, line, 0) || push_text(g, "\n", 0) ||
            (o->in_suffix && push_text(g, o->in_suffix, BITNET_TOKENIZE_PARSE_SPECIAL))) {
            status = 1;
            break;
        }
        if (g->n_toks == from)
            continue;
        if (eval_prompt(g, from) != BITNET_OK) {
            status = 1;
            break;
        }
        strbuf turn = { NULL, 0, 0 };
        int rc = sb_add(&turn, "", 0) == 0 ? generate(g, o->n_predict, &turn) : BITNET_E_NOMEM;
        free(turn.s);
        if (rc != BITNET_OK) {
            status = 1;
            break;
        }
    }
    free(line);
    return status;
}

static int one_shot(gen *g, const char *prompt, const run_opts *o)
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
            return ex_fail(prog, "out of memory");
        }
    free(ids);
    if (g->n_toks > (size_t)bitnet_context_n_ctx(g->ctx)) {
        fprintf(stderr, "%s: the prompt (%zu tokens) does not fit in the "
                "context (%d tokens; use -c)\n", prog, g->n_toks,
                (int)bitnet_context_n_ctx(g->ctx));
        return 1;
    }
    size_t keep = 0;
    if (o->prompt_cache) {
        keep = cache_restore(g->ctx, prog, quiet, o->prompt_cache, g->toks, g->n_toks);
        for (size_t i = 0; i < keep; i++)
            bitnet_sampler_accept(g->smp, g->toks[i]);
        if (keep > 0 && !quiet)
            fprintf(stderr, "%s: prompt cache: %zu of %zu prompt tokens restored\n",
                    prog, keep, g->n_toks);
    }
    fputs(prompt, stdout);
    fflush(stdout);
    if (eval_prompt(g, keep) != BITNET_OK)
        return 1;
    if (o->prompt_cache && keep + 1 < g->n_toks &&
        cache_save(g->ctx, prog, o->prompt_cache, g->toks, g->n_toks) != 0)
        return 1;
    strbuf turn = { NULL, 0, 0 };
    rc = sb_add(&turn, "", 0) == 0 ? generate(g, o->n_predict, &turn) : BITNET_E_NOMEM;
    free(turn.s);
    int status = rc == BITNET_OK ? 0 : 1;
    if (status == 0 && o->interactive)
        status = interact(g, o);
    fputc('\n', stdout);
    fflush(stdout);
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

/* The whole of stdin, NUL-terminated; NULL on a read error. */
static char *read_stdin(void)
{
    strbuf b = { NULL, 0, 0 };
    char chunk[65536];
    size_t r;
    if (sb_add(&b, "", 0) != 0)
        return NULL;
    while ((r = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (sb_add(&b, chunk, r) != 0) {
            free(b.s);
            return NULL;
        }
    if (ferror(stdin)) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *prompt = NULL, *prompt_file = NULL;
    const char *system = NULL, *tmpl = NULL;
    long n_threads = 0, n_ctx = 0, seed = -1;
    int cnv = 0, no_mmap = 0;
    const char *stops[MAX_STOPS];
    int n_stops = 0;
    bitnet_logit_bias bias[MAX_BIAS];
    size_t n_bias = 0;
    run_opts ro = { 128, NULL, 0, NULL, NULL };
    const char *grammar = NULL, *grammar_file = NULL;
    const char *schema = NULL, *schema_file = NULL;
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long k;
#define IS(s) (strcmp(a, (s)) == 0)
#define NEED_ARG() do { if (!v) return ex_fail(prog, "option %s needs a value (see --help)", a); i++; } while (0)
#define BAD_VALUE(range) return ex_fail(prog, "invalid value '%s' for %s (" range ")", v, a)
#define LONG_ARG(lo, hi, out) do { NEED_ARG(); if (ex_opt_long(prog, a, v, lo, hi, out)) return 1; } while (0)
        if (IS("-h") || IS("--help")) {
            usage(stdout);
            return 0;
        } else if (IS("--version")) {
            printf("bitnet-cli (libbitnet %s)\n", bitnet_version_string());
            return 0;
        } else if (IS("-m") || IS("--model")) {
            NEED_ARG(); model_path = v;
        } else if (IS("-p") || IS("--prompt")) {
            NEED_ARG(); prompt = v;
        } else if (IS("-f") || IS("--file")) {
            NEED_ARG(); prompt_file = v;
        } else if (IS("-n") || IS("--n-predict")) {
            LONG_ARG(-1, 1L << 30, &ro.n_predict);
        } else if (IS("-t") || IS("--threads")) {
            LONG_ARG(0, 256, &n_threads);
        } else if (IS("-c") || IS("--ctx-size")) {
            LONG_ARG(0, 1L << 24, &n_ctx);
        } else if (IS("-s") || IS("--seed")) {
            LONG_ARG(-1, LONG_MAX, &seed);
        } else if (IS("--temp") || IS("-temp") || IS("--temperature")) {
            NEED_ARG(); if (parse_float(v, &sp.temperature)) BAD_VALUE("a number");
        } else if (IS("--top-k")) {
            LONG_ARG(0, 0x7fffffffL, &k);
            sp.top_k = (int32_t)k;
        } else if (IS("--top-p")) {
            NEED_ARG(); if (parse_float(v, &sp.top_p)) BAD_VALUE("a number in (0, 1]");
        } else if (IS("--min-p")) {
            NEED_ARG(); if (parse_float(v, &sp.min_p)) BAD_VALUE("a number in [0, 1]");
        } else if (IS("--repeat-penalty")) {
            NEED_ARG(); if (parse_float(v, &sp.repeat_penalty)) BAD_VALUE("a number > 0");
        } else if (IS("--repeat-last-n")) {
            LONG_ARG(0, 1L << 24, &k);
            sp.penalty_last_n = (int32_t)k;
        } else if (IS("--frequency-penalty")) {
            NEED_ARG(); if (parse_float(v, &sp.frequency_penalty)) BAD_VALUE("a number");
        } else if (IS("--presence-penalty")) {
            NEED_ARG(); if (parse_float(v, &sp.presence_penalty)) BAD_VALUE("a number");
        } else if (IS("-l") || IS("--logit-bias")) {
            NEED_ARG();
            if (n_bias == MAX_BIAS)
                return ex_fail(prog, "too many --logit-bias options (at most %d)", MAX_BIAS);
            if (parse_bias(v, &bias[n_bias]))
                BAD_VALUE("TOKEN+BIAS, TOKEN-BIAS or TOKEN-inf");
            n_bias++;
        } else if (IS("--prompt-cache")) {
            NEED_ARG(); ro.prompt_cache = v;
        } else if (IS("--no-mmap")) {
            no_mmap = 1;
        } else if (IS("-i") || IS("--interactive")) {
            ro.interactive = 1;
        } else if (IS("-r") || IS("--reverse-prompt")) {
            NEED_ARG();
            if (n_stops == MAX_STOPS)
                return ex_fail(prog, "too many reverse prompts (at most %d)", MAX_STOPS);
            stops[n_stops++] = v;
        } else if (IS("--in-prefix")) {
            NEED_ARG(); ro.in_prefix = v;
        } else if (IS("--in-suffix")) {
            NEED_ARG(); ro.in_suffix = v;
        } else if (IS("--grammar")) {
            NEED_ARG(); grammar = v;
        } else if (IS("--grammar-file")) {
            NEED_ARG(); grammar_file = v;
        } else if (IS("--json-schema")) {
            NEED_ARG(); schema = v;
        } else if (IS("--json-schema-file")) {
            NEED_ARG(); schema_file = v;
        } else if (IS("-cnv") || IS("--conversation")) {
            cnv = 1;
        } else if (IS("--system")) {
            NEED_ARG(); system = v;
        } else if (IS("--chat-template")) {
            NEED_ARG(); tmpl = v;
        } else if (IS("--log-disable")) {
            quiet = 1;
        } else if (IS("-ngl") || IS("--gpu-layers") || IS("--n-gpu-layers") ||
                   IS("-b") || IS("--batch-size")) {
            /* bitnet.cpp's run_inference.py passes these; the whole prompt
             * is one batch here and everything runs on the CPU */
            LONG_ARG(0, INT32_MAX, &k);
            if (!quiet)
                fprintf(stderr, "%s: note: %s %s ignored (%s)\n", prog, a, v,
                        a[1] == 'b' || a[2] == 'b' ? "the prompt is evaluated in one batch"
                                                    : "no GPU offload; CPU only");
        } else {
            return ex_fail(prog, "unknown option '%s' (see --help)", a);
        }
#undef IS
#undef NEED_ARG
#undef BAD_VALUE
#undef LONG_ARG
    }
    if (prompt && prompt_file)
        return ex_fail(prog, "use either -p or -f, not both");
    if (cnv && ro.interactive)
        return ex_fail(prog, "use either -cnv or -i, not both");
    if (cnv && ro.prompt_cache)
        return ex_fail(prog, "--prompt-cache works with one-shot and -i runs, not -cnv");
    if ((grammar != NULL) + (grammar_file != NULL) + (schema != NULL) +
        (schema_file != NULL) > 1)
        return ex_fail(prog, "use only one of --grammar, --grammar-file, --json-schema "
                       "and --json-schema-file");
    /* The grammar text: given, read from a file, or made from a schema. */
    char *grammar_text = NULL;
    if (grammar_file || schema_file) {
        const char *f = grammar_file ? grammar_file : schema_file;
        grammar_text = ex_read_file(f, NULL);
        if (!grammar_text)
            return ex_fail(prog, "cannot read '%s': %s", f, strerror(errno));
        if (grammar_file)
            grammar = grammar_text;
        else
            schema = grammar_text;
    }
    if (schema) {
        size_t need = 0;
        char *text = NULL;
        int rc = bitnet_json_schema_to_grammar(schema, NULL, 0, &need);
        if (rc == BITNET_E_BUFFER_TOO_SMALL && (text = malloc(need + 1)))
            rc = bitnet_json_schema_to_grammar(schema, text, need + 1, &need);
        free(grammar_text);
        grammar_text = text;
        if (rc != BITNET_OK) {
            free(grammar_text);
            return ex_fail(prog, "--json-schema: %s", rc == BITNET_E_BUFFER_TOO_SMALL ?
                           "out of memory" : bitnet_last_error());
        }
        grammar = grammar_text;
    }
    sp.grammar = grammar;

    char *file_text = NULL;
    if (prompt_file && strcmp(prompt_file, "-") == 0) {
        file_text = read_stdin();
        if (!file_text)
            return ex_fail(prog, "cannot read the prompt from stdin: %s", strerror(errno));
    } else if (prompt_file) {
        file_text = ex_read_file(prompt_file, NULL);
        if (!file_text) {
            free(grammar_text);
            return ex_fail(prog, "cannot read prompt file '%s': %s", prompt_file, strerror(errno));
        }
    } else if (!prompt && !cnv && !ro.interactive && !isatty(0)) {
        /* a prompt piped to stdin */
        file_text = read_stdin();
        if (!file_text) {
            free(grammar_text);
            return ex_fail(prog, "cannot read the prompt from stdin: %s", strerror(errno));
        }
    }
    if (file_text) {
        size_t l = strlen(file_text);
        if (l > 0 && file_text[l - 1] == '\n')
            file_text[l - 1] = '\0';        /* as llama-cli: drop one newline */
        prompt = file_text;
    }

    if (!model_path) {
        model_path = ex_default_model();
        if (access(model_path, R_OK) != 0) {
            free(file_text);
            free(grammar_text);
            return ex_fail(prog, "no model given (-m) and the default model '%s' does "
                       "not exist (set BITNET_DEFAULT_MODEL or pass -m)", model_path);
        }
    }

    if (tmpl) {
        const bitnet_chat_message probe = { "user", "" };
        size_t need;
        if (bitnet_chat_render(NULL, tmpl, &probe, 1, 1, NULL, 0, &need) ==
            BITNET_E_NOT_FOUND) {
            free(file_text);
            free(grammar_text);
            return ex_fail(prog, "unknown chat template '%s' (bitnet, llama3, falcon3 "
                       "or chatml)", tmpl);
        }
    }
    sp.seed = seed >= 0 ? (uint64_t)seed : random_seed();
    sp.logit_bias = n_bias ? bias : NULL;
    sp.n_logit_bias = n_bias;

    int last_pct = -1;
    bitnet_model_params mp;
    bitnet_model_params_init(&mp);
    if (isatty(2) && !quiet) {
        mp.progress_fn = progress_bar;
        mp.progress_user = &last_pct;
    }
    if (no_mmap)
        mp.flags |= BITNET_MODEL_NO_MMAP;
    gen g;
    memset(&g, 0, sizeof(g));
    g.stops = stops;
    g.n_stops = n_stops;
    g.pending = -1;
    bitnet_model *model = NULL;
    int status = 1;
    if (bitnet_model_load_file(&model, model_path, &mp) != BITNET_OK) {
        if (last_pct >= 0 && last_pct < 100)
            fputc('\n', stderr);
        ex_fail(prog, "cannot load '%s': %s", model_path, bitnet_last_error());
        goto out;
    }
    g.model = model;
    g.constrained = sp.grammar != NULL;
    g.seed = seed < 0 && sp.temperature > 0.0f ? (long long)sp.seed : -1;
    ex_warn_ctx(prog, n_ctx, bitnet_model_n_ctx_train(model));

    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = (int32_t)n_ctx;
    cp.n_threads = (int32_t)n_threads;
    if (bitnet_context_create(&g.ctx, model, &cp) != BITNET_OK) {
        ex_fail(prog, "cannot create a context: %s", bitnet_last_error());
        goto out;
    }
    if (!quiet)
        startup_line(model, model_path, (long)bitnet_context_n_ctx(g.ctx));
    if (bitnet_sampler_create(&g.smp, model, &sp) != BITNET_OK) {
        ex_fail(prog, "sampler: %s", bitnet_last_error());
        goto out;
    }
    if (bitnet_detokenizer_create(&g.detok, model, 0) != BITNET_OK) {
        ex_fail(prog, "detokenizer: %s", bitnet_last_error());
        goto out;
    }
    g.cap_piece = 256;
    g.piece = malloc(g.cap_piece);
    if (!g.piece) {
        ex_fail(prog, "out of memory");
        goto out;
    }

    if (cnv)
        status = conversation(&g, tmpl, system ? system : prompt, ro.n_predict);
    else
        status = one_shot(&g, prompt ? prompt : "", &ro);

out:
    free(g.piece);
    free(g.toks);
    bitnet_detokenizer_free(g.detok);
    bitnet_sampler_free(g.smp);
    bitnet_context_free(g.ctx);
    bitnet_model_free(model);
    free(file_text);
    free(grammar_text);
    return status;
}
