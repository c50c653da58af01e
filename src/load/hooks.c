/*
 * What a virtual user hands a processor's hooks and takes back, in Artillery's shapes: the
 * request params of beforeRequest (the step's mapping as written, templates not rendered yet:
 * Artillery renders them after the hooks), the response of afterResponse, and the metrics its
 * events.emit records; and the messages of every call (load_proc_call) and what each reply
 * brings back. The calls are made by the flow (vu.c: function steps, whileTrue, ifTrue) and by
 * a request step (exchange.c: beforeRequest, afterResponse).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "load/engine_internal.h"

json_t *load_hook_params(const struct load_vu *vu, const struct load_request *r)
{
    json_t *p = json_deep_copy(r->params);
    const char *url = r->url;

    if (url[0] == '/') {
        char *abs = xasprintf("%s%s", vu->w->eng->script->target, url);

        json_object_set_new(p, "url", json_string_nocheck(abs));
        free(abs);
    }
    json_object_set_new(p, "method", json_string(r->method));
    json_object_set_new(p, "timeout", json_integer(vu->w->eng->script->timeout_ms));
    if (!json_is_object(json_object_get(p, "headers")))
        json_object_set_new(p, "headers", json_object());
    return p;
}

json_t *load_hook_response(int status, json_t *headers, const struct buf *body)
{
    return json_pack("{s:i,s:O,s:o}", "statusCode", status, "headers",
                     headers ? headers : json_object(), "body",
                     json_stringn_nocheck(body->data ? body->data : "", body->len));
}

/* A header value or body as text: strings as they are, other values as JSON. */
static char *text_of(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_integer(v))
        return xasprintf("%lld", (long long)json_integer_value(v));
    return json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_MESH_REAL_PRECISION);
}

void load_hook_request(const struct load_request *r, const json_t *params, struct load_request *tmp,
                       struct load_kv **hdrs)
{
    const json_t *h = json_object_get(params, "headers");
    const json_t *url = json_object_get(params, "url");
    const json_t *body = json_object_get(params, "body");
    const char *key;
    json_t *v;
    size_t n = 0;

    *tmp = *r;
    tmp->wire = NULL;
    tmp->url = json_is_string(url) ? (char *)json_string_value(url) : r->url;
    /* as Artillery: json set (by the script or a hook) wins over body */
    tmp->json =
        json_is_null(json_object_get(params, "json")) ? NULL : json_object_get(params, "json");
    tmp->body = NULL;
    if (!tmp->json && body && !json_is_null(body))
        tmp->body = text_of(body);
    *hdrs = xcalloc(json_object_size(h) + 1, sizeof(**hdrs));
    json_object_foreach((json_t *)h, key, v)
    {
        if (json_is_null(v) || strpbrk(key, "\r\n:") || !*key)
            continue;
        (*hdrs)[n++] = (struct load_kv){.name = (char *)key, .value = text_of(v)};
    }
    tmp->headers = *hdrs;
    tmp->n_headers = n;
}

void load_hook_request_free(struct load_request *tmp, struct load_kv *hdrs)
{
    for (size_t i = 0; i < tmp->n_headers; i++)
        free(hdrs[i].value);
    free(hdrs);
    free(tmp->body);
}

void load_hook_metrics(void *worker, const json_t *list)
{
    struct load_worker *w = worker;
    struct load_stats *st = &w->stats;
    uint64_t now = uv_hrtime();
    struct load_sec *sec;
    size_t i;
    json_t *m;

    uv_mutex_lock(&st->lock);
    sec = load_stats_at(st, load_sec_index(w->eng, now));
    load_sec_touch(sec, now);
    json_array_foreach(list, i, m)
    {
        const char *type = json_string_value(json_array_get(m, 0));
        const char *name = json_string_value(json_array_get(m, 1));
        double v = json_number_value(json_array_get(m, 2));

        if (!type || !name || !isfinite(v))
            continue;
        if (v < 0)
            v = 0;
        if (strcmp(type, "counter") == 0)
            load_counts_add(&sec->user, name, strlen(name), (uint64_t)llround(v), LOAD_COUNTS_MAX);
        else if (strcmp(type, "histogram") == 0) /* kept in thousandths, as ms are in us */
            load_hists_record(&sec->hists, name, (uint64_t)llround(v * 1000), LOAD_COUNTS_MAX);
        else if (strcmp(type, "rate") == 0)
            load_counts_add(&sec->rates, name, strlen(name), 1, LOAD_COUNTS_MAX);
        else if (strcmp(type, "error") == 0)
            load_counts_add(&sec->errors, name, strlen(name), 1, LOAD_COUNTS_MAX);
    }
    uv_mutex_unlock(&st->lock);
}

json_t *load_hook_msg(struct load_vu *vu, const char *kind, json_t *fns)
{
    return json_pack("{s:s,s:I,s:o,s:O,s:s}", "kind", kind, "vu", (json_int_t)vu->uid, "fns", fns,
                     "vars", vu->vars, "scenario", vu->sc->name);
}

json_t *load_hook_names(const struct load_hooks *h)
{
    json_t *a = json_array();

    for (size_t i = 0; i < h->n; i++)
        json_array_append_new(a, json_string(h->names[i]));
    return a;
}

bool load_hook_reply(struct load_vu *vu, const json_t *reply)
{
    json_t *vars = json_object_get(reply, "vars");
    const json_t *err = json_object_get(reply, "error");

    vu->call = 0;
    vu->ready_ns = uv_hrtime(); /* a function's time is not the next request's latency */
    if (json_is_object(vars)) { /* in place: a parallel step's branches share the object */
        json_object_clear(vu->vars);
        json_object_update(vu->vars, vars);
    }
    if (!err)
        return true;
    load_record_error(vu, json_is_string(err) ? json_string_value(err) : "processor error");
    return false;
}
