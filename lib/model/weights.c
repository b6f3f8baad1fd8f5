/*
 * Linear weights: decoding a file's tensor (I2_S, TQ2_0, TQ1_0 or float
 * master weights) to ternary values and one scale, and packing them into
 * the kernel layout (kernels.h) in the model's arena. Formats:
 * docs/formats.md.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/internal.h"
#include "base/threadpool.h"
#include "model/model.h"

#define NAME_FMT "%.*s"
#define NAME_ARG(s) (int)((s).len > 96 ? 96 : (s).len), (s).ptr

/* ====================================================================== */
/* Ternary decoding                                                       */
/* ====================================================================== */

/* fp16 -> fp32 for all 65536 values (256 KiB), built once */
static float fp16_table[65536];
static pthread_once_t fp16_once = PTHREAD_ONCE_INIT;

static void fp16_table_init(void)
{
    for (uint32_t i = 0; i < 65536; i++)
        fp16_table[i] = bitnet__fp16_to_fp32((uint16_t)i);
}

/* Elements of a 1-D view of a float tensor as float. */
void bitnet__to_float(uint32_t type, const uint8_t *src, size_t n, float *dst)
{
    if (type == GGML_T_F32) {
        memcpy(dst, src, n * 4);
    } else if (type == GGML_T_F16) {
        pthread_once(&fp16_once, fp16_table_init);
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = fp16_table[h];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = bitnet__bf16_to_fp32(h);
        }
    }
}

size_t bitnet__first_nonfinite(uint32_t type, const uint8_t *p, size_t n)
{
    /* A value is not finite when its exponent bits are all ones. 64-bit
     * words hold 4 halves or 2 floats: lane-wise, z = (x & E) ^ E is zero
     * exactly in such lanes, and (z - 1) & ~z & top is non-zero when some
     * lane of z is zero. Chunks are tested as a whole (this runs at memory
     * speed over an embedding of hundreds of MB); only a chunk that fails
     * is searched again for the index. */
    const size_t es = type == GGML_T_F32 ? 4 : 2;
    const uint64_t E = type == GGML_T_F32 ? 0x7F8000007F800000ull :
                       type == GGML_T_F16 ? 0x7C007C007C007C00ull : 0x7F807F807F807F80ull;
    const uint64_t one = es == 4 ? 0x0000000100000001ull : 0x0001000100010001ull;
    const uint64_t top = es == 4 ? 0x8000000080000000ull : 0x8000800080008000ull;
    const size_t per_word = 8 / es;
    enum { CHUNK = 4096 };
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        const size_t k = n - i0 < CHUNK ? n - i0 : CHUNK;
        const size_t nw = k / per_word;
        const uint8_t *q = p + i0 * es;
        uint64_t acc = 0;
        for (size_t w = 0; w < nw; w++) {
            uint64_t x;
            memcpy(&x, q + 8 * w, 8);
            uint64_t z = (x & E) ^ E;
            acc |= (z - one) & ~z & top;
        }
        int bad = acc != 0;
        for (size_t i = nw * per_word; i < k && !bad; i++) {
            uint64_t x = 0;
            memcpy(&x, q + i * es, es);
            bad = (x & E & (es == 4 ? 0xFFFFFFFFull : 0xFFFFull)) ==
                  (E & (es == 4 ? 0xFFFFFFFFull : 0xFFFFull));
        }
        if (!bad) continue;
        for (size_t i = i0; i < i0 + k; i++) {
            float f;
            bitnet__to_float(type, p + es * i, 1, &f);
            if (!isfinite(f)) return i;
        }
    }
    return SIZE_MAX;
}

