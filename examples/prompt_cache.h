/*
 * bitnet-cli's --prompt-cache file: the tokens of an evaluated prompt and
 * the context state after them (bitnet_context_state_save), so that a later
 * run with the same prompt prefix evaluates only the rest. Header-only,
 * like example_util.h; public API only.
 */
#ifndef BITNET_PROMPT_CACHE_H
#define BITNET_PROMPT_CACHE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitnet.h"
#include "example_util.h"

/* File layout (native byte order; a cache belongs to one machine):
 * "BNPC", u32 version 1, u64 n tokens, n x i32 tokens, u64 size, the state
 * blob of bitnet_context_state_save(). */
static const char cache_magic[4] = { 'B', 'N', 'P', 'C' };

/* Restore the longest prefix of toks[0..n) that the cache file holds: loads
 * its state and rewinds to the common prefix, at most n - 1 tokens (so the
 * rest yields logits). Returns the number of tokens kept (0: nothing used). */
static inline size_t cache_restore(bitnet_context *ctx, const char *prog, int quiet,
                                   const char *path, const int32_t *toks, size_t n)
{
    size_t size = 0;
    char *buf = ex_read_file(path, &size);
    if (!buf)
        return 0;                                  /* absent: written later */
    size_t keep = 0;
    uint32_t version;
    uint64_t nt, ns;
    if (size < 16 || memcmp(buf, cache_magic, 4) != 0)
        goto bad;
    memcpy(&version, buf + 4, 4);
    memcpy(&nt, buf + 8, 8);
    if (version != 1 || nt > (size - 16) / 4 || size - 16 - nt * 4 < 8)
        goto bad;
    memcpy(&ns, buf + 16 + nt * 4, 8);
    if (ns != size - 24 - nt * 4)
        goto bad;
    const char *ct = buf + 16;
    while (keep < nt && keep < n) {
        int32_t t;
        memcpy(&t, ct + 4 * keep, 4);
        if (t != toks[keep])
            break;
        keep++;
    }
    if (keep >= n)
        keep = n - 1;
    if (keep == 0 ||
        bitnet_context_state_load(ctx, buf + 24 + nt * 4, (size_t)ns) != BITNET_OK ||
        bitnet_context_rewind(ctx, (int32_t)keep) != BITNET_OK) {
        if (keep > 0 && !quiet)
            fprintf(stderr, "%s: note: prompt cache '%s' not usable here (%s); "
                    "evaluating the whole prompt\n", prog, path, bitnet_last_error());
        bitnet_context_reset(ctx);
        keep = 0;
    }
    free(buf);
    return keep;
bad:
    free(buf);
    if (!quiet)
        fprintf(stderr, "%s: note: '%s' is not a prompt cache; it will be "
                "overwritten\n", prog, path);
    return 0;
}

/* Save the evaluated prompt toks[0..n) and the context's state. */
static inline int cache_save(const bitnet_context *ctx, const char *prog, const char *path,
                             const int32_t *toks, size_t n)
{
    size_t ns = bitnet_context_state_size(ctx), got = 0;
    char *blob = malloc(ns ? ns : 1);
    if (!blob)
        return ex_fail(prog, "out of memory");
    if (bitnet_context_state_save(ctx, blob, ns, &got) != BITNET_OK) {
        free(blob);
        return ex_fail(prog, "prompt cache: %s", bitnet_last_error());
    }
    FILE *f = fopen(path, "wb");
    uint32_t version = 1;
    uint64_t nt = n, nb = got;
    int ok = f && fwrite(cache_magic, 1, 4, f) == 4 && fwrite(&version, 4, 1, f) == 1 &&
             fwrite(&nt, 8, 1, f) == 1 && fwrite(toks, 4, n, f) == n &&
             fwrite(&nb, 8, 1, f) == 1 && fwrite(blob, 1, got, f) == got;
    if (f && fclose(f) != 0)
        ok = 0;
    free(blob);
    if (!ok)
        return ex_fail(prog, "cannot write the prompt cache '%s': %s", path, strerror(errno));
    return 0;
}

#endif /* BITNET_PROMPT_CACHE_H */
