/*
 * Kernel equivalence test and benchmark (checkasm-like, plain C so that it
 * also runs in cross builds without cmocka).
 *
 *   test_kernels [--seed N]     compare every SIMD entry with the reference,
 *                               for every cumulative ISA level this CPU runs
 *   test_kernels --bench [--quick]   throughput per kernel, ISA and threads
 *
 * Integers (quant_act, tgemv, tgemm, head_i8, axpy_f16) must be bit-exact;
 * float reductions must be within the bounds documented in docs/kernels.md.
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"
#include "kernels_impl.h"

/* ---- random numbers -------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int32_t rnd_int(int32_t lo, int32_t hi) /* inclusive */
{
    return lo + (int32_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static float rnd_float(float amp)
{
    return (float)((double)(rnd() >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0) * amp;
}

/* ---- bookkeeping ------------------------------------------------------ */

static int n_pass, n_fail;
static const char *cur_level = "";

static void result(const char *kernel, const char *isa, int ok, const char *what)
{
    if (ok) {
        n_pass++;
    } else {
        n_fail++;
        printf("FAIL  level %-8s %-10s (%s): %s\n", cur_level, kernel, isa, what);
    }
}

#define CANARY 0xa5u
#define NCANARY 64

/* Buffer with canary bytes after `bytes` (at a given misalignment). */
typedef struct { uint8_t *base; uint8_t *p; size_t bytes; } cbuf;

static cbuf cbuf_new(size_t bytes, size_t misalign)
{
    cbuf b;
    b.base = malloc(bytes + misalign + NCANARY + 64);
    b.p = b.base + 64 - ((uintptr_t)b.base % 64) + misalign;
    if ((uintptr_t)b.p - (uintptr_t)b.base + bytes + NCANARY > bytes + misalign + NCANARY + 64)
        b.p -= 64;
    b.bytes = bytes;
    memset(b.base, CANARY, bytes + misalign + NCANARY + 64);
    return b;
}

static int cbuf_canary_ok(const cbuf *b)
{
    for (size_t i = 0; i < NCANARY; i++)
        if (b->p[b->bytes + i] != CANARY)
            return 0;
    return 1;
}

static void *xaligned(size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static bitnet_tmat make_tmat(int32_t rows, int32_t cols, float zero_frac)
{
    int8_t *t = malloc((size_t)rows * (size_t)cols);
    for (size_t i = 0; i < (size_t)rows * (size_t)cols; i++) {
        float u = (float)(rnd() % 10000) / 10000.0f;
        t[i] = u < zero_frac ? 0 : (rnd() & 1) ? 1 : -1;
    }
    bitnet_tmat w;
    w.rows = rows;
    w.cols = cols;
    w.cols_padded = (cols + BITNET_KPAD - 1) / BITNET_KPAD * BITNET_KPAD;
    w.scale = 0.25f + rnd_float(0.2f);
    w.size = bitnet__tmat_packed_size(rows, cols);
    w.data = xaligned(w.size);
    bitnet__tmat_pack(w.data, t, rows, cols);
    int ok = 1;
    for (int32_t r = 0; r < rows && ok; r++)
        for (int32_t c = 0; c < cols; c++)
            if (bitnet__tmat_get(&w, r, c) != t[(size_t)r * (size_t)cols + (size_t)c]) {
                ok = 0;
                break;
            }
    free(t);
    if (!ok) {
        printf("FAIL  tmat_pack/tmat_get round trip (%dx%d)\n", rows, cols);
        n_fail++;
    }
    return w;
}

/* ---- checks per kernel ------------------------------------------------ */

#define N_CASES 64

static void check_quant_act(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    char what[160] = "";
    for (int c = 0; c < N_CASES && ok; c++) {
        const int32_t n = c < 4 ? (int32_t[]){1, 31, 32, 256}[c] : rnd_int(1, 3000);
        const int32_t kpad = (n + 127) / 128 * 128;
        float *xb = malloc(sizeof(float) * (size_t)(n + 1));
        float *x = xb + (c & 1);                 /* misaligned half the time */
        const int kind = c % 4;
        const float amp = kind == 0 ? 1e-6f : kind == 1 ? 3.0f : kind == 2 ? 200.0f : 1.0f;
        for (int32_t i = 0; i < n; i++)
            x[i] = rnd_float(amp);
        if (kind == 3 && n > 4) {                /* exact ties: x*s = m + 0.5 */
            x[0] = 127.0f;                       /* s = 1 */
            for (int32_t i = 1; i < n; i++)
                x[i] = (float)rnd_int(-127, 126) + 0.5f;
        }
        cbuf q0 = cbuf_new((size_t)kpad, 0), q1 = cbuf_new((size_t)kpad, (size_t)(c % 7));
        float s0, s1;
        int32_t sum0, sum1;
        ref->quant_act(x, n, kpad, (int8_t *)q0.p, &s0, &sum0);
        k->quant_act(x, n, kpad, (int8_t *)q1.p, &s1, &sum1);
        if (memcmp(q0.p, q1.p, (size_t)kpad) || memcmp(&s0, &s1, 4) || sum0 != sum1 ||
            !cbuf_canary_ok(&q1)) {
            ok = 0;
            snprintf(what, sizeof(what), "n=%d: q/scale/sum differ (sum %d vs %d)", n, sum0, sum1);
        }
        free(xb);
        free(q0.base);
        free(q1.base);
    }
    result("quant_act", k->name_quant_act, ok, what);
}

static void fill_q(int8_t *q, int32_t cols, int32_t kpad)
{
    for (int32_t i = 0; i < cols; i++)
        q[i] = (int8_t)rnd_int(-128, 127);
    memset(q + cols, 0, (size_t)(kpad - cols));
}

static void check_tgemv(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    char what[160] = "";
    for (int c = 0; c < N_CASES && ok; c++) {
        const int32_t rows = c == 0 ? 1 : rnd_int(1, 77);
        const int32_t cols = c == 1 ? 128 : rnd_int(1, 700);
        bitnet_tmat w = make_tmat(rows, cols, c % 3 == 0 ? 0.0f : 0.4f);
        int8_t *q = xaligned((size_t)w.cols_padded + 64);
        int8_t *qm = q + (c & 3) * 8;            /* misaligned activations */
        fill_q(qm, cols, w.cols_padded);
        if (c % 5 == 0)                          /* extremes: saturation traps */
            for (int32_t i = 0; i < cols; i++)
                qm[i] = (c & 8) ? -128 : 127;
        int32_t r0 = rnd_int(0, rows - 1), r1 = rnd_int(r0 + 1, rows);
        if (c % 4 == 0) { r0 = 0; r1 = rows; }
        const float as = 10.0f + rnd_float(5.0f);
        cbuf y0 = cbuf_new(sizeof(float) * (size_t)(r1 - r0), 0);
        cbuf y1 = cbuf_new(sizeof(float) * (size_t)(r1 - r0), (size_t)(4 * (c % 3) + (c % 2) * 0));
        ref->tgemv(&w, r0, r1, qm, as, (float *)y0.p);
        k->tgemv(&w, r0, r1, qm, as, (float *)y1.p);
        if (memcmp(y0.p, y1.p, y0.bytes) || !cbuf_canary_ok(&y1)) {
            ok = 0;
            snprintf(what, sizeof(what), "%dx%d rows [%d,%d): outputs or canary differ",
                     rows, cols, r0, r1);
        }
        free(y0.base);
        free(y1.base);
        free(q);
        free(w.data);
    }
    result("tgemv", k->name_tgemv, ok, what);
}

static void check_tgemm(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    char what[160] = "";
    for (int c = 0; c < N_CASES / 2 && ok; c++) {
        const int32_t rows = rnd_int(1, 70), cols = c == 3 ? rnd_int(1025, 2700) : rnd_int(1, 600);
        /* 300: more tokens than one AVX-512 super-tile (256) */
        const int32_t n = c == 0 ? 1 : c == 1 ? 37 : c == 2 ? 133 : c == 4 ? 300 : rnd_int(1, 37);
        bitnet_tmat w = make_tmat(rows, cols, 0.35f);
        const size_t kp = (size_t)w.cols_padded;
        int8_t *q = xaligned(kp * (size_t)n);
        for (int32_t i = 0; i < n; i++)
            fill_q(q + (size_t)i * kp, cols, w.cols_padded);
        float *as = malloc(sizeof(float) * (size_t)n);
        for (int32_t i = 0; i < n; i++)
            as[i] = 20.0f + rnd_float(10.0f);
        int32_t r0 = rnd_int(0, rows - 1), r1 = rnd_int(r0 + 1, rows);
        if (c % 3 == 0) { r0 = 0; r1 = rows; }
        const int32_t ldy = (r1 - r0) + rnd_int(0, 5);
        const size_t ny = (size_t)(n - 1) * (size_t)ldy + (size_t)(r1 - r0);
        cbuf y0 = cbuf_new(sizeof(float) * ny, 0);
        cbuf y1 = cbuf_new(sizeof(float) * ny, (size_t)(4 * (c & 1)));
        ref->tgemm(&w, r0, r1, q, as, n, (float *)y0.p, ldy);
        k->tgemm(&w, r0, r1, q, as, n, (float *)y1.p, ldy);
        /* gaps between the rows of y must be untouched too */
        if (memcmp(y0.p, y1.p, y0.bytes) || !cbuf_canary_ok(&y1)) {
            ok = 0;
            snprintf(what, sizeof(what), "%dx%d n=%d rows [%d,%d) ldy %d: differ",
                     rows, cols, n, r0, r1, ldy);
        }
        free(y0.base);
        free(y1.base);
        free(q);
        free(as);
        free(w.data);
    }
    result("tgemm", k->name_tgemm, ok, what);
}

static uint16_t rnd_h(float amp) { return bitnet__fp32_to_fp16(rnd_float(amp)); }

/* |a - b| <= n * 2^-24 * mag + 2^-24 |b| + tiny: the documented bound for
 * reassociated float sums (mag = sum of |terms|) */
static int within_sum_bound(float a, float b, int32_t n, double mag)
{
    double d = fabs((double)a - (double)b);
    return d <= (double)n * ldexp(mag, -24) + ldexp(fabs((double)b), -24) + 1e-30;
}

static void check_dot_f16(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    char what[160] = "";
    for (int c = 0; c < N_CASES && ok; c++) {
        const int32_t n = rnd_int(1, 300);
        uint16_t *a = malloc(2 * (size_t)n + 2), *b = malloc(2 * (size_t)n + 2);
        uint16_t *am = a + (c & 1), *bm = b + ((c >> 1) & 1);
        double mag = 0;
        for (int32_t i = 0; i < n; i++) {
            am[i] = rnd_h(4.0f);
            bm[i] = rnd_h(4.0f);
            mag += fabs((double)bitnet__fp16_to_fp32(am[i]) * bitnet__fp16_to_fp32(bm[i]));
        }
        float r = ref->dot_f16(am, bm, n), v = k->dot_f16(am, bm, n);
        if (!within_sum_bound(v, r, n, mag)) {
            ok = 0;
            snprintf(what, sizeof(what), "n=%d: %.9g vs ref %.9g", n, v, r);
        }
        free(a); free(b);
    }
    result("dot_f16", k->name_dot_f16, ok, what);
}

static void check_axpy_f16(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    char what[160] = "";
    for (int c = 0; c < N_CASES && ok; c++) {
        const int32_t n = rnd_int(1, 300);
        uint16_t *v = malloc(2 * (size_t)n + 2), *vm = v + (c & 1);
        for (int32_t i = 0; i < n; i++)
            vm[i] = rnd_h(3.0f);
        cbuf y0 = cbuf_new(sizeof(float) * (size_t)n, 0);
        cbuf y1 = cbuf_new(sizeof(float) * (size_t)n, (size_t)(4 * (c % 3)));
        for (int32_t i = 0; i < n; i++) {
            float f = rnd_float(2.0f);
            memcpy(y0.p + 4 * (size_t)i, &f, 4);
            memcpy(y1.p + 4 * (size_t)i, &f, 4);
        }
        const float p = rnd_float(1.0f);
        ref->axpy_f16((float *)y0.p, vm, p, n);
        k->axpy_f16((float *)y1.p, vm, p, n);
        if (memcmp(y0.p, y1.p, y0.bytes) || !cbuf_canary_ok(&y1)) {
            ok = 0;
            snprintf(what, sizeof(what), "n=%d: differ", n);
        }
        free(v); free(y0.base); free(y1.base);
    }
    result("axpy_f16", k->name_axpy_f16, ok, what);
}

#include "check_heads.c"

/* RMSNorm: the double sum is reassociated; documented bound 2^-21 relative. */
static void check_rmsnorm(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    char what[160] = "";
    for (int c = 0; c < N_CASES && ok; c++) {
        const int32_t n = rnd_int(1, 3000);
        float *x = malloc(sizeof(float) * (size_t)(n + 1)), *xm = x + (c & 1);
        float *w = malloc(sizeof(float) * (size_t)n);
        for (int32_t i = 0; i < n; i++) {
            xm[i] = rnd_float(c % 3 == 0 ? 100.0f : 1.0f);
            w[i] = rnd_float(2.0f);
        }
        cbuf y0 = cbuf_new(sizeof(float) * (size_t)n, 0);
        cbuf y1 = cbuf_new(sizeof(float) * (size_t)n, 4 * (size_t)(c % 3));
        ref->rmsnorm(xm, w, (float *)y0.p, n, 1e-5f);
        if (c % 4 == 3) {                        /* in place */
            memcpy(y1.p, xm, sizeof(float) * (size_t)n);
            k->rmsnorm((float *)y1.p, w, (float *)y1.p, n, 1e-5f);
        } else {
            k->rmsnorm(xm, w, (float *)y1.p, n, 1e-5f);
        }
        if (!cbuf_canary_ok(&y1))
            ok = 0;
        for (int32_t i = 0; i < n && ok; i++) {
            float a, b;
            memcpy(&a, y1.p + 4 * (size_t)i, 4);
            memcpy(&b, y0.p + 4 * (size_t)i, 4);
            if (fabs((double)a - b) > ldexp(fabs((double)b), -21) + 1e-37) {
                ok = 0;
                snprintf(what, sizeof(what), "n=%d i=%d: %.9g vs ref %.9g", n, i, a, b);
            }
        }
        free(x); free(w); free(y0.base); free(y1.base);
    }
    result("rmsnorm", k->name_rmsnorm, ok, what);
}

/* RoPE and softmax have no SIMD variants yet; if one appears it is held to
 * 2 ulp-ish relative bounds. */
static void check_rope(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    for (int c = 0; c < 8 && ok; c++) {
        const int32_t hd = 2 * rnd_int(1, 80), nrot = 2 * rnd_int(1, hd / 2), nh = rnd_int(1, 5);
        const size_t n = (size_t)hd * (size_t)nh;
        float *a = malloc(4 * n), *b = malloc(4 * n), *cs = malloc(2 * (size_t)nrot), *sn = malloc(2 * (size_t)nrot);
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = rnd_float(3.0f);
        for (int32_t i = 0; i < nrot / 2; i++) {
            float th = rnd_float(100.0f);
            cs[i] = cosf(th);
            sn[i] = sinf(th);
        }
        ref->rope(a, nh, hd, nrot, cs, sn);
        k->rope(b, nh, hd, nrot, cs, sn);
        for (size_t i = 0; i < n && ok; i++)
            if (fabs((double)a[i] - b[i]) > ldexp(6.0, -24) + ldexp(fabs((double)a[i]), -22))
                ok = 0;
        free(a); free(b); free(cs); free(sn);
    }
    result("rope", k->name_rope, ok, "outside bound");
}

static void check_softmax(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    for (int c = 0; c < 8 && ok; c++) {
        const int32_t n = rnd_int(1, 500);
        float *a = malloc(4 * (size_t)n), *b = malloc(4 * (size_t)n);
        for (int32_t i = 0; i < n; i++)
            a[i] = b[i] = rnd_float(20.0f);
        ref->softmax(a, n, 0.088f);
        k->softmax(b, n, 0.088f);
        for (int32_t i = 0; i < n && ok; i++)
            if (fabs((double)a[i] - b[i]) > ldexp(fabs((double)a[i]), -20) + 1e-37)
                ok = 0;
        free(a); free(b);
    }
    result("softmax", k->name_softmax, ok, "outside bound");
}

/* ---- CPU detection and the mask ---------------------------------------- */

static void check_cpu_mask(void)
{
    const uint32_t raw = bitnet__cpu_detect_raw();
    int ok = bitnet__cpu_apply_mask(raw, NULL) == raw &&
             bitnet__cpu_apply_mask(raw, "") == raw &&
             bitnet__cpu_apply_mask(raw, "0") == 0 &&
             bitnet__cpu_apply_mask(0xffu, "0x5") == 0x5u &&
             bitnet__cpu_apply_mask(0xffu, "017") == 0xfu &&
             bitnet__cpu_apply_mask(0xffu, "junk") == 0xffu &&
             bitnet__cpu_apply_mask(0xffu, "3x") == 0xffu;
    result("cpu_mask", "parse", ok, "bitnet__cpu_apply_mask");
    const uint32_t want = bitnet__cpu_apply_mask(raw, getenv("BITNET_CPU_MASK"));
    result("cpu_mask", "env", bitnet__cpu_detect() == want && (want & ~raw) == 0,
           "bitnet__cpu_detect does not honour BITNET_CPU_MASK");
    /* The table must not use features that are not in the flags. */
    bitnet_kernels k0;
    bitnet__kernels_init(&k0, 0);
    result("init", "ref", strcmp(k0.name_tgemv, "ref") == 0 && strcmp(k0.name_head_f16, "ref") == 0,
           "flags 0 must give the reference table");
}

/* ---- levels -------------------------------------------------------------- */

static const struct { uint32_t flag; const char *name; } isa_order[] = {
#if defined(__x86_64__) || defined(_M_X64)
    { BITNET_CPU_AVX2, "avx2" }, { BITNET_CPU_AVX_VNNI, "avxvnni" },
    { BITNET_CPU_AVX512, "avx512" }, { BITNET_CPU_AMX, "amx" },
#elif defined(__aarch64__)
    { BITNET_CPU_NEON, "neon" }, { BITNET_CPU_DOTPROD, "dotprod" },
#endif
    { 0, NULL }
};

#define CHANGED(fn) (k.fn != ref.fn)

static void run_tests(void)
{
    check_cpu_mask();
    const uint32_t avail = bitnet__cpu_detect();
    bitnet_kernels ref;
    bitnet__kernels_init(&ref, 0);
    uint32_t level = 0;
    printf("CPU features (after BITNET_CPU_MASK): 0x%" PRIx32 "\n", avail);
    for (int i = 0; isa_order[i].name; i++) {
        if (!(avail & isa_order[i].flag)) {
            printf("level %-8s skipped: not available on this CPU/OS\n", isa_order[i].name);
            continue;
        }
        level |= isa_order[i].flag;
        cur_level = isa_order[i].name;
        bitnet_kernels k;
        bitnet__kernels_init(&k, level);
        const int before = n_pass + n_fail;
        if (CHANGED(quant_act)) check_quant_act(&k, &ref);
        if (CHANGED(tgemv)) check_tgemv(&k, &ref);
        if (CHANGED(tgemm)) check_tgemm(&k, &ref);
        if (CHANGED(rmsnorm)) check_rmsnorm(&k, &ref);
        if (CHANGED(rope)) check_rope(&k, &ref);
        if (CHANGED(softmax)) check_softmax(&k, &ref);
        if (CHANGED(dot_f16)) check_dot_f16(&k, &ref);
        if (CHANGED(axpy_f16)) check_axpy_f16(&k, &ref);
        if (CHANGED(head_f16)) check_head_f16(&k, &ref);
        if (CHANGED(head_i8)) check_head_i8(&k, &ref);
        if (CHANGED(head_q8_0)) check_head_fmt(&k, &ref, BITNET_HF_Q8_0);
        if (CHANGED(head_q4_0)) check_head_fmt(&k, &ref, BITNET_HF_Q4_0);
        if (CHANGED(head_q6_k)) check_head_fmt(&k, &ref, BITNET_HF_Q6_K);
        printf("level %-8s (flags 0x%" PRIx32 "): %d entries checked; tgemv=%s tgemm=%s "
               "quant_act=%s head_f16=%s head_i8=%s head_q8_0=%s head_q6_k=%s\n", cur_level, level,
               n_pass + n_fail - before, k.name_tgemv, k.name_tgemm, k.name_quant_act,
               k.name_head_f16, k.name_head_i8, k.name_head_q8_0, k.name_head_q6_k);
    }
#ifdef BITNET_SIMDE_EMU
    /* The AVX-VNNI and AVX-512 sources built over SIMDe (simde_shim.h), on
     * top of the AVX2 level; needs AVX2 to run. */
    if (avail & BITNET_CPU_AVX2) {
        decl_tgemv_fn(bitnet__tgemv_avxvnni_emu);
        decl_tgemm_fn(bitnet__tgemm_avxvnni_emu);
        decl_tgemv_fn(bitnet__tgemv_avx512_emu);
        decl_tgemm_fn(bitnet__tgemm_avx512_emu);
        decl_head_i8_fn(bitnet__head_i8_avx512_emu);
        decl_head_fn(bitnet__head_f16_avx512_emu);
        bitnet_kernels k;
        bitnet__kernels_init(&k, BITNET_CPU_AVX2);
        k.tgemv = bitnet__tgemv_avxvnni_emu;
        k.tgemm = bitnet__tgemm_avxvnni_emu;
        k.name_tgemv = k.name_tgemm = "avxvnni-simde";
        cur_level = "avxvnni-simde";
        check_tgemv(&k, &ref);
        check_tgemm(&k, &ref);
        k.tgemv = bitnet__tgemv_avx512_emu;
        k.tgemm = bitnet__tgemm_avx512_emu;
        k.head_i8 = bitnet__head_i8_avx512_emu;
        k.head_f16 = bitnet__head_f16_avx512_emu;
        k.name_tgemv = k.name_tgemm = k.name_head_i8 = k.name_head_f16 = "avx512-simde";
        cur_level = "avx512-simde";
        check_tgemv(&k, &ref);
        check_tgemm(&k, &ref);
        check_head_i8(&k, &ref);
        check_head_f16(&k, &ref);
        decl_tgemm_fn(bitnet__tgemm_amxemu_simd);
        k.tgemm = bitnet__tgemm_amxemu_simd;
        k.name_tgemm = "amx-emulated+simde";
        cur_level = "amx-simde";
        check_tgemm(&k, &ref);
        printf("level %-8s avx-vnni and avx-512 sources over SIMDe: tgemv, tgemm, head_i8, head_f16 and the AMX unpacking checked\n",
               "simde");
    }
#elif defined(__x86_64__)
    printf("level simde    skipped: built without SIMDe (Debian libsimde-dev), so the AVX-VNNI/AVX-512 "
           "sources are only checked on CPUs that have those features\n");
#endif
#ifdef BITNET_AMX_EMULATE
    /* The AMX GEMM's blocking with plain C tiles (the real one needs AMX). */
    {
        decl_tgemm_fn(bitnet__tgemm_amxemu);
        bitnet_kernels k = ref;
        k.tgemm = bitnet__tgemm_amxemu;
        k.name_tgemm = "amx-emulated";
        cur_level = "amx-emu";
        check_tgemm(&k, &ref);
        printf("level %-8s tgemm=%s (tile operations emulated in C)\n", cur_level, k.name_tgemm);
    }
#endif
    /* the reference against a naive formula, so that the reference itself
     * is pinned to format.md §4.5 */
    cur_level = "ref";
    check_head_accuracy(&ref);
    {   /* the reference heads: n tokens == one at a time */
        bitnet_kernels r2 = ref;
        check_head_fmt(&r2, &ref, BITNET_HF_Q8_0);
        check_head_fmt(&r2, &ref, BITNET_HF_Q4_0);
        check_head_fmt(&r2, &ref, BITNET_HF_Q6_K);
        check_head_fmt(&r2, &ref, BITNET_HF_F16);
        check_head_i8(&r2, &ref);
    }
    {
        bitnet_tmat w = make_tmat(23, 333, 0.3f);
        int8_t *q = xaligned((size_t)w.cols_padded);
        fill_q(q, w.cols, w.cols_padded);
        float y[23];
        ref.tgemv(&w, 0, 23, q, 42.0f, y);
        int ok = 1;
        for (int32_t r = 0; r < 23; r++) {
            int32_t t = 0;
            for (int32_t c = 0; c < w.cols; c++)
                t += bitnet__tmat_get(&w, r, c) * q[c];
            float e = (float)t / 42.0f;
            e = e * w.scale;
            if (memcmp(&e, &y[r], 4))
                ok = 0;
        }
        result("tgemv", "ref vs naive", ok, "reference differs from the naive formula");
        free(q);
        free(w.data);
    }
}

/* ---- benchmark ------------------------------------------------------------ */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A tiny pool: worker i runs job(i) when the generation changes. */
typedef struct pool pool;
typedef void (*job_fn)(void *arg, int tid, int nth);
struct pool {
    int nth;
    pthread_t th[8];
    atomic_int gen, done, quit;
    job_fn fn;
    void *arg;
};

typedef struct { pool *p; int tid; } worker_arg;

static void *worker(void *a)
{
    worker_arg *wa = a;
    pool *p = wa->p;
    int seen = 0;
    for (;;) {
        int g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (atomic_load(&p->quit))
                return NULL;
            if (++spins > 1000)
                sched_yield();   /* do not starve other work on a busy machine */
        }
        seen = g;
        p->fn(p->arg, wa->tid, p->nth);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_acq_rel);
    }
}

static worker_arg wargs[8];

static void pool_start(pool *p, int nth)
{
    memset(p, 0, sizeof(*p));
    p->nth = nth;
    for (int i = 1; i < nth; i++) {
        wargs[i].p = p;
        wargs[i].tid = i;
        pthread_create(&p->th[i], NULL, worker, &wargs[i]);
    }
}

static void pool_run(pool *p, job_fn fn, void *arg)
{
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->done, 0);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    fn(arg, 0, p->nth);
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) != p->nth - 1)
        if (++spins > 1000)
            sched_yield();
}

