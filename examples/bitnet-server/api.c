/*
 * bitnet-server: the OpenAI request and response shapes. Turns a parsed JSON
 * body into a srv_job (validating every field: a wrong type or an out of
 * range value is a 400 with a message, never a crash) and a finished job
 * into a response body or Server-Sent Events.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server.h"

#define ERR(...) (snprintf(err, 256, __VA_ARGS__), 400)

/* Stop strings: OpenAI allows four; a few more cost nothing. */
#define MAX_STOP 16
#define MAX_STOP_LEN 256
#define MAX_MESSAGES 4096

/* ---- small helpers ----------------------------------------------------- */

static void make_id(char *buf, size_t cap, const char *prefix)
{
    static unsigned long long counter;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&mu);
    unsigned long long c = ++counter;
    pthread_mutex_unlock(&mu);
    snprintf(buf, cap, "%s%llx%08llx", prefix,
             (unsigned long long)ts.tv_sec, c);
}

/* Optional number field in [lo, hi]; 0 when absent or null, 1 when set, -1
 * (with err) when of the wrong type or out of range. */
static int get_number(json_t *body, const char *key, double lo, double hi,
                      double *out, char *err)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v)) {
        snprintf(err, 256, "'%s' must be a number", key);
        return -1;
    }
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi) {
        snprintf(err, 256, "'%s' must be between %g and %g", key, lo, hi);
        return -1;
    }
    *out = d;
    return 1;
}

static int get_int(json_t *body, const char *key, long long lo, long long hi,
                   long long *out, char *err)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v)) {
        snprintf(err, 256, "'%s' must be an integer", key);
        return -1;
    }
    long long x = json_integer_value(v);
    if (x < lo || x > hi) {
        snprintf(err, 256, "'%s' must be between %lld and %lld", key, lo, hi);
        return -1;
    }
    *out = x;
    return 1;
}

static int get_bool(json_t *body, const char *key, int *out, char *err)
{
    json_t *v = json_object_get(body, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        snprintf(err, 256, "'%s' must be a boolean", key);
        return -1;
    }
    *out = json_is_true(v);
    return 1;
}

/* Tokens of text into a fresh array. */
static int tokenize_text(const char *text, size_t len, uint32_t flags,
                         int32_t **out, size_t *n)
{
    size_t need = 0;
    int rc = bitnet_tokenize(srv.model, text, len, flags, NULL, 0, &need);
    if (rc != BITNET_OK && rc != BITNET_E_BUFFER_TOO_SMALL)
        return rc;
    int32_t *ids = malloc((need ? need : 1) * sizeof(*ids));
    if (!ids)
        return BITNET_E_NOMEM;
    rc = bitnet_tokenize(srv.model, text, len, flags, ids, need, n);
    if (rc != BITNET_OK) {
        free(ids);
        return rc;
    }
    *out = ids;
    return BITNET_OK;
}

/* A chat conversation to prompt tokens in which the template's markup is
 * special and message text is always plain (a user cannot forge a turn). */
static int chat_tokens(const bitnet_chat_message *msgs, size_t n,
                       int32_t **out, size_t *n_out)
{
    size_t need = 0;
    int rc = bitnet_chat_tokenize(srv.model, srv.chat_template, msgs, n, 1,
                                  NULL, 0, &need);
    if (rc != BITNET_OK && rc != BITNET_E_BUFFER_TOO_SMALL)
        return rc;
    int32_t *ids = malloc((need ? need : 1) * sizeof(*ids));
    if (!ids)
        return BITNET_E_NOMEM;
    rc = bitnet_chat_tokenize(srv.model, srv.chat_template, msgs, n, 1, ids,
                              need, n_out);
    if (rc != BITNET_OK) {
        free(ids);
        return rc;
    }
    *out = ids;
    return BITNET_OK;
}

/* The text of a message's content: a string, null, or an array of
 * {"type": "text", "text": ...} parts (joined). Returns a malloc'd string or
 * NULL with err. */
