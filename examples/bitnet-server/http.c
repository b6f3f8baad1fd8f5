/*
 * bitnet-server: the HTTP side, on libmicrohttpd with one thread per
 * connection. A handler reads the body (up to srv.max_body), routes,
 * authenticates, and either answers at once (models, health, tokenize,
 * metrics) or submits a job to the engine and waits for it: a plain
 * response when the job is done, or Server-Sent Events as text is released.
 *
 * A client that goes away is noticed while waiting (the socket reports EOF
 * or an error, or a write fails) and its job is cancelled, which frees the
 * slot at the engine's next step.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "server.h"

enum route {
    R_NONE = -1, R_CHAT, R_COMPLETIONS, R_MODELS, R_HEALTH, R_TOKENIZE,
    R_DETOKENIZE, R_METRICS, R_MODEL
};

static const struct {
    const char *path, *method;
} routes[] = {
    [R_CHAT]        = { "/v1/chat/completions", "POST" },
    [R_COMPLETIONS] = { "/v1/completions",      "POST" },
    [R_MODELS]      = { "/v1/models",           "GET"  },
    [R_HEALTH]      = { "/health",              "GET"  },
    [R_TOKENIZE]    = { "/tokenize",            "POST" },
    [R_DETOKENIZE]  = { "/detokenize",          "POST" },
    [R_METRICS]     = { "/metrics",             "GET"  },
    [R_MODEL]       = { "/v1/models/",          "GET"  },   /* + id */
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* Per-request state, freed when the request completes. */
typedef struct req {
    char *body;
    size_t n, cap;
    int too_big;
    int started;
} req;

/* ---- responses ---------------------------------------------------------- */

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status,
                                 const char *type, char *text)
{
    if (!text)
        return MHD_NO;
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    if (status >= 400) {
        pthread_mutex_lock(&srv.mu);
        srv.m.req_errors++;
        pthread_mutex_unlock(&srv.mu);
    }
    return ok;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status,
                                 json_t *body)
{
    if (!body)
        return MHD_NO;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    return send_text(c, status, "application/json", text);
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
                                  const char *msg, const char *code)
{
    return send_json(c, status, api_error_body((int)status, msg, code));
}

/* ---- client liveness ---------------------------------------------------- */

/* 1 when the peer closed or reset the connection. Data that a client sends
 * early (a pipelined request) is left in the socket. */
static int client_gone(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 1;
    struct pollfd p = { .fd = ci->connect_fd, .events = POLLIN | POLLRDHUP };
    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLRDHUP | POLLNVAL))
        return 1;
    if (p.revents & POLLIN) {
        char b;
        ssize_t r = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                          errno != EINTR);
    }
    return 0;
}

/* Wait on the job's condition for at most ms milliseconds (srv.mu held). */
static void wait_job(srv_job *j, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&j->cv, &srv.mu, &ts);
}

/* ---- streaming ---------------------------------------------------------- */

