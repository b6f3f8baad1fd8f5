/*
 * Attention benchmark (kernels/layer.h attn_f16): one decode token of the
 * 2B4T shape (20 query heads, 5 KV heads of 128) over N cached positions,
 * per ISA level, single thread, against the loop the forward pass had before
 * attn_f16 (one dot_f16 call per key, softmax, one axpy_f16 per key); the
 * rate of K/V bytes read is compared with the streaming read rate of a
 * buffer of the same size. Times are the thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID), so that a busy shared host does not count
 * the time this thread waited for a core.
 *
 *   bench_layer [--small-pages] [N ...]     (default 512 4096)
 *
 * --small-pages advises the K and V buffers MADV_NOHUGEPAGE, as the
 * library's KV cache is (lib/eval/context.c), instead of huge pages.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "bitnet.h"
#include "kernels_impl.h"
#include "kutil.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { NKV = 5, GROUPQ = 4, HD = 128, LAYERS = 8 };
static int small_pages;

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The forward pass's decode split: per layer, the (KV head, segment of
 * BITNET_ATTN_SEG keys) items interleaved over the threads, each item one
 * attn_f16 call with its (m, l) out, then a barrier (spinning, as the
 * library's pool does). The folds are left out (a few hundred floats). */
typedef struct seg_job {
    const bitnet_layer_kernels *lk;
    const float *q;
    const uint16_t *k, *v;
    float *part, *work;
    int32_t n_kv, ith, nth;
    size_t per;
    atomic_int *bar;
} seg_job;

static void spin_barrier(atomic_int *b, int nth, int *phase)
{
    const int target = (*phase + 1) * nth;
    atomic_fetch_add(b, 1);
    while (atomic_load(b) < target)
        ;
    (*phase)++;
}

static void *seg_thread(void *arg)
{
    seg_job *j = arg;
    const int32_t nseg = (j->n_kv + BITNET_ATTN_SEG - 1) / BITNET_ATTN_SEG;
    const size_t part_len = (size_t)GROUPQ * (HD + 2);
    int phase = 0;
    for (int l = 0; l < LAYERS; l++) {
        for (int32_t it = j->ith; it < NKV * nseg; it += j->nth) {
            const int32_t h = it / nseg, s = it % nseg, k0 = s * BITNET_ATTN_SEG;
            const int32_t ns = j->n_kv - k0 < BITNET_ATTN_SEG ? j->n_kv - k0 : BITNET_ATTN_SEG;
            const size_t off = (size_t)l * j->per + ((size_t)h * j->n_kv + (size_t)k0) * HD;
            float *part = j->part + (size_t)it * part_len;
            j->lk->attn_f16(j->q + (size_t)h * GROUPQ * HD, GROUPQ, j->k + off, j->v + off, ns, HD,
                            0.0884f, part, part + (size_t)GROUPQ * HD, j->work);
        }
        spin_barrier(j->bar, j->nth, &phase);
    }
    return NULL;
}

/* A streaming read of k and v (wall time) by nth threads, each its half. */
typedef struct read_job { const uint8_t *b; size_t lo, hi; uint64_t s; } read_job;
static void *read_thread(void *arg)
{
    read_job *r = arg;
    r->s = kutil_read(r->b, r->lo, r->hi);
    return NULL;
}
static double read_threads(const uint16_t *k, const uint16_t *v, size_t bytes_each, int nth)
{
    read_job jobs[4];
    pthread_t th[4];
    const size_t steps = bytes_each / 256;
    double t = wall();
    for (int i = 0; i < 2 * nth; i++) {
        const uint8_t *b = (const uint8_t *)(i < nth ? (const void *)k : (const void *)v);
        const int part = i % nth;
        jobs[i] = (read_job){ b, steps * (size_t)part / (size_t)nth,
                              steps * (size_t)(part + 1) / (size_t)nth, 0 };
    }
    /* thread i reads its part of k, then of v */
    for (int i = 1; i < nth; i++)
        pthread_create(&th[i], NULL, read_thread, &jobs[i]);
    read_thread(&jobs[0]);
    for (int i = 1; i < nth; i++)
        pthread_join(th[i], NULL);
    for (int i = 1; i < nth; i++)
        pthread_create(&th[i], NULL, read_thread, &jobs[nth + i]);
    read_thread(&jobs[nth]);
    for (int i = 1; i < nth; i++)
        pthread_join(th[i], NULL);
    t = wall() - t;
    if (jobs[0].s == 42) printf(" ");
    return t;
}

