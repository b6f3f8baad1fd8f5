/*
 * bitnet-server: an OpenAI-compatible HTTP server over libbitnet with
 * continuous batching.
 *
 *   bitnet-server -m MODEL [--host 127.0.0.1] [--port 8080] [-t N] [-c CTX]
 *                 [--parallel N] [--api-key KEY | --api-key-file F]
 *                 [--chat-template NAME]
 *
 * See docs/serving.md. Uses only the public API of libbitnet (bitnet.h).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "server.h"
#include "../example_util.h"

static void usage(FILE *f)
{
    fprintf(f,
"usage: bitnet-server [-m MODEL] [--host 127.0.0.1] [--port 8080] [-t N]\n"
"                     [-c CTX] [--parallel N] [--api-key KEY | --api-key-file F]\n"
"                     [--chat-template NAME]\n"
"\n"
"OpenAI-compatible HTTP server: POST /v1/chat/completions, /v1/completions,\n"
"/tokenize, /detokenize; GET /v1/models, /health, /metrics. Without -m the\n"
"bundled model is served: $BITNET_DEFAULT_MODEL, else\n"
"  %s\n"
"\n"
"  -m, --model FILE        GGUF model file\n"
"      --host ADDR         address to listen on (127.0.0.1: this machine only)\n"
"      --port N            TCP port; 0 = any free port (8080)\n"
"  -t, --threads N         threads per batched step; 0 = all CPUs (0)\n"
"  -c, --ctx-size N        context length of each slot in tokens; 0 = the\n"
"                          model's, at most 4096 (0)\n"
"      --parallel N        slots: requests generated together (1)\n"
"      --api-key KEY       require 'Authorization: Bearer KEY'\n"
"      --api-key-file F    the same, with the key on the first line of F\n"
"      --chat-template NAME  bitnet, llama3, falcon3 or chatml (default: the\n"
"                          model's template, else bitnet)\n"
"  -h, --help              show this help\n"
"\n"
"Environment: BITNET_SERVER_MAX_QUEUE (requests waiting for a slot before\n"
"new ones get 503; default 64), BITNET_SERVER_MAX_BODY (bytes; default 1 MiB).\n",
        ex_default_model());
}

static int die(const char *fmt, const char *a)
{
    fprintf(stderr, "bitnet-server: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    return 1;
}

static const char *basename_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The key from the first line of a file (newline and trailing blanks
 * dropped). NULL on error. */
static char *read_key(const char *path)
{
    char *text = ex_read_file(path, NULL);
    if (!text)
        return NULL;
    text[strcspn(text, "\r\n")] = '\0';
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        text[--n] = '\0';
    return text;
}

