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
    bitnet_fmat output;       /* output head (the file's matrix; == tok_embd
                                 when tied, until a copied F16 head takes
                                 over the embedding's lookups: tied_head) */
    int tied_head;            /* the file has no output.weight */

    bitnet_head head;         /* the output head chosen at load (head.c) */
    uint8_t *head_owned;      /* its data when converted at load */
    pthread_mutex_t head_lock;
    bitnet_head *head_i8;     /* int8 copy (owned), NULL until built */

    /* what a later stage derives from the model once and keeps for the
     * model's life (the grammar's token tables, lib/sample/sampler.c) */
    pthread_mutex_t attach_lock;
    void *attach;
    void (*attach_free)(void *);

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

/* Output head (lib/model/head.c). Setup at load: head_type is a
 * BITNET_HEAD_* value (BITNET_E_INVALID_ARG otherwise); fills m->head. */
int bitnet__model_head_setup(struct bitnet_model *m, int32_t head_type);
void bitnet__model_head_free(struct bitnet_model *m);
/* Build (once, thread-safe) the int8 head copy. BITNET_OK or BITNET_E_NOMEM. */
int bitnet__model_head_i8(const struct bitnet_model *m, const bitnet_head **out);
/* enum bitnet_head_fmt of a ggml type id, -1 if not a head type. */
int bitnet__head_fmt_of_type(uint32_t ggml_type);

/* Dequantise row `row` of an embedding/head matrix to floats. */
void bitnet__fmat_row(const bitnet_fmat *m, int32_t row, float *out);

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
