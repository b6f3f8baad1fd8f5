/*
 * The batching engine of bitnet-server: --parallel N slots, each a
 * bitnet_context on the one shared model, and one engine thread that
 * advances every active slot in the same batched step. New requests wait in
 * a FIFO queue and join between steps; a finished or cancelled request
 * frees its slot at once.
 *
 * Determinism: each request has its own sampler (seeded from the request),
 * and a batched step leaves every context exactly as if it had been
 * evaluated alone, so a request's text does not depend on what else runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

/* Prompt tokens of one slot evaluated per step: long prompts are cut so
 * that the other slots keep producing tokens while a prompt is read. */
#define PROMPT_CHUNK 128

struct srv_slot {
    bitnet_context *ctx;
    int32_t *cache;          /* tokens in ctx, in order (for slot choice) */
    size_t n_cache;
    srv_job *job;            /* NULL: free                                */
    bitnet_detokenizer *det;
    size_t n_fed;            /* prompt tokens already in ctx              */
    int32_t next;            /* sampled token waiting to be evaluated     */
    int have_next;
    char *piece;
    size_t cap_piece;
};

srv_state srv;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- jobs --------------------------------------------------------------- */

srv_job *srv_job_new(void)
{
    srv_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    if (pthread_cond_init(&j->cv, NULL) != 0) {
        free(j);
        return NULL;
    }
    j->refs = 1;
    j->max_tokens = -1;
    return j;
}

static void job_free(srv_job *j)
{
    free(j->prompt);
    bitnet_sampler_free(j->smp);
    for (size_t i = 0; i < j->n_stop; i++)
        free(j->stop[i]);
    free(j->stop);
    free(j->text);
    pthread_cond_destroy(&j->cv);
    free(j);
}

static void job_release_locked(srv_job *j)
{
    if (--j->refs == 0)
        job_free(j);
}

void srv_job_release(srv_job *j)
{
    if (!j)
        return;
    pthread_mutex_lock(&srv.mu);
    job_release_locked(j);
    pthread_mutex_unlock(&srv.mu);
}

int srv_submit(srv_job *j)
{
    pthread_mutex_lock(&srv.mu);
    if (srv.stopping || srv.n_queued >= srv.max_queue) {
        srv.m.req_rejected++;
        pthread_mutex_unlock(&srv.mu);
        return -1;
    }
    j->refs++;
    j->state = JOB_QUEUED;
    j->next = NULL;
    if (srv.q_tail)
        srv.q_tail->next = j;
    else
        srv.q_head = j;
    srv.q_tail = j;
    srv.n_queued++;
    srv.m.prompt_tokens += j->n_prompt;
    pthread_cond_signal(&srv.engine_cv);
    pthread_mutex_unlock(&srv.mu);
    return 0;
}

void srv_cancel(srv_job *j)
{
    pthread_mutex_lock(&srv.mu);
    if (j->state != JOB_DONE) {
        j->cancelled = 1;
        pthread_cond_signal(&srv.engine_cv);
    }
    pthread_mutex_unlock(&srv.mu);
}

/* Under srv.mu: mark done, wake the HTTP thread, drop the engine's ref. */
static void job_finish_locked(srv_job *j, const char *finish, int status,
                              const char *msg)
{
    j->state = JOB_DONE;
    j->finish = finish;
    if (status) {
        j->http_status = status;
        snprintf(j->err, sizeof(j->err), "%s", msg ? msg : "error");
    } else {
        j->n_released = j->n_text;
    }
    pthread_cond_broadcast(&j->cv);
    job_release_locked(j);
}

/* ---- generated text and stop strings ------------------------------------ */

static int text_append(srv_job *j, const char *s, size_t n)
{
    if (j->n_text + n + 1 > j->cap_text) {
        size_t nc = j->cap_text ? j->cap_text : 256;
        while (nc < j->n_text + n + 1)
            nc *= 2;
        char *t = realloc(j->text, nc);
        if (!t)
            return -1;
        j->text = t;
        j->cap_text = nc;
    }
    memcpy(j->text + j->n_text, s, n);
    j->n_text += n;
    j->text[j->n_text] = '\0';
    return 0;
}

/* After text grew: truncate at the first stop string (returns 1), else
 * release everything but the longest tail that could still become one. */
