/*
 * AVX2 integer kernels. Ternary dot products use the codes c = t + 1 as
 * unsigned bytes with vpmaddubsw (u8 x s8 -> s16 pairs), accumulate a few
 * blocks in int16 (bounds below: no overflow, no saturation), widen with
 * vpmaddwd, and sum t*q = sum c*q - sum q. Integers are exactly the
 * reference's.
 */
#include "x86/tdriver.h"

/*
 * Unpack with one shift: for a weight byte w (fields f0..f3 at bits 7-6,
 * 5-4, 3-2, 1-0) and h = w >> 4 (16-bit shift; the bits pulled in from the
 * neighbouring byte are masked off):
 *   h & 3 = c1,  w & 3 = c3,  h & 12 = 4 c0,  w & 12 = 4 c2.
 * vpmaddubsw then gives per int16 lane 4 X0, X1, 4 X2, X3, where X_f is a
 * pair sum c q with |X_f| <= 2*2*128 = 512 (X_f in [-512, 508]). Two int16
 * accumulators per row collect A = 4 (X0 + X2) in [-4096, 4064] and
 * B = X1 + X3 in [-1024, 1016] per block; over GROUP_FLUSH = 8 blocks
 * A stays in [-32768, 32512] and B in [-8192, 8128]: no overflow, no
 * saturation for any int8 q (including -128). Every 8 blocks they are
 * widened with vpmaddwd into an int32 accumulator of 4 * sum c q
 * (A * 1 + B * 4), divided by 4 (exactly) at the end.
 */
#define GROUP_FLUSH 8
#ifndef GEMV_PREFETCH
#define GEMV_PREFETCH 4096
#endif

static inline __m256i flush4(__m256i acc, __m256i a, __m256i b)
{
    const __m256i ones16 = _mm256_set1_epi16(1), fours16 = _mm256_set1_epi16(4);
    return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(a, ones16),
                                                  _mm256_madd_epi16(b, fours16)));
}

/* Prefetch address n bytes past p, computed as an integer: it may lie past
 * the end of the object (a prefetch never faults), which pointer
 * arithmetic must not. */
static inline const char *ahead(const void *p, size_t n)
{
    return (const char *)((uintptr_t)p + n);
}

/* 4 int32 sums (one per row of the group) of sum c*q */
static inline __m128i group_dot(const uint8_t *p, const int8_t *q, int32_t nb)
{
    const __m256i m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int32_t b0 = 0; b0 < nb; b0 += GROUP_FLUSH) {
        const int32_t b1 = nb - b0 < GROUP_FLUSH ? nb : b0 + GROUP_FLUSH;
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        __m256i c0 = a0, c1 = a0, c2 = a0, c3 = a0;
        for (int32_t b = b0; b < b1; b++) {
            const uint8_t *pb = p + (size_t)b * 128;
            const int8_t *qb = q + (size_t)b * 128;
            const __m256i q0 = _mm256_loadu_si256((const __m256i *)qb);
            const __m256i q1 = _mm256_loadu_si256((const __m256i *)(qb + 32));
            const __m256i q2 = _mm256_loadu_si256((const __m256i *)(qb + 64));
            const __m256i q3 = _mm256_loadu_si256((const __m256i *)(qb + 96));
            /* the weights are one forward stream: ask for them GEMV_PREFETCH
             * bytes early (a prefetch past the end of the data never faults) */
            _mm_prefetch(ahead(pb, GEMV_PREFETCH), _MM_HINT_T0);
            _mm_prefetch(ahead(pb, GEMV_PREFETCH + 64), _MM_HINT_T0);
#define ROW(i, a, c) do { \
            const __m256i w = _mm256_loadu_si256((const __m256i *)(pb + 32 * (i))); \
            const __m256i h = _mm256_srli_epi16(w, 4); \
            const __m256i s0 = _mm256_maddubs_epi16(_mm256_and_si256(h, m12), q0); \
            const __m256i s1 = _mm256_maddubs_epi16(_mm256_and_si256(h, m3), q1); \
            const __m256i s2 = _mm256_maddubs_epi16(_mm256_and_si256(w, m12), q2); \
            const __m256i s3 = _mm256_maddubs_epi16(_mm256_and_si256(w, m3), q3); \
            a = _mm256_add_epi16(a, _mm256_add_epi16(s0, s2)); \
            c = _mm256_add_epi16(c, _mm256_add_epi16(s1, s3)); \
        } while (0)
            ROW(0, a0, c0);
            ROW(1, a1, c1);
            ROW(2, a2, c2);
            ROW(3, a3, c3);
#undef ROW
        }
        acc0 = flush4(acc0, a0, c0);
        acc1 = flush4(acc1, a1, c1);
        acc2 = flush4(acc2, a2, c2);
        acc3 = flush4(acc3, a3, c3);
    }
    return _mm_srai_epi32(bitnet__x86_reduce4(acc0, acc1, acc2, acc3), 2);
}

