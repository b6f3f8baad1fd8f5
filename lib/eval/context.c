/*
 * Contexts: the forward pass, the F16 KV cache, logits and state blobs.
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

#include "base/internal.h"
#include "model/model.h"
#include "kernels.h"
#include "base/threadpool.h"

#ifndef BITNET_TMAT_ROW_CHUNK
# define BITNET_TMAT_ROW_CHUNK 16
#endif

#define ROW_CHUNK BITNET_TMAT_ROW_CHUNK
#define HEAD_CHUNK 64          /* head rows per thread-split unit */
#define HEAD_BLOCK 256         /* head rows streamed per token loop (cache reuse) */
#define MAX_THREADS 256

#define STATE_MAGIC 0x54534e42u   /* "BNST" little-endian */
#define STATE_VERSION 1u
#define STATE_HEADER 40

enum { LOGITS_NONE = 0, LOGITS_LAST, LOGITS_ALL };

enum head_kind { HEAD_F16 = 0, HEAD_I8, HEAD_FMAT };

/* One step: nb tokens at positions p0 .. p0+nb-1. */
typedef struct step {
    const int32_t *tokens;
    int32_t nb;
    int32_t p0;
    int logits_mode;          /* LOGITS_* for this step */
    float *lout;              /* logits rows for this step's kept tokens */
    int aborted;              /* set by thread 0 between layers */
} step;

struct bitnet_context {
    const struct bitnet_model *model;
    bitnet_kernels k;
    bitnet_threadpool *tp;
    int n_threads;
    int32_t n_ctx, n_batch;
    uint32_t flags;
    bitnet_logger log;
    bitnet_abort_fn abort_fn;
    void *abort_user;

    int32_t pos;

    /* shapes */
    int32_t D, Dq, Dkv, F, hd, nh, nkv, nrot, n_vocab, n_layer;
    float theta_scale, kq_scale;
    int head_kind;

    /* KV cache, [n_layer][n_head_kv][n_ctx][head_dim] fp16 */
    uint16_t *kcache, *vcache;
    size_t kv_head_stride;    /* n_ctx * hd */
    size_t kv_layer_stride;   /* nkv * n_ctx * hd */

    /* scratch for up to n_batch tokens */
    float *x;                 /* [nb][D] residual stream */
    float *h;                 /* [nb][D] normed input */
    float *q;                 /* [nb][Dq] */
    float *kx, *vx;           /* [nb][Dkv] */
    float *att;               /* [nb][Dq] attention output */
    float *tmp;               /* [nb][D] wo / down output */
    float *g, *u;             /* [nb][F] */
    int8_t *qa;               /* [nb][kpad_max] */
    float *as;                /* [nb] activation scales */
    int32_t *asum;            /* [nb] */
    float *rcos, *rsin;       /* [nb][nrot/2] */
    float *scores;            /* [n_threads][n_ctx] */
    uint16_t *q16;            /* [n_threads][hd_pad] */
    size_t q16_stride;
    float *xo;                /* [nb][D] final normed hidden */
    uint8_t *hxq;             /* [nb][hxq_size] head activations (non-F16 heads) */
    size_t hxq_size;
    const bitnet_head_i8 *hi8;

    /* logits: the current rows and a buffer the next eval writes into */
    float *logits[2];
    size_t logits_cap[2];     /* in rows */
    int cur;
    int32_t n_logits;         /* rows kept for the last call; 0: none */
    int32_t n_call;           /* tokens of the last call */
    int logits_all;

    step st;
};

/* ---- helpers ---------------------------------------------------------- */