static void pool_stop(pool *p)
{
    atomic_store(&p->quit, 1);
    for (int i = 1; i < p->nth; i++)
        pthread_join(p->th[i], NULL);
}

/* row range of thread tid, in chunks of BITNET_TMAT_ROW_CHUNK */
static void split(int32_t rows, int tid, int nth, int32_t *r0, int32_t *r1)
{
    const int32_t chunks = (rows + BITNET_TMAT_ROW_CHUNK - 1) / BITNET_TMAT_ROW_CHUNK;
    int32_t c0 = chunks * tid / nth, c1 = chunks * (tid + 1) / nth;
    *r0 = c0 * BITNET_TMAT_ROW_CHUNK;
    *r1 = c1 * BITNET_TMAT_ROW_CHUNK < rows ? c1 * BITNET_TMAT_ROW_CHUNK : rows;
}

typedef struct {
    const bitnet_kernels *k;
    const bitnet_tmat *w;       /* current matrix */
    const int8_t *q;
    const float *as;
    int32_t n;
    float *y;
    /* head */
    const uint16_t *h16;
    const int8_t *h8;
    const float *hs, *x;
    int32_t hrows, hk;
    const bitnet_head *hq;
    const uint8_t *buf;
    size_t buf_bytes;
    uint64_t sink[8];
} bench_job;