BITNET_X86_TDRIVER_GEMV(avx2)

/*
 * GEMM: register blocking over GEMM_TOK tokens. One row's 32-byte block is
 * loaded and unpacked once (one shift, four ands) and multiplied against
 * the activations of GEMM_TOK tokens. Per token one int16 accumulator takes
 * (4 (X0 + X2) >> 2) + X1 + X3 per block (the shift is exact), in
 * [-2048, 2032] with the bounds of group_dot, so up to 16 blocks fit in
 * int16; it is widened every GROUP_FLUSH (8) blocks, which is also the K
 * chunk: the tile's activations for one chunk (GEMM_TOK * 1 KiB) and the
 * group's weights stay in L1. Measured on Zen 3: 4 tokens beat 2, 6 and 8,
 * a chunk of 8 blocks beats 12 and 16, and this one-accumulator form beats
 * group_dot's two accumulators per token (register pressure). The integer
 * sums are exactly group_dot's, so the results equal tgemv's.
 */
#define GEMM_TOK 4
#ifndef GEMM_PREFETCH
#define GEMM_PREFETCH 2048
#endif

static inline void row_chunk_tok4(const uint8_t *pw, const int8_t *const *qp,
                                  int32_t off, int32_t nblk, __m256i *acc)
{
    const __m256i m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12);
    const __m256i ones16 = _mm256_set1_epi16(1);
    const int8_t *qa = qp[0] + off, *qb = qp[1] + off, *qc = qp[2] + off, *qd = qp[3] + off;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (int32_t b = 0; b < nblk; b++, pw += 128, qa += 128, qb += 128, qc += 128, qd += 128) {
        const __m256i w = _mm256_loadu_si256((const __m256i *)pw);
        const __m256i h = _mm256_srli_epi16(w, 4);
        const __m256i c0 = _mm256_and_si256(h, m12), c1 = _mm256_and_si256(h, m3);
        const __m256i c2 = _mm256_and_si256(w, m12), c3 = _mm256_and_si256(w, m3);
#define TOK(qt, a) do { \
            const __m256i s0 = _mm256_maddubs_epi16(c0, _mm256_loadu_si256((const __m256i *)(qt))); \
            const __m256i s1 = _mm256_maddubs_epi16(c1, _mm256_loadu_si256((const __m256i *)((qt) + 32))); \
            const __m256i s2 = _mm256_maddubs_epi16(c2, _mm256_loadu_si256((const __m256i *)((qt) + 64))); \
            const __m256i s3 = _mm256_maddubs_epi16(c3, _mm256_loadu_si256((const __m256i *)((qt) + 96))); \
            const __m256i s02 = _mm256_srai_epi16(_mm256_add_epi16(s0, s2), 2); \
            a = _mm256_add_epi16(a, _mm256_add_epi16(s02, _mm256_add_epi16(s1, s3))); \
        } while (0)
        TOK(qa, a0);
        TOK(qb, a1);
        TOK(qc, a2);
        TOK(qd, a3);
#undef TOK
    }
    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(a0, ones16));
    acc[4] = _mm256_add_epi32(acc[4], _mm256_madd_epi16(a1, ones16));
    acc[8] = _mm256_add_epi32(acc[8], _mm256_madd_epi16(a2, ones16));
    acc[12] = _mm256_add_epi32(acc[12], _mm256_madd_epi16(a3, ones16));
}

