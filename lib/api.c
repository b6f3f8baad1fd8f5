/*
 * Library-wide entry points: versions, status strings, params defaults,
 * CPU features and system information.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/internal.h"
#include "kernels.h"

#define BN_STR_(x) #x
#define BN_STR(x) BN_STR_(x)

uint32_t bitnet_version(void)
{
    return BITNET_VERSION;
}

const char *bitnet_version_string(void)
{
    return BN_STR(BITNET_VERSION_MAJOR) "." BN_STR(BITNET_VERSION_MINOR) "."
           BN_STR(BITNET_VERSION_PATCH);
}

int32_t bitnet_abi_version(void)
{
    return BITNET_ABI_VERSION;
}

/* One list gives every code its text, so they cannot drift apart. */
#define BITNET_STATUS_MAP(X)                                              \
    X(BITNET_OK, "success")                                               \
    X(BITNET_E_INVALID_ARG, "invalid argument")                           \
    X(BITNET_E_NOMEM, "out of memory")                                    \
    X(BITNET_E_IO, "input/output error")                                  \
    X(BITNET_E_FORMAT, "malformed or inconsistent input")                 \
    X(BITNET_E_UNSUPPORTED, "not supported")                              \
    X(BITNET_E_BUFFER_TOO_SMALL, "buffer too small")                      \
    X(BITNET_E_CONTEXT_FULL, "context is full")                           \
    X(BITNET_E_ABORTED, "aborted by callback")                            \
    X(BITNET_E_INTERNAL, "internal error")                                \
    X(BITNET_E_NOT_FOUND, "not found")                                    \
    X(BITNET_E_STATE, "invalid state for this call")                      \
    X(BITNET_E_GRAMMAR, "grammar error or token not allowed by the grammar")

const char *bitnet_strerror(int status)
{
    switch (status) {
#define X(code, text) case code: return text;
    BITNET_STATUS_MAP(X)
#undef X
    default: return "unknown error";
    }
}

/* ---- params defaults ------------------------------------------------- */

#define INIT_PREFIX(p, size, type)                                        \
    do {                                                                  \
        if (!(p) || (size) < sizeof(uint32_t)) return;                    \
    } while (0)

void bitnet_model_params_init_(bitnet_model_params *p, size_t size)
{
    INIT_PREFIX(p, size, bitnet_model_params);
    bitnet_model_params d;
    memset(&d, 0, sizeof(d));
    d.struct_size = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size); /* the caller's size */
    d.log_level = BITNET_LOG_WARN;
    d.pre_tokenizer = BITNET_PRETOK_AUTO;
    memset(p, 0, size);
    memcpy(p, &d, size < sizeof(d) ? size : sizeof(d));
}

int bitnet__model_params_check(const bitnet_model_params *p)
{
    const uint32_t known = BITNET_MODEL_NO_MMAP | BITNET_MODEL_VOCAB_ONLY |
                           BITNET_MODEL_INT8_HEAD;
    if (p->flags & ~known)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_params: "
                             "unknown flags 0x%x", (unsigned)(p->flags & ~known));
    if (p->pre_tokenizer < BITNET_PRETOK_AUTO ||
        p->pre_tokenizer > BITNET_PRETOK_GPT2)
        return bitnet__error(BITNET_E_INVALID_ARG, "bitnet_model_params: "
                             "pre_tokenizer %d is not a BITNET_PRETOK_* value",
                             (int)p->pre_tokenizer);
    return BITNET_OK;
}

void bitnet_context_params_init_(bitnet_context_params *p, size_t size)
{
    INIT_PREFIX(p, size, bitnet_context_params);
    bitnet_context_params d;
    memset(&d, 0, sizeof(d));
    d.struct_size = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size); /* the caller's size */
    d.n_ctx = 0;
    d.n_threads = 0;
    d.n_batch = 512;
    d.cpu_mask = BITNET_CPU_ALL;
    d.log_level = BITNET_LOG_WARN;
    memset(p, 0, size);
    memcpy(p, &d, size < sizeof(d) ? size : sizeof(d));
}

void bitnet_sampler_params_init_(bitnet_sampler_params *p, size_t size)
{
    INIT_PREFIX(p, size, bitnet_sampler_params);
    bitnet_sampler_params d;
    memset(&d, 0, sizeof(d));
    d.struct_size = (uint32_t)(size > UINT32_MAX ? UINT32_MAX : size); /* the caller's size */
    d.seed = 0;
    d.temperature = 0.8f;
    d.top_k = 40;
    d.top_p = 0.95f;
    d.min_p = 0.05f;
    d.repeat_penalty = 1.0f;
    d.frequency_penalty = 0.0f;
    d.presence_penalty = 0.0f;
    d.penalty_last_n = 64;
    memset(p, 0, size);
    memcpy(p, &d, size < sizeof(d) ? size : sizeof(d));
}

/* ---- CPU features and system information ----------------------------- */

uint32_t bitnet_cpu_features(void)
{
    return bitnet__cpu_detect();
}

static pthread_once_t info_once = PTHREAD_ONCE_INIT;
static char info_text[2048];

static void append(size_t *n, const char *fmt, const char *a, const char *b)
{
    if (*n >= sizeof(info_text))
        return;
    int w = snprintf(info_text + *n, sizeof(info_text) - *n, fmt, a, b);
    if (w > 0)
        *n += (size_t)w;
}

static void build_info(void)
{
    uint32_t f = bitnet__cpu_detect();
    size_t n = 0;
    append(&n, "libbitnet %s (ABI %s)\ncpu features:", bitnet_version_string(),
           BN_STR(BITNET_ABI_VERSION));
    static const struct { uint32_t bit; const char *name; } names[] = {
        { BITNET_CPU_AVX2, "avx2" }, { BITNET_CPU_AVX_VNNI, "avx-vnni" },
        { BITNET_CPU_AVX512, "avx512-vnni" }, { BITNET_CPU_AMX, "amx-int8" },
        { BITNET_CPU_NEON, "neon" }, { BITNET_CPU_DOTPROD, "dotprod" },
    };
    int any = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (f & names[i].bit) {
            append(&n, " %s%s", names[i].name, "");
            any = 1;
        }
    if (!any)
        append(&n, " %s%s", "none (C reference kernels)", "");
    append(&n, "%s%s", "\nkernels:", "");
    bitnet_kernels k;
    bitnet__kernels_init(&k, f);
    append(&n, "\n  quant_act %s%s", k.name_quant_act, "");
    append(&n, "\n  tgemv     %s%s", k.name_tgemv, "");
    append(&n, "\n  tgemm     %s%s", k.name_tgemm, "");
    append(&n, "\n  rmsnorm   %s%s", k.name_rmsnorm, "");
    append(&n, "\n  rope      %s%s", k.name_rope, "");
    append(&n, "\n  softmax   %s%s", k.name_softmax, "");
    append(&n, "\n  dot_f16   %s%s", k.name_dot_f16, "");
    append(&n, "\n  axpy_f16  %s%s", k.name_axpy_f16, "");
    append(&n, "\n  head_f16  %s%s", k.name_head_f16, "");
    append(&n, "\n  head_i8   %s%s", k.name_head_i8, "");
}

const char *bitnet_system_info(void)
{
    pthread_once(&info_once, build_info);
    return info_text;
}
