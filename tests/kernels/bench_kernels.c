/*
 * Kernel benchmark: throughput per kernel, ISA level and thread count
 * against the measured streaming read bandwidth (docs/kernels.md).
 *
 *   bench_kernels [--quick] [--top] [--threads N] [--seed N]
 *
 * --top runs only the highest ISA level the CPU has (no reference, no lower
 * levels); --threads N only that thread count (1 or 2).
 *
 * The equivalence checks are test_kernels.c.
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
#include "kutil.h"

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
    const size_t n = j->buf_bytes / 256, lo = n * (size_t)tid / (size_t)nth,
                 hi = n * (size_t)(tid + 1) / (size_t)nth;
    j->sink[tid] += kutil_read(j->buf, lo, hi);
}

/* The streaming read buffer of the paired measurements below. */
static bench_job rjob;

/* One streaming read pass over rjob's buffer (GB/s). */
static double read_once(pool *p)
{
    double t = now();
    pool_run(p, job_read, &rjob);
    return (double)rjob.buf_bytes / (now() - t) / 1e9;
}

/* A kernel's %read from passes paired with a read pass just before each:
 * the median of the per-pair ratios. On a host whose bandwidth moves from
 * second to second a ratio of a kernel figure against one read figure taken
 * minutes earlier says little; a pair taken within tens of milliseconds
 * sees the same host. */
#define PAIRS 5
static double median_ratio(double *r, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && r[j] < r[j - 1]; j--) {
            double t = r[j]; r[j] = r[j - 1]; r[j - 1] = t;
        }
    return n % 2 ? r[n / 2] : 0.5 * (r[n / 2 - 1] + r[n / 2]);
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
    enum { NT = 16 };
    float *x = xaligned(4 * (size_t)cols), *y = xaligned(4 * (size_t)rows * NT);
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
        uint8_t *xq = xaligned(h.xq_size * NT);
        for (int t = 0; t < NT; t++)
            bitnet__head_prepare(k, &h, x, xq + (size_t)t * h.xq_size);
        /* one token, then NT tokens in one call (a batched decode step) */
        for (int n = 1; n <= NT; n += NT - 1) {
            double best = 1e30;
            for (int rep = 0; rep < 300; rep++) {
                double t = now();
                bitnet__head_rows(k, &h, 0, rows, xq, n, y, (size_t)rows);
                t = now() - t;
                if (t < best) best = t;
            }
            const double bytes = (double)h.row_bytes * rows;
            char note[64];
            snprintf(note, sizeof(note), "(96 rows in cache, %d token%s, best of 300)", n,
                     n > 1 ? "s" : "");
            printf("%-9s %-8s %-12s %10.1f %7.2f %6s %7.1f %8s  %s\n",
                   f == 0 ? "headL2f16" : f == 1 ? "headL2i8" : f == 2 ? "headL2q8" : "headL2q6k",
                   bitnet__head_kernel_name(k, h.fmt), "96x2560", best * 1e6, bytes / best / 1e9,
                   "", 2.0 * rows * cols * n / best / 1e9, "", note);
        }
        free(w); free(sc); free(row); free(xq);
    }
    free(x); free(y);
}

