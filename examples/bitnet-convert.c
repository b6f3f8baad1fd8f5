/*
 * bitnet-convert: write a GGUF file from a Hugging Face checkpoint directory
 * (or from another GGUF file), for libbitnet, bitnet.cpp (I2_S) or
 * llama.cpp (TQ1_0, TQ2_0). Public API only (bitnet_convert).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bitnet.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: bitnet-convert INPUT_DIR_OR_GGUF -o OUT.gguf [--type i2_s|tq1_0|tq2_0|f16]\n"
        "                      [--embd-type f16|q8_0|q6_k|q4_0]\n"
        "  INPUT_DIR_OR_GGUF   Hugging Face checkpoint directory (config.json,\n"
        "                      *.safetensors, tokenizer files) or a GGUF file\n"
        "  -o FILE             output GGUF file\n"
        "  --type T            linear weights: i2_s (default; bitnet.cpp), tq1_0,\n"
        "                      tq2_0 (llama.cpp) or f16\n"
        "  --embd-type T       token embedding and output head: f16 (default),\n"
        "                      q8_0, q6_k or q4_0\n"
        "  -h, --help          this help\n");
}

static int type_of(const char *s, const char *const *names, const int *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) return ids[i];
    return -1;
}

static void on_log(void *user, int32_t level, const char *msg)
{
    (void)user;
    (void)level;
    fprintf(stderr, "bitnet-convert: %s\n", msg);
}

static int on_progress(void *user, float p)
{
    int *last = user;
    int pct = (int)(p * 100.0f);
    if (pct / 10 != *last / 10) {
        fprintf(stderr, "\rbitnet-convert: %3d%%", pct);
        if (pct >= 100) fputc('\n', stderr);
        *last = pct;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const wn[] = { "i2_s", "tq1_0", "tq2_0", "f16" };
    static const int wi[] = { BITNET_TYPE_I2_S, BITNET_TYPE_TQ1_0, BITNET_TYPE_TQ2_0,
                              BITNET_TYPE_F16 };
    static const char *const en[] = { "f16", "q8_0", "q6_k", "q4_0" };
    static const int ei[] = { BITNET_TYPE_F16, BITNET_TYPE_Q8_0, BITNET_TYPE_Q6_K,
                              BITNET_TYPE_Q4_0 };
    const char *in = NULL, *out = NULL;
    bitnet_convert_params p;
    bitnet_convert_params_init(&p);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--type") && i + 1 < argc) {
            p.weight_type = type_of(argv[++i], wn, wi, 4);
            if (p.weight_type < 0) {
                fprintf(stderr, "bitnet-convert: unknown --type '%s'\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--embd-type") && i + 1 < argc) {
            p.embd_type = type_of(argv[++i], en, ei, 4);
            if (p.embd_type < 0) {
                fprintf(stderr, "bitnet-convert: unknown --embd-type '%s'\n", argv[i]);
                return 2;
            }
        } else if (a[0] == '-' || in) {
            usage(stderr);
            return 2;
        } else {
            in = a;
        }
    }
    if (!in || !out) {
        usage(stderr);
        return 2;
    }
    int last = -10;
    p.log_fn = on_log;
    p.log_level = BITNET_LOG_WARN;
    p.progress_fn = isatty(2) ? on_progress : NULL;
    p.progress_user = &last;
    int rc = bitnet_convert(in, out, &p);
    if (rc != BITNET_OK) {
        if (last >= 0 && last < 100) fputc('\n', stderr);
        fprintf(stderr, "bitnet-convert: %s\n", bitnet_last_error());
        return 1;
    }
    return 0;
}
