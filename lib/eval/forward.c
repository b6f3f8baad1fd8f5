/*
 * The forward pass: one step of nb tokens through every layer and the head.
 *
 * Graph and numerics: format.md §6 and docs/eval.md. One eval call is cut
 * into steps of at most n_batch tokens; each step is one parallel region of
 * the context's thread pool, with barriers between the stages of a layer.
 * Every output element is computed by exactly one thread, by the same code
 * whatever the thread count or batch split (per-token activation
 * quantisation, GEMM == per-token GEMV, attention per (token, head) whatever
 * heads share a kernel call), so the logits are bit-identical for any thread
 * count and any split. The tokens of a step may belong to several contexts
 * (batch.c): each carries its own KV cache and position. All arithmetic is
 * in kernels/ (kernels.h, layer.h).
 */
#include <stdlib.h>
#include <string.h>

#include "eval/context.h"

/* ---- helpers ---------------------------------------------------------- */


typedef struct mm_job {
    const bitnet_tmat *w;
    float *y;                 /* [nb][w->rows] */
} mm_job;

/* The rows of all jobs (they share one quantised input) split among the
 * threads in units of ROW_CHUNK; each thread computes its own rows for every
 * token. */
static void run_matmul(const bitnet_context *c, const mm_job *jobs, int nj,
                       int nb, int ith, int nth)
{
    int64_t units[4], total = 0;
    for (int j = 0; j < nj; j++) {
        units[j] = (jobs[j].w->rows + ROW_CHUNK - 1) / ROW_CHUNK;
        total += units[j];
    }
    int64_t u0 = total * ith / nth, u1 = total * (ith + 1) / nth, base = 0;
    for (int j = 0; j < nj; j++) {
        const bitnet_tmat *w = jobs[j].w;
        int64_t lo = u0 > base ? u0 : base;
        int64_t hi = u1 < base + units[j] ? u1 : base + units[j];
        base += units[j];
        if (lo >= hi)
            continue;
        int32_t r0 = (int32_t)((lo - (base - units[j])) * ROW_CHUNK);
        int32_t r1 = (int32_t)((hi - (base - units[j])) * ROW_CHUNK);
        if (r1 > w->rows)
            r1 = w->rows;
        if (nb == 1)
            c->k.tgemv(w, r0, r1, c->qa, c->as[0], jobs[j].y + r0);
        else
            c->k.tgemm(w, r0, r1, c->qa, c->as, nb, jobs[j].y + r0, w->rows);
    }
}

/* The row range [r0, r1) of `rows` rows that thread ith owns, in units of
 * `chunk` rows. */
static void split_rows(int32_t rows, int32_t chunk, int ith, int nth,
                       int32_t *r0, int32_t *r1)
{
    int64_t units = (rows + chunk - 1) / chunk;
    int64_t a = units * ith / nth * chunk, b = units * (ith + 1) / nth * chunk;
    *r0 = (int32_t)(a < rows ? a : rows);
    *r1 = (int32_t)(b < rows ? b : rows);
}

static void quant_rows(const bitnet_context *c, const float *x, int32_t k,
                       int32_t kpad, int32_t t)
{
    c->k.quant_act(x, k, kpad, c->qa + (size_t)t * kpad, &c->as[t], &c->asum[t]);
}

/* x += tmp over this thread's rows (the rows it just computed). */
static void residual_add(bitnet_context *c, int32_t nb, int ith, int nth)
{
    int32_t r0, r1;
    split_rows(c->D, ROW_CHUNK, ith, nth, &r0, &r1);
    for (int32_t t = 0; t < nb; t++)
        c->k.layer.add(c->x + (size_t)t * c->D + r0, c->tmp + (size_t)t * c->D + r0, r1 - r0);
}

/* ---- the forward step (one parallel region) --------------------------- */