static double run_segments(const bitnet_layer_kernels *lk, const float *q, const uint16_t *k,
                           const uint16_t *v, int32_t n_kv, size_t per, int nth)
{
    const int32_t nseg = (n_kv + BITNET_ATTN_SEG - 1) / BITNET_ATTN_SEG;
    float *part = xaligned(4 * (size_t)NKV * nseg * GROUPQ * (HD + 2));
    seg_job jobs[2];
    pthread_t th[2];
    atomic_int bar = 0;
    for (int i = 0; i < nth; i++) {
        jobs[i] = (seg_job){ lk, q, k, v, part, xaligned(4 * BITNET_ATTN_WORK(GROUPQ, BITNET_ATTN_SEG, HD)),
                             n_kv, i, nth, per, &bar };
    }
    double t = wall();
    for (int i = 1; i < nth; i++)
        pthread_create(&th[i], NULL, seg_thread, &jobs[i]);
    seg_thread(&jobs[0]);
    for (int i = 1; i < nth; i++)
        pthread_join(th[i], NULL);
    t = wall() - t;
    for (int i = 0; i < nth; i++)
        free(jobs[i].work);
    free(part);
    return t;
}

static void run(int32_t n_kv)
{
    /* LAYERS copies of the cache so that it does not sit in L3 */
    const size_t per = (size_t)NKV * n_kv * HD;
    uint16_t *k = xaligned(2 * per * LAYERS), *v = xaligned(2 * per * LAYERS);
#if defined(MADV_NOHUGEPAGE)
    if (small_pages) {
        madvise(k, (2 * per * LAYERS) & ~(size_t)4095, MADV_NOHUGEPAGE);
        madvise(v, (2 * per * LAYERS) & ~(size_t)4095, MADV_NOHUGEPAGE);
    }
#endif
    for (size_t i = 0; i < per * LAYERS; i++) {
        k[i] = bitnet__fp32_to_fp16(rnd_float(2.0f));
        v[i] = bitnet__fp32_to_fp16(rnd_float(2.0f));
    }
    float *q = xaligned(4 * NKV * GROUPQ * HD), *o = xaligned(4 * NKV * GROUPQ * HD);
    for (int i = 0; i < NKV * GROUPQ * HD; i++)
        q[i] = rnd_float(1.0f);
    float *work = xaligned(4 * BITNET_ATTN_WORK(GROUPQ, n_kv, HD));
    const double bytes = 2.0 * 2.0 * (double)per * LAYERS;

    /* streaming read of the same bytes */
    double best_read = 1e30;
    for (int it = 0; it < 3; it++) {
        double t = now();
        const size_t steps = 2 * per * LAYERS / 256;
        uint64_t s = kutil_read((const uint8_t *)k, 0, steps) + kutil_read((const uint8_t *)v, 0, steps);
        t = now() - t;
        if (s == 42) printf(" ");
        if (t < best_read) best_read = t;
    }
    printf("\nn_kv %d: %d layers x %d KV heads x %d query heads, K+V %.1f MB (%s pages); "
           "streaming read %.1f GB/s\n", (int)n_kv, LAYERS, NKV, GROUPQ, bytes / 1e6,
           small_pages ? "small" : "huge", bytes / best_read / 1e9);
    printf("%-8s %-22s %10s %8s %7s\n", "isa", "grouping", "ms/layer", "GB/s", "%read");

    /* the per-key loop of the old forward pass, with the best dot/axpy */
    {
        bitnet_kernels kt;
        bitnet__kernels_init(&kt, bitnet__cpu_detect());
        float *sc = xaligned(4 * (size_t)n_kv);
        uint16_t q16[HD];
        double best = 1e30;
        for (int it = 0; it < 3; it++) {
            double t = now();
            for (int l = 0; l < LAYERS; l++)
                for (int h = 0; h < NKV; h++)
                    for (int g = 0; g < GROUPQ; g++) {
                        const float *qh = q + (size_t)(h * GROUPQ + g) * HD;
                        const uint16_t *kb = k + (size_t)l * per + (size_t)h * n_kv * HD;
                        const uint16_t *vb = v + (size_t)l * per + (size_t)h * n_kv * HD;
                        float *oh = o + (size_t)(h * GROUPQ + g) * HD;
                        for (int i = 0; i < HD; i++)
                            q16[i] = bitnet__fp32_to_fp16(qh[i]);
                        for (int32_t s = 0; s < n_kv; s++)
                            sc[s] = kt.dot_f16(q16, kb + (size_t)s * HD, HD);
                        kt.softmax(sc, n_kv, 0.0884f);
                        memset(oh, 0, HD * sizeof(float));
                        for (int32_t s = 0; s < n_kv; s++)
                            kt.axpy_f16(oh, vb + (size_t)s * HD, sc[s], HD);
                    }
            t = now() - t;
            if (t < best) best = t;
        }
        printf("%-8s %-22s %10.3f %8.1f %6.0f%%\n", kt.name_dot_f16, "per-key loop (before)",
               best * 1e3 / LAYERS, bytes / best / 1e9, 100.0 * best_read / best);
        free(sc);
    }

    uint32_t level = 0;
    for (int li = -1; li < 0 || isa_order[li].name; li++) {
        if (li >= 0) {
            if (!(bitnet__cpu_detect() & isa_order[li].flag))
                continue;
            level |= isa_order[li].flag;
        }
        bitnet_layer_kernels lk;
        bitnet__layer_kernels_init(&lk, level);
        if (li >= 0) {
            bitnet_layer_kernels prev;
            bitnet__layer_kernels_init(&prev, level & ~isa_order[li].flag);
            if (prev.attn_f16 == lk.attn_f16)
                continue;
        }
        for (int nq = GROUPQ; nq >= 1; nq /= 4) {
            double best = 1e30;
            for (int it = 0; it < (li < 0 ? 1 : 3); it++) {
                double t = now();
                for (int l = 0; l < LAYERS; l++)
                    for (int h = 0; h < NKV; h++)
                        for (int g = 0; g < GROUPQ; g += nq)
                            lk.attn_f16(q + (size_t)(h * GROUPQ + g) * HD, nq,
                                        k + (size_t)l * per + (size_t)h * n_kv * HD,
                                        v + (size_t)l * per + (size_t)h * n_kv * HD,
                                        n_kv, HD, 0.0884f, o + (size_t)(h * GROUPQ + g) * HD, NULL, work);
                t = now() - t;
                if (t < best) best = t;
            }
            printf("%-8s %-22s %10.3f %8.1f %6.0f%%\n", lk.name_attn_f16,
                   nq == GROUPQ ? "4 heads per call" : "1 head per call",
                   best * 1e3 / LAYERS, bytes / best / 1e9, 100.0 * best_read / best);
        }
    }

    /* the forward pass's split over one and two threads (wall time) */
    {
        bitnet_layer_kernels lk;
        bitnet__layer_kernels_init(&lk, bitnet__cpu_detect());
        for (int nth = 1; nth <= 2; nth++) {
            double best = 1e30, best_rd = 1e30;
            for (int it = 0; it < 7; it++) {
                const double tr = read_threads(k, v, 2 * per * LAYERS, nth);
                const double t = run_segments(&lk, q, k, v, n_kv, per, nth);
                if (t < best) best = t;
                if (tr < best_rd) best_rd = tr;
            }
            printf("%-8s %d thread%s, segments   %10.3f %8.1f %6.0f%%  (wall time; read %.1f GB/s)\n",
                   lk.name_attn_f16, nth, nth > 1 ? "s" : " ", best * 1e3 / LAYERS, bytes / best / 1e9,
                   100.0 * best_rd / best, bytes / best_rd / 1e9);
        }
    }
    free(k); free(v); free(q); free(o); free(work);
}

int main(int argc, char **argv)
{
    rng_state = 1;
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--small-pages") == 0) {
        small_pages = 1;
        first = 2;
    }
    if (argc > first) {
        for (int i = first; i < argc; i++)
            run((int32_t)atoi(argv[i]));
    } else {
        run(512);
        run(4096);
    }
    return 0;
}
