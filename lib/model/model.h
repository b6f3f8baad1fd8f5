/*
 * The loaded model: hyperparameters, weights in kernel layout, vocabulary.
 * Immutable after bitnet_model_load_*(): contexts only read it.
 */
#ifndef BITNET_MODEL_H
#define BITNET_MODEL_H

#include <pthread.h>

#include "base/arena.h"
#include "base/internal.h"
#include "format/source.h"
#include "kernels.h"

struct bitnet_vocab;

enum bitnet_arch {
    BITNET_ARCH_B158 = 0,   /* "bitnet-b1.58", "bitnet-25": 2B4T graph */
    BITNET_ARCH_BITNET,     /* "bitnet": 1bitLLM / mainline graph */
    BITNET_ARCH_LLAMA       /* "llama" with ternary linear weights */
};

enum bitnet_ffn_act {
    BITNET_FFN_RELU2 = 0,   /* relu(gate)^2 * up */
    BITNET_FFN_SILU         /* silu(gate) * up */
};

/* A float matrix used for the embedding lookup and the output head, kept in
 * its file type (F32, F16, BF16, Q8_0, Q4_0 or Q6_K), row-major. */
typedef struct bitnet_fmat {
    uint32_t type;            /* ggml type id */
    int32_t rows;             /* n_vocab */
    int32_t cols;             /* n_embd */
    size_t row_bytes;
    const uint8_t *data;      /* into the mapped file or owned */
} bitnet_fmat;

typedef struct bitnet_layer {
    float *attn_norm;         /* [n_embd] */
    float *attn_sub_norm;     /* [n_embd] or NULL (llama) */
    float *ffn_norm;          /* [n_embd] */
    float *ffn_sub_norm;      /* [n_ff] or NULL (llama) */
    bitnet_tmat wq, wk, wv, wo, wgate, wup, wdown;
} bitnet_layer;

/* Optional int8 copy of the output head (per-row scale), built at load with
 * BITNET_MODEL_INT8_HEAD or lazily on first use (under head_lock). */
typedef struct bitnet_head_i8 {
    int8_t *w;                /* rows x ldw, ldw = cols padded to BITNET_KPAD */
    float *scale;             /* [rows] */
    size_t ldw;
} bitnet_head_i8;

struct bitnet_model {
    char *arch_name;
    int arch;                 /* enum bitnet_arch */
    int ffn_act;              /* enum bitnet_ffn_act */

    int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_ff;
    int32_t n_head, n_head_kv, head_dim, n_rot;
    float norm_eps, rope_base;
    int rope_neox;            /* 1: NEOX pairs (i, i+n_rot/2); 0: llama NORM pairs (2i, 2i+1) */

    bitnet_layer *layers;     /* [n_layer] */
    float *output_norm;       /* [n_embd] */
    bitnet_fmat tok_embd;     /* embedding lookup */
    bitnet_fmat output;       /* output head (== tok_embd when tied) */

    pthread_mutex_t head_lock;
    bitnet_head_i8 *head_i8;  /* NULL until built */

    struct bitnet_vocab *vocab;
    bitnet_source *src;       /* owns the file; tensors and metadata stay
                                 available through it */
    uint32_t flags;           /* BITNET_MODEL_* */
    bitnet_logger log;
    uint64_t fingerprint;     /* hash of hyperparameters + tensor layout, for state blobs */

    /* private to the loader (model/load.c, model/weights.c) */
    uint8_t *fmat_owned[2];   /* aligned copies of tok_embd/output when the
                                 caller's buffer is misaligned */
    int32_t n_tensors_used;
    bitnet_arena arena;       /* one allocation holding every bitnet_tmat's
                                 data (an anonymous mapping when large) */
};

/* Load a model from any source (format/source.h); the model owns src from
 * here on (it is freed on failure too). bitnet_model_load_file/_buffer are
 * this over the source that bitnet__source_open_file/_buffer give. */
int bitnet__model_load_source(struct bitnet_model **out, bitnet_source *src,
                              const bitnet_model_params *params);

/* Build (once, thread-safe) the int8 head copy. BITNET_OK or BITNET_E_NOMEM. */
int bitnet__model_head_i8(const struct bitnet_model *m, const bitnet_head_i8 **out);

/* Dequantise row `row` of an embedding/head matrix to floats. */
void bitnet__fmat_row(const bitnet_fmat *m, int32_t row, float *out);

/* Output head for the non-F16 types (F16 goes through the kernel table's
 * head_f16). Once per token: quantise the hidden state x[cols] into xq
 * (bitnet__fmat_xq_size bytes; any alignment): Q8_0 blocks for Q8_0/Q4_0
 * heads, Q8_K blocks for Q6_K heads, plain floats for F32/F16/BF16. Then
 * y[r - r0] = row r . x for rows [r0, r1), computed like llama.cpp:
 * sum over blocks of (integer block dot) * (d_w * d_x). */
size_t bitnet__fmat_xq_size(const bitnet_fmat *m);
void bitnet__fmat_quantize_x(const bitnet_fmat *m, const float *x, void *xq);
void bitnet__fmat_dot_rows(const bitnet_fmat *m, int32_t r0, int32_t r1,
                           const void *xq, float *y);

/* Decode a linear-weight tensor (I2_S, TQ2_0, TQ1_0, F32, F16, BF16) of
 * rows x cols = ne1 x ne0 into ternary t[rows*cols] (row-major) and one
 * scale, by the rule of docs/formats.md. BITNET_E_FORMAT names the tensor.
 * Used by the loader and the tests. */
int bitnet__ternary_decode(const bitnet_tensor_desc *t, int8_t *out, float *scale);

/* ---- between the loader's files (model/load.c, model/weights.c) ------ */

/* Elements of a 1-D view of an F32, F16 or BF16 tensor as floats. */
void bitnet__to_float(uint32_t type, const uint8_t *src, size_t n, float *dst);
/* Index of the first Inf/NaN among n F32, F16 or BF16 values at p, or
 * SIZE_MAX when all are finite. */
size_t bitnet__first_nonfinite(uint32_t type, const uint8_t *p, size_t n);
/* Arena bytes reserved for a rows x cols packed matrix. */
size_t bitnet__tmat_reserve(int32_t rows, int32_t cols);
/* Decode t (shape-checked, rows x cols = ne1 x ne0) and pack it into w in
 * m's arena; *scratch (of *scratch_cap bytes) is reused between calls. */
int bitnet__tmat_load(struct bitnet_model *m, bitnet_tmat *w, const bitnet_tensor_desc *t,
                      int8_t **scratch, size_t *scratch_cap);

#endif /* BITNET_MODEL_H */
