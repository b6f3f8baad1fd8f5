/*
 * The output head chosen at load (bitnet_model_params.head_type): the
 * file's head as it is, or a copy converted to F16, int8, Q8_0 or Q6_K
 * (docs/kernels.md, "Output heads"); and the int8 copy that contexts with
 * BITNET_CONTEXT_INT8_HEAD use, built at load or on first use.
 */
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "model/model.h"

int bitnet__head_fmt_of_type(uint32_t ggml_type)
{
    switch (ggml_type) {
    case GGML_T_F32: return BITNET_HF_F32;
    case GGML_T_F16: return BITNET_HF_F16;
    case GGML_T_BF16: return BITNET_HF_BF16;
    case GGML_T_Q8_0: return BITNET_HF_Q8_0;
    case GGML_T_Q4_0: return BITNET_HF_Q4_0;
    case GGML_T_Q6_K: return BITNET_HF_Q6_K;
    default: return -1;
    }
}

void bitnet__fmat_row(const bitnet_fmat *m, int32_t row, float *out)
{
    const int fmt = bitnet__head_fmt_of_type(m->type);
    if (fmt < 0) {
        memset(out, 0, (size_t)m->cols * sizeof(float));
        return;
    }
    bitnet__head_dequant_row(fmt, m->data + (size_t)row * m->row_bytes, m->cols, out);
}

static const char *fmt_name(int fmt)
{
    static const char *const names[] = { "F32", "F16", "BF16", "int8", "Q8_0", "Q4_0", "Q6_K" };
    return fmt >= 0 && fmt <= BITNET_HF_Q6_K ? names[fmt] : "?";
}

/* Converting the head row by row at load: 128256 rows of 2560 took
 * 10-13 s for Q6_K and 3-5 s for int8 on one Zen 4 core. Rows are
 * independent (each is quantised on its own), so the rows are cut among
 * the online CPUs; the result does not depend on how many there are. */
typedef struct conv_job {
    const bitnet_fmat *o;
    int fmt;                  /* enum bitnet_head_fmt; BITNET_HF_I8 fills scale */
    uint8_t *w;
    size_t row_bytes;
    float *scale;
    float *rowbuf;            /* [nth][cols] */
} conv_job;

static void conv_task(void *arg, int ith, int nth)
{
    const conv_job *j = arg;
    const int32_t rows = j->o->rows, cols = j->o->cols;
    const int32_t r0 = (int32_t)((int64_t)rows * ith / nth);
    const int32_t r1 = (int32_t)((int64_t)rows * (ith + 1) / nth);
    float *row = j->rowbuf + (size_t)ith * (size_t)cols;
    for (int32_t r = r0; r < r1; r++) {
        uint8_t *out = j->w + (size_t)r * j->row_bytes;
        bitnet__fmat_row(j->o, r, row);
        if (j->fmt == BITNET_HF_I8) {
            j->scale[r] = bitnet__head_quant_row_i8(row, cols, (int8_t *)out);
            memset(out + cols, 0, j->row_bytes - (size_t)cols);
        } else {
            bitnet__head_quant_row(j->fmt, row, cols, out);
        }
    }
}

static int convert_rows(conv_job *j)
{
    int n = bitnet__ncpu();
    if (n > 16) n = 16;
    if (j->o->rows < 4096) n = 1;
    size_t bytes;
    if (bitnet__mul_ovf((size_t)n * sizeof(float), (size_t)j->o->cols, &bytes) ||
        !(j->rowbuf = malloc(bytes)))
        return BITNET_E_NOMEM;
    bitnet_threadpool *tp = NULL;
    if (n > 1 && bitnet__threadpool_create(&tp, n) == BITNET_OK) {
        bitnet__threadpool_run(tp, conv_task, j);
        bitnet__threadpool_free(tp);
    } else {
        bitnet__clear_error();            /* no workers: convert on this thread */
        conv_task(j, 0, 1);
    }
    free(j->rowbuf);
    j->rowbuf = NULL;
    return BITNET_OK;
}

/* A converted copy of the file's head in format fmt (not I8). */
static int convert(const bitnet_fmat *o, int fmt, bitnet_head *h, uint8_t **owned)
{
    h->fmt = fmt;
    h->rows = o->rows;
    h->cols = o->cols;
    h->row_bytes = bitnet__head_row_bytes(fmt, o->cols);
    if (!h->row_bytes)
        return bitnet__error(BITNET_E_UNSUPPORTED, "output head: %d columns cannot be "
                             "stored as %s (needs a multiple of %d)", (int)o->cols,
                             fmt_name(fmt), fmt == BITNET_HF_Q6_K ? 256 : 32);
    size_t bytes;
    if (bitnet__mul_ovf(h->row_bytes, (size_t)o->rows, &bytes) ||
        !(*owned = bitnet__aalloc(bytes, 64)))
        return bitnet__error(BITNET_E_NOMEM, "cannot allocate the %s output head", fmt_name(fmt));
    conv_job j = { o, fmt, *owned, h->row_bytes, NULL, NULL };
    if (convert_rows(&j) != BITNET_OK) {
        bitnet__afree(*owned);
        *owned = NULL;
        return bitnet__error(BITNET_E_NOMEM, "cannot allocate the %s output head", fmt_name(fmt));
    }
    h->w = *owned;
    return BITNET_OK;
}