static inline int32_t pad_k(int32_t k)
{
    return (k + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD;
}

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

static void head_rows(const bitnet_context *c, int32_t t, int32_t r0, int32_t r1, float *y)
{
    const struct bitnet_model *m = c->model;
    switch (c->head_kind) {
    case HEAD_F16:
        c->k.head_f16((const uint16_t *)m->output.data, m->output.row_bytes / 2,
                      r0, r1, c->xo + (size_t)t * c->D, c->D, y + r0);
        break;
    case HEAD_I8:
        c->k.head_i8(c->hi8->w, c->hi8->ldw, c->hi8->scale, r0, r1,
                     (const int8_t *)c->hxq + (size_t)t * c->hxq_size, c->as[t],
                     (int32_t)c->hi8->ldw, y + r0);
        break;
    default:
        bitnet__fmat_dot_rows(&m->output, r0, r1,
                              c->hxq + (size_t)t * c->hxq_size, y + r0);
        break;
    }
}

static void step_fn(void *arg, int ith, int nth)
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
        if (c->head_kind == HEAD_I8) {
            c->k.quant_act(xo, D, (int32_t)c->hi8->ldw,
                           (int8_t *)c->hxq + (size_t)t * c->hxq_size,
                           &c->as[t], &c->asum[t]);
        } else if (c->head_kind == HEAD_FMAT) {
            bitnet__fmat_quantize_x(&m->output, xo, c->hxq + (size_t)t * c->hxq_size);
        }
    }
    bitnet__threadpool_barrier(tp);

    int32_t r0, r1;
    split_rows(c->n_vocab, HEAD_CHUNK, ith, nth, &r0, &r1);
    for (int32_t b0 = r0; b0 < r1; b0 += HEAD_BLOCK) {
        int32_t b1 = b0 + HEAD_BLOCK < r1 ? b0 + HEAD_BLOCK : r1;
        for (int32_t t = t0; t < nb; t++)
            head_rows(c, t, b0, b1, st->lout + (size_t)(t - t0) * c->n_vocab);
    }
}

/* ---- creation --------------------------------------------------------- */

static void *zalloc(size_t n, size_t size, int *fail)
{
    size_t bytes = 0;
    if (bitnet__mul_ovf(n, size, &bytes)) {
        *fail = 1;
        return NULL;
    }
    if (bytes == 0)
        return NULL;
    void *p = bitnet__aalloc(bytes, 64);
    if (!p)
        *fail = 1;
    else
        memset(p, 0, bytes);
    return p;
}

/* Like zalloc but leaves the memory untouched (the KV cache: pages are
 * only faulted in when used). */
static void *ualloc(size_t n, size_t size, int *fail)
{
    size_t bytes = 0;
    if (bitnet__mul_ovf(n, size, &bytes)) {
        *fail = 1;
        return NULL;
    }
    if (bytes == 0)
        return NULL;
    void *p = bitnet__aalloc(bytes, 64);
    if (!p)
        *fail = 1;
    return p;
}

static int tmat_ok(const bitnet_tmat *w, int32_t rows, int32_t cols)
{
    return w->data && w->rows == rows && w->cols == cols && w->cols_padded == pad_k(cols);
}

void bitnet_context_free(bitnet_context *c)
{
    if (!c)
        return;
    bitnet__threadpool_free(c->tp);
    bitnet__afree(c->kcache);
    bitnet__afree(c->vcache);
    bitnet__afree(c->x);
    bitnet__afree(c->h);
    bitnet__afree(c->q);
    bitnet__afree(c->kx);
    bitnet__afree(c->vx);
    bitnet__afree(c->att);
    bitnet__afree(c->tmp);
    bitnet__afree(c->g);
    bitnet__afree(c->u);
    bitnet__afree(c->qa);
    bitnet__afree(c->as);
    bitnet__afree(c->asum);
    bitnet__afree(c->rcos);
    bitnet__afree(c->rsin);
    bitnet__afree(c->scores);
    bitnet__afree(c->q16);
    bitnet__afree(c->xo);
    bitnet__afree(c->hxq);
    bitnet__afree(c->logits[0]);
    bitnet__afree(c->logits[1]);
    free(c);
}