static void job_gemv(void *a, int tid, int nth)
{
    bench_job *j = a;
    int32_t r0, r1;
    split(j->w->rows, tid, nth, &r0, &r1);
    if (r1 > r0)
        j->k->tgemv(j->w, r0, r1, j->q, 30.0f, j->y + r0);
}

static void job_gemm(void *a, int tid, int nth)
{
    bench_job *j = a;
    int32_t r0, r1;
    split(j->w->rows, tid, nth, &r0, &r1);
    if (r1 > r0)
        j->k->tgemm(j->w, r0, r1, j->q, j->as, j->n, j->y + r0, j->w->rows);
}

static void job_head16(void *a, int tid, int nth)
{
    bench_job *j = a;
    int32_t r0, r1;
    split(j->hrows, tid, nth, &r0, &r1);
    j->k->head_f16((const uint8_t *)j->h16, 2 * (size_t)j->hk, r0, r1, j->x, 0, 1, j->hk,
                   j->y + r0, 0);
}

static void job_head8(void *a, int tid, int nth)
{
    bench_job *j = a;
    int32_t r0, r1;
    split(j->hrows, tid, nth, &r0, &r1);
    j->k->head_i8(j->h8, (size_t)j->hk, j->hs, r0, r1, j->q, 0, 1, j->hk, j->y + r0, 0);
}

