/*
 * Output-head checks (included by test_kernels.c, which provides rnd*,
 * result, cbuf, within_sum_bound and N_CASES). Every head variant is
 * compared with the reference on random inputs with odd sizes, and with
 * itself: n tokens in one call must give each token's one-token result,
 * bit for bit (batched evaluation relies on it).
 */

/* Random head weights in a format: rows x row_bytes. Quantised formats get
 * random codes and finite, moderate block scales. */
static uint8_t *make_head_w(int fmt, int32_t rows, int32_t cols, size_t *row_bytes)
{
    const size_t rb = bitnet__head_row_bytes(fmt, cols);
    uint8_t *w = malloc(rb * (size_t)rows + 8);
    for (size_t i = 0; i < rb * (size_t)rows; i++)
        w[i] = (uint8_t)rnd();
    for (int32_t r = 0; r < rows; r++) {
        uint8_t *wr = w + (size_t)r * rb;
        uint16_t h;
        switch (fmt) {
        case BITNET_HF_F16:
            for (int32_t j = 0; j < cols; j++) {
                h = rnd_h(0.1f);
                memcpy(wr + 2 * j, &h, 2);
            }
            break;
        case BITNET_HF_Q8_0:
        case BITNET_HF_Q4_0: {
            const size_t bs = fmt == BITNET_HF_Q8_0 ? 34 : 18;
            for (int32_t b = 0; b < cols / 32; b++) {
                h = bitnet__fp32_to_fp16(0.001f + fabsf(rnd_float(0.01f)));
                memcpy(wr + bs * (size_t)b, &h, 2);
            }
            break;
        }
        case BITNET_HF_Q6_K:
            for (int32_t b = 0; b < cols / 256; b++) {
                h = bitnet__fp32_to_fp16(rnd_float(0.002f));
                memcpy(wr + 210 * (size_t)b + 208, &h, 2);
            }
            break;
        default:
            break;
        }
    }
    *row_bytes = rb;
    return w;
}

static const char *head_fmt_name(int fmt)
{
    static const char *const names[] = { "head_f32", "head_f16", "head_bf16", "head_i8",
                                         "head_q8_0", "head_q4_0", "head_q6_k" };
    return names[fmt];
}

static bitnet_head_fn head_entry(const bitnet_kernels *k, int fmt, const char **name)
{
    switch (fmt) {
    case BITNET_HF_Q8_0: *name = k->name_head_q8_0; return k->head_q8_0;
    case BITNET_HF_Q4_0: *name = k->name_head_q4_0; return k->head_q4_0;
    case BITNET_HF_Q6_K: *name = k->name_head_q6_k; return k->head_q6_k;
    default: *name = k->name_head_f16; return k->head_f16;
    }
}

/* One format: the variant against the reference (exact for the quantised
 * heads, the documented bound for F16) and n tokens against one. */