static int check_stop(srv_job *j, size_t old_len)
{
    size_t best = (size_t)-1;
    for (size_t s = 0; s < j->n_stop; s++) {
        size_t ls = strlen(j->stop[s]);
        /* a match must end inside the new bytes */
        size_t from = old_len >= ls ? old_len - ls + 1 : 0;
        for (size_t p = from; p + ls <= j->n_text && p < best; p++)
            if (memcmp(j->text + p, j->stop[s], ls) == 0) {
                best = p;
                break;
            }
    }
    if (best != (size_t)-1) {
        j->n_text = best;
        j->text[best] = '\0';
        j->n_released = best;
        return 1;
    }
    size_t hold = 0;
    for (size_t s = 0; s < j->n_stop; s++) {
        size_t ls = strlen(j->stop[s]);
        for (size_t k = ls - 1; k > hold; k--)
            if (k <= j->n_text &&
                memcmp(j->text + j->n_text - k, j->stop[s], k) == 0) {
                hold = k;
                break;
            }
    }
    j->n_released = j->n_text - hold;
    return 0;
}

/* ---- slots -------------------------------------------------------------- */

static size_t common_prefix(const int32_t *a, size_t na, const int32_t *b,
                            size_t nb)
{
    size_t i = 0;
    while (i < na && i < nb && a[i] == b[i])
        i++;
    return i;
}

/* The free slot whose cache shares the longest prefix with the prompt. */
static srv_slot *pick_slot(const srv_job *j)
{
    srv_slot *best = NULL;
    size_t best_n = 0;
    for (int i = 0; i < srv.n_slots; i++) {
        srv_slot *s = &srv.slots[i];
        if (s->job)
            continue;
        size_t n = common_prefix(s->cache, s->n_cache, j->prompt, j->n_prompt);
        if (!best || n > best_n) {
            best = s;
            best_n = n;
        }
    }
    return best;
}

/* Prompt reuse: keep what the slot's context already holds of the prompt
 * (the library leaves at least one token to evaluate, for the logits). */
static size_t slot_keep_prefix(srv_slot *s, const int32_t *toks, size_t n)
{
    size_t kept = bitnet_context_keep_prefix(s->ctx, toks, n);
    s->n_cache = kept;
    return kept;
}

static int slot_start(srv_slot *s, srv_job *j)
{
    s->job = j;
    s->have_next = 0;
    s->n_fed = slot_keep_prefix(s, j->prompt, j->n_prompt);
    j->n_cached = (long)s->n_fed;
    if (bitnet_detokenizer_create(&s->det, bitnet_context_model(s->ctx), 0) != BITNET_OK)
        return -1;
    return 0;
}

/* Under srv.mu: release the slot's job and tear down per-request state. */
static void slot_end_locked(srv_slot *s, const char *finish, int status,
                            const char *msg)
{
    job_finish_locked(s->job, finish, status, msg);
    s->job = NULL;
    bitnet_detokenizer_free(s->det);
    s->det = NULL;
    srv.n_busy--;
}

static int cache_push(srv_slot *s, const int32_t *t, size_t n)
{
    /* the cache array has room for n_ctx tokens (allocated at start) */
    if (s->n_cache + n > (size_t)srv.n_ctx)
        return -1;
    memcpy(s->cache + s->n_cache, t, n * sizeof(*t));
    s->n_cache += n;
    return 0;
}

/* One step of every active slot: one pass over the weights, each context
 * left bit for bit as if evaluated alone. */
static int step_eval(bitnet_context **ctxs, const int32_t **toks,
                     const size_t *n, size_t n_seq)
{
    return bitnet_context_eval_multi(ctxs, toks, n, n_seq, 0);
}

/* After a step in which the slot's prompt is complete or its last token was
 * evaluated: sample the next token and publish the text. Returns 1 when the
 * request finished (slot freed). */