/* a quantised head (j->hq, format j->hfmt), one token */
static void job_headq(void *a, int tid, int nth)
{
    bench_job *j = a;
    int32_t r0, r1;
    split(j->hrows, tid, nth, &r0, &r1);
    bitnet__head_rows(j->k, j->hq, r0, r1, j->q, 1, j->y + r0, 0);
}

static void job_read(void *a, int tid, int nth)
{
    bench_job *j = a;
    const size_t n = j->buf_bytes / 8, lo = n * (size_t)tid / (size_t)nth,
                 hi = n * (size_t)(tid + 1) / (size_t)nth;
    const uint64_t *p = (const uint64_t *)(const void *)j->buf;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = lo;
    for (; i + 4 <= hi; i += 4) {
        s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3];
    }
    j->sink[tid] += s0 + s1 + s2 + s3;
}

static double read_bandwidth(pool *p, int quick)
{
    bench_job j;
    memset(&j, 0, sizeof(j));
    j.buf_bytes = (size_t)(quick ? 256 : 1024) << 20;
    uint8_t *buf = xaligned(j.buf_bytes);
    memset(buf, 1, j.buf_bytes);
    j.buf = buf;
    double best = 1e30;
    for (int it = 0; it < 5; it++) {
        double t = now();
        pool_run(p, job_read, &j);
        t = now() - t;
        if (t < best) best = t;
    }
    free(buf);
    return (double)j.buf_bytes / best / 1e9;
}