static void check_head_fmt(const bitnet_kernels *k, const bitnet_kernels *ref, int fmt)
{
    int ok = 1;
    char what[160] = "";
    const char *name, *rname;
    const bitnet_head_fn fn = head_entry(k, fmt, &name), rfn = head_entry(ref, fmt, &rname);
    const int32_t unit = fmt == BITNET_HF_Q6_K ? 256 : fmt == BITNET_HF_F16 ? 1 : 32;
    for (int c = 0; c < N_CASES / 2 && ok; c++) {
        const int32_t rows = rnd_int(1, 45);
        const int32_t kk = unit * rnd_int(1, (fmt == BITNET_HF_Q6_K ? 2600 : 700) / unit + 1) +
                           (c == 5 ? unit * 16 * 3 : 0);   /* more blocks than lanes */
        const int32_t n = c % 4 == 0 ? 1 : rnd_int(2, 11);
        size_t rb;
        uint8_t *w = make_head_w(fmt, rows, kk, &rb);
        bitnet_head h;
        memset(&h, 0, sizeof(h));
        h.fmt = fmt; h.rows = rows; h.cols = kk; h.w = w; h.row_bytes = rb;
        if (bitnet__head_init(&h)) {
            ok = 0;
            snprintf(what, sizeof(what), "head_init refused %d columns", kk);
            free(w);
            break;
        }
        uint8_t *xq = xaligned(h.xq_size * (size_t)n);
        float *x = malloc(sizeof(float) * (size_t)kk);
        for (int32_t t = 0; t < n; t++) {
            for (int32_t j = 0; j < kk; j++)
                x[j] = (c % 7 == 3 && t == 0) ? 0.0f : rnd_float(3.0f);
            bitnet__head_prepare(ref, &h, x, xq + (size_t)t * h.xq_size);
        }
        int32_t r0 = rnd_int(0, rows - 1), r1 = rnd_int(r0 + 1, rows);
        if (c % 3 == 0) { r0 = 0; r1 = rows; }
        const size_t ldy = (size_t)(r1 - r0) + (size_t)rnd_int(0, 5);
        const size_t ny = (size_t)(n - 1) * ldy + (size_t)(r1 - r0);
        cbuf y0 = cbuf_new(sizeof(float) * ny, 0), y1 = cbuf_new(sizeof(float) * ny, 4 * (size_t)(c & 1));
        cbuf y2 = cbuf_new(sizeof(float) * ny, 0);
        memset(y2.p, 0, y2.bytes);
        rfn(w, rb, r0, r1, xq, h.xq_size, n, kk, (float *)y0.p, ldy);
        fn(w, rb, r0, r1, xq, h.xq_size, n, kk, (float *)y1.p, ldy);
        /* the same rows one token at a time */
        for (int32_t t = 0; t < n; t++)
            fn(w, rb, r0, r1, xq + (size_t)t * h.xq_size, h.xq_size, 1, kk,
               (float *)y2.p + (size_t)t * ldy, ldy);
        if (!cbuf_canary_ok(&y1)) {
            ok = 0;
            snprintf(what, sizeof(what), "%dx%d n=%d: canary overwritten", rows, kk, n);
        }
        for (int32_t t = 0; t < n && ok; t++)
            for (int32_t r = r0; r < r1 && ok; r++) {
                const size_t at = 4 * ((size_t)t * ldy + (size_t)(r - r0));
                float a, b, s;
                memcpy(&a, y1.p + at, 4);
                memcpy(&b, y0.p + at, 4);
                memcpy(&s, y2.p + at, 4);
                if (memcmp(&a, &s, 4)) {
                    ok = 0;
                    snprintf(what, sizeof(what), "%dx%d n=%d token %d row %d: %.9g with n tokens, "
                             "%.9g alone", rows, kk, n, t, r, a, s);
                } else if (fmt != BITNET_HF_F16 && memcmp(&a, &b, 4)) {
                    ok = 0;
                    snprintf(what, sizeof(what), "%dx%d n=%d token %d row %d: %.9g vs ref %.9g",
                             rows, kk, n, t, r, a, b);
                } else if (fmt == BITNET_HF_F16) {
                    const float *xt = (const float *)(const void *)(xq + (size_t)t * h.xq_size);
                    double mag = 0;
                    for (int32_t j = 0; j < kk; j++)
                        mag += fabs((double)bitnet__fp16_load(w + (size_t)r * rb + 2 * (size_t)j) * xt[j]);
                    if (!within_sum_bound(a, b, kk, mag)) {
                        ok = 0;
                        snprintf(what, sizeof(what), "%dx%d row %d: %.9g vs ref %.9g", rows, kk, r, a, b);
                    }
                }
            }
        free(w); free(xq); free(x); free(y0.base); free(y1.base); free(y2.base);
    }
    result(head_fmt_name(fmt), name, ok, what);
}

static void check_head_f16(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    check_head_fmt(k, ref, BITNET_HF_F16);
}