static void bench(int quick, int top, int only_nth)
{
    /* the 2B4T matrices, then the eval's fused stages (q, k, v as one list
     * of row units: 3840 rows; gate and up: 13824), which is how the 640-row
     * k and v projections are run */
    static const int32_t shapes[][2] = { {2560, 2560}, {640, 2560}, {6912, 2560}, {2560, 6912},
                                         {3840, 2560}, {13824, 2560} };
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
        if (only_nth && nth != only_nth)
            continue;
        pool p;
        pool_start(&p, nth);
        const double bw = read_bandwidth(&p, quick);
        printf("\n== %d thread%s: streaming read bandwidth %.1f GB/s (%s buffer); %%read of\n"
               "   each line: median of %d ratios to a read pass of %s just before each pass\n",
               nth, nth > 1 ? "s" : "", bw, quick ? "256 MiB" : "1 GiB", PAIRS,
               quick ? "64 MiB" : "512 MiB");
        memset(&rjob, 0, sizeof(rjob));
        rjob.buf_bytes = (size_t)(quick ? 64 : 512) << 20;
        uint8_t *rbuf = xaligned(rjob.buf_bytes);
        memset(rbuf, 1, rjob.buf_bytes);
        rjob.buf = rbuf;
        printf("%-9s %-8s %-12s %10s %7s %6s %7s %8s\n", "kernel", "isa", "shape", "us/call",
               "GB/s", "%read", "GOP/s", "tok/s");
        uint32_t levels[8], level = 0;
        int nlev = 0;
        levels[nlev++] = 0;
        for (int i = 0; isa_order[i].name; i++)
            if (avail & isa_order[i].flag)
                levels[nlev++] = level |= isa_order[i].flag;
        for (int lv = top ? nlev - 1 : 0; lv < nlev; lv++) {
            const int li = lv - 1;                 /* -1: the C reference */
            level = levels[lv];
            bitnet_kernels k;
            bitnet__kernels_init(&k, level);
            /* ternary GEMV over the 2B4T shapes, cycling over copies > L3 */
            for (int s = 0; s < 6; s++) {
                const int32_t rows = shapes[s][0], cols = shapes[s][1];
                bitnet_tmat w0 = make_tmat(rows, cols, 0.4f);
                int ncopy = (int)(total_target / w0.size) + 1;
                bitnet_tmat *ws = malloc(sizeof(*ws) * (size_t)ncopy);
                /* the copies one after another in one block, as the
                 * model's arena holds its matrices */
                const size_t stride = (w0.size + 63) / 64 * 64;
                uint8_t *block = xaligned(stride * (size_t)ncopy);
                for (int c = 0; c < ncopy; c++) {
                    ws[c] = w0;
                    ws[c].data = block + stride * (size_t)c;
                    memcpy(ws[c].data, w0.data, w0.size);
                }
                bench_job j;
                memset(&j, 0, sizeof(j));
                j.k = &k; j.q = qbuf; j.y = y; j.as = as;
                const int reps = li < 0 ? 1 : PAIRS;   /* ref is slow */
                const int calls = li < 0 ? (ncopy < 16 ? ncopy : 16) : ncopy;
                double best = 1e30, ratio[PAIRS];
                for (int rep = 0; rep < reps; rep++) {
                    const double rbw = read_once(&p);
                    double t = now();
                    for (int c = 0; c < calls; c++) {
                        j.w = &ws[c];
                        pool_run(&p, job_gemv, &j);
                    }
                    t = (now() - t) / calls;
                    if (t < best) best = t;
                    ratio[rep] = (double)w0.size / t / 1e9 / rbw;
                }
                char shape[32];
                snprintf(shape, sizeof(shape), "%dx%d", rows, cols);
                printf("%-9s %-8s %-12s %10.1f %7.2f %5.0f%% %7.1f %8.0f\n", "tgemv",
                       k.name_tgemv, shape, best * 1e6, (double)w0.size / best / 1e9,
                       100.0 * median_ratio(ratio, reps),
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
                free(block);
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
                const int hreps = li < 0 ? 1 : PAIRS;
                double best = 1e30, ratio[PAIRS];
                for (int rep = 0; rep < hreps; rep++) {
                    const double rbw = read_once(&p);
                    double t = now();
                    pool_run(&p, job_head16, &j);
                    t = now() - t;
                    if (t < best) best = t;
                    ratio[rep] = 2.0 * hr * hk / t / 1e9 / rbw;
                }
                char shape[32];
                snprintf(shape, sizeof(shape), "%dx%d", hr, hk);
                printf("%-9s %-8s %-12s %10.1f %7.2f %5.0f%% %7.1f %8.1f\n", "head_f16", k.name_head_f16,
                       shape, best * 1e6, 2.0 * hr * hk / best / 1e9,
                       100.0 * median_ratio(ratio, hreps), 2.0 * hr * hk / best / 1e9, 1.0 / best);
                free(h16);
                int8_t *h8 = xaligned((size_t)hr * hk);
                for (size_t i = 0; i < (size_t)hr * hk; i++)
                    h8[i] = (int8_t)((i * 2654435761u) >> 25);
                j.h8 = h8;
                best = 1e30;
                for (int rep = 0; rep < hreps; rep++) {
                    const double rbw = read_once(&p);
                    double t = now();
                    pool_run(&p, job_head8, &j);
                    t = now() - t;
                    if (t < best) best = t;
                    ratio[rep] = 1.0 * hr * hk / t / 1e9 / rbw;
                }
                printf("%-9s %-8s %-12s %10.1f %7.2f %5.0f%% %7.1f %8.1f\n", "head_i8", k.name_head_i8,
                       shape, best * 1e6, 1.0 * hr * hk / best / 1e9,
                       100.0 * median_ratio(ratio, hreps), 2.0 * hr * hk / best / 1e9, 1.0 / best);
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
                    const double bytes = (double)h.row_bytes * hr;
                    for (int rep = 0; rep < hreps; rep++) {
                        const double rbw = read_once(&p);
                        double t = now();
                        pool_run(&p, job_headq, &j);
                        t = now() - t;
                        if (t < best) best = t;
                        ratio[rep] = bytes / t / 1e9 / rbw;
                    }
                    printf("%-9s %-8s %-12s %10.1f %7.2f %5.0f%% %7.1f %8.1f\n",
                           f == 0 ? "head_q8_0" : "head_q6_k",
                           f == 0 ? k.name_head_q8_0 : k.name_head_q6_k, shape, best * 1e6,
                           bytes / best / 1e9, 100.0 * median_ratio(ratio, hreps),
                           2.0 * hr * hk / best / 1e9, 1.0 / best);
                    j.q = qbuf;
                    free(hw); free(xq); free(xf);
                }
            }
        }
        free(rbuf);
        pool_stop(&p);
    }
    free(y);
    free(qbuf);
}

int main(int argc, char **argv)
{
    uint64_t seed = 1;
    int quick = 0, top = 0, only_nth = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            seed = strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--top"))
            top = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "1") || !strcmp(argv[i + 1], "2")))
            only_nth = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--quick] [--top] [--threads 1|2] [--seed N]\n", argv[0]);
            return 2;
        }
    }
    rng_state = seed;
    bench(quick, top, only_nth);
    return 0;
}
