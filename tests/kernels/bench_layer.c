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
 *   bench_layer [N ...]     (default 512 4096)
 */
#include <inttypes.h>
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
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { NKV = 5, GROUPQ = 4, HD = 128, LAYERS = 8 };

static void run(int32_t n_kv)
{
    /* LAYERS copies of the cache so that it does not sit in L3 */
    const size_t per = (size_t)NKV * n_kv * HD;
    uint16_t *k = xaligned(2 * per * LAYERS), *v = xaligned(2 * per * LAYERS);
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
        uint64_t s = 0;
        const uint64_t *pk = (const uint64_t *)(const void *)k, *pv = (const uint64_t *)(const void *)v;
        for (size_t i = 0; i < per * LAYERS / 4; i++)
            s += pk[i] + pv[i];
        t = now() - t;
        if (s == 42) printf(" ");
        if (t < best_read) best_read = t;
    }
    printf("\nn_kv %d: %d layers x %d KV heads x %d query heads, K+V %.1f MB; "
           "streaming read %.1f GB/s\n", (int)n_kv, LAYERS, NKV, GROUPQ, bytes / 1e6,
           bytes / best_read / 1e9);
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
    free(k); free(v); free(q); free(o); free(work);
}

int main(int argc, char **argv)
{
    rng_state = 1;
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            run((int32_t)atoi(argv[i]));
    } else {
        run(512);
        run(4096);
    }
    return 0;
}
