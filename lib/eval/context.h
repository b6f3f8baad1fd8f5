/*
 * Private to lib/eval: the context object shared by its three files
 * (context.c: lifecycle and the eval entry points; forward.c: the forward
 * pass; state.c: state blobs).
 */
#ifndef BITNET_EVAL_CONTEXT_H
#define BITNET_EVAL_CONTEXT_H

#include "base/internal.h"
#include "model/model.h"
#include "kernels.h"
#include "base/threadpool.h"

#include <stdatomic.h>

#ifndef BITNET_TMAT_ROW_CHUNK
# define BITNET_TMAT_ROW_CHUNK 16
#endif

#define ROW_CHUNK BITNET_TMAT_ROW_CHUNK
#define HEAD_RUN 16            /* most tokens per head kernel call via the buffer */
#define HEAD_BLOCK 64          /* head rows streamed per token loop: 64 F16 rows of
                                  2560 are 320 KiB, kept in L2 across the tokens */
#define MAX_THREADS 256
/* stage kinds of the profile (BITNET_PROFILE) */
enum { BITNET_PROF_SERIAL, BITNET_PROF_MATMUL, BITNET_PROF_ATTN, BITNET_PROF_HEAD,
       BITNET_PROF_STEP, BITNET_PROF_KINDS };
/* Work of a matrix stage and of the head: each thread has its share of the
 * rows, which it takes front to back in chunks; a thread that ran out takes
 * chunks from the back of the others' shares. So a thread that got less
 * memory bandwidth does less instead of making the others wait at the
 * barrier, while each thread still streams through its own part of the
 * matrix. Which thread computes a row never changes its value (kernels.h),
 * so the logits stay independent of the thread count. Units: ROW_CHUNK
 * rows of a matrix, HEAD_BLOCK rows of the head. */
#define MM_CHUNK_UNITS 4       /* 64 rows (40 KiB of a 2560-column matrix);
                                  steps of several tokens: 4x that */
#define HEAD_CHUNK_BLOCKS 2    /* 128 head rows */
#define SCHED_PER_LAYER 5      /* qkv, wo, gate+up, down, a decode token's
                                  attention segments (units: items) */
#define SCHED_ATTN 4

/* One thread's share of one stage: front (low 32 bits) and back (high 32
 * bits) of the units not yet taken, on a cache line of its own. */
typedef struct sched_slot {
    _Atomic uint64_t fb;
    char pad[64 - sizeof(uint64_t)];
} sched_slot;

#define STATE_MAGIC 0x54534e42u   /* "BNST" little-endian */
#define STATE_VERSION 2u      /* 2 adds the token ids; 1 is still read */
#define STATE_HEADER 40

enum { LOGITS_NONE = 0, LOGITS_LAST, LOGITS_ALL };


struct bitnet_context;

/* One step: nb tokens, each of its own sequence (context) and position.
 * The tokens of one sequence are in order; several sequences may share a
 * step (bitnet_context_eval_multi). The arrays live in the scratch of the
 * context whose pool runs the step. */
typedef struct step {
    int32_t nb;
    const int32_t *tokens;            /* [nb] token ids */
    struct bitnet_context **tctx;     /* [nb] the context (KV cache) of each */
    const int32_t *tpos;              /* [nb] the position of each */
    float **tout;                     /* [nb] its logits row, or NULL */
    int any_out;                      /* some tout[t] is not NULL */
    struct bitnet_context *const *seqs; /* the call's contexts (abort checks) */
    size_t n_seqs;
    int aborted;                      /* set by thread 0 between layers */
} step;

struct bitnet_context {
    const struct bitnet_model *model;
    bitnet_kernels k;
    bitnet_threadpool *tp;
    bitnet_thread_tuner tune[2];    /* thread count: [0] decode, [1] prompt steps */
    /* BITNET_PROFILE=1 in the environment at creation: seconds per stage
     * kind as thread 0 saw them (a stage ends at its barrier, so its time
     * includes the wait for the slowest thread), [0] decode, [1] prompt
     * steps; printed to stderr by bitnet_context_free */
    int prof;
    double prof_t[2][BITNET_PROF_KINDS], prof_mark;
    int64_t prof_steps[2];
    int n_threads;
    int32_t n_ctx, n_batch;
    uint32_t flags;
    bitnet_logger log;
    bitnet_abort_fn abort_fn;
    void *abort_user;