int bitnet_context_create(bitnet_context **out, const bitnet_model *model,
                          const bitnet_context_params *params)
{
    bitnet__clear_error();
    if (!out)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_create: out is NULL");
    *out = NULL;
    if (!model)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_create: model is NULL");
    bitnet_context_params p;
    bitnet_context_params_init(&p);
    if (params) {
        int rc = bitnet__params_merge(&p, sizeof(p), params, "bitnet_context_params");
        if (rc != BITNET_OK)
            return rc;
    }
    if (p.n_ctx < 0)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_create: n_ctx %d < 0", (int)p.n_ctx);
    if (p.n_threads < 0 || p.n_threads > MAX_THREADS)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_context_create: n_threads %d outside [0, %d]",
                             (int)p.n_threads, MAX_THREADS);
    if (p.n_batch < 0)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_create: n_batch %d < 0", (int)p.n_batch);
    if (p.flags & ~(uint32_t)BITNET_CONTEXT_INT8_HEAD)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_context_create: unknown flags 0x%x",
                             (unsigned)(p.flags & ~(uint32_t)BITNET_CONTEXT_INT8_HEAD));
    const struct bitnet_model *m = model;
    if (!m->layers)
        return bitnet__error(BITNET_E_UNSUPPORTED,
                             "bitnet_context_create: the model was loaded vocabulary-only");

    /* shapes (the loader checked them; keep the forward pass safe anyway) */
    int32_t D = m->n_embd, hd = m->head_dim, nh = m->n_head, nkv = m->n_head_kv;
    if (D <= 0 || hd <= 0 || nh <= 0 || nkv <= 0 || nh % nkv != 0 || m->n_ff <= 0 ||
        m->n_layer <= 0 || m->n_vocab <= 0 || m->n_rot < 0 || m->n_rot > hd || (m->n_rot & 1) ||
        !m->output_norm || !m->tok_embd.data || !m->output.data ||
        m->output.rows != m->n_vocab || m->output.cols != D || m->tok_embd.cols != D ||
        m->tok_embd.rows < m->n_vocab ||
        (int64_t)nh * hd > INT32_MAX / 4)
        return bitnet__error(BITNET_E_FORMAT, "bitnet_context_create: inconsistent model shape");
    int32_t Dq = nh * hd, Dkv = nkv * hd, F = m->n_ff;
    for (int32_t l = 0; l < m->n_layer; l++) {
        const bitnet_layer *L = &m->layers[l];
        if (!L->attn_norm || !L->ffn_norm ||
            !tmat_ok(&L->wq, Dq, D) || !tmat_ok(&L->wk, Dkv, D) || !tmat_ok(&L->wv, Dkv, D) ||
            !tmat_ok(&L->wo, D, Dq) || !tmat_ok(&L->wgate, F, D) || !tmat_ok(&L->wup, F, D) ||
            !tmat_ok(&L->wdown, D, F))
            return bitnet__error(BITNET_E_FORMAT,
                                 "bitnet_context_create: layer %d has inconsistent weights", (int)l);
    }

    bitnet_context *c = calloc(1, sizeof(*c));
    if (!c)
        return bitnet__error(BITNET_E_NOMEM, "bitnet_context_create: out of memory");
    c->model = m;
    c->D = D; c->Dq = Dq; c->Dkv = Dkv; c->F = F; c->hd = hd; c->nh = nh; c->nkv = nkv;
    c->nrot = m->n_rot;
    c->n_vocab = m->n_vocab;
    c->n_layer = m->n_layer;
    c->theta_scale = c->nrot > 0 ? powf(m->rope_base, -2.0f / (float)c->nrot) : 1.0f;
    c->kq_scale = 1.0f / sqrtf((float)hd);
    c->flags = p.flags;
    c->log.fn = p.log_fn;
    c->log.user = p.log_user;
    c->log.level = p.log_level;
    c->abort_fn = p.abort_fn;
    c->abort_user = p.abort_user;

    int32_t n_ctx = p.n_ctx;
    if (n_ctx == 0) {
        n_ctx = m->n_ctx_train > 0 ? m->n_ctx_train : 4096;
        if (n_ctx > 4096)
            n_ctx = 4096;
    }
    c->n_ctx = n_ctx;
    int32_t n_batch = p.n_batch == 0 ? 512 : p.n_batch;
    if (n_batch > n_ctx)
        n_batch = n_ctx;
    c->n_batch = n_batch;
    c->n_threads = p.n_threads == 0 ? bitnet__ncpu() : p.n_threads;
    if (c->n_threads > MAX_THREADS)
        c->n_threads = MAX_THREADS;

    bitnet__kernels_init(&c->k, bitnet__cpu_detect() & p.cpu_mask);

    int rc;
    if (p.flags & BITNET_CONTEXT_INT8_HEAD) {
        rc = bitnet__model_head_i8(m, &c->hi8);
        if (rc != BITNET_OK) {
            bitnet_context_free(c);
            return rc;
        }
        c->head_kind = HEAD_I8;
        c->hxq_size = c->hi8->ldw;
    } else if (m->output.type == BITNET_TYPE_F16) {
        c->head_kind = HEAD_F16;
    } else {
        c->head_kind = HEAD_FMAT;
        c->hxq_size = (bitnet__fmat_xq_size(&m->output) + 63) / 64 * 64;
    }

    int fail = 0;
    size_t nbz = (size_t)n_batch;
    c->kv_head_stride = (size_t)n_ctx * (size_t)hd;
    c->kv_layer_stride = (size_t)nkv * c->kv_head_stride;
    size_t kv_elems;
    if (bitnet__mul_ovf(c->kv_layer_stride, (size_t)m->n_layer, &kv_elems))
        fail = 1;
    if (!fail) {
        c->kcache = ualloc(kv_elems, sizeof(uint16_t), &fail);
        c->vcache = ualloc(kv_elems, sizeof(uint16_t), &fail);
    }
    int32_t kpad_max = pad_k(D);
    if (pad_k(Dq) > kpad_max) kpad_max = pad_k(Dq);
    if (pad_k(F) > kpad_max) kpad_max = pad_k(F);
    c->x = zalloc(nbz * D, sizeof(float), &fail);
    c->h = zalloc(nbz * D, sizeof(float), &fail);
    c->q = zalloc(nbz * Dq, sizeof(float), &fail);
    c->kx = zalloc(nbz * Dkv, sizeof(float), &fail);
    c->vx = zalloc(nbz * Dkv, sizeof(float), &fail);
    c->att = zalloc(nbz * Dq, sizeof(float), &fail);
    c->tmp = zalloc(nbz * D, sizeof(float), &fail);
    c->g = zalloc(nbz * F, sizeof(float), &fail);
    c->u = zalloc(nbz * F, sizeof(float), &fail);
    c->qa = zalloc(nbz * kpad_max, 1, &fail);
    c->as = zalloc(nbz, sizeof(float), &fail);
    c->asum = zalloc(nbz, sizeof(int32_t), &fail);
    if (c->nrot > 0) {
        c->rcos = zalloc(nbz * (c->nrot / 2), sizeof(float), &fail);
        c->rsin = zalloc(nbz * (c->nrot / 2), sizeof(float), &fail);
    }
    c->scores = zalloc((size_t)c->n_threads * n_ctx, sizeof(float), &fail);
    c->q16_stride = ((size_t)hd + 31) / 32 * 32;
    c->q16 = zalloc((size_t)c->n_threads * c->q16_stride, sizeof(uint16_t), &fail);
    c->xo = zalloc(nbz * D, sizeof(float), &fail);
    if (c->hxq_size)
        c->hxq = zalloc(nbz, c->hxq_size, &fail);
    c->logits[0] = zalloc((size_t)c->n_vocab, sizeof(float), &fail);
    c->logits[1] = zalloc((size_t)c->n_vocab, sizeof(float), &fail);
    c->logits_cap[0] = c->logits_cap[1] = 1;
    if (fail) {
        bitnet_context_free(c);
        return bitnet__error(BITNET_E_NOMEM,
                             "bitnet_context_create: out of memory (n_ctx %d, n_batch %d)",
                             (int)n_ctx, (int)n_batch);
    }
    rc = bitnet__threadpool_create(&c->tp, c->n_threads);
    if (rc != BITNET_OK) {
        bitnet_context_free(c);
        return rc;
    }
    bitnet__log(&c->log, BITNET_LOG_INFO,
                "context: n_ctx %d, n_batch %d, %d threads, tgemv %s, tgemm %s, head %s",
                (int)n_ctx, (int)n_batch, c->n_threads, c->k.name_tgemv, c->k.name_tgemm,
                c->head_kind == HEAD_F16 ? c->k.name_head_f16 :
                c->head_kind == HEAD_I8 ? c->k.name_head_i8 : "fmat");
    *out = c;
    return BITNET_OK;
}