void bitnet__tgemm_avx2(const bitnet_tmat *w, int32_t r0, int32_t r1,
                        const int8_t *q, const float *act_scale, int32_t n,
                        float *y, int32_t ldy)
{
    if (r1 <= r0)
        return;
    const int32_t nb = w->cols_padded / 128;
    const size_t kp = (size_t)w->cols_padded;
    if (n <= 2) {
        /* a 4-token tile would compute duplicates: the GEMV per token
         * (same integers, same epilogue) is faster here */
        for (int32_t i = 0; i < n; i++)
            bitnet__tgemv_avx2(w, r0, r1, q + (size_t)i * kp, act_scale[i], y + (size_t)i * (size_t)ldy);
        return;
    }
    int32_t sums[BITNET_X86_GEMM_TILE];
    for (int32_t i0 = 0; i0 < n; i0 += BITNET_X86_GEMM_TILE) {
        const int32_t nt = n - i0 < BITNET_X86_GEMM_TILE ? n - i0 : BITNET_X86_GEMM_TILE;
        for (int32_t i = 0; i < nt; i++)
            sums[i] = bitnet__x86_sum_i8(q + (size_t)(i0 + i) * kp, w->cols_padded);
        for (int32_t g = r0 / 4; g * 4 < r1; g++) {
            const int32_t base = g * 4;
            const int lo = base < r0 ? r0 - base : 0;
            const int hi = base + 4 > r1 ? r1 - base : 4;
            const uint8_t *p = bitnet__tmat_group(w, g);
            for (int32_t t0 = 0; t0 < nt; t0 += GEMM_TOK) {
                /* a partial tile repeats its last token; the copies are dropped */
                const int8_t *qp[GEMM_TOK];
                for (int t = 0; t < GEMM_TOK; t++)
                    qp[t] = q + (size_t)(i0 + (t0 + t < nt ? t0 + t : nt - 1)) * kp;
                __m256i acc[GEMM_TOK * 4];   /* [token][row] */
                for (int i = 0; i < GEMM_TOK * 4; i++)
                    acc[i] = _mm256_setzero_si256();
                for (int32_t b0 = 0; b0 < nb; b0 += GROUP_FLUSH) {
                    const int32_t nblk = nb - b0 < GROUP_FLUSH ? nb - b0 : GROUP_FLUSH;
                    if (t0 == 0) {
                        /* the first token tile reads the group stream from
                         * DRAM: ask for the chunk GEMM_PREFETCH bytes ahead
                         * (with few tokens there is little work per weight
                         * byte to hide the latency behind) */
                        bitnet__x86_prefetch_range((uintptr_t)(p + (size_t)b0 * 128) + GEMM_PREFETCH,
                                                   (size_t)nblk * 128);
                    }
                    for (int r = lo; r < hi; r++)
                        row_chunk_tok4(p + (size_t)b0 * 128 + 32 * r, qp, b0 * 128, nblk, acc + r);
                }
                for (int t = 0; t < GEMM_TOK && t0 + t < nt; t++) {
                    const int32_t i = i0 + t0 + t;
                    const __m256i *a = acc + 4 * t;
                    bitnet__x86_store_group(bitnet__x86_reduce4(a[0], a[1], a[2], a[3]),
                        sums[t0 + t], act_scale[i], w->scale,
                        y + (size_t)i * (size_t)ldy + (base + lo - r0), lo, hi);
                }
            }
        }
    }
}

void bitnet__quant_act_avx2(const float *x, int32_t k, int32_t kpad, int8_t *q,
                            float *scale, int32_t *sum)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 8 <= k; i += 8)   /* max(|x|, acc): a NaN |x| leaves acc */
        mx = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), mx);
    float lanes[8];
    _mm256_storeu_ps(lanes, mx);
    float m = 0.0f;
    for (int j = 0; j < 8; j++)
        if (lanes[j] > m) m = lanes[j];
    for (; i < k; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > m) m = a;
    }
    const float s = bitnet__act_scale_from_max((double)m);
    const __m256 vs = _mm256_set1_ps(s);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    __m256i acc = _mm256_setzero_si256();
    int32_t nvec = 0;
    for (i = 0; i + 32 <= k; i += 32, nvec++) {
        __m256i a = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
        __m256i b = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vs));
        __m256i c = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 16), vs));
        __m256i d = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 24), vs));
        __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
        __m256i v = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), perm);
        _mm256_storeu_si256((__m256i *)(q + i), v);
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(_mm256_xor_si256(v, bias),
                                                     _mm256_setzero_si256()));
    }
    int64_t lanes64[4];
    _mm256_storeu_si256((__m256i *)lanes64, acc);
    int32_t total = (int32_t)(lanes64[0] + lanes64[1] + lanes64[2] + lanes64[3] -
                              (int64_t)nvec * 32 * 128);
    for (; i < k; i++) {
        int32_t r = bitnet__round_even(x[i] * s);
        r = r < -128 ? -128 : r > 127 ? 127 : r;
        q[i] = (int8_t)r;
        total += r;
    }
    if (kpad > k)
        memset(q + k, 0, (size_t)(kpad - k));
    *scale = s;
    *sum = total;
}