static char *content_text(json_t *c, char *err)
{
    if (!c || json_is_null(c))
        return strdup("");
    if (json_is_string(c))
        return strdup(json_string_value(c));
    if (!json_is_array(c)) {
        snprintf(err, 256, "message 'content' must be a string or an array of text parts");
        return NULL;
    }
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *ty = json_object_get(part, "type");
        if (!json_is_object(part) || !json_is_string(ty) ||
            strcmp(json_string_value(ty), "text") != 0 || !json_is_string(t)) {
            snprintf(err, 256, "only text content parts are supported");
            return NULL;
        }
        total += json_string_length(t);
    }
    char *s = malloc(total + 1), *p = s;
    if (!s) {
        snprintf(err, 256, "out of memory");
        return NULL;
    }
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "text");
        memcpy(p, json_string_value(t), json_string_length(t));
        p += json_string_length(t);
    }
    *p = '\0';
    return s;
}

static int parse_messages(json_t *body, srv_job *j, char *err)
{
    json_t *msgs = json_object_get(body, "messages");
    if (!msgs)
        return ERR("'messages' is required");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return ERR("'messages' must be a non-empty array");
    size_t n = json_array_size(msgs);
    if (n > MAX_MESSAGES)
        return ERR("too many messages (at most %d)", MAX_MESSAGES);
    bitnet_chat_message *cm = calloc(n, sizeof(*cm));
    if (!cm)
        return ERR("out of memory");
    int status = 0;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *role = json_object_get(m, "role");
        if (!json_is_object(m) || !json_is_string(role)) {
            status = ERR("messages[%zu] must be an object with a string 'role'", i);
            break;
        }
        const char *r = json_string_value(role);
        if (strcmp(r, "developer") == 0)
            r = "system";
        if (strcmp(r, "system") != 0 && strcmp(r, "user") != 0 &&
            strcmp(r, "assistant") != 0) {
            status = ERR("messages[%zu]: role '%.40s' is not supported (system, "
                         "developer, user or assistant)", i, r);
            break;
        }
        cm[i].role = r;
        cm[i].content = content_text(json_object_get(m, "content"), err);
        if (!cm[i].content) {
            status = 400;
            break;
        }
    }
    if (status == 0) {
        int rc = chat_tokens(cm, n, &j->prompt, &j->n_prompt);
        if (rc != BITNET_OK)
            status = ERR("cannot apply the chat template: %s", bitnet_last_error());
    }
    for (size_t k = 0; k < n; k++)
        free((char *)cm[k].content);
    free(cm);
    return status;
}

static int parse_prompt(json_t *body, srv_job *j, char *err)
{
    json_t *p = json_object_get(body, "prompt");
    if (!p)
        return ERR("'prompt' is required");
    if (json_is_array(p) && json_array_size(p) == 1 &&
        json_is_string(json_array_get(p, 0)))
        p = json_array_get(p, 0);              /* a batch of one prompt */
    if (json_is_string(p)) {
        if (tokenize_text(json_string_value(p), json_string_length(p),
                          BITNET_TOKENIZE_ADD_BOS, &j->prompt, &j->n_prompt) != BITNET_OK)
            return ERR("cannot tokenize the prompt: %s", bitnet_last_error());
        return 0;
    }
    if (json_is_array(p) && json_array_size(p) > 0 &&
        json_is_integer(json_array_get(p, 0))) {
        size_t n = json_array_size(p);
        int32_t nv = bitnet_model_n_vocab(srv.model);
        j->prompt = malloc(n * sizeof(*j->prompt));
        if (!j->prompt)
            return ERR("out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *t = json_array_get(p, i);
            if (!json_is_integer(t) || json_integer_value(t) < 0 ||
                json_integer_value(t) >= nv)
                return ERR("prompt[%zu] is not a token id of this model", i);
            j->prompt[i] = (int32_t)json_integer_value(t);
        }
        j->n_prompt = n;
        return 0;
    }
    return ERR("'prompt' must be a string or an array of token ids "
               "(batches of several prompts are not supported)");
}