/* The int8 copy: per-row scale amax / 127, rows padded to BITNET_KPAD. */
static int build_i8(const bitnet_fmat *o, bitnet_head **out)
{
    bitnet_head *h = calloc(1, sizeof(*h));
    uint8_t *w = NULL;
    float *scale = NULL;
    const size_t ldw = bitnet__head_row_bytes(BITNET_HF_I8, o->cols);
    size_t bytes;
    if (h && !bitnet__mul_ovf(ldw, (size_t)o->rows, &bytes)) {
        w = bitnet__aalloc(bytes, 64);
        scale = bitnet__aalloc((size_t)o->rows * sizeof(float), 64);
    }
    conv_job j = { o, BITNET_HF_I8, w, ldw, scale, NULL };
    if (!h || !w || !scale || convert_rows(&j) != BITNET_OK) {
        free(h);
        bitnet__afree(w);
        bitnet__afree(scale);
        return bitnet__error(BITNET_E_NOMEM, "cannot allocate the int8 head");
    }
    h->fmt = BITNET_HF_I8;
    h->rows = o->rows;
    h->cols = o->cols;
    h->w = w;
    h->row_bytes = ldw;
    h->scale = scale;
    bitnet__head_init(h);
    *out = h;
    return BITNET_OK;
}

int bitnet__model_head_i8(const struct bitnet_model *m, const bitnet_head **out)
{
    bitnet_model *mm = (bitnet_model *)m;    /* the lock and cache are mutable */
    int rc = BITNET_OK;
    pthread_mutex_lock(&mm->head_lock);
    if (!mm->head_i8)
        rc = build_i8(&m->output, &mm->head_i8);
    *out = mm->head_i8;
    pthread_mutex_unlock(&mm->head_lock);
    return rc;
}

int bitnet__model_head_setup(bitnet_model *m, int32_t head_type)
{
    const bitnet_fmat *o = &m->output;
    const int file_fmt = bitnet__head_fmt_of_type(o->type);
    int want;
    switch (head_type) {
    case BITNET_HEAD_AUTO: want = file_fmt; break;
    case BITNET_HEAD_F16: want = BITNET_HF_F16; break;
    case BITNET_HEAD_INT8: want = BITNET_HF_I8; break;
    case BITNET_HEAD_Q8_0: want = BITNET_HF_Q8_0; break;
    case BITNET_HEAD_Q6_K: want = BITNET_HF_Q6_K; break;
    default:
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_params.head_type %d is not "
                             "a BITNET_HEAD_* value", (int)head_type);
    }
    if (file_fmt < 0)
        return bitnet__error(BITNET_E_UNSUPPORTED, "output head: unsupported type");
    int rc = BITNET_OK;
    memset(&m->head, 0, sizeof(m->head));
    if (want == BITNET_HF_I8) {
        const bitnet_head *h;
        rc = bitnet__model_head_i8(m, &h);
        if (rc == BITNET_OK)
            m->head = *h;
    } else if (want == file_fmt) {
        m->head.fmt = file_fmt;
        m->head.rows = o->rows;
        m->head.cols = o->cols;
        m->head.w = o->data;
        m->head.row_bytes = o->row_bytes;
    } else {
        rc = convert(o, want, &m->head, &m->head_owned);
    }
    if (rc == BITNET_OK && bitnet__head_init(&m->head))
        rc = bitnet__error(BITNET_E_FORMAT, "output head: %d columns do not fit its type %s",
                           (int)o->cols, fmt_name(m->head.fmt));
    if (rc == BITNET_OK && want != file_fmt)
        bitnet__log(&m->log, BITNET_LOG_INFO, "output head converted from %s to %s at load",
                    fmt_name(file_fmt), fmt_name(want));
    return rc;
}

void bitnet__model_head_free(bitnet_model *m)
{
    bitnet__afree(m->head_owned);
    m->head_owned = NULL;
    if (m->head_i8) {
        bitnet__afree((void *)(uintptr_t)m->head_i8->w);
        bitnet__afree((void *)(uintptr_t)m->head_i8->scale);
        free(m->head_i8);
        m->head_i8 = NULL;
    }
}
