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

#ifndef BITNET_TMAT_ROW_CHUNK
# define BITNET_TMAT_ROW_CHUNK 16
#endif

#define ROW_CHUNK BITNET_TMAT_ROW_CHUNK
#define HEAD_CHUNK 64          /* head rows per thread-split unit */
#define MAX_THREADS 256

#define STATE_MAGIC 0x54534e42u   /* "BNST" little-endian */
#define STATE_VERSION 1u
#define STATE_HEADER 40

enum { LOGITS_NONE = 0, LOGITS_LAST, LOGITS_ALL };


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
    uint8_t *hxq;             /* [nb][head->xq_size] head activations */
    const bitnet_head *head;  /* the model's head, or its int8 copy */

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

#endif /* BITNET_EVAL_CONTEXT_H */