    int32_t pos;
    int32_t *toks;            /* [n_ctx] token id at each cached position; -1 unknown */

    /* per-token step arrays, [n_batch] each */
    int32_t *st_tok, *st_pos;
    struct bitnet_context **st_ctx;
    float **st_out;

    /* shapes */
    int32_t D, Dq, Dkv, F, hd, nh, nkv, nrot, n_vocab, n_layer;
    float theta_scale, kq_scale;

    /* KV cache, fp16, in chunks of kv_chunk positions:
     * [n_ctx / kv_chunk][n_layer][n_head_kv][kv_chunk][head_dim] (the last
     * chunk may be partly past n_ctx). A chunk is an attention segment
     * (BITNET_ATTN_SEG positions, or n_ctx when smaller): the rows a kernel
     * call reads are contiguous, and the cache becomes resident chunk by
     * chunk as positions are used, so it can live on huge pages without a
     * long context's cache being resident from the first token. Row
     * addresses: bitnet__kv_off. */
    uint16_t *kcache, *vcache;
    size_t kv_chunk;          /* positions per chunk */
    size_t kv_head_stride;    /* kv_chunk * hd */
    size_t kv_layer_stride;   /* nkv * kv_head_stride */
    size_t kv_chunk_stride;   /* n_layer * kv_layer_stride */

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
    float *attn_work;         /* [n_threads][attn_work_len] attention scratch,
                                 then attn_part */
    size_t attn_work_len;     /* floats per thread */
    float *attn_part;         /* [n_kv][segments][group * (hd + 2)]: the
                                 segments of one decode token (forward.c) */
    int32_t attn_ctx;         /* positions attn_work_len has room for (>= the
                                 n_ctx of every context this one runs) */
    float *xo;                /* [nb][D] final normed hidden */
    uint8_t *hxq;             /* [nb][head->xq_size] head activations */
    const bitnet_head *head;  /* the model's head, or its int8 copy */
    sched_slot *sched;        /* [n_layer * SCHED_PER_LAYER + 1][n_threads]
                                 the shares of a step's stages (last: head) */

    /* logits: the current rows and a buffer the next eval writes into */
    float *logits[2];
    size_t logits_cap[2];     /* in rows */
    int cur;
    int32_t n_logits;         /* rows kept for the last call; 0: none */
    int32_t n_call;           /* tokens of the last call */
    int logits_all;

    step st;
};