static void check_head_i8(const bitnet_kernels *k, const bitnet_kernels *ref)
{
    int ok = 1;
    char what[160] = "";
    for (int c = 0; c < N_CASES && ok; c++) {
        const int32_t rows = rnd_int(1, 40), kk = rnd_int(1, 1100);
        const int32_t n = c % 4 == 0 ? 1 : rnd_int(2, 9);
        const size_t ldw = (size_t)kk + (size_t)rnd_int(0, 9);
        int8_t *w = malloc(ldw * (size_t)rows + 1);
        int8_t *wm = w + (c & 1);
        for (size_t i = 0; i < ldw * (size_t)rows; i++)
            wm[i] = (int8_t)rnd_int(-128, 127);
        float *ws = malloc(sizeof(float) * (size_t)rows);
        for (int32_t i = 0; i < rows; i++)
            ws[i] = 0.01f + rnd_float(0.005f);
        const size_t ldx = ((size_t)BITNET_HEAD_I8_QOFF + (size_t)kk + 63) / 64 * 64 + 64 * (size_t)(c & 1);
        uint8_t *xq = xaligned(ldx * (size_t)n);
        for (int32_t t = 0; t < n; t++) {
            uint8_t *xt = xq + (size_t)t * ldx;
            const float xs = 30.0f + (float)t;
            memcpy(xt, &xs, 4);
            for (int32_t i = 0; i < kk; i++)
                xt[BITNET_HEAD_I8_QOFF + i] = (uint8_t)(int8_t)((c % 5 == 0) ? -128 : rnd_int(-128, 127));
        }
        int32_t r0 = rnd_int(0, rows - 1), r1 = rnd_int(r0 + 1, rows);
        const size_t ldy = (size_t)(r1 - r0) + (size_t)rnd_int(0, 3);
        const size_t ny = (size_t)(n - 1) * ldy + (size_t)(r1 - r0);
        cbuf y0 = cbuf_new(sizeof(float) * ny, 0);
        cbuf y1 = cbuf_new(sizeof(float) * ny, 4);
        cbuf y2 = cbuf_new(sizeof(float) * ny, 0);
        memcpy(y2.p, y0.p, y0.bytes);
        ref->head_i8(wm, ldw, ws, r0, r1, xq, ldx, n, kk, (float *)y0.p, ldy);
        k->head_i8(wm, ldw, ws, r0, r1, xq, ldx, n, kk, (float *)y1.p, ldy);
        for (int32_t t = 0; t < n; t++)
            k->head_i8(wm, ldw, ws, r0, r1, xq + (size_t)t * ldx, ldx, 1, kk,
                       (float *)y2.p + (size_t)t * ldy, ldy);
        if (memcmp(y0.p, y1.p, y0.bytes) || !cbuf_canary_ok(&y1)) {
            ok = 0;
            snprintf(what, sizeof(what), "%dx%d n=%d: differ", rows, kk, n);
        } else if (memcmp(y1.p, y2.p, y1.bytes)) {
            ok = 0;
            snprintf(what, sizeof(what), "%dx%d n=%d: n tokens differ from one at a time", rows, kk, n);
        }
        free(w); free(ws); free(xq); free(y0.base); free(y1.base); free(y2.base);
    }
    result("head_i8", k->name_head_i8, ok, what);
}

/* The reference heads and the load-time conversions against plain float
 * dot products: each format close to the exact logits (this pins the
 * block layouts and the activation quantisers). */
