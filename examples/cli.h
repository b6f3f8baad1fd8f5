/*
 * bitnet-cli's parts, shared by its files: bitnet-cli.c (options, one-shot
 * and interactive runs, generation) and cli_chat.c (-cnv conversations).
 */
#ifndef BITNET_CLI_H
#define BITNET_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "bitnet.h"

extern const char *prog;
extern int quiet;            /* --log-disable: no notes or start-up line */

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
    const char **stops;     /* -r: stop after any of these appears (-i) */
    int n_stops;
    int32_t pending;        /* shown but not evaluated (-n reached); -1 none */
    int constrained;        /* the sampler has a grammar */
} gen;

/* Append text to a growing string (for the chat history). */
typedef struct strbuf {
    char *s;
    size_t n, cap;
} strbuf;

int sb_add(strbuf *b, const char *s, size_t n);
/* Append a token to g->toks (not evaluated): 0, or -1 out of memory. */
int push_tok(gen *g, int32_t t);
/* Evaluate g->toks[from..]: BITNET_OK or a status (reported). */
int eval_prompt(gen *g, size_t from);
/* Sample and print up to n_predict tokens (-1: until the end), the text
 * also appended to collect when not NULL: BITNET_OK or a status. */
int generate(gen *g, long n_predict, strbuf *collect);
/* The timing summary on stderr. */
void timing(const gen *g);
/* -cnv: a chat on stdin/stdout until EOF; 0 or 1 (reported). */
int conversation(gen *g, const char *tmpl_name, const char *system, long n_predict);

#endif /* BITNET_CLI_H */