static int parse_stop(json_t *body, srv_job *j, char *err)
{
    json_t *st = json_object_get(body, "stop");
    if (!st || json_is_null(st))
        return 0;
    size_t n = json_is_string(st) ? 1 : json_is_array(st) ? json_array_size(st) : 0;
    if (!json_is_string(st) && !json_is_array(st))
        return ERR("'stop' must be a string or an array of strings");
    if (n > MAX_STOP)
        return ERR("at most %d stop strings", MAX_STOP);
    j->stop = calloc(n ? n : 1, sizeof(*j->stop));
    if (!j->stop)
        return ERR("out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_string(st) ? st : json_array_get(st, i);
        if (!json_is_string(s))
            return ERR("'stop' must be a string or an array of strings");
        if (json_string_length(s) > MAX_STOP_LEN)
            return ERR("a stop string is longer than %d bytes", MAX_STOP_LEN);
        if (json_string_length(s) == 0)
            continue;
        if (!(j->stop[j->n_stop] = strdup(json_string_value(s))))
            return ERR("out of memory");
        j->n_stop++;
    }
    return 0;
}

/* response_format: "text" (nothing), "json_object" (any JSON object) or
 * "json_schema" with json_schema.schema: a grammar for the sampler. */
static int response_format(json_t *body, char **grammar, char *err)
{
    *grammar = NULL;
    json_t *rf = json_object_get(body, "response_format");
    if (!rf || json_is_null(rf))
        return 0;
    json_t *type = json_object_get(rf, "type");
    if (!json_is_object(rf) || !json_is_string(type))
        return ERR("'response_format' must be an object with a string 'type'");
    const char *t = json_string_value(type);
    char *schema;
    if (strcmp(t, "text") == 0) {
        return 0;
    } else if (strcmp(t, "json_object") == 0) {
        schema = strdup("{\"type\": \"object\"}");
    } else if (strcmp(t, "json_schema") == 0) {
        json_t *js = json_object_get(rf, "json_schema");
        json_t *sc = json_is_object(js) ? json_object_get(js, "schema") : NULL;
        if (!sc || (!json_is_object(sc) && !json_is_boolean(sc)))
            return ERR("response_format json_schema needs 'json_schema': "
                       "{\"schema\": {...}}");
        schema = json_dumps(sc, JSON_COMPACT | JSON_ENCODE_ANY);
    } else {
        return ERR("response_format type '%.40s' is not supported (text, "
                   "json_object or json_schema)", t);
    }
    if (!schema)
        return ERR("out of memory");
    size_t need = 0;
    int rc = bitnet_json_schema_to_grammar(schema, NULL, 0, &need);
    if (rc == BITNET_E_BUFFER_TOO_SMALL) {
        *grammar = malloc(need + 1);
        rc = *grammar ? bitnet_json_schema_to_grammar(schema, *grammar, need + 1, &need)
                      : BITNET_E_NOMEM;
    }
    free(schema);
    if (rc != BITNET_OK) {
        free(*grammar);
        *grammar = NULL;
        return ERR("cannot use this JSON schema: %s", bitnet_last_error());
    }
    return 0;
}

/* The sampler of a request: OpenAI fields onto bitnet_sampler_params.
 * Penalties cover the whole completion (only generated tokens are
 * accepted into the sampler's history). */
