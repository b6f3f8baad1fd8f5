/*
 * The forward pass: one step of nb tokens through every layer and the head.
 *
 * Graph and numerics: format.md §6 and docs/eval.md. One eval call is cut
 * into steps of at most n_batch tokens; each step is one parallel region of
 * the context's thread pool, with barriers between the stages of a layer.
 * Every output element is computed by exactly one thread, by the same code
 * whatever the thread count or batch split (per-token activation
 * quantisation, GEMM == per-token GEMV, attention per (token, head)), so the
 * logits are bit-identical for any thread count and any split.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
# include <emmintrin.h>
#endif

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

/* llama NORM rope: pairs (2i, 2i+1). */
static void rope_norm(float *x, int32_t n_heads, int32_t hd, int32_t nrot,
                      const float *cs, const float *sn)
{
    for (int32_t h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * hd;
        for (int32_t i = 0; i < nrot / 2; i++) {
            float x0 = v[2 * i], x1 = v[2 * i + 1];
            v[2 * i] = x0 * cs[i] - x1 * sn[i];
            v[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

/* relu(g)^2 * u, in ggml's order (sqr(relu(g)), then times up); relu(x) is
 * x > 0 ? x : 0 (so -0 and NaN give 0). */
static void ffn_relu2(float *restrict g, const float *restrict u, int32_t n)
{
    int32_t i = 0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps();
    for (; i + 4 <= n; i += 4) {
        __m128 x = _mm_loadu_ps(g + i);
        __m128 r = _mm_and_ps(_mm_cmpgt_ps(x, zero), x);
        __m128 r2 = _mm_mul_ps(r, r);
        _mm_storeu_ps(g + i, _mm_mul_ps(r2, _mm_loadu_ps(u + i)));
    }
#endif
    for (; i < n; i++) {
        float r = g[i] > 0.0f ? g[i] : 0.0f;
        float r2 = r * r;
        g[i] = r2 * u[i];
    }
}

/* silu(g) * u, silu(x) = x / (1 + e^-x). */
static void ffn_silu(float *restrict g, const float *restrict u, int32_t n)
{
    for (int32_t i = 0; i < n; i++) {
        float s = g[i] / (1.0f + expf(-g[i]));
        g[i] = s * u[i];
    }
}

static void add_rows(float *restrict x, const float *restrict y, int32_t n)
{
    for (int32_t r = 0; r < n; r++)
        x[r] = y[r] + x[r];
}

/* x += tmp over this thread's rows (the rows it just computed). */
static void residual_add(bitnet_context *c, int32_t nb, int ith, int nth)
{
    int32_t r0, r1;
    split_rows(c->D, ROW_CHUNK, ith, nth, &r0, &r1);
    for (int32_t t = 0; t < nb; t++)
        add_rows(c->x + (size_t)t * c->D + r0, c->tmp + (size_t)t * c->D + r0, r1 - r0);
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

    /* embeddings and rope tables */
    for (int32_t t = ith; t < nb; t += nth) {
        bitnet__fmat_row(&m->tok_embd, st->tokens[t], c->x + (size_t)t * D);
        float theta = (float)(st->p0 + t);
        float *cs = c->rcos + (size_t)t * nr2, *sn = c->rsin + (size_t)t * nr2;
        for (int32_t i = 0; i < nr2; i++) {
            cs[i] = cosf(theta);
            sn[i] = sinf(theta);
            theta *= c->theta_scale;
        }
    }
    bitnet__threadpool_barrier(tp);

    float *sc = c->scores + (size_t)ith * c->n_ctx;
    uint16_t *q16 = c->q16 + (size_t)ith * c->q16_stride;

    for (int32_t l = 0; l < c->n_layer; l++) {
        const bitnet_layer *L = &m->layers[l];
        uint16_t *kc = c->kcache + (size_t)l * c->kv_layer_stride;
        uint16_t *vc = c->vcache + (size_t)l * c->kv_layer_stride;

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
                    rope_norm(q, nh, hd, c->nrot, cs, sn);
                    rope_norm(k, nkv, hd, c->nrot, cs, sn);
                }
            }
            size_t p = (size_t)(st->p0 + t);
            for (int32_t j = 0; j < nkv; j++) {
                uint16_t *kd = kc + j * c->kv_head_stride + p * hd;
                uint16_t *vd = vc + j * c->kv_head_stride + p * hd;
                for (int32_t i = 0; i < hd; i++) {
                    kd[i] = bitnet__fp32_to_fp16(k[j * hd + i]);
                    vd[i] = bitnet__fp32_to_fp16(v[j * hd + i]);
                }
            }
        }
        bitnet__threadpool_barrier(tp);

        /* attention: one (token, head) item at a time, interleaved over
         * threads so the causal lengths balance */
        for (int32_t it = ith; it < nb * nh; it += nth) {
            int32_t t = it / nh, hh = it % nh, kvh = hh / group;
            int32_t n_kv = st->p0 + t + 1;
            const float *q = c->q + (size_t)t * Dq + (size_t)hh * hd;
            for (int32_t i = 0; i < hd; i++)
                q16[i] = bitnet__fp32_to_fp16(q[i]);
            const uint16_t *kb = kc + kvh * c->kv_head_stride;
            const uint16_t *vb = vc + kvh * c->kv_head_stride;
            for (int32_t s = 0; s < n_kv; s++)
                sc[s] = c->k.dot_f16(q16, kb + (size_t)s * hd, hd);
            c->k.softmax(sc, n_kv, c->kq_scale);
            float *o = c->att + (size_t)t * Dq + (size_t)hh * hd;
            memset(o, 0, (size_t)hd * sizeof(float));
            for (int32_t s = 0; s < n_kv; s++)
                c->k.axpy_f16(o, vb + (size_t)s * hd, sc[s], hd);
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
                ffn_relu2(g, c->u + (size_t)t * F, F);
            else
                ffn_silu(g, c->u + (size_t)t * F, F);
            if (L->ffn_sub_norm)
                c->k.rmsnorm(g, L->ffn_sub_norm, g, F, eps);
            quant_rows(c, g, F, kp, t);
        }
        bitnet__threadpool_barrier(tp);

        mm_job dn = { &L->wdown, c->tmp };
        run_matmul(c, &dn, 1, nb, ith, nth);
        residual_add(c, nb, ith, nth);
        if (ith == 0 && c->abort_fn && c->abort_fn(c->abort_user))
            st->aborted = 1;
        bitnet__threadpool_barrier(tp);
        if (st->aborted)
            return;
    }

    if (st->logits_mode == LOGITS_NONE)
        return;
    int32_t t0 = st->logits_mode == LOGITS_ALL ? 0 : nb - 1;

    /* final norm and the head's activation format */
    for (int32_t t = t0 + ith; t < nb; t += nth) {
        float *xo = c->xo + (size_t)t * D;
        c->k.rmsnorm(c->x + (size_t)t * D, m->output_norm, xo, D, eps);
        bitnet__head_prepare(&c->k, c->head, xo, c->hxq + (size_t)t * c->head->xq_size);
    }
    bitnet__threadpool_barrier(tp);

    /* every token's logits for this thread's rows in one call: the head
     * kernels read each row once for all tokens (kernels/kernels.h) */
    int32_t r0, r1;
    split_rows(c->n_vocab, HEAD_CHUNK, ith, nth, &r0, &r1);
    if (r1 > r0)
        bitnet__head_rows(&c->k, c->head, r0, r1, c->hxq + (size_t)t0 * c->head->xq_size,
                          nb - t0, st->lout + r0, (size_t)c->n_vocab);
}
