/*
 * Contexts: creation, the F16 KV cache, eval calls cut into steps, logits,
 * positions. The forward pass is forward.c; state blobs are state.c.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/context.h"

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

/* Like zalloc but leaves the memory untouched (the KV cache: its pages are
 * faulted in as positions are written; huge pages when it is large, see
 * context.h for why its layout allows them). */
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

static void prof_print(const bitnet_context *c)
{
    static const char *kind[2] = { "decode", "prompt" };
    for (int k = 0; k < 2; k++) {
        const int64_t n = c->prof_steps[k];
        if (n == 0)
            continue;
        const double *t = c->prof_t[k], step = t[BITNET_PROF_STEP];
        double other = step;
        for (int i = 0; i < BITNET_PROF_STEP; i++)
            other -= t[i];
        const double ms = 1e3 / (double)n, pc = step > 0 ? 100.0 / step : 0;
        fprintf(stderr, "bitnet profile, %s: %" PRId64 " steps, %.3f ms per step: matrix "
                "products %.3f (%.0f %%), attention %.3f (%.0f %%), head %.3f (%.0f %%), "
                "single-thread parts %.3f (%.0f %%), other %.3f (%.0f %%)\n", kind[k], n,
                step * ms, t[BITNET_PROF_MATMUL] * ms, t[BITNET_PROF_MATMUL] * pc,
                t[BITNET_PROF_ATTN] * ms, t[BITNET_PROF_ATTN] * pc,
                t[BITNET_PROF_HEAD] * ms, t[BITNET_PROF_HEAD] * pc,
                t[BITNET_PROF_SERIAL] * ms, t[BITNET_PROF_SERIAL] * pc, other * ms, other * pc);
    }
}