static int make_sampler(json_t *body, srv_job *j, char *err)
{
    bitnet_sampler_params sp;
    bitnet_sampler_params_init(&sp);
    double d;
    long long ll;
    int r;
    if ((r = get_number(body, "temperature", 0, 2, &d, err)) < 0)
        return 400;
    if (r)
        sp.temperature = (float)d;
    if ((r = get_number(body, "top_p", 0, 1, &d, err)) < 0)
        return 400;
    if (r) {
        if (d <= 0)
            return ERR("'top_p' must be greater than 0");
        sp.top_p = (float)d;
    }
    if ((r = get_int(body, "top_k", 0, 1 << 30, &ll, err)) < 0)
        return 400;
    if (r)
        sp.top_k = (int32_t)ll;
    if ((r = get_number(body, "min_p", 0, 1, &d, err)) < 0)
        return 400;
    if (r)
        sp.min_p = (float)d;
    if ((r = get_number(body, "presence_penalty", -2, 2, &d, err)) < 0)
        return 400;
    if (r)
        sp.presence_penalty = (float)d;
    if ((r = get_number(body, "frequency_penalty", -2, 2, &d, err)) < 0)
        return 400;
    if (r)
        sp.frequency_penalty = (float)d;
    if ((r = get_int(body, "seed", INT64_MIN, INT64_MAX, &ll, err)) < 0)
        return 400;
    if (r) {
        sp.seed = (uint64_t)ll;
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sp.seed = ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec;
    }
    sp.penalty_last_n = srv.n_ctx;

    bitnet_logit_bias *bias = NULL;
    json_t *lb = json_object_get(body, "logit_bias");
    if (lb && !json_is_null(lb)) {
        if (!json_is_object(lb))
            return ERR("'logit_bias' must be an object of token id -> bias");
        size_t n = json_object_size(lb), k = 0;
        bias = calloc(n ? n : 1, sizeof(*bias));
        if (!bias)
            return ERR("out of memory");
        const char *key;
        json_t *v;
        int32_t nv = bitnet_model_n_vocab(srv.model);
        json_object_foreach(lb, key, v) {
            char *end;
            long id = strtol(key, &end, 10);
            if (!*key || *end || id < 0 || id >= nv) {
                free(bias);
                return ERR("logit_bias: '%.40s' is not a token id of this model", key);
            }
            if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
                fabs(json_number_value(v)) > 100) {
                free(bias);
                return ERR("logit_bias values must be numbers in [-100, 100]");
            }
            double b = json_number_value(v);
            bias[k].token = (int32_t)id;
            /* -100 bans the token, as OpenAI documents */
            bias[k].bias = b <= -100 ? -INFINITY : (float)b;
            k++;
        }
        sp.logit_bias = bias;
        sp.n_logit_bias = k;
    }
    char *grammar = NULL;
    int status = response_format(body, &grammar, err);
    if (status) {
        free(bias);
        return status;
    }
    sp.grammar = grammar;
    int rc = bitnet_sampler_create(&j->smp, srv.model, &sp);
    free(bias);
    free(grammar);
    if (rc != BITNET_OK)
        return ERR("invalid sampling parameters: %s", bitnet_last_error());
    return 0;
}

int api_completion_job(json_t *body, int chat, srv_job **out, char *err)
{
    *out = NULL;
    if (!json_is_object(body))
        return ERR("the request body must be a JSON object");
    srv_job *j = srv_job_new();
    if (!j)
        return ERR("out of memory");
    j->kind = chat ? JOB_CHAT : JOB_COMPLETION;
    j->created = (long long)time(NULL);
    make_id(j->id, sizeof(j->id), chat ? "chatcmpl-" : "cmpl-");
    long long ll;
    int r, status = 0;
    json_t *model = json_object_get(body, "model");
    if (model && !json_is_string(model) && !json_is_null(model))
        status = ERR("'model' must be a string");
    else if ((r = get_int(body, "n", 1, 1, &ll, err)) < 0)
        status = ERR("only n = 1 is supported");
    else if (get_bool(body, "stream", &j->stream, err) < 0)
        status = 400;
    else if ((r = get_int(body, chat ? "max_completion_tokens" : "max_tokens", 1,
                          1 << 30, &ll, err)) < 0)
        status = 400;
    if (status == 0 && r)
        j->max_tokens = (long)ll;
    if (status == 0 && chat && !r) {
        if ((r = get_int(body, "max_tokens", 1, 1 << 30, &ll, err)) < 0)
            status = 400;
        else if (r)
            j->max_tokens = (long)ll;
    }
    if (status == 0) {
        json_t *so = json_object_get(body, "stream_options");
        if (so && !json_is_null(so)) {
            if (!json_is_object(so))
                status = ERR("'stream_options' must be an object");
            else if (get_bool(so, "include_usage", &j->include_usage, err) < 0)
                status = 400;
        }
    }
    if (status == 0)
        status = parse_stop(body, j, err);
    if (status == 0)
        status = make_sampler(body, j, err);
    if (status == 0)
        status = chat ? parse_messages(body, j, err) : parse_prompt(body, j, err);
    if (status == 0 && j->n_prompt == 0)
        status = ERR("the prompt is empty");
    if (status == 0 && j->n_prompt >= (size_t)srv.n_ctx) {
        snprintf(err, 256, "the prompt has %zu tokens; this server's context "
                 "holds %d (prompt and completion together)", j->n_prompt,
                 srv.n_ctx);
        status = 400;
    }
    if (status) {
        srv_job_release(j);
        return status;
    }
    *out = j;
    return 0;
}

