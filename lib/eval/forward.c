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

/* Row units [u0, u1) of the jobs taken as one list of units (they share
 * one quantised input), every token. */
static void matmul_units(const bitnet_context *c, const mm_job *jobs, int nj,
                         int nb, int64_t u0, int64_t u1)
{
    int64_t base = 0;
    for (int j = 0; j < nj && base < u1; j++) {
        const bitnet_tmat *w = jobs[j].w;
        const int64_t units = (w->rows + ROW_CHUNK - 1) / ROW_CHUNK;
        int64_t lo = u0 > base ? u0 : base;
        int64_t hi = u1 < base + units ? u1 : base + units;
        if (lo < hi) {
            int32_t r0 = (int32_t)((lo - base) * ROW_CHUNK);
            int32_t r1 = (int32_t)((hi - base) * ROW_CHUNK);
            if (r1 > w->rows)
                r1 = w->rows;
            if (nb == 1)
                c->k.tgemv(w, r0, r1, c->qa, c->as[0], jobs[j].y + r0);
            else
                c->k.tgemm(w, r0, r1, c->qa, c->as, nb, jobs[j].y + r0, w->rows);
        }
        base += units;
    }
}

/* ---- sharing a stage's rows (context.h) ------------------------------- */

static inline uint64_t fb_pack(uint32_t f, uint32_t b)
{
    return (uint64_t)f | (uint64_t)b << 32;
}

/* Thread 0, before the step's first barrier: units [0, total) of a stage
 * cut into nth shares. */
static void share_init(sched_slot *s, int nth, int32_t total)
{
    for (int i = 0; i < nth; i++) {
        uint32_t f = (uint32_t)((int64_t)total * i / nth);
        uint32_t b = (uint32_t)((int64_t)total * (i + 1) / nth);
        atomic_store_explicit(&s[i].fb, fb_pack(f, b), memory_order_relaxed);
    }
}

/* The next chunk of units for thread ith: from the front of its own share,
 * then from the back of the others'. *k carries where it is (start at 0).
 * Returns 0 when the stage has no work left. */