static size_t env_size(const char *name, size_t def, size_t lo, size_t hi)
{
    const char *v = getenv(name);
    long x;
    if (!v || !*v)
        return def;
    if (ex_parse_long(v, (long)lo, (long)hi, &x) != 0) {
        fprintf(stderr, "bitnet-server: ignoring %s='%s' (not in [%zu, %zu])\n",
                name, v, lo, hi);
        return def;
    }
    return (size_t)x;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *host = "127.0.0.1", *tmpl = NULL;
    const char *api_key = NULL, *api_key_file = NULL;
    long port = 8080, n_threads = 0, n_ctx = 0, parallel = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define IS(s) (strcmp(a, (s)) == 0)
#define NEED_ARG() do { if (!v) return die("option %s needs a value (see --help)", a); i++; } while (0)
#define BAD_VALUE() do { fprintf(stderr, "bitnet-server: invalid value '%s' for %s (see --help)\n", v, a); return 1; } while (0)
        if (IS("-h") || IS("--help")) {
            usage(stdout);
            return 0;
        } else if (IS("-m") || IS("--model")) {
            NEED_ARG(); model_path = v;
        } else if (IS("--host")) {
            NEED_ARG(); host = v;
        } else if (IS("--port")) {
            NEED_ARG(); if (ex_parse_long(v, 0, 65535, &port)) BAD_VALUE();
        } else if (IS("-t") || IS("--threads")) {
            NEED_ARG(); if (ex_parse_long(v, 0, 256, &n_threads)) BAD_VALUE();
        } else if (IS("-c") || IS("--ctx-size")) {
            NEED_ARG(); if (ex_parse_long(v, 0, 1L << 24, &n_ctx)) BAD_VALUE();
        } else if (IS("--parallel") || IS("-np")) {
            NEED_ARG(); if (ex_parse_long(v, 1, 256, &parallel)) BAD_VALUE();
        } else if (IS("--api-key")) {
            NEED_ARG(); api_key = v;
        } else if (IS("--api-key-file")) {
            NEED_ARG(); api_key_file = v;
        } else if (IS("--chat-template")) {
            NEED_ARG(); tmpl = v;
        } else {
            return die("unknown option '%s' (see --help)", a);
        }
#undef IS
#undef NEED_ARG
#undef BAD_VALUE
    }
    if (api_key && api_key_file)
        return die("use either --api-key or --api-key-file, not both%s", "");
    char *key_buf = NULL;
    if (api_key_file) {
        key_buf = read_key(api_key_file);
        if (!key_buf)
            return die("cannot read the API key file '%s'", api_key_file);
        api_key = key_buf;
    }
    if (api_key && !*api_key) {
        free(key_buf);
        return die("the API key is empty%s", "");
    }
    if (!model_path) {
        model_path = ex_default_model();
        if (access(model_path, R_OK) != 0) {
            free(key_buf);
            return die("no model given (-m) and the default model '%s' does "
                       "not exist (set BITNET_DEFAULT_MODEL or pass -m)", model_path);
        }
    }

    /* Signals are taken by sigwait() below; every thread started from here
     * on inherits the mask. SIGPIPE: a closed client socket is an error
     * return, not a signal. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (bitnet_model_load_file(&srv.model, model_path, NULL) != BITNET_OK) {
        fprintf(stderr, "bitnet-server: cannot load '%s': %s\n", model_path,
                bitnet_last_error());
        free(key_buf);
        return 1;
    }
    /* The chat format: the one asked for, the model's own, else bitnet. */
    const bitnet_chat_message probe = { "user", "" };
    size_t need;
    if (bitnet_chat_render(srv.model, tmpl, &probe, 1, 1, NULL, 0, &need) ==
        BITNET_E_NOT_FOUND) {
        if (tmpl) {
            fprintf(stderr, "bitnet-server: unknown chat template '%s' (bitnet, "
                    "llama3, falcon3 or chatml)\n", tmpl);
            bitnet_model_free(srv.model);
            free(key_buf);
            return 1;
        }
        fprintf(stderr, "bitnet-server: the model has no recognised chat "
                "template; using the bitnet format\n");
        tmpl = "bitnet";
    }
    srv.chat_template = tmpl;
    srv.model_id = basename_of(model_path);
    srv.n_slots = (int)parallel;
    srv.n_threads = (int)n_threads;
    srv.n_ctx = (int)n_ctx;
    srv.api_key = api_key;
    srv.max_queue = env_size("BITNET_SERVER_MAX_QUEUE", 64, 0, 1 << 20);
    srv.max_body = env_size("BITNET_SERVER_MAX_BODY", 1 << 20, 1024, 1L << 30);
    pthread_mutex_init(&srv.mu, NULL);

    int status = 1;
    struct MHD_Daemon *d = NULL;
    if (srv_engine_start() != 0) {
        fprintf(stderr, "bitnet-server: cannot start the engine\n");
        goto out;
    }
    int bound = 0;
    d = srv_http_start(host, (int)port, &bound);
    if (!d) {
        fprintf(stderr, "bitnet-server: cannot listen on %s port %ld: %s\n",
                host, port, strerror(errno));
        srv_engine_stop();
        goto out;
    }
    fprintf(stderr, "bitnet-server: model %s, %d slot(s) of %d tokens, "
            "listening on http://%s:%d\n", srv.model_id, srv.n_slots, srv.n_ctx,
            host, bound);
    fflush(stderr);

    int sig = 0;
    sigdelset(&sigs, SIGPIPE);
    while (sigwait(&sigs, &sig) == 0 && sig != SIGINT && sig != SIGTERM)
        ;
    fprintf(stderr, "bitnet-server: signal %d, shutting down\n", sig);
    /* Fail the waiting requests first so that connection threads return,
     * then stop accepting and join them. */
    srv_engine_stop();
    MHD_stop_daemon(d);
    status = 0;
out:
    bitnet_model_free(srv.model);
    free(key_buf);
    return status;
}
