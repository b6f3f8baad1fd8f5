/*
 * The step loop every eval goes through, with several sequences in one pass
 * over the weights (bitnet_context_eval_multi), and the token bookkeeping
 * that prefix reuse and forks need (keep_prefix, copy).
 *
 * Why the results do not depend on the company a sequence keeps: every
 * per-token stage (norms, activation quantisation, RoPE, gates, the head)
 * works on one token at a time, the ternary GEMM equals the per-token GEMV
 * bit for bit (kernels.h), and attention reads only the token's own
 * context's KV cache at its own position. docs/eval.md, "Several sequences".
 */
#include <stdlib.h>
#include <string.h>

#include "eval/context.h"

/* The buffer the next eval writes its logits into holds `rows` rows. */
static int ensure_logits(bitnet_context *c, size_t rows, const char *fname)
{
    int nxt = 1 - c->cur;
    if (c->logits_cap[nxt] >= rows)
        return BITNET_OK;
    size_t bytes;
    if (bitnet__mul_ovf(rows, (size_t)c->n_vocab * sizeof(float), &bytes))
        return bitnet__error(BITNET_E_NOMEM, "%s: logits too large", fname);
    float *nl = bitnet__aalloc(bytes, 64);
    if (!nl)
        return bitnet__error(BITNET_E_NOMEM, "%s: out of memory for %zu rows of logits",
                             fname, rows);
    bitnet__afree(c->logits[nxt]);
    c->logits[nxt] = nl;
    c->logits_cap[nxt] = rows;
    return BITNET_OK;
}

/* Attention scratch of the work context: room for `n_ctx` positions. */
static int ensure_attn_work(bitnet_context *w, int32_t n_ctx, const char *fname)
{
    if (w->attn_ctx >= n_ctx)
        return BITNET_OK;
    size_t len = bitnet__attn_thread_len(w->nh / w->nkv, n_ctx, w->hd), n, bytes;
    const size_t part = bitnet__attn_part_len(w->nkv, w->nh / w->nkv, n_ctx, w->hd);
    if (bitnet__mul_ovf((size_t)w->n_threads, len, &n) || n + part < n ||
        bitnet__mul_ovf(n + part, sizeof(float), &bytes))
        return bitnet__error(BITNET_E_NOMEM, "%s: attention scratch too large", fname);
    float *nw = bitnet__aalloc(bytes, 64);
    if (!nw)
        return bitnet__error(BITNET_E_NOMEM, "%s: out of memory", fname);
    memset(nw, 0, bytes);
    bitnet__afree(w->attn_work);
    w->attn_work = nw;
    w->attn_work_len = len;
    w->attn_part = nw + n;
    w->attn_ctx = n_ctx;
    return BITNET_OK;
}

int bitnet__eval_run(bitnet_context *work, bitnet_context *const *seqs,
                     const int32_t *const *tokens, const size_t *n_tokens,
                     size_t n_seq, int all_logits, const char *fname)
{
    int32_t max_ctx = 0;
    for (size_t i = 0; i < n_seq; i++) {
        int rc = ensure_logits(seqs[i], all_logits ? n_tokens[i] : 1, fname);
        if (rc != BITNET_OK)
            return rc;
        if (seqs[i]->n_ctx > max_ctx)
            max_ctx = seqs[i]->n_ctx;
    }
    int rc = ensure_attn_work(work, max_ctx, fname);
    if (rc != BITNET_OK)
        return rc;

    /* Tokens in order, sequence after sequence, cut into steps of at most
     * n_batch tokens; a step may end inside a sequence. */
    step *st = &work->st;
    st->seqs = seqs;
    st->n_seqs = n_seq;
    st->tokens = work->st_tok;
    st->tctx = work->st_ctx;
    st->tpos = work->st_pos;
    st->tout = work->st_out;
    size_t i = 0, j = 0;
    while (i < n_seq) {
        int32_t nb = 0;
        int any = 0;
        while (nb < work->n_batch && i < n_seq) {
            bitnet_context *c = seqs[i];
            size_t n = n_tokens[i];
            float *lg = c->logits[1 - c->cur];
            float *out = all_logits ? lg + j * (size_t)c->n_vocab : j + 1 == n ? lg : NULL;
            work->st_tok[nb] = tokens[i][j];
            work->st_pos[nb] = c->pos + (int32_t)j;
            work->st_ctx[nb] = c;
            work->st_out[nb] = out;
            any |= out != NULL;
            nb++;
            if (++j == n) {
                i++;
                j = 0;
            }
        }
        st->nb = nb;
        st->any_out = any;
        st->aborted = 0;
        bitnet__eval_run_step(work, nb);
        if (st->aborted)
            return bitnet__error(BITNET_E_ABORTED, "%s: aborted by the callback", fname);
    }

    for (i = 0; i < n_seq; i++) {
        bitnet_context *c = seqs[i];
        size_t n = n_tokens[i];
        memcpy(c->toks + c->pos, tokens[i], n * sizeof(int32_t));
        c->cur = 1 - c->cur;
        c->n_logits = all_logits ? (int32_t)n : 1;
        c->n_call = (int32_t)n;
        c->logits_all = all_logits;
        c->pos += (int32_t)n;
    }
    return BITNET_OK;
}