/* ---- eval ------------------------------------------------------------- */

int bitnet_context_eval(bitnet_context *c, const int32_t *tokens, size_t n_tokens,
                        uint32_t flags)
{
    bitnet__clear_error();
    if (!c)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_eval: ctx is NULL");
    if (!tokens)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_eval: tokens is NULL");
    if (n_tokens == 0)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_eval: n_tokens is 0");
    if (flags & ~(uint32_t)BITNET_EVAL_ALL_LOGITS)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_eval: unknown flags 0x%x",
                             (unsigned)(flags & ~(uint32_t)BITNET_EVAL_ALL_LOGITS));
    if (n_tokens > (size_t)(c->n_ctx - c->pos))
        return bitnet__error(BITNET_E_CONTEXT_FULL,
                             "bitnet_context_eval: %zu tokens at position %d exceed n_ctx %d",
                             n_tokens, (int)c->pos, (int)c->n_ctx);
    for (size_t i = 0; i < n_tokens; i++)
        if (tokens[i] < 0 || tokens[i] >= c->n_vocab)
            return bitnet__error(BITNET_E_INVALID_ARG,
                                 "bitnet_context_eval: token %d at index %zu is outside [0, %d)",
                                 (int)tokens[i], i, (int)c->n_vocab);

    int all = (flags & BITNET_EVAL_ALL_LOGITS) != 0;
    size_t rows = all ? n_tokens : 1;
    int nxt = 1 - c->cur;
    if (c->logits_cap[nxt] < rows) {
        size_t bytes;
        if (bitnet__mul_ovf(rows, (size_t)c->n_vocab * sizeof(float), &bytes))
            return bitnet__error(BITNET_E_NOMEM, "bitnet_context_eval: logits too large");
        float *nl = bitnet__aalloc(bytes, 64);
        if (!nl)
            return bitnet__error(BITNET_E_NOMEM,
                                 "bitnet_context_eval: out of memory for %zu rows of logits", rows);
        bitnet__afree(c->logits[nxt]);
        c->logits[nxt] = nl;
        c->logits_cap[nxt] = rows;
    }

    step *st = &c->st;
    for (size_t off = 0; off < n_tokens; ) {
        int32_t nb = (int32_t)(n_tokens - off < (size_t)c->n_batch ? n_tokens - off : (size_t)c->n_batch);
        int last = off + (size_t)nb == n_tokens;
        st->tokens = tokens + off;
        st->nb = nb;
        st->p0 = c->pos + (int32_t)off;
        st->aborted = 0;
        if (all) {
            st->logits_mode = LOGITS_ALL;
            st->lout = c->logits[nxt] + off * (size_t)c->n_vocab;
        } else {
            st->logits_mode = last ? LOGITS_LAST : LOGITS_NONE;
            st->lout = c->logits[nxt];
        }
        bitnet__threadpool_run(c->tp, step_fn, c);
        if (st->aborted)
            return bitnet__error(BITNET_E_ABORTED, "bitnet_context_eval: aborted by the callback");
        off += (size_t)nb;
    }
    c->cur = nxt;
    c->n_logits = (int32_t)rows;
    c->n_call = (int32_t)n_tokens;
    c->logits_all = all;
    c->pos += (int32_t)n_tokens;
    return BITNET_OK;
}