/* ---- responses ---------------------------------------------------------- */

json_t *api_error_body(int status, const char *msg, const char *code)
{
    const char *type = status == 401 ? "authentication_error"
                     : status == 404 ? "not_found_error"
                     : status == 503 ? "server_overloaded"
                     : status >= 500 ? "server_error"
                     : "invalid_request_error";
    return json_pack("{s:{s:s, s:s, s:s?}}", "error", "message", msg,
                     "type", type, "code", code);
}

static json_t *usage_obj(const srv_job *j)
{
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", (json_int_t)j->n_prompt,
                     "completion_tokens", (json_int_t)j->n_gen,
                     "total_tokens", (json_int_t)(j->n_prompt + (size_t)j->n_gen));
}

json_t *api_final_response(const srv_job *j)
{
    json_t *text = json_stringn(j->text ? j->text : "", j->n_text);
    json_t *choice;
    if (j->kind == JOB_CHAT)
        choice = json_pack("{s:i, s:{s:s, s:o}, s:n, s:s}", "index", 0,
                           "message", "role", "assistant", "content", text,
                           "logprobs", "finish_reason", j->finish);
    else
        choice = json_pack("{s:i, s:o, s:n, s:s}", "index", 0, "text", text,
                           "logprobs", "finish_reason", j->finish);
    return json_pack("{s:s, s:s, s:I, s:s, s:[o], s:o}", "id", j->id,
                     "object", j->kind == JOB_CHAT ? "chat.completion" : "text_completion",
                     "created", (json_int_t)j->created, "model", srv.model_id,
                     "choices", choice, "usage", usage_obj(j));
}

/* "data: <json>\n\n" of a chunk object (stolen). */
static char *sse(json_t *obj)
{
    if (!obj)
        return NULL;
    char *js = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!js)
        return NULL;
    size_t n = strlen(js);
    char *out = malloc(n + 9);
    if (out)
        snprintf(out, n + 9, "data: %s\n\n", js);
    free(js);
    return out;
}

static json_t *chunk(const srv_job *j, json_t *choice)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:[o]}", "id", j->id, "object",
                     j->kind == JOB_CHAT ? "chat.completion.chunk" : "text_completion",
                     "created", (json_int_t)j->created, "model", srv.model_id,
                     "choices", choice);
}

char *api_stream_delta(const srv_job *j, size_t from, size_t to, int first)
{
    json_t *text = json_stringn(j->text ? j->text + from : "", to - from);
    json_t *choice;
    if (j->kind == JOB_CHAT) {
        json_t *delta = first ? json_pack("{s:s, s:o}", "role", "assistant", "content", text)
                              : json_pack("{s:o}", "content", text);
        choice = json_pack("{s:i, s:o, s:n, s:n}", "index", 0, "delta", delta,
                           "logprobs", "finish_reason");
    } else {
        choice = json_pack("{s:i, s:o, s:n, s:n}", "index", 0, "text", text,
                           "logprobs", "finish_reason");
    }
    return sse(chunk(j, choice));
}