void bitnet_context_free(bitnet_context *c)
{
    if (!c)
        return;
    if (c->prof)
        prof_print(c);
    bitnet__threadpool_free(c->tp);
    bitnet__afree(c->kcache);
    bitnet__afree(c->vcache);
    bitnet__afree(c->x);
    bitnet__afree(c->sched);
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
    bitnet__afree(c->attn_work);
    bitnet__afree(c->xo);
    bitnet__afree(c->hxq);
    bitnet__afree(c->toks);
    bitnet__afree(c->st_tok);
    bitnet__afree(c->st_pos);
    bitnet__afree(c->st_ctx);
    bitnet__afree(c->st_out);
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
    c->head = &m->head;
    if (p.flags & BITNET_CONTEXT_INT8_HEAD) {
        rc = bitnet__model_head_i8(m, &c->head);
        if (rc != BITNET_OK) {
            bitnet_context_free(c);
            return rc;
        }
    }

    int fail = 0;
    size_t nbz = (size_t)n_batch;
    c->kv_chunk = n_ctx < BITNET_ATTN_SEG ? (size_t)n_ctx : BITNET_ATTN_SEG;
    c->kv_head_stride = c->kv_chunk * (size_t)hd;
    c->kv_layer_stride = (size_t)nkv * c->kv_head_stride;
    c->kv_chunk_stride = (size_t)m->n_layer * c->kv_layer_stride;
    size_t kv_elems;
    if (bitnet__mul_ovf(c->kv_chunk_stride, ((size_t)n_ctx + c->kv_chunk - 1) / c->kv_chunk,
                        &kv_elems))
        fail = 1;
    if (!fail) {
        c->kcache = ualloc(kv_elems, sizeof(uint16_t), &fail);
        c->vcache = ualloc(kv_elems, sizeof(uint16_t), &fail);
        /* The first chunk on small pages: its rows of every layer and head
         * are first written by the first token, and on huge pages that
         * would fault in its whole 2 x 39 MB (2B4T) at once, which costs a
         * VM about 0.2 s (2 MiB pages first touched run ~2 ms each on this
         * project's hosts). The later chunks are faulted in ahead of use,
         * a little per token (bitnet__kv_touch_ahead). */
        if (c->kcache && c->vcache) {
            bitnet__pages_advise_small(c->kcache, c->kv_chunk_stride * sizeof(uint16_t));
            bitnet__pages_advise_small(c->vcache, c->kv_chunk_stride * sizeof(uint16_t));
        }
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
    c->attn_work_len = bitnet__attn_thread_len(nh / nkv, n_ctx, hd);
    c->attn_ctx = n_ctx;
    c->attn_work = zalloc((size_t)c->n_threads * c->attn_work_len +
                          bitnet__attn_part_len(nkv, nh / nkv, n_ctx, hd), sizeof(float), &fail);
    if (c->attn_work)
        c->attn_part = c->attn_work + (size_t)c->n_threads * c->attn_work_len;
    c->toks = zalloc((size_t)n_ctx, sizeof(int32_t), &fail);
    c->st_tok = zalloc(nbz, sizeof(int32_t), &fail);
    c->st_pos = zalloc(nbz, sizeof(int32_t), &fail);
    c->st_ctx = zalloc(nbz, sizeof(bitnet_context *), &fail);
    c->st_out = zalloc(nbz, sizeof(float *), &fail);
    c->xo = zalloc(nbz * D, sizeof(float), &fail);
    c->hxq = zalloc(nbz, c->head->xq_size, &fail);
    c->sched = zalloc(((size_t)c->n_layer * SCHED_PER_LAYER + 1) * (size_t)c->n_threads,
                      sizeof(sched_slot), &fail);
    c->logits[0] = zalloc((size_t)c->n_vocab, sizeof(float), &fail);
    c->logits[1] = zalloc((size_t)c->n_vocab, sizeof(float), &fail);
    c->logits_cap[0] = c->logits_cap[1] = 1;
    if (fail) {
        bitnet_context_free(c);
        return bitnet__error(BITNET_E_NOMEM,
                             "bitnet_context_create: out of memory (n_ctx %d, n_batch %d)",
                             (int)n_ctx, (int)n_batch);
    }
    const char *pe = getenv("BITNET_PROFILE");
    c->prof = pe && *pe && strcmp(pe, "0") != 0;
    rc = bitnet__threadpool_create(&c->tp, c->n_threads);
    if (rc != BITNET_OK) {
        bitnet_context_free(c);
        return rc;
    }
    bitnet__log(&c->log, BITNET_LOG_INFO,
                "context: n_ctx %d, n_batch %d, %d threads, tgemv %s, tgemm %s, head %s",
                (int)n_ctx, (int)n_batch, c->n_threads, c->k.name_tgemv, c->k.name_tgemm,
                bitnet__head_kernel_name(&c->k, c->head->fmt));
    *out = c;
    return BITNET_OK;
}

/* ---- eval ------------------------------------------------------------- */

/* Work of a step of nb tokens, in weight multiply-accumulates per stage: a
 * layer is about ten barrier-separated stages over its seven weight
 * matrices (the head's one stage is of the same order for the shapes
 * supported). */
static double step_work(const bitnet_context *c, int32_t nb)
{
    const bitnet_layer *L = &c->model->layers[0];
    const bitnet_tmat *w[7] = { &L->wq, &L->wk, &L->wv, &L->wo,
                                &L->wgate, &L->wup, &L->wdown };
    double per_token = 0;
    for (int i = 0; i < 7; i++)
        per_token += (double)w[i]->rows * (double)w[i]->cols;
    return per_token * nb / 10.0;
}

/* Run one step on the threads its work warrants, or on one when that has
 * measured faster on this machine's current load (the result is the same
 * for any count). */
void bitnet__eval_run_step(bitnet_context *c, int32_t nb)
{
    double work = step_work(c, nb);
    bitnet_thread_tuner *t = &c->tune[nb > 1];
    int want = bitnet__threads_for_work(c->n_threads, work);
    int nth = bitnet__tuner_choose(t, want);
    if (want <= 1 && !c->prof) {
        bitnet__threadpool_run_n(c->tp, bitnet__eval_step, c, 1);
        return;
    }
    double t0 = bitnet__now();
    c->prof_mark = t0;
    bitnet__threadpool_run_n(c->tp, bitnet__eval_step, c, nth);
    const double dt = bitnet__now() - t0;
    if (want > 1 && !c->st.aborted) /* an aborted step did not do its work */
        bitnet__tuner_record(t, nth, dt, work);
    if (c->prof) {
        c->prof_t[nb > 1][BITNET_PROF_STEP] += dt;
        c->prof_steps[nb > 1]++;
    }
}

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

    bitnet_context *seqs[1] = { c };
    return bitnet__eval_run(c, seqs, &tokens, &n_tokens, 1,
                            (flags & BITNET_EVAL_ALL_LOGITS) != 0, "bitnet_context_eval");
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