int bitnet_context_logits(const bitnet_context *c, int32_t i, const float **out)
{
    bitnet__clear_error();
    if (!out)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_logits: out is NULL");
    *out = NULL;
    if (!c)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_logits: ctx is NULL");
    if (i < -1)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_logits: index %d < -1", (int)i);
    if (c->n_logits == 0)
        return bitnet__error(BITNET_E_STATE, "bitnet_context_logits: no logits (no eval since "
                             "creation, reset or rewind)");
    if (i >= c->n_call)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_context_logits: index %d but the last eval had %d tokens",
                             (int)i, (int)c->n_call);
    if (i == -1)
        i = c->n_call - 1;
    size_t row;
    if (c->logits_all) {
        row = (size_t)i;
    } else if (i == c->n_call - 1) {
        row = 0;
    } else {
        return bitnet__error(BITNET_E_STATE,
                             "bitnet_context_logits: logits of token %d were not kept "
                             "(use BITNET_EVAL_ALL_LOGITS)", (int)i);
    }
    *out = c->logits[c->cur] + row * (size_t)c->n_vocab;
    return BITNET_OK;
}

int32_t bitnet_context_pos(const bitnet_context *c)
{
    return c ? c->pos : 0;
}

int32_t bitnet_context_n_ctx(const bitnet_context *c)
{
    return c ? c->n_ctx : 0;
}