static char *concat3(char *a, char *b, const char *c)
{
    if (!a || !b) {
        free(a);
        free(b);
        return NULL;
    }
    size_t na = strlen(a), nb = strlen(b), nc = strlen(c);
    char *out = malloc(na + nb + nc + 1);
    if (out) {
        memcpy(out, a, na);
        memcpy(out + na, b, nb);
        memcpy(out + na + nb, c, nc + 1);
    }
    free(a);
    free(b);
    return out;
}

char *api_stream_final(const srv_job *j)
{
    json_t *choice;
    if (j->kind == JOB_CHAT)
        choice = json_pack("{s:i, s:{}, s:n, s:s}", "index", 0, "delta",
                           "logprobs", "finish_reason", j->finish);
    else
        choice = json_pack("{s:i, s:s, s:n, s:s}", "index", 0, "text", "",
                           "logprobs", "finish_reason", j->finish);
    char *fin = sse(chunk(j, choice));
    char *use;
    if (j->include_usage) {
        json_t *c = json_pack("{s:s, s:s, s:I, s:s, s:[], s:o}", "id", j->id, "object",
                              j->kind == JOB_CHAT ? "chat.completion.chunk" : "text_completion",
                              "created", (json_int_t)j->created, "model", srv.model_id,
                              "choices", "usage", usage_obj(j));
        use = sse(c);
    } else {
        use = strdup("");
    }
    return concat3(fin, use, "data: [DONE]\n\n");
}

char *api_stream_error(const srv_job *j)
{
    char *e = sse(api_error_body(j->http_status, j->err, NULL));
    return concat3(e, strdup(""), "data: [DONE]\n\n");
}

/* ---- other endpoints ----------------------------------------------------- */

int api_tokenize(json_t *body, json_t **out, char *err)
{
    json_t *c = json_object_get(body, "content");
    if (!json_is_object(body) || !json_is_string(c))
        return ERR("'content' must be a string");
    int add_special = 0;
    if (get_bool(body, "add_special", &add_special, err) < 0)
        return 400;
    int32_t *ids = NULL;
    size_t n = 0;
    if (tokenize_text(json_string_value(c), json_string_length(c),
                      add_special ? BITNET_TOKENIZE_ADD_BOS : 0, &ids, &n) != BITNET_OK)
        return ERR("cannot tokenize: %s", bitnet_last_error());
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_integer(ids[i]));
    free(ids);
    *out = json_pack("{s:o}", "tokens", arr);
    return *out ? 0 : ERR("out of memory");
}

int api_detokenize(json_t *body, json_t **out, char *err)
{
    json_t *t = json_object_get(body, "tokens");
    if (!json_is_object(body) || !json_is_array(t))
        return ERR("'tokens' must be an array of token ids");
    size_t n = json_array_size(t);
    int32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
    if (!ids)
        return ERR("out of memory");
    int32_t nv = bitnet_model_n_vocab(srv.model);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(t, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= nv) {
            free(ids);
            return ERR("tokens[%zu] is not a token id of this model", i);
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    /* Whole text at once through the streaming detokenizer, so that invalid
     * UTF-8 comes out as U+FFFD and the JSON string stays valid. */
    bitnet_detokenizer *d = NULL;
    size_t cap = 64, len = 0, m;
    char *buf = malloc(cap);
    int rc = buf ? bitnet_detokenizer_create(&d, srv.model, 0) : BITNET_E_NOMEM;
    for (size_t i = 0; rc == BITNET_OK && i <= n; i++) {
        for (;;) {
            if (cap - len < 512) {
                char *nb = realloc(buf, cap * 2);
                if (!nb) {
                    rc = BITNET_E_NOMEM;
                    break;
                }
                buf = nb;
                cap *= 2;
            }
            rc = i < n ? bitnet_detokenizer_feed(d, ids[i], buf + len, cap - len, &m)
                       : bitnet_detokenizer_flush(d, buf + len, cap - len, &m);
            if (rc != BITNET_E_BUFFER_TOO_SMALL)
                break;
            char *nb = realloc(buf, cap + m + 512);
            if (!nb) {
                rc = BITNET_E_NOMEM;
                break;
            }
            buf = nb;
            cap += m + 512;
        }
        if (rc == BITNET_OK)
            len += m;
    }
    bitnet_detokenizer_free(d);
    free(ids);
    if (rc != BITNET_OK) {
        free(buf);
        snprintf(err, 256, "cannot detokenize: %s", bitnet_strerror(rc));
        return 500;
    }
    *out = json_pack("{s:s%}", "content", buf, len);
    free(buf);
    return *out ? 0 : ERR("out of memory");
}

json_t *api_models(void)
{
    return json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data",
                     "id", srv.model_id, "object", "model", "created",
                     (json_int_t)0, "owned_by", "libbitnet");
}