/* ---- float master weights: the ternarisation rule ---------------------
 * Values already {-c, 0, +c} are kept exactly (scale c); otherwise BitNet's
 * absmean rule: s = mean |w| (at least 1e-5), t = clamp(round(w / s)).
 * The tensor is read in chunks of TCHUNK elements, converted to float on
 * the way (no float copy of the tensor), in three passes: scan (first
 * non-finite element, the exactness test, the chunk's sum of |w| in double,
 * in element order), then the scale from the chunk sums added in chunk
 * order, then the values. Chunks are cut among the threads of a pool when
 * there is one; the chunking, and so the result, does not depend on the
 * thread count. A 2B4T-shaped bf16 checkpoint took 35-68 s to load on one
 * thread with a 4-byte float copy of each tensor (fresh pages each time). */
#define TCHUNK 16384
#define TPAR_MIN ((size_t)1 << 20)    /* elements: below, one thread */

typedef struct tern_chunk {
    double sum;      /* sum of |w| in element order */
    float c;         /* first nonzero |w|, 0 if none */
    int exact;       /* every nonzero |w| equals c */
    size_t bad;      /* first non-finite element (global index) or SIZE_MAX */
} tern_chunk;

typedef struct tern_job {
    uint32_t type;
    const uint8_t *src;
    size_t esize, n, nch;
    int8_t *out;
    tern_chunk *ch;
    float *buf;              /* [nth][TCHUNK] */
    bitnet_threadpool *tp;
    float scale;             /* set by thread 0 between the passes */
    int exact;
    size_t bad;
    /* encoding into the kernel layout (tmat_load): rows of cols values */
    uint8_t *dst;
    int32_t rows, cols, nb;
} tern_job;

static void tern_sync(const tern_job *j)
{
    if (j->tp) bitnet__threadpool_barrier(j->tp);
}

/* round(x) clamped to [-1, 1], as nearbyintf (ties to even) then the clamp,
 * for every finite or infinite x: |x| <= 0.5 gives 0 */
static inline int8_t tern_q(float x)
{
    return (int8_t)(x > 0.5f ? 1 : x < -0.5f ? -1 : 0);
}

static void encode_row(const int8_t *t, int32_t cols, int32_t nb, uint8_t *dst,
                       int32_t row);

static void tern_task(void *arg, int ith, int nth)
{
    tern_job *j = arg;
    float *v = j->buf + (size_t)ith * TCHUNK;
    const size_t c0 = j->nch * (size_t)ith / (size_t)nth;
    const size_t c1 = j->nch * (size_t)(ith + 1) / (size_t)nth;
    if (j->type != UINT32_MAX) {
        for (size_t k = c0; k < c1; k++) {
            const size_t i0 = k * TCHUNK, m = j->n - i0 < TCHUNK ? j->n - i0 : TCHUNK;
            bitnet__to_float(j->type, j->src + i0 * j->esize, m, v);
            tern_chunk *ch = &j->ch[k];
            ch->sum = 0.0;
            ch->c = 0.0f;
            ch->exact = 1;
            ch->bad = SIZE_MAX;
            for (size_t i = 0; i < m; i++) {
                const float a = fabsf(v[i]);
                if (!isfinite(a)) {
                    ch->bad = i0 + i;
                    break;
                }
                ch->sum += (double)a;
                if (a == 0.0f) continue;
                if (ch->c == 0.0f) ch->c = a;
                else if (a != ch->c) ch->exact = 0;
            }
        }
        tern_sync(j);
        if (ith == 0) {
            float c = 0.0f;
            int exact = 1;
            double sum = 0.0;
            j->bad = SIZE_MAX;
            for (size_t k = 0; k < j->nch; k++) {
                const tern_chunk *ch = &j->ch[k];
                if (ch->bad != SIZE_MAX) {
                    j->bad = ch->bad;
                    break;
                }
                sum += ch->sum;
                if (!ch->exact) exact = 0;
                if (ch->c == 0.0f) continue;
                if (c == 0.0f) c = ch->c;
                else if (ch->c != c) exact = 0;
            }
            if (exact && c > 0.0f) {
                j->exact = 1;
                j->scale = c;
            } else {
                double mean = j->n ? sum / (double)j->n : 0.0;
                if (mean < 1e-5) mean = 1e-5;
                j->exact = 0;
                j->scale = (float)mean;
            }
        }
        tern_sync(j);
        if (j->bad != SIZE_MAX)
            return;
        const float s = j->scale;
        for (size_t k = c0; k < c1; k++) {
            const size_t i0 = k * TCHUNK, m = j->n - i0 < TCHUNK ? j->n - i0 : TCHUNK;
            bitnet__to_float(j->type, j->src + i0 * j->esize, m, v);
            int8_t *t = j->out + i0;
            if (j->exact) {
                for (size_t i = 0; i < m; i++)
                    t[i] = (int8_t)(v[i] > 0.0f ? 1 : v[i] < 0.0f ? -1 : 0);
            } else {
                for (size_t i = 0; i < m; i++)
                    t[i] = tern_q(v[i] / s);
            }
        }
    }
    if (j->dst) {
        tern_sync(j);
        const int32_t r0 = (int32_t)((int64_t)j->rows * ith / nth);
        const int32_t r1 = (int32_t)((int64_t)j->rows * (ith + 1) / nth);
        for (int32_t r = r0; r < r1; r++)
            encode_row(j->out + (size_t)r * (size_t)j->cols, j->cols, j->nb, j->dst, r);
    }
}