int bitnet_context_eval_multi(bitnet_context *const *ctxs, const int32_t *const *tokens,
                              const size_t *n_tokens, size_t n_seq, uint32_t flags)
{
    static const char fn[] = "bitnet_context_eval_multi";
    bitnet__clear_error();
    if (!ctxs || !tokens || !n_tokens)
        return bitnet__error(BITNET_E_INVALID_ARG, "%s: ctxs, tokens or n_tokens is NULL", fn);
    if (n_seq == 0)
        return bitnet__error(BITNET_E_INVALID_ARG, "%s: n_seq is 0", fn);
    if (flags & ~(uint32_t)BITNET_EVAL_ALL_LOGITS)
        return bitnet__error(BITNET_E_INVALID_ARG, "%s: unknown flags 0x%x", fn,
                             (unsigned)(flags & ~(uint32_t)BITNET_EVAL_ALL_LOGITS));
    for (size_t i = 0; i < n_seq; i++) {
        const bitnet_context *c = ctxs[i];
        if (!c)
            return bitnet__error(BITNET_E_INVALID_ARG, "%s: ctxs[%zu] is NULL", fn, i);
        if (c->model != ctxs[0]->model)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "%s: ctxs[%zu] is on another model than ctxs[0]", fn, i);
        /* One pass runs every token through ctxs[0]'s kernels and head:
         * contexts that would compute differently alone cannot share it. */
        if (memcmp(&c->k, &ctxs[0]->k, sizeof(c->k)) != 0 || c->head != ctxs[0]->head)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "%s: ctxs[%zu] differs from ctxs[0] in cpu_mask or head flags",
                                 fn, i);
        for (size_t k = 0; k < i; k++)
            if (ctxs[k] == c)
                return bitnet__error(BITNET_E_INVALID_ARG,
                                     "%s: ctxs[%zu] is ctxs[%zu] again", fn, i, k);
        if (!tokens[i])
            return bitnet__error(BITNET_E_INVALID_ARG, "%s: tokens[%zu] is NULL", fn, i);
        if (n_tokens[i] == 0)
            return bitnet__error(BITNET_E_INVALID_ARG, "%s: n_tokens[%zu] is 0", fn, i);
        for (size_t t = 0; t < n_tokens[i]; t++)
            if (tokens[i][t] < 0 || tokens[i][t] >= c->n_vocab)
                return bitnet__error(BITNET_E_INVALID_ARG,
                                     "%s: token %d at tokens[%zu][%zu] is outside [0, %d)",
                                     fn, (int)tokens[i][t], i, t, (int)c->n_vocab);
    }
    for (size_t i = 0; i < n_seq; i++) {
        const bitnet_context *c = ctxs[i];
        if (n_tokens[i] > (size_t)(c->n_ctx - c->pos))
            return bitnet__error(BITNET_E_CONTEXT_FULL,
                                 "%s: %zu tokens at position %d exceed n_ctx %d (ctxs[%zu])",
                                 fn, n_tokens[i], (int)c->pos, (int)c->n_ctx, i);
    }
    return bitnet__eval_run(ctxs[0], ctxs, tokens, n_tokens, n_seq,
                            (flags & BITNET_EVAL_ALL_LOGITS) != 0, fn);
}

size_t bitnet_context_keep_prefix(bitnet_context *c, const int32_t *tokens, size_t n_tokens)
{
    bitnet__clear_error();
    if (!c) {
        bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_keep_prefix: ctx is NULL");
        return 0;
    }
    if (!tokens && n_tokens > 0) {
        bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_keep_prefix: tokens is NULL");
        n_tokens = 0;
    }
    size_t lim = n_tokens > 0 ? n_tokens - 1 : 0, k = 0;
    if (lim > (size_t)c->pos)
        lim = (size_t)c->pos;
    while (k < lim && c->toks[k] >= 0 && c->toks[k] == tokens[k])
        k++;
    if (k < (size_t)c->pos) {
        c->pos = (int32_t)k;
        c->n_logits = 0;
        c->n_call = 0;
    }
    return k;
}

int bitnet_context_copy(bitnet_context *dst, const bitnet_context *src)
{
    bitnet__clear_error();
    if (!dst || !src)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_copy: dst or src is NULL");
    if (dst == src)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_copy: dst is src");
    if (dst->model != src->model)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_context_copy: dst and src are on different models");
    if (src->pos > dst->n_ctx)
        return bitnet__error(BITNET_E_CONTEXT_FULL,
                             "bitnet_context_copy: src holds %d tokens, dst's n_ctx is %d",
                             (int)src->pos, (int)dst->n_ctx);
    /* the rows in runs contiguous in both caches (their chunks may differ) */
    const size_t hd = (size_t)src->hd;
    for (int32_t l = 0; l < src->n_layer; l++) {
        for (int32_t j = 0; j < src->nkv; j++) {
            for (size_t p = 0, n; p < (size_t)src->pos; p += n) {
                n = bitnet__kv_run(dst, p, bitnet__kv_run(src, p, (size_t)src->pos - p));
                const size_t so = bitnet__kv_off(src, l, j, p), d = bitnet__kv_off(dst, l, j, p);
                memcpy(dst->kcache + d, src->kcache + so, n * hd * sizeof(uint16_t));
                memcpy(dst->vcache + d, src->vcache + so, n * hd * sizeof(uint16_t));
            }
        }
    }
    memcpy(dst->toks, src->toks, (size_t)src->pos * sizeof(int32_t));
    dst->pos = src->pos;
    bitnet__kv_promote(dst, 0, (size_t)dst->pos);
    if (src->n_logits > 0) {
        /* the last token's row, as a state blob keeps it */
        size_t row = src->logits_all ? (size_t)src->n_call - 1 : 0;
        memcpy(dst->logits[dst->cur], src->logits[src->cur] + row * (size_t)src->n_vocab,
               (size_t)src->n_vocab * sizeof(float));
        dst->n_logits = 1;
        dst->n_call = 1;
    } else {
        dst->n_logits = 0;
        dst->n_call = 0;
    }
    dst->logits_all = 0;
    return BITNET_OK;
}