/* GEMV and GEMM on one cache-resident 256x2560 matrix, one thread, best of
 * many runs: compute cost, stable on a busy machine. The GEMV line is also
 * what a GEMM without token blocking costs per token. */
static void bench_tgemm_l2(const bitnet_kernels *k, const int8_t *qbuf, const float *as)
{
    bitnet_tmat w = make_tmat(256, 2560, 0.4f);
    float *y = xaligned(sizeof(float) * 256 * 128);
    static const int32_t ns[] = { 1, 2, 8, 16, 128 };
    for (int i = 0; i < 5; i++) {
        const int32_t n = ns[i];
        double best = 1e30;
        for (int rep = 0; rep < (n >= 16 ? 40 : 200); rep++) {
            double t = now();
            if (n == 1)
                k->tgemv(&w, 0, 256, qbuf, as[0], y);
            else
                k->tgemm(&w, 0, 256, qbuf, as, n, y, 256);
            t = now() - t;
            if (t < best) best = t;
        }
        printf("%-9s %-8s %-12s %10.1f %7s %6s %7.1f %8.0f  (%d token%s, in cache, best of runs)\n",
               n == 1 ? "tgemvL2" : "tgemmL2", n == 1 ? k->name_tgemv : k->name_tgemm,
               "256x2560", best * 1e6, "", "", 2.0 * 256 * 2560 * n / best / 1e9, n / best,
               n, n > 1 ? "s" : "");
    }
    free(y);
    free(w.data);
}