/* A pool for a tensor of n elements, or NULL (one thread): workers only
 * pay off for large tensors. */
static bitnet_threadpool *tern_pool(size_t n)
{
    int nth = bitnet__ncpu();
    if (nth > 16) nth = 16;
    bitnet_threadpool *tp = NULL;
    if (n >= TPAR_MIN && nth > 1 && bitnet__threadpool_create(&tp, nth) != BITNET_OK) {
        bitnet__clear_error();              /* no workers: this thread alone */
        tp = NULL;
    }
    return tp;
}

/* Run job j (type UINT32_MAX: encode only) on tp or on this thread. */
static int tern_run(tern_job *j, bitnet_threadpool *tp, const bitnet_str name)
{
    const int nth = tp ? bitnet__threadpool_n(tp) : 1;
    j->tp = tp;
    j->nch = (j->n + TCHUNK - 1) / TCHUNK;
    j->ch = NULL;
    j->buf = NULL;
    if (j->type != UINT32_MAX) {
        j->ch = malloc((j->nch ? j->nch : 1) * sizeof(*j->ch));
        j->buf = malloc((size_t)nth * TCHUNK * sizeof(float));
        if (!j->ch || !j->buf) {
            free(j->ch);
            free(j->buf);
            return bitnet__error(BITNET_E_NOMEM, "tensor '" NAME_FMT "': out "
                                 "of memory", NAME_ARG(name));
        }
    }
    if (tp) bitnet__threadpool_run(tp, tern_task, j);
    else tern_task(j, 0, 1);
    free(j->ch);
    free(j->buf);
    if (j->type != UINT32_MAX && j->bad != SIZE_MAX)
        return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                             "non-finite weight at element %zu",
                             NAME_ARG(name), j->bad);
    return BITNET_OK;
}

/* Float tensor t (F32, F16, BF16) of n elements to ternary values; with dst,
 * also encoded into the kernel layout (rows x cols, nb blocks a row). */
static int ternarise_float(const bitnet_tensor_desc *t, size_t n, int8_t *out, float *scale,
                           bitnet_threadpool *tp, uint8_t *dst, int32_t rows, int32_t cols,
                           int32_t nb)
{
    tern_job j;
    memset(&j, 0, sizeof(j));
    j.type = t->type;
    j.src = t->data;
    j.esize = t->type == GGML_T_F32 ? 4 : 2;
    j.n = n;
    j.out = out;
    j.dst = dst;
    j.rows = rows;
    j.cols = cols;
    j.nb = nb;
    int rc = tern_run(&j, tp, t->name);
    if (rc == BITNET_OK)
        *scale = j.scale;
    return rc;
}

