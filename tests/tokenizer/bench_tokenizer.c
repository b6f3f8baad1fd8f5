/*
 * Tokenizer benchmark (meson benchmark, not a test): vocabulary load time
 * and single-thread tokenization throughput on English text.
 *
 *   bench_tokenizer [VOCAB.gguf [TEXT]]
 * Defaults: $BITNET_SHARED_DATA/vocab/ggml-vocab-llama-bpe.gguf and
 * $BITNET_SHARED_DATA/text/tinystories-subset-lowercase.txt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/internal.h"
#include "format/gguf.h"
#include "text/vocab.h"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) { free(b); b = NULL; }
    fclose(f);
    *len = b ? (size_t)sz : 0;
    return b;
}

/* CPU time of this process: on a shared machine wall time also counts the
 * time other processes hold the CPU. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    char vpath[4096], tpath[4096];
    const char *sd = getenv("BITNET_SHARED_DATA");
    if (argc > 1) snprintf(vpath, sizeof(vpath), "%s", argv[1]);
    else if (sd) snprintf(vpath, sizeof(vpath), "%s/vocab/ggml-vocab-llama-bpe.gguf", sd);
    else { printf("SKIP: no vocabulary given and BITNET_SHARED_DATA is not set\n"); return 0; }
    if (argc > 2) snprintf(tpath, sizeof(tpath), "%s", argv[2]);
    else if (sd) snprintf(tpath, sizeof(tpath), "%s/text/tinystories-subset-lowercase.txt", sd);
    else { printf("SKIP: no text given and BITNET_SHARED_DATA is not set\n"); return 0; }

    size_t flen, tlen;
    char *file = read_all(vpath, &flen);
    char *text = read_all(tpath, &tlen);
    if (!file || !text) { fprintf(stderr, "cannot read %s or %s\n", vpath, tpath); return 1; }

    /* Vocabulary load (parse + bitnet__vocab_load), best of 5. */
    double best_parse = 1e9, best_vocab = 1e9, best_cpu = 1e9;
    bitnet_vocab *v = NULL;
    for (int r = 0; r < 7; r++) {
        bitnet_gguf *g;
        double t0 = bitnet__now();
        if (bitnet__gguf_parse(&g, (const uint8_t *)file, flen)) { fprintf(stderr, "%s\n", bitnet_last_error()); return 1; }
        double t1 = bitnet__now(), c1 = cpu_now();
        if (v) bitnet__vocab_free(v);
        bitnet_vocab_desc vd;
        bitnet__gguf_vocab_desc(g, &vd);
        if (bitnet__vocab_load(&v, &vd, BITNET_PRETOK_AUTO, NULL)) { fprintf(stderr, "%s\n", bitnet_last_error()); return 1; }
        double t2 = bitnet__now(), c2 = cpu_now();
        bitnet__gguf_free(g);
        if (t1 - t0 < best_parse) best_parse = t1 - t0;
        if (t2 - t1 < best_vocab) best_vocab = t2 - t1;
        if (c2 - c1 < best_cpu) best_cpu = c2 - c1;
    }
    printf("vocab: %d tokens; gguf parse %.1f ms, vocab load %.1f ms wall, %.1f ms CPU (best of 7)\n",
           bitnet__vocab_n_tokens(v), best_parse * 1e3, best_vocab * 1e3, best_cpu * 1e3);

    size_t cap = tlen + 16;
    int32_t *ids = malloc(cap * sizeof(int32_t));
    static const int32_t pts[] = { BITNET_PRETOK_LLAMA3, BITNET_PRETOK_DEFAULT, BITNET_PRETOK_GPT2 };
    static const char *const names[] = { "llama3", "default", "gpt2" };
    for (int k = 0; k < 3; k++) {
        bitnet_gguf *g;
        bitnet_vocab *pv;
        bitnet__gguf_parse(&g, (const uint8_t *)file, flen);
        bitnet_vocab_desc vd;
        bitnet__gguf_vocab_desc(g, &vd);
        if (bitnet__vocab_load(&pv, &vd, pts[k], NULL)) return 1;
        bitnet__gguf_free(g);
        double best = 1e9, bestc = 1e9;
        size_t n = 0;
        for (int r = 0; r < 3; r++) {
            double t0 = bitnet__now(), c0 = cpu_now();
            if (bitnet__vocab_tokenize(pv, text, tlen, 0, ids, cap, &n)) { fprintf(stderr, "%s\n", bitnet_last_error()); return 1; }
            double t = bitnet__now() - t0, c = cpu_now() - c0;
            if (t < best) best = t;
            if (c < bestc) bestc = c;
        }
        printf("tokenize (%s): %.2f MB, %zu tokens (%.2f bytes/token): %.1f MB/s wall, %.1f MB/s CPU\n", names[k],
               tlen / 1e6, n, (double)tlen / (double)n, tlen / 1e6 / best, tlen / 1e6 / bestc);
        bitnet__vocab_free(pv);
    }
    bitnet__vocab_free(v);
    free(ids);
    free(file);
    free(text);
    return 0;
}