typedef struct stream {
    srv_job *job;
    struct MHD_Connection *conn;
    char *out;            /* pending SSE bytes */
    size_t n_out, off;
    size_t n_sent;        /* bytes of job text already sent */
    int ended;
} stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream *st = cls;
    srv_job *j = st->job;
    pthread_mutex_lock(&srv.mu);
    for (int spins = 0;; spins++) {
        if (st->off < st->n_out) {
            size_t n = st->n_out - st->off;
            if (n > max)
                n = max;
            memcpy(buf, st->out + st->off, n);
            st->off += n;
            pthread_mutex_unlock(&srv.mu);
            return (ssize_t)n;
        }
        free(st->out);
        st->out = NULL;
        st->n_out = st->off = 0;
        if (st->ended) {
            pthread_mutex_unlock(&srv.mu);
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        if (j->n_released > st->n_sent) {
            st->out = api_stream_delta(j, st->n_sent, j->n_released, 0);
            st->n_sent = j->n_released;
        } else if (j->state == JOB_DONE) {
            st->out = j->http_status ? api_stream_error(j) : api_stream_final(j);
            st->ended = 1;
        } else if (spins > 0 && client_gone(st->conn)) {
            j->cancelled = 1;
            pthread_cond_signal(&srv.engine_cv);
            pthread_mutex_unlock(&srv.mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        } else {
            wait_job(j, 100);
            continue;
        }
        if (!st->out) {
            pthread_mutex_unlock(&srv.mu);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        st->n_out = strlen(st->out);
    }
}

static void stream_free(void *cls)
{
    stream *st = cls;
    srv_cancel(st->job);          /* no effect when it is done */
    srv_job_release(st->job);
    free(st->out);
    free(st);
}

static enum MHD_Result start_stream(struct MHD_Connection *c, srv_job *j)
{
    stream *st = calloc(1, sizeof(*st));
    if (!st) {
        srv_cancel(j);
        srv_job_release(j);
        return send_error(c, 500, "out of memory", NULL);
    }
    st->job = j;
    st->conn = c;
    if (j->kind == JOB_CHAT) {
        /* the first chunk announces the assistant role, as OpenAI's does */
        pthread_mutex_lock(&srv.mu);
        st->out = api_stream_delta(j, 0, 0, 1);
        pthread_mutex_unlock(&srv.mu);
        st->n_out = st->out ? strlen(st->out) : 0;
    }
    struct MHD_Response *r = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ok;
}

/* ---- completions -------------------------------------------------------- */

static enum MHD_Result completion(struct MHD_Connection *c, json_t *body, int chat)
{
    char err[256] = "";
    srv_job *j = NULL;
    int status = api_completion_job(body, chat, &j, err);
    if (status) {
        const char *code = strstr(err, "context holds") ? "context_length_exceeded" : NULL;
        return send_error(c, (unsigned)status, err, code);
    }
    if (srv_submit(j) != 0) {
        srv_job_release(j);
        return send_error(c, 503, "the server is busy: too many requests are "
                          "waiting; retry later", "queue_full");
    }
    if (j->stream)
        return start_stream(c, j);

    pthread_mutex_lock(&srv.mu);
    while (j->state != JOB_DONE) {
        wait_job(j, 100);
        if (j->state != JOB_DONE && client_gone(c)) {
            j->cancelled = 1;
            pthread_cond_signal(&srv.engine_cv);
            pthread_mutex_unlock(&srv.mu);
            srv_job_release(j);
            return MHD_NO;                     /* close the connection */
        }
    }
    pthread_mutex_unlock(&srv.mu);
    enum MHD_Result ok;
    if (j->http_status)
        ok = send_error(c, (unsigned)j->http_status, j->err, NULL);
    else
        ok = send_json(c, MHD_HTTP_OK, api_final_response(j));
    srv_job_release(j);
    return ok;
}

/* ---- authentication ------------------------------------------------------ */

/* Compares in time that depends on the length of the configured key only,
 * never on where a guess first differs. */
static int key_matches(const char *given, const char *key)
{
    size_t lg = strlen(given), lk = strlen(key);
    volatile unsigned char diff = (unsigned char)(lg != lk);
    for (size_t i = 0; i < lk; i++)
        diff |= (unsigned char)(key[i] ^ (i < lg ? given[i] : 0));
    return diff == 0;
}

static int authorized(struct MHD_Connection *c)
{
    if (!srv.api_key)
        return 1;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return 0;
    h += 7;
    while (*h == ' ')
        h++;
    return key_matches(h, srv.api_key);
}

/* ---- dispatch ----------------------------------------------------------- */

static enum MHD_Result handle(struct MHD_Connection *c, const char *url,
                              const char *method, req *rq)
{
    int route = R_NONE, path_known = 0;
    for (size_t i = 0; i < N_ROUTES; i++)
        if (i == R_MODEL ? strncmp(url, routes[i].path, strlen(routes[i].path)) == 0
                         : strcmp(url, routes[i].path) == 0) {
            path_known = 1;
            if (strcmp(method, routes[i].method) == 0 ||
                (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
                route = (int)i;
            else
                route = -2 - (int)i;
        }
    pthread_mutex_lock(&srv.mu);
    if (route == R_CHAT)
        srv.m.req_chat++;
    else if (route == R_COMPLETIONS)
        srv.m.req_completion++;
    else
        srv.m.req_other++;
    pthread_mutex_unlock(&srv.mu);

    if (route != R_HEALTH && !authorized(c))
        return send_error(c, 401, "missing or wrong API key (send "
                          "'Authorization: Bearer KEY')", "invalid_api_key");
    if (!path_known) {
        char msg[256];
        snprintf(msg, sizeof(msg), "no route %.100s %.100s", method, url);
        return send_error(c, 404, msg, "unknown_url");
    }
    if (route < R_NONE) {
        const char *allow = routes[-2 - route].method;
        char msg[256];
        snprintf(msg, sizeof(msg), "%.100s needs method %s", url, allow);
        json_t *b = api_error_body(405, msg, "method_not_allowed");
        char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
        json_decref(b);
        if (!text)
            return MHD_NO;
        struct MHD_Response *r = MHD_create_response_from_buffer(
            strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!r) {
            free(text);
            return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        enum MHD_Result ok = MHD_queue_response(c, MHD_HTTP_METHOD_NOT_ALLOWED, r);
        MHD_destroy_response(r);
        pthread_mutex_lock(&srv.mu);
        srv.m.req_errors++;
        pthread_mutex_unlock(&srv.mu);
        return ok;
    }
    if (rq->too_big) {
        char msg[120];
        snprintf(msg, sizeof(msg), "the request body is larger than %zu bytes",
                 srv.max_body);
        return send_error(c, 413, msg, "request_too_large");
    }
    switch (route) {
    case R_HEALTH:
        return send_text(c, 200, "application/json", strdup("{\"status\":\"ok\"}"));
    case R_MODELS:
        return send_json(c, 200, api_models());
    case R_MODEL: {
        json_t *list = api_models();
        json_t *m = json_incref(json_array_get(json_object_get(list, "data"), 0));
        json_decref(list);
        if (strcmp(url + strlen(routes[R_MODEL].path), srv.model_id) == 0)
            return send_json(c, 200, m);
        json_decref(m);
        return send_error(c, 404, "no such model (GET /v1/models lists it)", "model_not_found");
    }
    case R_METRICS:
        return send_text(c, 200, "text/plain; version=0.0.4", api_metrics_text());
    default:
        break;
    }
    /* POST routes: a JSON object body */
    json_error_t jerr;
    json_t *body = json_loadb(rq->body ? rq->body : "", rq->n, 0, &jerr);
    if (!body) {
        char msg[256];
        snprintf(msg, sizeof(msg), "the body is not valid JSON: %.160s (line %d, "
                 "column %d)", jerr.text, jerr.line, jerr.column);
        return send_error(c, 400, msg, "invalid_json");
    }
    if (!json_is_object(body)) {
        json_decref(body);
        return send_error(c, 400, "the body must be a JSON object", "invalid_json");
    }
    enum MHD_Result ok;
    char err[256] = "";
    json_t *out = NULL;
    int status;
    switch (route) {
    case R_CHAT:
    case R_COMPLETIONS:
        ok = completion(c, body, route == R_CHAT);
        break;
    case R_TOKENIZE:
    case R_DETOKENIZE:
        status = route == R_TOKENIZE ? api_tokenize(body, &out, err)
                                     : api_detokenize(body, &out, err);
        ok = status ? send_error(c, (unsigned)status, err, NULL) : send_json(c, 200, out);
        break;
    default:
        ok = send_error(c, 500, "unhandled route", NULL);
        break;
    }
    json_decref(body);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *n_data, void **con_cls)
{
    (void)cls;
    (void)version;
    req *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        *con_cls = rq;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > srv.max_body) {
            /* answer before reading the body; libmicrohttpd then closes
             * the connection instead of reading it */
            rq->too_big = rq->started = 1;
            return handle(c, url, method, rq);
        }
        return MHD_YES;
    }
    if (*n_data > 0) {
        size_t n = *n_data;
        *n_data = 0;
        if (rq->too_big || rq->n + n > srv.max_body) {
            rq->too_big = 1;            /* read and drop the rest */
            return MHD_YES;
        }
        if (rq->n + n + 1 > rq->cap) {
            size_t nc = rq->cap ? rq->cap : 4096;
            while (nc < rq->n + n + 1)
                nc *= 2;
            char *nb = realloc(rq->body, nc);
            if (!nb)
                return MHD_NO;
            rq->body = nb;
            rq->cap = nc;
        }
        memcpy(rq->body + rq->n, data, n);
        rq->n += n;
        return MHD_YES;
    }
    if (rq->started)
        return MHD_YES;
    rq->started = 1;
    return handle(c, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    req *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
        *con_cls = NULL;
    }
}

struct MHD_Daemon *srv_http_start(const char *host, int port, int *bound_port)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int gai = getaddrinfo(host, ps, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "bitnet-server: cannot resolve '%s': %s\n", host,
                gai_strerror(gai));
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)512,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d)
        return NULL;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *bound_port = di ? di->port : port;
    return d;
}