static inline int32_t pad_k(int32_t k)
{
    return (k + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD;
}

/* One parallel region of the context's pool: runs c->st (a step of at most
 * n_batch tokens) through every layer and, as c->st asks, the head. */
void bitnet__eval_step(void *ctx, int ith, int nth);

/* Run c->st (nb tokens) on the threads its work warrants, or on one when
 * that has measured faster under the machine's current load (context.c;
 * the result is the same for any count). */
void bitnet__eval_run_step(bitnet_context *c, int32_t nb);

/* Evaluate tokens[i][0 .. n_tokens[i]) on seqs[i] for every i in one
 * pass per step, on the pool and scratch of `work` (one of seqs, or any
 * context of the model with the same kernels and head). Arguments are
 * checked by the caller. Each context ends as after a lone
 * bitnet_context_eval; on failure none changes. */
int bitnet__eval_run(bitnet_context *work, bitnet_context *const *seqs,
                     const int32_t *const *tokens, const size_t *n_tokens,
                     size_t n_seq, int all_logits, const char *fname);

/* Attention scratch for contexts of up to n_ctx positions (floats): per
 * thread the kernel's work and one segment's state (o and (m, l) of a
 * group, and the running (m, l)); after the threads' parts, the segments of
 * every KV head of one token, for a decode step whose segments are cut
 * among the threads. */
static inline size_t bitnet__attn_thread_len(int32_t group, int32_t n_ctx, int32_t hd)
{
    return (BITNET_ATTN_WORK(group, n_ctx, hd) + (size_t)group * ((size_t)hd + 4) + 15) / 16 * 16;
}
static inline size_t bitnet__attn_part_len(int32_t nkv, int32_t group, int32_t n_ctx, int32_t hd)
{
    const size_t nseg = ((size_t)n_ctx + BITNET_ATTN_SEG - 1) / BITNET_ATTN_SEG;
    return (size_t)nkv * nseg * (size_t)group * ((size_t)hd + 2);
}

/* Offset (elements) of the K or V row of (layer l, KV head j, position
 * pos) in c's cache; the rows from pos on are contiguous for
 * bitnet__kv_run(c, pos, n) of them. */
static inline size_t bitnet__kv_off(const struct bitnet_context *c, int32_t l, int32_t j,
                                    size_t pos)
{
    return pos / c->kv_chunk * c->kv_chunk_stride + (size_t)l * c->kv_layer_stride +
           (size_t)j * c->kv_head_stride + pos % c->kv_chunk * (size_t)c->hd;
}
static inline size_t bitnet__kv_run(const struct bitnet_context *c, size_t pos, size_t n)
{
    const size_t left = c->kv_chunk - pos % c->kv_chunk;
    return n < left ? n : left;
}
/* The first chunk starts on small pages (context.c) and is moved to huge
 * pages once the context reaches KV_PROMOTE_AT positions, one 2 MiB page
 * of K and one of V per position from there: a context that stays short
 * keeps only its written rows resident, a long one stops paying for small
 * pages in its attention (docs/eval.md §6). */
#define KV_PROMOTE_AT 256
#define KV_PROMOTE_PAGE ((size_t)2 << 20)
/* 2 MiB page i (counted from the one that holds the cache's first byte)
 * of the first chunk of cache, collapsed as far as it lies in the chunk;
 * 0 past the chunk's end */
static inline int bitnet__kv_promote1(uint16_t *cache, size_t bytes, size_t i)
{
    const uintptr_t s = (uintptr_t)cache, e = s + bytes;
    uintptr_t a = (s & ~(uintptr_t)(KV_PROMOTE_PAGE - 1)) + i * KV_PROMOTE_PAGE;
    if (a >= e)
        return 0;
    uintptr_t b = a + KV_PROMOTE_PAGE;
    if (a < s) a = s;
    if (b > e) b = e;
    bitnet__pages_collapse((void *)a, (size_t)(b - a));
    return 1;
}
/* The first chunk's pages as a context at position pos has them: pages
 * 0 .. pos - KV_PROMOTE_AT (after a state load or copy; a token's own
 * step does one page, bitnet__kv_touch_ahead) */
static inline void bitnet__kv_promote(const struct bitnet_context *c, size_t i0, size_t pos)
{
    const size_t bytes = c->kv_chunk_stride * sizeof(uint16_t);
    for (size_t i = i0; pos >= KV_PROMOTE_AT && i <= pos - KV_PROMOTE_AT; i++) {
        const int k = bitnet__kv_promote1(c->kcache, bytes, i);
        const int v = bitnet__kv_promote1(c->vcache, bytes, i);
        if (!k && !v)
            break;
    }
}
/* After the rows of position pos are written: fault in the slice of the
 * next chunk that belongs to pos's place in its own chunk (1/kv_chunk of
 * it), so that the next chunk's pages (huge pages: 2 MiB each) come in
 * spread over this chunk's tokens instead of all at its first token; and
 * at positions KV_PROMOTE_AT.., a page of the first chunk to huge pages.
 * Rows past the context's position are never read, so this changes no
 * result. */
static inline void bitnet__kv_touch_ahead(const struct bitnet_context *c, size_t pos)
{
    if (pos >= KV_PROMOTE_AT && pos < KV_PROMOTE_AT + c->kv_chunk)
        bitnet__kv_promote(c, pos - KV_PROMOTE_AT, pos);
    const size_t ch = pos / c->kv_chunk + 1, o = pos % c->kv_chunk;
    if (ch * c->kv_chunk >= (size_t)c->n_ctx)
        return;
    const size_t bytes = c->kv_chunk_stride * sizeof(uint16_t);
    const size_t a = bytes / c->kv_chunk * o, b = o + 1 == c->kv_chunk ? bytes : a + bytes / c->kv_chunk;
    bitnet__pages_populate((uint8_t *)(c->kcache + ch * c->kv_chunk_stride) + a, b - a);
    bitnet__pages_populate((uint8_t *)(c->vcache + ch * c->kv_chunk_stride) + a, b - a);
}

#endif /* BITNET_EVAL_CONTEXT_H */