static void check_head_accuracy(const bitnet_kernels *ref)
{
    static const int fmts[] = { BITNET_HF_F32, BITNET_HF_F16, BITNET_HF_BF16, BITNET_HF_I8,
                                BITNET_HF_Q8_0, BITNET_HF_Q6_K };
    const int32_t rows = 37, cols = 768;
    float *wf = malloc(sizeof(float) * (size_t)rows * cols), *x = malloc(sizeof(float) * cols);
    float *back = malloc(sizeof(float) * cols);
    for (int32_t i = 0; i < rows * cols; i++)
        wf[i] = rnd_float(0.05f) * (i % 97 == 0 ? 4.0f : 1.0f);
    for (int32_t j = 0; j < cols; j++)
        x[j] = sinf((float)j * 0.7f + 0.3f) * 2.0f;
    for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
        const int fmt = fmts[f];
        const size_t rb = bitnet__head_row_bytes(fmt, cols);
        uint8_t *w = xaligned(rb * rows);
        float *sc = malloc(sizeof(float) * rows);
        int ok = 1;
        char what[160] = "";
        double tol_rel = 0;
        for (int32_t r = 0; r < rows; r++) {
            const float *src = wf + (size_t)r * cols;
            uint8_t *dst = w + (size_t)r * rb;
            if (fmt == BITNET_HF_F32) {
                memcpy(dst, src, rb);
            } else if (fmt == BITNET_HF_BF16) {
                for (int32_t j = 0; j < cols; j++) {
                    uint32_t u;
                    memcpy(&u, &src[j], 4);
                    uint16_t h = (uint16_t)(u >> 16);
                    memcpy(dst + 2 * j, &h, 2);
                }
            } else if (fmt == BITNET_HF_I8) {
                memset(dst, 0, rb);
                sc[r] = bitnet__head_quant_row_i8(src, cols, (int8_t *)dst);
            } else {
                bitnet__head_quant_row(fmt, src, cols, dst);
            }
            /* the conversion round trip: within half a step of the row's
             * (block's) scale */
            if (fmt != BITNET_HF_I8) {
                bitnet__head_dequant_row(fmt, dst, cols, back);
                double amax = 0, err = 0;
                for (int32_t j = 0; j < cols; j++) {
                    /* plain comparisons: gcc 12 (aarch64) fails on an fmax
                     * reduction here (internal compiler error) */
                    const double a = fabs(src[j]), e = fabs(back[j] - src[j]);
                    if (a > amax) amax = a;
                    if (e > err) err = e;
                }
                /* Q8_0: half a step plus the fp16 rounding of d (127 q
                 * times 2^-11 d); Q6_K: see quant_q6_k_block's bounds */
                const double lim = fmt == BITNET_HF_Q6_K ? amax / 31.0 * 0.6 + 1e-6 :
                                   fmt == BITNET_HF_Q8_0 ? amax / 127.0 * 0.57 + 1e-6 :
                                   fmt == BITNET_HF_BF16 ? amax / 128.0 : amax / 1024.0;
                if (err > lim) {
                    ok = 0;
                    snprintf(what, sizeof(what), "row %d round trip error %g > %g", r, err, lim);
                }
            }
        }
        bitnet_head h;
        memset(&h, 0, sizeof(h));
        h.fmt = fmt; h.rows = rows; h.cols = cols; h.w = w; h.row_bytes = rb;
        h.scale = fmt == BITNET_HF_I8 ? sc : NULL;
        if (bitnet__head_init(&h)) {
            ok = 0;
            snprintf(what, sizeof(what), "head_init refused");
        } else {
            uint8_t *xq = xaligned(h.xq_size);
            float y[37];
            bitnet__head_prepare(ref, &h, x, xq);
            bitnet__head_rows(ref, &h, 0, rows, xq, 1, y, rows);
            double mag = 0, err = 0, l1 = 0;
            for (int32_t r = 0; r < rows; r++) {
                double e = 0, a = 0;
                for (int32_t j = 0; j < cols; j++) {
                    e += (double)wf[(size_t)r * cols + j] * x[j];
                    a += fabs((double)wf[(size_t)r * cols + j] * x[j]);
                }
                if (fabs(e) > mag) mag = fabs(e);
                if (a > l1) l1 = a;
                if (fabs(e - y[r]) > err) err = fabs(e - y[r]);
            }
            /* float formats: against the largest logit; the quantised ones
             * against the largest sum of |w x| (their rounding errors add
             * up with the products' magnitudes, not with the logit, which
             * may cancel. Over 60 seeds: Q6_K at most 0.30 % of the sum,
             * int8 0.26 %, Q8_0 0.12 %; against the largest logit Q6_K
             * reached 2.8 % and some seeds failed the former 3 %) */
            const int fl = fmt == BITNET_HF_F32 || fmt == BITNET_HF_F16 || fmt == BITNET_HF_BF16;
            tol_rel = fmt == BITNET_HF_F32 ? 1e-6 : fmt == BITNET_HF_F16 ? 2e-3 :
                      fmt == BITNET_HF_BF16 ? 1e-2 : 0.01;
            if (ok && err > tol_rel * (fl ? mag : l1)) {
                ok = 0;
                snprintf(what, sizeof(what), "max error %g, max |logit| %g, max sum |w x| %g",
                         err, mag, l1);
            }
            free(xq);
        }
        result(head_fmt_name(fmt), "ref vs float", ok, what);
        free(w); free(sc);
    }
    free(wf); free(x); free(back);
}