static int share_take(sched_slot *s, int ith, int nth, uint32_t chunk, int *k,
                      uint32_t *u0, uint32_t *u1)
{
    for (; *k < nth; ++*k) {
        const int j = (ith + *k) % nth;
        uint64_t v = atomic_load_explicit(&s[j].fb, memory_order_relaxed);
        for (;;) {
            uint32_t f = (uint32_t)v, b = (uint32_t)(v >> 32);
            if (f >= b)
                break;
            uint64_t nv;
            if (*k == 0) {                  /* own share: from the front */
                *u0 = f;
                *u1 = b - f > chunk ? f + chunk : b;
                nv = fb_pack(*u1, b);
            } else {                        /* another's: from the back */
                *u1 = b;
                *u0 = b - f > chunk ? b - chunk : f;
                nv = fb_pack(f, *u0);
            }
            if (atomic_compare_exchange_weak_explicit(&s[j].fb, &v, nv,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                return 1;
        }
    }
    return 0;
}

static int32_t jobs_units(const mm_job *jobs, int nj)
{
    int32_t total = 0;
    for (int j = 0; j < nj; j++)
        total += (jobs[j].w->rows + ROW_CHUNK - 1) / ROW_CHUNK;
    return total;
}

/* The jobs' rows, shared among the threads (share_take). residual (one
 * job whose y is c->tmp): x += tmp over each chunk's rows, by the thread
 * that computed them. */
static void run_matmul(bitnet_context *c, const mm_job *jobs, int nj, int nb,
                       sched_slot *share, int ith, int nth, int residual)
{
    int k = 0;
    uint32_t u0, u1;
    /* a GEMM call sums each token's activations again: bigger chunks */
    const uint32_t chunk = nb == 1 ? MM_CHUNK_UNITS : 4 * MM_CHUNK_UNITS;
    while (share_take(share, ith, nth, chunk, &k, &u0, &u1)) {
        matmul_units(c, jobs, nj, nb, u0, u1);
        if (residual) {
            const int32_t r0 = (int32_t)u0 * ROW_CHUNK;
            const int32_t r1 = (int32_t)u1 * ROW_CHUNK < c->D ? (int32_t)u1 * ROW_CHUNK : c->D;
            for (int32_t t = 0; t < nb; t++)
                c->k.layer.add(c->x + (size_t)t * c->D + r0,
                               c->tmp + (size_t)t * c->D + r0, r1 - r0);
        }
    }
}

static void quant_rows(const bitnet_context *c, const float *x, int32_t k,
                       int32_t kpad, int32_t t)
{
    c->k.quant_act(x, k, kpad, c->qa + (size_t)t * kpad, &c->as[t], &c->asum[t]);
}

/* Head rows [b0, b1) (at most HEAD_BLOCK, kept in L2 while every kept
 * token reads them) for every kept token of the step. Each run of adjacent
 * kept tokens (their activations are adjacent in hxq) goes to the head
 * kernel in one call, which reads and converts each row once for all of
 * them; the kernels give every token the same result whatever the number
 * of tokens in a call (kernels.h). A run whose logits rows also follow
 * each other in memory (one sequence's all-logits rows) is written in
 * place; any other run (one token of each of several sequences) goes
 * through a small buffer and is copied to each token's row. */
static void head_block(const bitnet_context *c, const step *st, int32_t b0, int32_t b1)
{
    const size_t xqs = c->head->xq_size, ldy = (size_t)c->n_vocab;
    float buf[HEAD_BLOCK * HEAD_RUN];
    for (int32_t t = 0; t < st->nb; ) {
        if (!st->tout[t]) {
            t++;
            continue;
        }
        int32_t n = 1, adjacent = 1;
        while (t + n < st->nb && n < HEAD_RUN && st->tout[t + n]) {
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

/* ---- the forward step (one parallel region) --------------------------- */

/* The profile (BITNET_PROFILE): thread 0 charges the time since its last
 * mark to a kind of stage; marks follow barriers, so a stage's time is
 * until its slowest thread is done. */
static inline void prof(bitnet_context *c, int ith, int kind)
{
    if (!c->prof || ith != 0)
        return;
    const double t = bitnet__now();
    c->prof_t[c->st.nb > 1][kind] += t - c->prof_mark;
    c->prof_mark = t;
}

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
    while (parts < group && (int64_t)nb * nkv * parts < (int64_t)nth)
        parts *= 2;
    if (parts > group)
        parts = group;
    const int32_t per_part = (group + parts - 1) / parts;

    /* this step's shares of work: set before the first barrier, used
     * after it (a step starts when the previous one has ended); every
     * layer has the same shapes */
    sched_slot *const sched = c->sched;
    if (ith == 0) {
        const bitnet_layer *L0 = &m->layers[0];
        const mm_job j_qkv[3] = { { &L0->wq, NULL }, { &L0->wk, NULL }, { &L0->wv, NULL } };
        const mm_job j_o = { &L0->wo, NULL }, j_dn = { &L0->wdown, NULL };
        const mm_job j_gu[2] = { { &L0->wgate, NULL }, { &L0->wup, NULL } };
        /* a decode token's attention segments (seg_split below) */
        const int32_t n_items = nb == 1 ? nkv * ((st->tpos[0] + BITNET_ATTN_SEG) / BITNET_ATTN_SEG) : 0;
        const int32_t units[SCHED_PER_LAYER] = { jobs_units(j_qkv, 3), jobs_units(&j_o, 1),
                                                 jobs_units(j_gu, 2), jobs_units(&j_dn, 1),
                                                 n_items };
        for (int32_t l = 0; l < c->n_layer; l++)
            for (int32_t s = 0; s < SCHED_PER_LAYER; s++)
                share_init(sched + ((size_t)l * SCHED_PER_LAYER + s) * (size_t)nth, nth,
                           units[s]);
        share_init(sched + (size_t)c->n_layer * SCHED_PER_LAYER * (size_t)nth, nth,
                   (c->n_vocab + HEAD_BLOCK - 1) / HEAD_BLOCK);
    }

    /* embeddings and rope tables */
    for (int32_t t = ith; t < nb; t += nth) {
        bitnet__fmat_row(&m->tok_embd, st->tokens[t], c->x + (size_t)t * D);
        if (nr2 > 0)
            c->k.layer.rope_table((float)st->tpos[t], c->theta_scale, nr2,
                                  c->rcos + (size_t)t * nr2, c->rsin + (size_t)t * nr2);
    }
    bitnet__threadpool_barrier(tp);
    prof(c, ith, BITNET_PROF_SERIAL);

    float *work = c->attn_work + (size_t)ith * c->attn_work_len;
    /* a thread's segment state, after the kernel's work */
    float *seg_buf = work + BITNET_ATTN_WORK(group, c->attn_ctx, hd);
    const size_t part_len = (size_t)group * ((size_t)hd + 2);
    /* a decode token past one segment: its segments are the items */
    const int seg_split = nb == 1 && nth > 1 && st->tpos[0] + 1 > BITNET_ATTN_SEG;

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
        prof(c, ith, BITNET_PROF_SERIAL);

        mm_job qkv[3] = { { &L->wq, c->q }, { &L->wk, c->kx }, { &L->wv, c->vx } };
        sched_slot *lc = sched + (size_t)l * SCHED_PER_LAYER * (size_t)nth;
        run_matmul(c, qkv, 3, nb, lc, ith, nth, 0);
        bitnet__threadpool_barrier(tp);
        prof(c, ith, BITNET_PROF_MATMUL);

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
            const size_t p = (size_t)st->tpos[t];
            for (int32_t j = 0; j < nkv; j++) {
                const size_t off = bitnet__kv_off(tc, l, j, p);
                c->k.layer.to_f16(k + (size_t)j * hd, tc->kcache + off, hd);
                c->k.layer.to_f16(v + (size_t)j * hd, tc->vcache + off, hd);
            }
            if (l == 0)
                bitnet__kv_touch_ahead(tc, p);
        }
        bitnet__threadpool_barrier(tp);
        prof(c, ith, BITNET_PROF_SERIAL);

        /* attention: items of (token, KV head, part of its query heads),
         * interleaved over threads so the causal lengths balance. The
         * query heads of a KV head share one pass over its K and V; they
         * are cut into parts only when there are fewer items than threads
         * (each part reads the K and V again: at depth 4096 decode was
         * 10-40 % faster with 5 KV heads on 2 threads unsplit, 3 + 2,
         * than in 10 parts). A head's result does not depend on its part (kernel
         * test), so the logits do not depend on the thread count.
         * More than BITNET_ATTN_SEG keys are cut into segments, folded in
         * order (bitnet__attn_fold); the cut depends on the key count only.
         * A decode token's segments are items of their own, shared out
         * like a matrix's rows (share_take): in segment order, so that a
         * thread's own share is whole chunks of the cache (every KV head
         * of a chunk lies together) and the short last segment comes last;
         * a thread that is done takes items from the back of the other's
         * share. Each item's result has its own place (kvh, segment), and
         * the thread of the token folds them below in segment order.
         * Otherwise one thread takes a head's segments in order and folds
         * as it goes. */
        if (seg_split) {
            const bitnet_context *tc = st->tctx[0];
            const int32_t n0 = st->tpos[0] + 1, nseg = (n0 + BITNET_ATTN_SEG - 1) / BITNET_ATTN_SEG;
            sched_slot *as = sched + ((size_t)l * SCHED_PER_LAYER + SCHED_ATTN) * (size_t)nth;
            int ka = 0;
            uint32_t i0, i1;
            while (share_take(as, ith, nth, 1, &ka, &i0, &i1)) {
                for (uint32_t it = i0; it < i1; it++) {
                    const int32_t s = (int32_t)it / nkv, kvh = (int32_t)it % nkv;
                    const int32_t k0 = s * BITNET_ATTN_SEG;
                    const int32_t ns = n0 - k0 < BITNET_ATTN_SEG ? n0 - k0 : BITNET_ATTN_SEG;
                    float *part = c->attn_part + ((size_t)kvh * nseg + s) * part_len;
                    /* a segment is one chunk of the cache: contiguous rows */
                    const size_t off = bitnet__kv_off(tc, l, kvh, (size_t)k0);
                    c->k.layer.attn_f16(c->q + (size_t)kvh * group * hd, group,
                                        tc->kcache + off, tc->vcache + off, ns, hd,
                                        c->kq_scale, part, part + (size_t)group * hd, work);
                }
            }
        } else {
            for (int32_t it = ith; it < nb * nkv * parts; it += nth) {
                int32_t t = it / (nkv * parts), kvh = it / parts % nkv, pt = it % parts;
                int32_t h0 = kvh * group + pt * per_part;
                int32_t nq = group - pt * per_part < per_part ? group - pt * per_part : per_part;
                if (nq <= 0)
                    continue;
                const bitnet_context *tc = st->tctx[t];
                const uint16_t *kc = tc->kcache, *vc = tc->vcache;
                const float *q = c->q + (size_t)t * Dq + (size_t)h0 * hd;
                float *out = c->att + (size_t)t * Dq + (size_t)h0 * hd;
                const int32_t n = st->tpos[t] + 1;
                if (n <= BITNET_ATTN_SEG) {      /* within the first chunk */
                    const size_t kvo = bitnet__kv_off(tc, l, kvh, 0);
                    c->k.layer.attn_f16(q, nq, kc + kvo, vc + kvo, n, hd, c->kq_scale, out,
                                        NULL, work);
                    continue;
                }
                /* segment 0 into out, the others through seg_o and folded */
                float *acc_ml = seg_buf, *seg_ml = seg_buf + 2 * group, *seg_o = seg_ml + 2 * group;
                for (int32_t k0 = 0; k0 < n; k0 += BITNET_ATTN_SEG) {
                    const int32_t ns = n - k0 < BITNET_ATTN_SEG ? n - k0 : BITNET_ATTN_SEG;
                    const size_t off = bitnet__kv_off(tc, l, kvh, (size_t)k0);
                    c->k.layer.attn_f16(q, nq, kc + off, vc + off, ns, hd, c->kq_scale,
                                        k0 ? seg_o : out, k0 ? seg_ml : acc_ml, work);
                    if (k0)
                        bitnet__attn_fold(out, acc_ml, seg_o, seg_ml, nq, hd, k0 + ns == n);
                }
            }
        }
        bitnet__threadpool_barrier(tp);
        prof(c, ith, BITNET_PROF_ATTN);

        kp = L->wo.cols_padded;
        for (int32_t t = ith; t < nb; t += nth) {
            float *a = c->att + (size_t)t * Dq;
            if (seg_split) {      /* nb == 1: fold the decode token's segments */
                const int32_t nseg = (st->tpos[0] + 1 + BITNET_ATTN_SEG - 1) / BITNET_ATTN_SEG;
                for (int32_t kvh = 0; kvh < nkv; kvh++) {
                    float *out = a + (size_t)kvh * group * hd, *acc_ml = seg_buf;
                    const float *p0 = c->attn_part + (size_t)kvh * nseg * part_len;
                    memcpy(out, p0, (size_t)group * hd * sizeof(float));
                    memcpy(acc_ml, p0 + (size_t)group * hd, 2 * (size_t)group * sizeof(float));
                    for (int32_t s = 1; s < nseg; s++) {
                        const float *ps = p0 + (size_t)s * part_len;
                        bitnet__attn_fold(out, acc_ml, ps, ps + (size_t)group * hd, group, hd,
                                          s == nseg - 1);
                    }
                }
            }
            if (L->attn_sub_norm)
                c->k.rmsnorm(a, L->attn_sub_norm, a, Dq, eps);
            quant_rows(c, a, Dq, kp, t);
        }
        bitnet__threadpool_barrier(tp);
        prof(c, ith, BITNET_PROF_SERIAL);

        mm_job o = { &L->wo, c->tmp };
        run_matmul(c, &o, 1, nb, lc + nth, ith, nth, 1);
        bitnet__threadpool_barrier(tp);
        prof(c, ith, BITNET_PROF_MATMUL);

        /* feed-forward */
        kp = L->wgate.cols_padded;
        for (int32_t t = ith; t < nb; t += nth) {
            float *h = c->h + (size_t)t * D;
            c->k.rmsnorm(c->x + (size_t)t * D, L->ffn_norm, h, D, eps);
            quant_rows(c, h, D, kp, t);
        }
        bitnet__threadpool_barrier(tp);
        prof(c, ith, BITNET_PROF_SERIAL);

        mm_job gu[2] = { { &L->wgate, c->g }, { &L->wup, c->u } };
        run_matmul(c, gu, 2, nb, lc + 2 * nth, ith, nth, 0);
        bitnet__threadpool_barrier(tp);
        prof(c, ith, BITNET_PROF_MATMUL);

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
        prof(c, ith, BITNET_PROF_SERIAL);

        mm_job dn = { &L->wdown, c->tmp };
        run_matmul(c, &dn, 1, nb, lc + 3 * nth, ith, nth, 1);
        if (ith == 0) {
            for (size_t i = 0; i < st->n_seqs; i++) {
                const bitnet_context *sq = st->seqs[i];
                if (sq->abort_fn && sq->abort_fn(sq->abort_user))
                    st->aborted = 1;
            }
        }
        bitnet__threadpool_barrier(tp);
        prof(c, ith, BITNET_PROF_MATMUL);
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
    prof(c, ith, BITNET_PROF_SERIAL);

    /* the head in chunks of rows taken by whichever thread is free; each
     * row block is read once for all kept tokens (head_block) */
    sched_slot *hs = sched + (size_t)c->n_layer * SCHED_PER_LAYER * (size_t)nth;
    int k = 0;
    uint32_t u0, u1;
    while (share_take(hs, ith, nth, HEAD_CHUNK_BLOCKS, &k, &u0, &u1)) {
        for (uint32_t u = u0; u < u1; u++) {
            const int32_t b0 = (int32_t)u * HEAD_BLOCK;
            head_block(c, st, b0, c->n_vocab - b0 < HEAD_BLOCK ? c->n_vocab : b0 + HEAD_BLOCK);
        }
    }
    prof(c, ith, BITNET_PROF_HEAD);
}
