/*
 * bitnet-cli -cnv: a conversation. Each turn renders the whole chat through
 * the library's chat template into tokens (bitnet_chat_tokenize: template
 * markup special, message text never), keeps the tokens the context
 * already holds, evaluates the rest and generates the answer; when the
 * chat no longer fits, the oldest turns are dropped. Public API only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"
#include "cli.h"
#include "example_util.h"

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
static int chat_token_ids(const bitnet_model *m, const char *tmpl, const chat *c,
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

/* The chat's prompt tokens, or an error message and non-zero. */
static int chat_tokens(const gen *g, const char *tmpl, const chat *c, int32_t **ids,
                       size_t *n)
{
    if (chat_token_ids(g->model, tmpl, c, ids, n) != BITNET_OK)
        return ex_fail(prog, "chat template: %s", bitnet_last_error());
    return 0;
}

/* Drop the oldest turn after the system message: a user message and the
 * assistant's answer to it. Returns 0, or -1 when only the system message
 * and the newest user message are left. */
static int chat_drop_oldest(chat *c)
{
    size_t first = c->n > 0 && strcmp(c->msgs[0].role, "system") == 0 ? 1 : 0;
    if (c->n < first + 2)
        return -1;
    size_t k = 1;
    if (first + 1 < c->n - 1 && strcmp(c->msgs[first + 1].role, "assistant") == 0)
        k = 2;
    for (size_t i = first; i < first + k; i++)
        free((char *)c->msgs[i].content);
    memmove(c->msgs + first, c->msgs + first + k, (c->n - first - k) * sizeof(*c->msgs));
    c->n -= k;
    return 0;
}

int conversation(gen *g, const char *tmpl_name, const char *system,
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
                return ex_fail(prog, "%s", bitnet_last_error());
            fprintf(stderr, "%s: the model has no recognised chat template; "
                    "using the bitnet format\n", prog);
            tmpl = "bitnet";
        }
    }
    chat c = { NULL, 0, 0 };
    if (system && *system && chat_add(&c, "system", system) != 0)
        return ex_fail(prog, "out of memory");
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
            status = ex_fail(prog, "out of memory");
            break;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        if (chat_tokens(g, tmpl, &c, &ids, &n) != 0) {
            status = 1;
            break;
        }
        /* Context shifting: while the chat and room for the answer do not
         * fit, drop the oldest turns (the system message stays). */
        size_t n_ctx = (size_t)bitnet_context_n_ctx(g->ctx);
        size_t room = n_predict >= 0 && (size_t)n_predict < n_ctx / 2 ? (size_t)n_predict
                                                                       : n_ctx / 4;
        int dropped = 0;
        while (n + room > n_ctx && chat_drop_oldest(&c) == 0) {
            free(ids);
            ids = NULL;
            dropped++;
            if (chat_tokens(g, tmpl, &c, &ids, &n) != 0) {
                status = 1;
                goto done;
            }
        }
        if (dropped && !quiet)
            fprintf(stderr, "%s: context full: dropped the %d oldest message(s)\n", prog,
                    dropped);
        int rc;
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
                status = ex_fail(prog, "out of memory");
                goto done;
            }
        free(ids);
        if (eval_prompt(g, keep) != BITNET_OK) {
            status = 1;
            break;
        }
        strbuf reply = { NULL, 0, 0 };
        if (sb_add(&reply, "", 0) != 0) {
            status = ex_fail(prog, "out of memory");
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
