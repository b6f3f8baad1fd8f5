/*
 * Kernel equivalence test and benchmark (checkasm-like, plain C so that it
 * also runs in cross builds without cmocka).
 *
 *   test_kernels [--seed N]     compare every SIMD entry with the reference,
 *                               for every cumulative ISA level this CPU runs
 *
 * The benchmark is bench_kernels.c.
 *
 * Integers (quant_act, tgemv, tgemm, head_i8, axpy_f16) must be bit-exact;
 * float reductions must be within the bounds documented in docs/kernels.md.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bitnet.h"
#include "kernels_impl.h"
#include "kutil.h"

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

/* RoPE: the variants do the reference's products and sums in its order,
 * so they must equal it bit for bit. Softmax has no SIMD variant yet; if
 * one appears it is held to a 2 ulp-ish relative bound. */
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
        if (memcmp(a, b, 4 * n) != 0)
            ok = 0;
        free(a); free(b); free(cs); free(sn);
    }
    result("rope", k->name_rope, ok, "differs from the reference");
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

int main(int argc, char **argv)
{
    uint64_t seed = (uint64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else {
            fprintf(stderr, "usage: %s [--seed N]\n", argv[0]);
            return 2;
        }
    }
    rng_state = seed;
    printf("seed %" PRIu64 " (rerun with --seed %" PRIu64 ")\n", seed, seed);
    run_tests();
    n_fail += kutil_tmat_failures;
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