/* Heads on 96 cache-resident rows of 2560 (one thread, best of many short
 * runs): the compute cost per weight byte, which must stay well below the
 * DRAM time per byte for a head to run at the read bandwidth. */
static void bench_heads_l2(const bitnet_kernels *k)
{
    static const int fmts[] = { BITNET_HF_F16, BITNET_HF_I8, BITNET_HF_Q8_0, BITNET_HF_Q6_K };
    const int32_t rows = 96, cols = 2560;
    float *x = xaligned(4 * (size_t)cols), *y = xaligned(4 * (size_t)rows);
    for (int32_t j = 0; j < cols; j++) x[j] = rnd_float(1.0f);
    for (int f = 0; f < 4; f++) {
        bitnet_head h;
        memset(&h, 0, sizeof(h));
        h.fmt = fmts[f]; h.rows = rows; h.cols = cols;
        h.row_bytes = bitnet__head_row_bytes(h.fmt, cols);
        uint8_t *w = xaligned(h.row_bytes * (size_t)rows);
        float *sc = xaligned(4 * (size_t)rows), *row = xaligned(4 * (size_t)cols);
        for (int32_t r = 0; r < rows; r++) {
            for (int32_t j = 0; j < cols; j++) row[j] = rnd_float(0.05f);
            if (h.fmt == BITNET_HF_I8)
                sc[r] = bitnet__head_quant_row_i8(row, cols, (int8_t *)w + (size_t)r * h.row_bytes);
            else
                bitnet__head_quant_row(h.fmt, row, cols, w + (size_t)r * h.row_bytes);
        }
        h.w = w;
        h.scale = sc;
        bitnet__head_init(&h);
        uint8_t *xq = xaligned(h.xq_size);
        bitnet__head_prepare(k, &h, x, xq);
        double best = 1e30;
        for (int rep = 0; rep < 300; rep++) {
            double t = now();
            bitnet__head_rows(k, &h, 0, rows, xq, 1, y, 0);
            t = now() - t;
            if (t < best) best = t;
        }
        const double bytes = (double)h.row_bytes * rows;
        printf("%-9s %-8s %-12s %10.1f %7.2f %6s %7.1f %8s  (96 rows in cache, best of 300)\n",
               f == 0 ? "headL2f16" : f == 1 ? "headL2i8" : f == 2 ? "headL2q8" : "headL2q6k",
               bitnet__head_kernel_name(k, h.fmt), "96x2560", best * 1e6, bytes / best / 1e9, "",
               2.0 * rows * cols / best / 1e9, "");
        free(w); free(sc); free(row); free(xq);
    }
    free(x); free(y);
}