static int slot_sample(srv_slot *s)
{
    srv_job *j = s->job;
    int32_t tok;
    int rc = bitnet_sampler_sample(j->smp, s->ctx, -1, &tok);
    if (rc == BITNET_OK)
        rc = bitnet_sampler_accept(j->smp, tok);
    if (rc != BITNET_OK) {
        char msg[200];
        snprintf(msg, sizeof(msg), "sampling failed: %s", bitnet_last_error());
        pthread_mutex_lock(&srv.mu);
        slot_end_locked(s, NULL, 500, msg);
        pthread_mutex_unlock(&srv.mu);
        return 1;
    }
    const bitnet_model *model = bitnet_context_model(s->ctx);
    int eog = bitnet_token_is_eog(model, tok);
    size_t n = 0;
    int drc = BITNET_OK;
    if (!eog) {
        for (;;) {
            drc = bitnet_detokenizer_feed(s->det, tok, s->piece, s->cap_piece, &n);
            if (drc != BITNET_E_BUFFER_TOO_SMALL)
                break;
            char *np = realloc(s->piece, n + 64);
            if (!np) {
                drc = BITNET_E_NOMEM;
                break;
            }
            s->piece = np;
            s->cap_piece = n + 64;
        }
    }
    pthread_mutex_lock(&srv.mu);
    srv.m.gen_tokens++;
    j->n_gen++;
    if (drc != BITNET_OK) {
        slot_end_locked(s, NULL, 500, "detokenizer failed");
        pthread_mutex_unlock(&srv.mu);
        return 1;
    }
    size_t old = j->n_text;
    if (n > 0 && text_append(j, s->piece, n) != 0) {
        slot_end_locked(s, NULL, 500, "out of memory");
        pthread_mutex_unlock(&srv.mu);
        return 1;
    }
    const char *finish = NULL;
    if (check_stop(j, old) || eog)
        finish = "stop";
    else if ((j->max_tokens >= 0 && j->n_gen >= j->max_tokens) ||
             bitnet_context_pos(s->ctx) >= bitnet_context_n_ctx(s->ctx))
        finish = "length";
    if (finish && strcmp(finish, "length") == 0) {
        /* emit what the detokenizer still holds (an incomplete character
         * becomes U+FFFD), then look for a stop string once more */
        size_t m = 0;
        if (bitnet_detokenizer_flush(s->det, s->piece, s->cap_piece, &m) == BITNET_OK &&
            m > 0) {
            old = j->n_text;
            if (text_append(j, s->piece, m) == 0 && check_stop(j, old))
                finish = "stop";
        }
    }
    if (finish) {
        slot_end_locked(s, finish, 0, NULL);
        pthread_mutex_unlock(&srv.mu);
        return 1;
    }
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&srv.mu);
    s->next = tok;
    s->have_next = 1;
    return 0;
}