/* The rule on a float array (dequantised TQ blocks): the same passes. */
static int ternarise(const float *w, size_t n, int8_t *t, float *scale,
                     const bitnet_str name)
{
    bitnet_tensor_desc d;
    memset(&d, 0, sizeof(d));
    d.type = GGML_T_F32;
    d.data = (const uint8_t *)w;
    d.name = name;
    return ternarise_float(&d, n, t, scale, NULL, NULL, 0, 0, 0);
}

/* An I2_S tensor's one scale must be positive and finite: zero would make
 * every weight zero, a negative one flips signs the format cannot express
 * (bitnet.cpp writes the absmean of the master weights). */
static int check_i2s_scale(float s, const bitnet_str name)
{
    if (!isfinite(s))
        return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': I2_S "
                             "scale is not finite", NAME_ARG(name));
    if (!(s > 0.0f))
        return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': I2_S "
                             "scale %g is not positive", NAME_ARG(name), (double)s);
    return BITNET_OK;
}

/* I2_S: 128-element blocks over the flattened tensor, element j of a block
 * in byte j % 32 at bits 7-2(j/32)..6-2(j/32), code c = t + 1. */
static int decode_i2s(const bitnet_tensor_desc *t, size_t n, int8_t *out,
                      float *scale)
{
    const uint8_t *d = t->data;
    for (size_t b = 0; b < n / 128; b++) {
        const uint8_t *blk = d + 32 * b;
        int8_t *o = out + 128 * b;
        for (int k = 0; k < 32; k++) {
            uint8_t x = blk[k];
            if (x & (x >> 1) & 0x55)
                return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                     "invalid I2_S code 3 in block %zu",
                                     NAME_ARG(t->name), b);
            o[k] = (int8_t)((x >> 6) - 1);
            o[32 + k] = (int8_t)(((x >> 4) & 3) - 1);
            o[64 + k] = (int8_t)(((x >> 2) & 3) - 1);
            o[96 + k] = (int8_t)((x & 3) - 1);
        }
    }
    float s;
    memcpy(&s, d + n / 4, 4);
    int rc = check_i2s_scale(s, t->name);
    if (rc) return rc;
    *scale = s;
    return BITNET_OK;
}

static void tq2_block(const uint8_t *b, int8_t *o, int *bad)
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 4; l++)
            for (int m = 0; m < 32; m++) {
                int c = (b[32 * h + m] >> (2 * l)) & 3;
                *bad |= c == 3;
                o[128 * h + 32 * l + m] = (int8_t)(c - 1);
            }
}

static int trit(uint8_t byte, int n)
{
    static const uint8_t pow3[5] = { 1, 3, 9, 27, 81 };
    uint8_t q = (uint8_t)(byte * pow3[n]);
    return ((uint16_t)q * 3) >> 8;
}

static void tq1_block(const uint8_t *b, int8_t *o)
{
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 32; m++)
            o[32 * n + m] = (int8_t)(trit(b[m], n) - 1);
    for (int n = 0; n < 5; n++)
        for (int m = 0; m < 16; m++)
            o[160 + 16 * n + m] = (int8_t)(trit(b[32 + m], n) - 1);
    for (int n = 0; n < 4; n++)
        for (int j = 0; j < 4; j++)
            o[240 + 4 * n + j] = (int8_t)(trit(b[48 + j], n) - 1);
}