char *api_metrics_text(void)
{
    pthread_mutex_lock(&srv.mu);
    srv_metrics m = srv.m;
    size_t queued = srv.n_queued;
    int busy = srv.n_busy;
    pthread_mutex_unlock(&srv.mu);
    char *buf = malloc(4096);
    if (!buf)
        return NULL;
    snprintf(buf, 4096,
"# HELP bitnet_requests_total Requests received, by endpoint.\n"
"# TYPE bitnet_requests_total counter\n"
"bitnet_requests_total{endpoint=\"chat_completions\"} %llu\n"
"bitnet_requests_total{endpoint=\"completions\"} %llu\n"
"bitnet_requests_total{endpoint=\"other\"} %llu\n"
"# HELP bitnet_requests_rejected_total Requests refused with 503 because the queue was full.\n"
"# TYPE bitnet_requests_rejected_total counter\n"
"bitnet_requests_rejected_total %llu\n"
"# HELP bitnet_request_errors_total Requests answered with a 4xx or 5xx status.\n"
"# TYPE bitnet_request_errors_total counter\n"
"bitnet_request_errors_total %llu\n"
"# HELP bitnet_prompt_tokens_total Prompt tokens of accepted requests.\n"
"# TYPE bitnet_prompt_tokens_total counter\n"
"bitnet_prompt_tokens_total %llu\n"
"# HELP bitnet_prompt_tokens_cached_total Prompt tokens reused from a slot's cache.\n"
"# TYPE bitnet_prompt_tokens_cached_total counter\n"
"bitnet_prompt_tokens_cached_total %llu\n"
"# HELP bitnet_generated_tokens_total Completion tokens generated.\n"
"# TYPE bitnet_generated_tokens_total counter\n"
"bitnet_generated_tokens_total %llu\n"
"# HELP bitnet_batch_steps_total Batched eval steps.\n"
"# TYPE bitnet_batch_steps_total counter\n"
"bitnet_batch_steps_total %llu\n"
"# HELP bitnet_queue_length Requests waiting for a slot.\n"
"# TYPE bitnet_queue_length gauge\n"
"bitnet_queue_length %zu\n"
"# HELP bitnet_slots_busy Slots serving a request.\n"
"# TYPE bitnet_slots_busy gauge\n"
"bitnet_slots_busy %d\n"
"# HELP bitnet_slots_total Slots (--parallel).\n"
"# TYPE bitnet_slots_total gauge\n"
"bitnet_slots_total %d\n"
"# HELP bitnet_tokens_per_second Generated tokens per second of engine step time since start.\n"
"# TYPE bitnet_tokens_per_second gauge\n"
"bitnet_tokens_per_second %.3f\n",
             m.req_chat, m.req_completion, m.req_other, m.req_rejected,
             m.req_errors, m.prompt_tokens, m.cached_tokens, m.gen_tokens,
             m.steps, queued, busy, srv.n_slots,
             m.busy_s > 0 ? (double)m.gen_tokens / m.busy_s : 0.0);
    return buf;
}