void bitnet__eval_step(void *arg, int ith, int nth)
{
    bitnet_context *c = arg;
    step *st = &c->st;
    const struct bitnet_model *m = c->model;
    bitnet_threadpool *tp = c->tp;
    const int32_t nb = st->nb, D = c->D, Dq = c->Dq, Dkv = c->Dkv, F = c->F;
    const int32_t hd = c->hd, nh = c->nh, nkv = c->nkv, nr2 = c->nrot / 2;
    const float eps = m->norm_eps;
    const int32_t group = nh / nkv;
    int32_t parts = 1;
    while (parts < group && (int64_t)nb * nkv * parts < 4 * (int64_t)nth)
        parts *= 2;
    if (parts > group)
        parts = group;
    const int32_t per_part = (group + parts - 1) / parts;

    /* embeddings and rope tables */
    for (int32_t t = ith; t < nb; t += nth) {
        bitnet__fmat_row(&m->tok_embd, st->tokens[t], c->x + (size_t)t * D);
        if (nr2 > 0)
            c->k.layer.rope_table((float)st->tpos[t], c->theta_scale, nr2,
                                  c->rcos + (size_t)t * nr2, c->rsin + (size_t)t * nr2);
    }
    bitnet__threadpool_barrier(tp);

    float *work = c->attn_work + (size_t)ith * c->attn_work_len;

    for (int32_t l = 0; l < c->n_layer; l++) {
        const bitnet_layer *L = &m->layers[l];

        /* attention input */
        int32_t kp = L->wq.cols_padded;
        for (int32_t t = ith; t < nb; t += nth) {
            float *h = c->h + (size_t)t * D;
            c->k.rmsnorm(c->x + (size_t)t * D, L->attn_norm, h, D, eps);
            quant_rows(c, h, D, kp, t);
        }
        bitnet__threadpool_barrier(tp);

        mm_job qkv[3] = { { &L->wq, c->q }, { &L->wk, c->kx }, { &L->wv, c->vx } };
        run_matmul(c, qkv, 3, nb, ith, nth);
        bitnet__threadpool_barrier(tp);

        /* rope, then K and V into the cache */
        for (int32_t t = ith; t < nb; t += nth) {
            float *q = c->q + (size_t)t * Dq, *k = c->kx + (size_t)t * Dkv;
            const float *v = c->vx + (size_t)t * Dkv;
            const float *cs = c->rcos + (size_t)t * nr2, *sn = c->rsin + (size_t)t * nr2;
            if (nr2 > 0) {
                if (m->rope_neox) {
                    c->k.rope(q, nh, hd, c->nrot, cs, sn);
                    c->k.rope(k, nkv, hd, c->nrot, cs, sn);
                } else {
                    c->k.layer.rope_norm(q, nh, hd, c->nrot, cs, sn);
                    c->k.layer.rope_norm(k, nkv, hd, c->nrot, cs, sn);
                }
            }
            const bitnet_context *tc = st->tctx[t];
            uint16_t *kc = tc->kcache + (size_t)l * tc->kv_layer_stride;
            uint16_t *vc = tc->vcache + (size_t)l * tc->kv_layer_stride;
            size_t p = (size_t)st->tpos[t];
            for (int32_t j = 0; j < nkv; j++) {
                c->k.layer.to_f16(k + (size_t)j * hd, kc + j * tc->kv_head_stride + p * hd, hd);
                c->k.layer.to_f16(v + (size_t)j * hd, vc + j * tc->kv_head_stride + p * hd, hd);
            }
        }
        bitnet__threadpool_barrier(tp);

        /* attention: items of (token, KV head, part of its query heads),
         * interleaved over threads so the causal lengths balance. The
         * query heads of a KV head share one pass over its K and V; they
         * are cut into parts only when there are too few items for the
         * threads. A head's result does not depend on its part (kernel
         * test), so the logits do not depend on the thread count. */
        for (int32_t it = ith; it < nb * nkv * parts; it += nth) {
            int32_t t = it / (nkv * parts), kvh = it / parts % nkv, pt = it % parts;
            int32_t h0 = kvh * group + pt * per_part;
            int32_t nq = group - pt * per_part < per_part ? group - pt * per_part : per_part;
            if (nq <= 0)
                continue;
            const bitnet_context *tc = st->tctx[t];
            const uint16_t *kc = tc->kcache + (size_t)l * tc->kv_layer_stride;
            const uint16_t *vc = tc->vcache + (size_t)l * tc->kv_layer_stride;
            c->k.layer.attn_f16(c->q + (size_t)t * Dq + (size_t)h0 * hd, nq,
                                kc + kvh * tc->kv_head_stride, vc + kvh * tc->kv_head_stride,
                                st->tpos[t] + 1, hd, c->kq_scale,
                                c->att + (size_t)t * Dq + (size_t)h0 * hd, work);
        }
        bitnet__threadpool_barrier(tp);

        kp = L->wo.cols_padded;
        for (int32_t t = ith; t < nb; t += nth) {
            float *a = c->att + (size_t)t * Dq;
            if (L->attn_sub_norm)
                c->k.rmsnorm(a, L->attn_sub_norm, a, Dq, eps);
            quant_rows(c, a, Dq, kp, t);
        }
        bitnet__threadpool_barrier(tp);

        mm_job o = { &L->wo, c->tmp };
        run_matmul(c, &o, 1, nb, ith, nth);
        residual_add(c, nb, ith, nth);
        bitnet__threadpool_barrier(tp);

        /* feed-forward */
        kp = L->wgate.cols_padded;
        for (int32_t t = ith; t < nb; t += nth) {
            float *h = c->h + (size_t)t * D;
            c->k.rmsnorm(c->x + (size_t)t * D, L->ffn_norm, h, D, eps);
            quant_rows(c, h, D, kp, t);
        }
        bitnet__threadpool_barrier(tp);

        mm_job gu[2] = { { &L->wgate, c->g }, { &L->wup, c->u } };
        run_matmul(c, gu, 2, nb, ith, nth);
        bitnet__threadpool_barrier(tp);

        kp = L->wdown.cols_padded;
        for (int32_t t = ith; t < nb; t += nth) {
            float *g = c->g + (size_t)t * F;
            if (m->ffn_act == BITNET_FFN_RELU2)
                c->k.layer.relu2_mul(g, c->u + (size_t)t * F, F);
            else
                c->k.layer.silu_mul(g, c->u + (size_t)t * F, F);
            if (L->ffn_sub_norm)
                c->k.rmsnorm(g, L->ffn_sub_norm, g, F, eps);
            quant_rows(c, g, F, kp, t);
        }
        bitnet__threadpool_barrier(tp);

        mm_job dn = { &L->wdown, c->tmp };
        run_matmul(c, &dn, 1, nb, ith, nth);
        residual_add(c, nb, ith, nth);
        if (ith == 0) {
            for (size_t i = 0; i < st->n_seqs; i++) {
                const bitnet_context *sq = st->seqs[i];
                if (sq->abort_fn && sq->abort_fn(sq->abort_user))
                    st->aborted = 1;
            }
        }
        bitnet__threadpool_barrier(tp);
        if (st->aborted)
            return;
    }

    if (!st->any_out)
        return;

    /* final norm and the head's activation format, for the tokens whose
     * logits are kept */
    for (int32_t t = ith; t < nb; t += nth) {
        if (!st->tout[t])
            continue;
        float *xo = c->xo + (size_t)t * D;
        c->k.rmsnorm(c->x + (size_t)t * D, m->output_norm, xo, D, eps);
        bitnet__head_prepare(&c->k, c->head, xo, c->hxq + (size_t)t * c->head->xq_size);
    }
    bitnet__threadpool_barrier(tp);

    /* every token's logits for this thread's rows in one call: the head
     * kernels read each row once for all tokens (kernels/kernels.h) */
    int32_t r0, r1;
    split_rows(c->n_vocab, HEAD_CHUNK, ith, nth, &r0, &r1);
    /* Row blocks of HEAD_BLOCK stay in L2 while every kept token reads
     * them. Each run of adjacent kept tokens (their activations are
     * adjacent in hxq) goes to the head kernel in one call, which reads and
     * converts each row once for all of them; the kernels give every token
     * the same result whatever the number of tokens in a call (kernels.h).
     * A run whose logits rows also follow each other in memory (one
     * sequence's all-logits rows) is written in place; any other run (one
     * token of each of several sequences) goes through a small buffer and
     * is copied to each token's row. */
    const size_t xqs = c->head->xq_size, ldy = (size_t)c->n_vocab;
    float buf[HEAD_BLOCK * HEAD_RUN];
    for (int32_t b0 = r0; b0 < r1; b0 += HEAD_BLOCK) {
        int32_t b1 = b0 + HEAD_BLOCK < r1 ? b0 + HEAD_BLOCK : r1;
        for (int32_t t = 0; t < nb; ) {
            if (!st->tout[t]) {
                t++;
                continue;
            }
            int32_t n = 1, adjacent = 1;
            while (t + n < nb && n < HEAD_RUN && st->tout[t + n]) {
                adjacent &= st->tout[t + n] == st->tout[t] + (size_t)n * ldy;
                n++;
            }
            const uint8_t *xq = c->hxq + (size_t)t * xqs;
            if (adjacent) {
                bitnet__head_rows(&c->k, c->head, b0, b1, xq, n, st->tout[t] + b0, ldy);
            } else {
                bitnet__head_rows(&c->k, c->head, b0, b1, xq, n, buf, HEAD_BLOCK);
                for (int32_t i = 0; i < n; i++)
                    memcpy(st->tout[t + i] + b0, buf + (size_t)i * HEAD_BLOCK,
                           (size_t)(b1 - b0) * sizeof(float));
            }
            t += n;
        }
    }
}