const bitnet_model *bitnet_context_model(const bitnet_context *c)
{
    return c ? c->model : NULL;
}

int bitnet_context_rewind(bitnet_context *c, int32_t pos)
{
    bitnet__clear_error();
    if (!c)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_rewind: ctx is NULL");
    if (pos < 0 || pos > c->pos)
        return bitnet__error(BITNET_E_INVALID_ARG,
                             "bitnet_context_rewind: position %d outside [0, %d]",
                             (int)pos, (int)c->pos);
    if (pos < c->pos) {
        c->pos = pos;
        c->n_logits = 0;
        c->n_call = 0;
    }
    return BITNET_OK;
}

void bitnet_context_reset(bitnet_context *c)
{
    if (!c)
        return;
    c->pos = 0;
    c->n_logits = 0;
    c->n_call = 0;
}

/* ---- state blobs ------------------------------------------------------
 *
 * Little-endian header (STATE_HEADER bytes):
 *   0 magic "BNST", 4 u32 version, 8 u64 model fingerprint,
 *   16 u32 n_layer, 20 u32 n_head_kv, 24 u32 head_dim, 28 u32 n_vocab,
 *   32 u32 position, 36 u32 number of logits rows (0 or 1)
 * then for each layer and KV head: K rows [pos][head_dim] fp16, then V rows;
 * then the logits row (float32); then a u64 checksum of everything before.
 * The blob does not depend on n_ctx: it loads into any context on the same
 * model whose n_ctx is at least the position. */

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* 64-bit multiply-xor hash over 8-byte words (not cryptographic: it
 * catches truncation and corruption). */
static uint64_t blob_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    for (; i < n; i++) {
        h = (h ^ p[i]) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 31;
    }
    return h ^ (h >> 33);
}

static size_t state_bytes(const bitnet_context *c, int32_t pos, int32_t n_logits)
{
    return STATE_HEADER
         + (size_t)c->n_layer * (size_t)c->nkv * 2 * (size_t)pos * (size_t)c->hd * sizeof(uint16_t)
         + (size_t)n_logits * (size_t)c->n_vocab * sizeof(float) + 8;
}

size_t bitnet_context_state_size(const bitnet_context *c)
{
    if (!c)
        return 0;
    return state_bytes(c, c->pos, c->n_logits > 0 ? 1 : 0);
}

