/*
 * bitnet-server: shared declarations of the HTTP front end (http.c, api.c),
 * the batching engine (engine.c) and main.c. Uses only <bitnet.h> of
 * libbitnet; HTTP is libmicrohttpd, JSON is jansson (see docs/serving.md).
 */
#ifndef BITNET_SERVER_H
#define BITNET_SERVER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "bitnet.h"

/* ---- one generation request ------------------------------------------- */

enum { JOB_COMPLETION = 0, JOB_CHAT = 1 };
enum { JOB_QUEUED = 0, JOB_RUNNING = 1, JOB_DONE = 2 };

typedef struct srv_job srv_job;
struct srv_job {
    /* Set by the HTTP thread before srv_submit(), read-only afterwards. */
    int kind;                    /* JOB_COMPLETION or JOB_CHAT            */
    int stream;                  /* Server-Sent Events                    */
    int include_usage;           /* stream_options.include_usage          */
    char id[48];
    long long created;
    int32_t *prompt;
    size_t n_prompt;
    bitnet_sampler *smp;         /* created (and validated) by the HTTP side,
                                    owned by the job                      */
    long max_tokens;             /* -1: until EOG or a full context       */
    char **stop;                 /* stop strings, none empty              */
    size_t n_stop;

    /* Written by the engine under srv.mu; read by the HTTP thread under it. */
    int state;                   /* JOB_*                                 */
    int cancelled;               /* set by the HTTP side: client is gone  */
    char *text;                  /* generated text (after stop truncation)*/
    size_t n_text, cap_text;
    size_t n_released;           /* bytes of text that can no longer turn
                                    into a stop string: safe to stream    */
    long n_gen;                  /* completion tokens                     */
    long n_cached;               /* prompt tokens reused from a slot cache */
    const char *finish;          /* "stop" or "length" once done          */
    int http_status;             /* 0, or the error status when it failed */
    char err[256];
    pthread_cond_t cv;           /* signalled on every update             */
    int refs;                    /* HTTP side + engine                    */
    srv_job *next;               /* queue link                            */
};

/* ---- the server --------------------------------------------------------- */

typedef struct srv_slot srv_slot;

typedef struct srv_metrics {
    unsigned long long req_chat, req_completion, req_other, req_rejected,
                       req_errors;
    unsigned long long prompt_tokens, cached_tokens, gen_tokens, steps;
    double busy_s;               /* seconds spent in batched eval steps   */
} srv_metrics;

typedef struct srv_state {
    bitnet_model *model;
    const char *model_id;        /* basename of the model file            */
    const char *chat_template;   /* name passed to the chat functions     */
    int n_slots;
    int n_threads;
    int n_ctx;                   /* tokens per slot                       */
    size_t max_queue;            /* waiting requests beyond which: 503    */
    size_t max_body;             /* bytes; larger bodies: 413             */
    const char *api_key;         /* NULL: no authentication               */

    pthread_mutex_t mu;          /* guards everything below and the jobs  */
    pthread_cond_t engine_cv;    /* work arrived / cancelled / stopping   */
    srv_job *q_head, *q_tail;
    size_t n_queued;
    int n_busy;
    int stopping;
    srv_slot *slots;
    pthread_t engine;
    srv_metrics m;
} srv_state;

extern srv_state srv;

/* engine.c */
int srv_engine_start(void);
void srv_engine_stop(void);
srv_job *srv_job_new(void);
/* Drop one reference; frees the job when it was the last. Takes srv.mu. */
void srv_job_release(srv_job *job);
/* Queue a job (takes a reference for the engine). Returns 0, or -1 when the
 * queue is full or the server is stopping (nothing queued). */
int srv_submit(srv_job *job);
/* Ask the engine to drop a job whose client went away. */
void srv_cancel(srv_job *job);

/* api.c: request bodies to jobs, jobs to response bodies. Each returns 0 or
 * an HTTP status with a message in err (cap 256). */
int api_completion_job(json_t *body, int chat, srv_job **out, char *err);
json_t *api_final_response(const srv_job *job);
/* One SSE "data:" event carrying text[from, to) of job; final adds the
 * finish_reason event (and usage when asked) and "data: [DONE]". */
char *api_stream_delta(const srv_job *job, size_t from, size_t to, int first);
char *api_stream_final(const srv_job *job);
char *api_stream_error(const srv_job *job);
json_t *api_error_body(int status, const char *msg, const char *code);
int api_tokenize(json_t *body, json_t **out, char *err);
int api_detokenize(json_t *body, json_t **out, char *err);
json_t *api_models(void);
char *api_metrics_text(void);

/* http.c */
struct MHD_Daemon;
struct MHD_Daemon *srv_http_start(const char *host, int port, int *bound_port);

#endif /* BITNET_SERVER_H */