static void bench(int quick)
{
    static const int32_t shapes[][2] = { {2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912} };
    const uint32_t avail = bitnet__cpu_detect();
    const size_t total_target = (size_t)(quick ? 64 : 512) << 20;  /* > L3: stream from DRAM */
    float *y = xaligned(sizeof(float) * 128256 * 2);
    int8_t *qbuf = xaligned(6912 * 128);
    float as[128];
    for (int i = 0; i < 128; i++)
        as[i] = 30.0f + (float)i;
    for (size_t i = 0; i < 6912 * 128; i++)
        qbuf[i] = (int8_t)rnd_int(-127, 127);

    for (int nth = 1; nth <= 2; nth++) {
        pool p;
        pool_start(&p, nth);
        const double bw = read_bandwidth(&p, quick);
        printf("\n== %d thread%s: streaming read bandwidth %.1f GB/s (%s buffer)\n", nth,
               nth > 1 ? "s" : "", bw, quick ? "256 MiB" : "1 GiB");
        printf("%-9s %-8s %-12s %10s %7s %6s %7s %8s\n", "kernel", "isa", "shape", "us/call",
               "GB/s", "%read", "GOP/s", "tok/s");
        uint32_t levels[8], level = 0;
        int nlev = 0;
        levels[nlev++] = 0;
        for (int i = 0; isa_order[i].name; i++)
            if (avail & isa_order[i].flag)
                levels[nlev++] = level |= isa_order[i].flag;
        for (int lv = 0; lv < nlev; lv++) {
            const int li = lv - 1;                 /* -1: the C reference */
            level = levels[lv];
            bitnet_kernels k;
            bitnet__kernels_init(&k, level);
            /* ternary GEMV over the 2B4T shapes, cycling over copies > L3 */
            for (int s = 0; s < 4; s++) {
                const int32_t rows = shapes[s][0], cols = shapes[s][1];
                bitnet_tmat w0 = make_tmat(rows, cols, 0.4f);
                int ncopy = (int)(total_target / w0.size) + 1;
                bitnet_tmat *ws = malloc(sizeof(*ws) * (size_t)ncopy);
                for (int c = 0; c < ncopy; c++) {
                    ws[c] = w0;
                    ws[c].data = xaligned(w0.size);
                    memcpy(ws[c].data, w0.data, w0.size);
                }
                bench_job j;
                memset(&j, 0, sizeof(j));
                j.k = &k; j.q = qbuf; j.y = y; j.as = as;
                const int reps = li < 0 ? 1 : quick ? 1 : 3;   /* ref is slow */
                const int calls = li < 0 ? (ncopy < 16 ? ncopy : 16) : ncopy;
                double best = 1e30;
                for (int rep = 0; rep < reps; rep++) {
                    double t = now();
                    for (int c = 0; c < calls; c++) {
                        j.w = &ws[c];
                        pool_run(&p, job_gemv, &j);
                    }
                    t = (now() - t) / calls;
                    if (t < best) best = t;
                }
                char shape[32];
                snprintf(shape, sizeof(shape), "%dx%d", rows, cols);
                printf("%-9s %-8s %-12s %10.1f %7.2f %5.0f%% %7.1f %8.0f\n", "tgemv",
                       k.name_tgemv, shape, best * 1e6, (double)w0.size / best / 1e9,
                       100.0 * (double)w0.size / best / 1e9 / bw,
                       2.0 * rows * cols / best / 1e9, 1.0 / best);
                if (s == 1 && li >= 0) {   /* one 410 KB matrix: cache resident */
                    j.w = &ws[0];
                    double tc = 1e30;
                    for (int rep = 0; rep < 3; rep++) {
                        double t = now();
                        for (int c = 0; c < 200; c++)
                            pool_run(&p, job_gemv, &j);
                        t = (now() - t) / 200;
                        if (t < tc) tc = t;
                    }
                    printf("%-9s %-8s %-12s %10.1f %7.2f %6s %7.1f %8.0f  (one matrix, in cache)\n",
                           "tgemv-L2", k.name_tgemv, shape, tc * 1e6, (double)w0.size / tc / 1e9,
                           "", 2.0 * rows * cols / tc / 1e9, 1.0 / tc);
                }
                /* GEMM, 128 tokens, on one copy (compute bound) */
                if (s == 2 || s == 0) {
                    j.n = li < 0 ? 8 : 128;
                    j.w = &ws[0];
                    float *yy = xaligned(sizeof(float) * (size_t)rows * 128);
                    j.y = yy;
                    double tb = 1e30;
                    for (int rep = 0; rep < (li < 0 ? 1 : 2); rep++) {
                        double t = now();
                        pool_run(&p, job_gemm, &j);
                        t = now() - t;
                        if (t < tb) tb = t;
                    }
                    printf("%-9s %-8s %-12s %10.1f %7s %6s %7.1f %8.0f  (%d tokens: %.1fx the %s GEMV's tok/s)\n",
                           "tgemm", k.name_tgemm, shape, tb * 1e6, "", "",
                           2.0 * rows * cols * j.n / tb / 1e9, j.n / tb, j.n,
                           (j.n / tb) * best, k.name_tgemv);
                    j.y = y;
                    free(yy);
                }
                for (int c = 0; c < ncopy; c++)
                    free(ws[c].data);
                free(ws);
                free(w0.data);
            }
            /* output head 128256 x 2560 */
            if (li >= 0 && nth == 1) {
                bench_tgemm_l2(&k, qbuf, as);
                bench_heads_l2(&k);
            }
            if (li >= 0 || nth == 1) {
                const int32_t hr = li < 0 ? 8192 : quick ? 32768 : 128256, hk = 2560;
                bench_job j;
                memset(&j, 0, sizeof(j));
                j.k = &k; j.y = y; j.q = qbuf; j.hrows = hr; j.hk = hk;
                uint16_t *h16 = xaligned(2 * (size_t)hr * hk);
                for (size_t i = 0; i < (size_t)hr * hk; i++)
                    h16[i] = (uint16_t)(0x2000 + (i * 2654435761u >> 20) % 0x1000);
                float *x = xaligned(4 * hk), *hs = xaligned(4 * (size_t)hr);
                for (int i = 0; i < hk; i++) x[i] = rnd_float(1.0f);
                for (int i = 0; i < hr; i++) hs[i] = 0.01f;
                j.h16 = h16; j.x = x; j.hs = hs;
                double best = 1e30;
                for (int rep = 0; rep < (li < 0 ? 1 : 3); rep++) {
                    double t = now();
                    pool_run(&p, job_head16, &j);
                    t = now() - t;
                    if (t < best) best = t;
                }
                char shape[32];
                snprintf(shape, sizeof(shape), "%dx%d", hr, hk);
                printf("%-9s %-8s %-12s %10.1f %7.2f %5.0f%% %7.1f %8.1f\n", "head_f16", k.name_head_f16,
                       shape, best * 1e6, 2.0 * hr * hk / best / 1e9,
                       100.0 * 2.0 * hr * hk / best / 1e9 / bw, 2.0 * hr * hk / best / 1e9, 1.0 / best);
                free(h16);
                int8_t *h8 = xaligned((size_t)hr * hk);
                for (size_t i = 0; i < (size_t)hr * hk; i++)
                    h8[i] = (int8_t)((i * 2654435761u) >> 25);
                j.h8 = h8;
                best = 1e30;
                for (int rep = 0; rep < (li < 0 ? 1 : 3); rep++) {
                    double t = now();
                    pool_run(&p, job_head8, &j);
                    t = now() - t;
                    if (t < best) best = t;
                }
                printf("%-9s %-8s %-12s %10.1f %7.2f %5.0f%% %7.1f %8.1f\n", "head_i8", k.name_head_i8,
                       shape, best * 1e6, 1.0 * hr * hk / best / 1e9,
                       100.0 * hr * hk / best / 1e9 / bw, 2.0 * hr * hk / best / 1e9, 1.0 / best);
                free(h8); free(x); free(hs);
                static const int qfmts[] = { BITNET_HF_Q8_0, BITNET_HF_Q6_K };
                for (int f = 0; f < 2; f++) {
                    bitnet_head h;
                    memset(&h, 0, sizeof(h));
                    h.fmt = qfmts[f]; h.rows = hr; h.cols = hk;
                    h.row_bytes = bitnet__head_row_bytes(h.fmt, hk);
                    uint8_t *hw = xaligned(h.row_bytes * (size_t)hr);
                    for (size_t i = 0; i < h.row_bytes * (size_t)hr; i++)
                        hw[i] = (uint8_t)((i * 2654435761u) >> 24);
                    for (int32_t r = 0; r < hr; r++) {   /* finite block scales */
                        const size_t bs = f == 0 ? 34 : 210, off = f == 0 ? 0 : 208;
                        for (size_t b = 0; b < h.row_bytes / bs; b++) {
                            const uint16_t d = 0x1c00;
                            memcpy(hw + (size_t)r * h.row_bytes + b * bs + off, &d, 2);
                        }
                    }
                    h.w = hw;
                    bitnet__head_init(&h);
                    uint8_t *xq = xaligned(h.xq_size);
                    float *xf = xaligned(4 * (size_t)hk);
                    for (int i = 0; i < hk; i++) xf[i] = rnd_float(1.0f);
                    bitnet__head_prepare(&k, &h, xf, xq);
                    j.hq = &h; j.q = (const int8_t *)xq;
                    best = 1e30;
                    for (int rep = 0; rep < (li < 0 ? 1 : 3); rep++) {
                        double t = now();
                        pool_run(&p, job_headq, &j);
                        t = now() - t;
                        if (t < best) best = t;
                    }
                    const double bytes = (double)h.row_bytes * hr;
                    printf("%-9s %-8s %-12s %10.1f %7.2f %5.0f%% %7.1f %8.1f\n",
                           f == 0 ? "head_q8_0" : "head_q6_k",
                           f == 0 ? k.name_head_q8_0 : k.name_head_q6_k, shape, best * 1e6,
                           bytes / best / 1e9, 100.0 * bytes / best / 1e9 / bw,
                           2.0 * hr * hk / best / 1e9, 1.0 / best);
                    j.q = qbuf;
                    free(hw); free(xq); free(xf);
                }
            }
        }
        pool_stop(&p);
    }
    free(y);
    free(qbuf);
}

int main(int argc, char **argv)
{
    uint64_t seed = (uint64_t)time(NULL);
    int do_bench = 0, quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--bench"))
            do_bench = 1;
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else {
            fprintf(stderr, "usage: %s [--seed N] [--bench [--quick]]\n", argv[0]);
            return 2;
        }
    }
    rng_state = seed;
    if (do_bench) {
        bench(quick);
        return 0;
    }
    printf("seed %" PRIu64 " (rerun with --seed %" PRIu64 ")\n", seed, seed);
    run_tests();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