int bitnet_context_state_save(const bitnet_context *c, void *buf, size_t cap, size_t *n_out)
{
    bitnet__clear_error();
    if (!c)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_save: ctx is NULL");
    if (!n_out)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_save: n_out is NULL");
    int32_t nl = c->n_logits > 0 ? 1 : 0;
    size_t need = state_bytes(c, c->pos, nl);
    *n_out = need;
    if (cap < need)
        return bitnet__error(BITNET_E_BUFFER_TOO_SMALL,
                             "bitnet_context_state_save: %zu bytes needed, %zu given", need, cap);
    if (!buf)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_save: buf is NULL");
    uint8_t *b = buf;
    put32(b + 0, STATE_MAGIC);
    put32(b + 4, STATE_VERSION);
    put64(b + 8, c->model->fingerprint);
    put32(b + 16, (uint32_t)c->n_layer);
    put32(b + 20, (uint32_t)c->nkv);
    put32(b + 24, (uint32_t)c->hd);
    put32(b + 28, (uint32_t)c->n_vocab);
    put32(b + 32, (uint32_t)c->pos);
    put32(b + 36, (uint32_t)nl);
    uint8_t *p = b + STATE_HEADER;
    size_t rowbytes = (size_t)c->pos * (size_t)c->hd * sizeof(uint16_t);
    for (int32_t l = 0; l < c->n_layer; l++) {
        for (int32_t j = 0; j < c->nkv; j++) {
            size_t off = (size_t)l * c->kv_layer_stride + (size_t)j * c->kv_head_stride;
            if (rowbytes) {
                memcpy(p, c->kcache + off, rowbytes);
                p += rowbytes;
                memcpy(p, c->vcache + off, rowbytes);
                p += rowbytes;
            }
        }
    }
    if (nl) {
        const float *lg;
        bitnet_context_logits(c, -1, &lg);
        memcpy(p, lg, (size_t)c->n_vocab * sizeof(float));
        p += (size_t)c->n_vocab * sizeof(float);
    }
    put64(p, blob_hash(b, (size_t)(p - b)));
    return BITNET_OK;
}

int bitnet_context_state_load(bitnet_context *c, const void *buf, size_t size)
{
    bitnet__clear_error();
    if (!c)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_load: ctx is NULL");
    if (!buf)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_context_state_load: buf is NULL");
    const uint8_t *b = buf;
    if (size < STATE_HEADER + 8 || get32(b) != STATE_MAGIC)
        return bitnet__error(BITNET_E_FORMAT,
                             "bitnet_context_state_load: not a libbitnet state blob (%zu bytes)", size);
    uint32_t version = get32(b + 4);
    if (version != STATE_VERSION)
        return bitnet__error(BITNET_E_STATE,
                             "bitnet_context_state_load: blob version %u, this library reads %u",
                             (unsigned)version, (unsigned)STATE_VERSION);
    if (get64(b + 8) != c->model->fingerprint ||
        get32(b + 16) != (uint32_t)c->n_layer || get32(b + 20) != (uint32_t)c->nkv ||
        get32(b + 24) != (uint32_t)c->hd || get32(b + 28) != (uint32_t)c->n_vocab)
        return bitnet__error(BITNET_E_STATE,
                             "bitnet_context_state_load: the blob was saved from another model");
    uint32_t pos = get32(b + 32), nl = get32(b + 36);
    if (nl > 1)
        return bitnet__error(BITNET_E_FORMAT, "bitnet_context_state_load: corrupt header");
    if (pos > (uint32_t)c->n_ctx)
        return bitnet__error(BITNET_E_STATE,
                             "bitnet_context_state_load: the blob holds %u positions, "
                             "this context only %d", (unsigned)pos, (int)c->n_ctx);
    size_t need = state_bytes(c, (int32_t)pos, (int32_t)nl);
    if (size != need)
        return bitnet__error(BITNET_E_FORMAT,
                             "bitnet_context_state_load: %zu bytes, expected %zu (truncated?)",
                             size, need);
    if (get64(b + need - 8) != blob_hash(b, need - 8))
        return bitnet__error(BITNET_E_FORMAT, "bitnet_context_state_load: checksum mismatch");

    const uint8_t *p = b + STATE_HEADER;
    size_t rowbytes = (size_t)pos * (size_t)c->hd * sizeof(uint16_t);
    for (int32_t l = 0; l < c->n_layer; l++) {
        for (int32_t j = 0; j < c->nkv; j++) {
            size_t off = (size_t)l * c->kv_layer_stride + (size_t)j * c->kv_head_stride;
            if (rowbytes) {
                memcpy(c->kcache + off, p, rowbytes);
                p += rowbytes;
                memcpy(c->vcache + off, p, rowbytes);
                p += rowbytes;
            }
        }
    }
    c->pos = (int32_t)pos;
    if (nl) {
        memcpy(c->logits[c->cur], p, (size_t)c->n_vocab * sizeof(float));
        c->n_logits = 1;
        c->n_call = 1;
    } else {
        c->n_logits = 0;
        c->n_call = 0;
    }
    c->logits_all = 0;
    return BITNET_OK;
}