static int decode_tq(const bitnet_tensor_desc *t, size_t n, int8_t *out,
                     float *scale)
{
    const size_t bs = t->type == GGML_T_TQ2_0 ? 66 : 54;
    const size_t nb = n / 256;
    uint16_t d0 = 0;
    int same = 1, any = 0, bad = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = t->data + bs * b;
        uint16_t d;
        memcpy(&d, blk + bs - 2, 2);
        if (t->type == GGML_T_TQ2_0) tq2_block(blk, out + 256 * b, &bad);
        else tq1_block(blk, out + 256 * b);
        float df = bitnet__fp16_to_fp32(d);
        if (!isfinite(df))
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                 "non-finite scale in block %zu",
                                 NAME_ARG(t->name), b);
        if (df == 0.0f) {
            memset(out + 256 * b, 0, 256);
            continue;
        }
        if (!any) { d0 = d; any = 1; }
        else if (d != d0) same = 0;
    }
    if (bad)
        return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': invalid "
                             "TQ2_0 code 3", NAME_ARG(t->name));
    if (same) {
        *scale = any ? bitnet__fp16_to_fp32(d0) : 1e-5f;
        return BITNET_OK;
    }
    /* block scales differ: dequantise and apply the absmean rule */
    float *w = malloc(n * sizeof(float));
    if (!w)
        return bitnet__error(BITNET_E_NOMEM, "tensor '" NAME_FMT "': out of "
                             "memory", NAME_ARG(t->name));
    for (size_t b = 0; b < nb; b++) {
        uint16_t d;
        memcpy(&d, t->data + bs * b + bs - 2, 2);
        float df = bitnet__fp16_to_fp32(d);
        for (size_t i = 0; i < 256; i++)
            w[256 * b + i] = (float)out[256 * b + i] * df;
    }
    int rc = ternarise(w, n, out, scale, t->name);
    free(w);
    return rc;
}