static void *engine_main(void *arg)
{
    (void)arg;
    size_t ns = (size_t)srv.n_slots;
    bitnet_context **ctxs = calloc(ns, sizeof(*ctxs));
    const int32_t **toks = calloc(ns, sizeof(*toks));
    size_t *nt = calloc(ns, sizeof(*nt));
    srv_slot **act = calloc(ns, sizeof(*act));
    srv_slot **fresh = calloc(ns, sizeof(*fresh));
    if (!ctxs || !toks || !nt || !act || !fresh) {
        fprintf(stderr, "bitnet-server: engine: out of memory\n");
        abort();
    }
    pthread_mutex_lock(&srv.mu);
    for (;;) {
        /* Cancelled requests free their slots first. */
        for (size_t i = 0; i < ns; i++) {
            srv_slot *s = &srv.slots[i];
            if (s->job && (s->job->cancelled || srv.stopping))
                slot_end_locked(s, NULL, srv.stopping ? 503 : 499,
                                srv.stopping ? "the server is shutting down"
                                             : "cancelled");
        }
        /* Waiting requests join between steps, oldest first. */
        size_t n_fresh = 0;
        while (srv.q_head && (srv.stopping || srv.n_busy < srv.n_slots)) {
            srv_job *j = srv.q_head;
            srv.q_head = j->next;
            if (!srv.q_head)
                srv.q_tail = NULL;
            srv.n_queued--;
            if (j->cancelled || srv.stopping) {
                job_finish_locked(j, NULL, srv.stopping ? 503 : 499,
                                  srv.stopping ? "the server is shutting down"
                                               : "cancelled");
                continue;
            }
            srv_slot *s = pick_slot(j);
            j->state = JOB_RUNNING;
            s->job = j;
            srv.n_busy++;
            fresh[n_fresh++] = s;
        }
        if (srv.stopping && srv.n_busy == 0)
            break;
        if (srv.n_busy == 0) {
            pthread_cond_wait(&srv.engine_cv, &srv.mu);
            continue;
        }
        pthread_mutex_unlock(&srv.mu);

        for (size_t i = 0; i < n_fresh; i++) {
            srv_slot *s = fresh[i];
            if (slot_start(s, s->job) != 0) {
                pthread_mutex_lock(&srv.mu);
                slot_end_locked(s, NULL, 500, "out of memory");
                pthread_mutex_unlock(&srv.mu);
            } else {
                pthread_mutex_lock(&srv.mu);
                srv.m.cached_tokens += (unsigned long long)s->n_fed;
                pthread_mutex_unlock(&srv.mu);
            }
        }

        /* One batched step over every active slot. */
        size_t n_act = 0;
        for (size_t i = 0; i < ns; i++) {
            srv_slot *s = &srv.slots[i];
            if (!s->job)
                continue;
            if (s->have_next) {
                toks[n_act] = &s->next;
                nt[n_act] = 1;
            } else {
                size_t left = s->job->n_prompt - s->n_fed;
                toks[n_act] = s->job->prompt + s->n_fed;
                nt[n_act] = left < PROMPT_CHUNK ? left : PROMPT_CHUNK;
            }
            ctxs[n_act] = s->ctx;
            act[n_act++] = s;
        }
        int rc = BITNET_OK;
        double t0 = now_s();
        if (n_act > 0)
            rc = step_eval(ctxs, toks, nt, n_act);
        double dt = now_s() - t0;

        if (rc != BITNET_OK) {
            char msg[200];
            snprintf(msg, sizeof(msg), "eval failed: %s", bitnet_last_error());
            fprintf(stderr, "bitnet-server: %s\n", msg);
            pthread_mutex_lock(&srv.mu);
            for (size_t i = 0; i < n_act; i++) {
                bitnet_context_reset(act[i]->ctx);
                act[i]->n_cache = 0;
                slot_end_locked(act[i], NULL, 500, msg);
            }
            continue;               /* with srv.mu held, as the loop expects */
        }
        for (size_t i = 0; i < n_act; i++) {
            srv_slot *s = act[i];
            cache_push(s, toks[i], nt[i]);
            if (s->have_next) {
                s->have_next = 0;
            } else {
                s->n_fed += nt[i];
                if (s->n_fed < s->job->n_prompt)
                    continue;       /* more of the prompt next step */
            }
            slot_sample(s);
        }
        pthread_mutex_lock(&srv.mu);
        srv.m.steps++;
        srv.m.busy_s += dt;
    }
    pthread_mutex_unlock(&srv.mu);
    free(ctxs);
    free(toks);
    free(nt);
    free(act);
    free(fresh);
    return NULL;
}

int srv_engine_start(void)
{
    srv.slots = calloc((size_t)srv.n_slots, sizeof(*srv.slots));
    if (!srv.slots)
        return -1;
    bitnet_context_params cp;
    bitnet_context_params_init(&cp);
    cp.n_ctx = srv.n_ctx;
    cp.n_threads = srv.n_threads;
    for (int i = 0; i < srv.n_slots; i++) {
        srv_slot *s = &srv.slots[i];
        if (bitnet_context_create(&s->ctx, srv.model, &cp) != BITNET_OK) {
            fprintf(stderr, "bitnet-server: cannot create context %d: %s\n", i,
                    bitnet_last_error());
            return -1;
        }
        if (i == 0)
            srv.n_ctx = bitnet_context_n_ctx(s->ctx);
        s->cache = malloc((size_t)srv.n_ctx * sizeof(*s->cache));
        s->cap_piece = 256;
        s->piece = malloc(s->cap_piece);
        if (!s->cache || !s->piece)
            return -1;
    }
    if (pthread_cond_init(&srv.engine_cv, NULL) != 0)
        return -1;
    if (pthread_create(&srv.engine, NULL, engine_main, NULL) != 0)
        return -1;
    return 0;
}

/* Fail what is queued or running, join the engine, free the slots. */
void srv_engine_stop(void)
{
    pthread_mutex_lock(&srv.mu);
    srv.stopping = 1;
    pthread_cond_signal(&srv.engine_cv);
    pthread_mutex_unlock(&srv.mu);
    pthread_join(srv.engine, NULL);
    for (int i = 0; i < srv.n_slots; i++) {
        bitnet_context_free(srv.slots[i].ctx);
        free(srv.slots[i].cache);
        free(srv.slots[i].piece);
    }
    free(srv.slots);
    srv.slots = NULL;
}