int bitnet__ternary_decode(const bitnet_tensor_desc *t, int8_t *out, float *scale)
{
    size_t n = (size_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
    switch (t->type) {
    case GGML_T_I2_S:
        return decode_i2s(t, n, out, scale);
    case GGML_T_TQ1_0:
    case GGML_T_TQ2_0:
        return decode_tq(t, n, out, scale);
    case GGML_T_F32:
    case GGML_T_F16:
    case GGML_T_BF16: {
        bitnet_threadpool *tp = tern_pool(n);
        int rc = ternarise_float(t, n, out, scale, tp, NULL, 0, 0, 0);
        bitnet__threadpool_free(tp);
        return rc;
    }
    default:
        return bitnet__error(BITNET_E_UNSUPPORTED, "tensor '" NAME_FMT "': "
                             "type %s is not supported for linear weights",
                             NAME_ARG(t->name), bitnet__ggml_type_name(t->type));
    }
}

/* ====================================================================== */
/* Packing into the kernel layout                                         */
/* ====================================================================== */

/* kernels.h: rows padded to BITNET_TMAT_GROUP, stored group by group; in a
 * group, for each 128-column block, the 32-byte I2_S blocks of the group's
 * rows in order. A row's 32-byte blocks are therefore placed by this. */
static uint8_t *block_dst(uint8_t *dst, int32_t nb, int32_t row, int32_t b)
{
    size_t g = (size_t)(row / BITNET_TMAT_GROUP), i = (size_t)(row % BITNET_TMAT_GROUP);
    return dst + ((g * (size_t)nb + (size_t)b) * BITNET_TMAT_GROUP + i) * 32;
}

/* Encode one row of t (cols values) as I2_S blocks, padded with code 1. */
static void encode_row(const int8_t *t, int32_t cols, int32_t nb, uint8_t *dst,
                       int32_t row)
{
    for (int32_t b = 0; b < nb; b++) {
        uint8_t blk[32];
        int8_t v[128];
        int32_t c0 = b * 128, k = cols - c0 < 128 ? cols - c0 : 128;
        memcpy(v, t + c0, (size_t)k);
        memset(v + k, 0, (size_t)(128 - k));
        for (int j = 0; j < 32; j++)
            blk[j] = (uint8_t)((v[j] + 1) << 6 | (v[32 + j] + 1) << 4 |
                               (v[64 + j] + 1) << 2 | (v[96 + j] + 1));
        memcpy(block_dst(dst, nb, row, b), blk, 32);
    }
}

size_t bitnet__tmat_reserve(int32_t rows, int32_t cols)
{
    return (bitnet__tmat_packed_size(rows, cols) + 63) & ~(size_t)63;
}

/* Take w's packed storage from the model's arena. Every byte is written by
 * the caller except the padding rows of the last group, set here. */
static int tmat_alloc(bitnet_model *m, bitnet_tmat *w, int32_t rows,
                      int32_t cols, const bitnet_str name)
{
    w->rows = rows;
    w->cols = cols;
    w->cols_padded = (cols + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD;
    w->size = bitnet__tmat_packed_size(rows, cols);
    size_t need = bitnet__tmat_reserve(rows, cols);
    w->data = bitnet__arena_take(&m->arena, need, 64);
    if (!w->data)
        return bitnet__error(BITNET_E_INTERNAL, "tensor '" NAME_FMT "': weight "
                             "arena exhausted", NAME_ARG(name));
    size_t group = (size_t)(w->cols_padded / 128) * BITNET_TMAT_GROUP * 32;
    size_t full = (size_t)(rows / BITNET_TMAT_GROUP) * group;
    memset(w->data + full, 0x55, w->size - full);   /* code 1 = zero weight */
    return BITNET_OK;
}

/* Load tensor t (already shape-checked) into w. */
int bitnet__tmat_load(bitnet_model *m, bitnet_tmat *w, const bitnet_tensor_desc *t,
                     int8_t **scratch, size_t *scratch_cap)
{
    int32_t cols = (int32_t)t->ne[0], rows = (int32_t)t->ne[1];
    int rc = tmat_alloc(m, w, rows, cols, t->name);
    if (rc) return rc;
    const int32_t nb = w->cols_padded / 128;
    if (t->type == GGML_T_I2_S && cols % 128 == 0) {
        /* the file's blocks are the kernel's blocks: copy them, checking
         * for the invalid code 3 on the way */
        const uint8_t *src = t->data;
        uint64_t bad = 0;
        for (int32_t r = 0; r < rows; r++)
            for (int32_t b = 0; b < nb; b++) {
                const uint8_t *s = src + ((size_t)r * (size_t)nb + (size_t)b) * 32;
                uint64_t x[4];
                memcpy(x, s, 32);
                for (int k = 0; k < 4; k++)
                    bad |= x[k] & (x[k] >> 1) & 0x5555555555555555ull;
                memcpy(block_dst(w->data, nb, r, b), s, 32);
            }
        if (bad)
            return bitnet__error(BITNET_E_FORMAT, "tensor '" NAME_FMT "': "
                                 "invalid I2_S code 3", NAME_ARG(t->name));
        size_t n = (size_t)rows * (size_t)cols;
        memcpy(&w->scale, src + n / 4, 4);
        return check_i2s_scale(w->scale, t->name);
    }
    size_t n = (size_t)rows * (size_t)cols;
    if (*scratch_cap < n) {
        free(*scratch);
        *scratch = malloc(n);
        *scratch_cap = *scratch ? n : 0;
        if (!*scratch)
            return bitnet__error(BITNET_E_NOMEM, "tensor '" NAME_FMT "': out "
                                 "of memory", NAME_ARG(t->name));
    }
    /* decode (float masters: ternarise) and encode, rows cut among the
     * threads of one pool for a large tensor */
    bitnet_threadpool *tp = tern_pool(n);
    if (t->type == GGML_T_F32 || t->type == GGML_T_F16 || t->type == GGML_T_BF16) {
        rc = ternarise_float(t, n, *scratch, &w->scale, tp, w->data, rows, cols, nb);
    } else {
        rc = bitnet__ternary_decode(t, *scratch, &w->scale);
        if (rc == BITNET_OK) {
            tern_job j;
            memset(&j, 0, sizeof(j));
            j.type = UINT32_MAX;
            j.out = *scratch;
            j.dst = w->data;
            j.rows = rows;
            j.cols = cols;
            j.nb = nb;
            rc = tern_run(&j, tp, t->name);
        }
    }
    bitnet__threadpool_free(tp);
    return rc;
}

