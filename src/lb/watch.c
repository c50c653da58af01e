/*
 * The registry watch and static servers: a loop of blocking queries on the control loop, each
 * answer turned into candidate servers, merged with the previous set (same objects for the
 * same servers) and published when the membership changed.
 */
#include "lb/watch.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/http_client.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/url.h"

#define WATCH_MIN_GAP_MS  100   /* between fetches, as consul-template */
#define WATCH_BACKOFF_MIN 250   /* ms, after the first failure */
#define WATCH_BACKOFF_MAX 30000 /* ms */
#define WATCH_WAIT        "5m"
/* The server may hold the query for wait plus up to wait/16 of jitter. */
#define WATCH_TIMEOUT_MS (5 * 60 * 1000 + 40 * 1000)

/* A server the sources ask for. */
struct cand {
    char *id, *name, *host;
    int port, weight;
};

struct lb_watch {
    uv_loop_t *loop;
    struct lb_backend *b;
    lb_watch_cb on_publish;
    void *data;
    struct http_client *client;
    struct http_call *call;
    uv_timer_t timer;
    bool stopping;
    /* registry settings */
    char *service, *tag, *addr, *token, *ca_file;
    bool tls;
    char host[256];
    int port;
    /* query state */
    uint64_t index;
    uint64_t last_fetch_ms;
    uint64_t backoff_ms;
    bool outage; /* logged; cleared by the next good answer */
    /* sources and what was last published */
    struct cand *statics, *reg;
    size_t nstatics, nreg;
    struct lb_server_set *last; /* a reference */
    int *last_weights;          /* the weight each server of last was given by its source */
};

static void watch_fetch(struct lb_watch *w);

static void cands_free(struct cand *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].id);
        free(v[i].name);
        free(v[i].host);
    }
    free(v);
}

static void cand_add(struct cand **v, size_t *n, const char *id, const char *name, const char *host,
                     int port, int weight)
{
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[*n] = (struct cand){xstrdup(id), xstrdup(name), xstrdup(host), port, weight};
    (*n)++;
}

/* "localhost" is the one name accepted where a numeric address is needed. */
static const char *numeric_host(const char *host)
{
    return strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;
}

/* Parses the static list ("host:port[,weight]") into candidates. 0 or -EINVAL with e set. */
static int parse_statics(const struct flag_list *l, struct cand **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    for (size_t i = 0; i < l->n; i++) {
        char host[256], id[300], name[32];
        int port, weight = 1;
        const char *comma = strchr(l->items[i], ',');
        char *addr =
            comma ? xstrndup(l->items[i], (size_t)(comma - l->items[i])) : xstrdup(l->items[i]);
        struct sockaddr_storage sa;
        int rc = net_split_host_port(addr, host, sizeof(host), &port, 0);
        free(addr);
        if (rc < 0 || port <= 0 || port > 65535 ||
            net_parse_addr(numeric_host(host), port, &sa) < 0 ||
            (comma && (sscanf(comma + 1, "%d", &weight) != 1 || weight < 0 || weight > 256))) {
            cands_free(*out, *n);
            *out = NULL;
            *n = 0;
            return err_set(e, "server \"%s\": expected IP:PORT[,WEIGHT]", l->items[i]);
        }
        net_addr_name((struct sockaddr *)&sa, id, sizeof(id));
        snprintf(name, sizeof(name), "srv%zu", i + 1);
        cand_add(out, n, id, name, numeric_host(host), port, weight);
    }
    return 0;
}

/* ---- merging and publishing -------------------------------------------------------------- */

/* The server of the last set that c describes, or NULL; *at is its index. */
static struct lb_server *find_same(const struct lb_watch *w, const struct cand *c, size_t *at)
{
    for (size_t i = 0; w->last && i < w->last->n; i++) {
        struct lb_server *s = w->last->v[i];
        if (s->port == c->port && strcmp(s->id, c->id) == 0 && strcmp(s->name, c->name) == 0 &&
            strcmp(s->host, c->host) == 0) {
            *at = i;
            return s;
        }
    }
    return NULL;
}

static void merge_one(struct lb_watch *w, const struct cand *c, struct lb_server **v, int *weights,
                      size_t *n)
{
    size_t at;
    struct lb_server *s = find_same(w, c, &at);

    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i]->name, c->name) == 0 && strcmp(v[i]->id, c->id) == 0)
            return; /* the same instance twice in one answer */
    if (s) {
        /* a weight the source changed wins over an admin's; an unchanged one is left alone */
        if (w->last_weights[at] != c->weight)
            lb_server_set_weight(s, c->weight);
        s = lb_server_ref(s);
    } else if (!(s = lb_server_new(c->id, c->name, c->host, c->port, c->weight))) {
        log_warn("backend %s: skipping server %s at %s:%d: not a numeric address", w->b->name,
                 c->name, c->host, c->port);
        return;
    }
    weights[*n] = c->weight;
    v[(*n)++] = s;
}

/* Rebuilds the set from the sources; publishes it when its membership changed. */
static void watch_rebuild(struct lb_watch *w)
{
    size_t max = w->nstatics + w->nreg, n = 0;
    struct lb_server **v = xcalloc(max ? max : 1, sizeof(*v));
    int *weights = xcalloc(max ? max : 1, sizeof(*weights));

    for (size_t i = 0; i < w->nstatics; i++)
        merge_one(w, &w->statics[i], v, weights, &n);
    for (size_t i = 0; i < w->nreg; i++)
        merge_one(w, &w->reg[i], v, weights, &n);
    bool same = w->last && w->last->n == n;
    for (size_t i = 0; same && i < n; i++)
        same = w->last->v[i] == v[i];
    if (same) {
        memcpy(w->last_weights, weights, n * sizeof(*weights));
    } else {
        struct lb_server_set *set = lb_server_set_new(v, n);
        lb_server_set_unref(w->last);
        w->last = set;
        atomic_fetch_add(&set->refs, 1); /* one for us, one handed to the backend */
        free(w->last_weights);
        w->last_weights = weights;
        weights = NULL;
        log_info("backend %s: %zu server%s", w->b->name, n, n == 1 ? "" : "s");
        lb_backend_publish(w->b, set);
        if (w->on_publish)
            w->on_publish(w->data);
    }
    for (size_t i = 0; i < n; i++)
        lb_server_unref(v[i]);
    free(v);
    free(weights);
}

/* ---- the registry's answer --------------------------------------------------------------- */

static const char *obj_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

/* Candidates from a /v1/health/service answer. 0 or -EINVAL (not the expected shape). */
static int parse_instances(const char *body, size_t len, struct cand **out, size_t *n)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    size_t i;
    json_t *entry;

    *out = NULL;
    *n = 0;
    if (!json_is_array(root)) {
        json_decref(root);
        return -EINVAL;
    }
    json_array_foreach(root, i, entry)
    {
        json_t *node = json_object_get(entry, "Node");
        json_t *svc = json_object_get(entry, "Service");
        json_t *port = json_object_get(svc, "Port");
        json_t *passing = json_object_get(json_object_get(svc, "Weights"), "Passing");
        const char *addr = obj_str(svc, "Address");
        char name[300];

        if (!json_is_object(svc) || !json_is_integer(port))
            continue;
        if (!addr[0])
            addr = obj_str(node, "Address");
        json_int_t weight = json_is_integer(passing) ? json_integer_value(passing) : 1;
        weight = weight < 0 ? 0 : weight > 256 ? 256 : weight;
        snprintf(name, sizeof(name), "%s_%d", obj_str(node, "Node"), (int)json_integer_value(port));
        cand_add(out, n, obj_str(svc, "ID"), name, numeric_host(addr),
                 (int)json_integer_value(port), (int)weight);
    }
    json_decref(root);
    return 0;
}

static void on_timer(uv_timer_t *t)
{
    watch_fetch(t->data);
}

static void watch_schedule(struct lb_watch *w, uint64_t delay_ms)
{
    uv_timer_start(&w->timer, on_timer, delay_ms, 0);
}

static void watch_failed(struct lb_watch *w, const char *why)
{
    if (!w->outage) {
        log_warn("registry %s: %s; keeping the last %zu server%s of %s", w->addr, why,
                 w->last ? w->last->n : 0, w->last && w->last->n == 1 ? "" : "s", w->b->name);
        w->outage = true;
    }
    atomic_store(&w->b->registry_ok, 0);
    /* The registry may come back restarted with a lower index, on which a blocking query
     * would wait out its whole timeout: start over with a query that answers at once. */
    w->index = 0;
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : WATCH_BACKOFF_MIN;
    if (w->backoff_ms > WATCH_BACKOFF_MAX)
        w->backoff_ms = WATCH_BACKOFF_MAX;
    watch_schedule(w, w->backoff_ms);
}

static void on_answer(int status, const struct http_client_response *res, void *data)
{
    struct lb_watch *w = data;
    char why[300];
    struct cand *reg;
    size_t nreg;

    w->call = NULL;
    if (status == UV_ECANCELED || w->stopping)
        return;
    if (status < 0) {
        const char *detail = http_client_error(w->client);
        snprintf(why, sizeof(why), "%s", detail ? detail : uv_strerror(status));
        watch_failed(w, why);
        return;
    }
    if (res->status != 200) {
        snprintf(why, sizeof(why), "HTTP %d: %.200s", res->status, res->body);
        why[strcspn(why, "\r\n")] = '\0';
        watch_failed(w, why);
        return;
    }
    if (parse_instances(res->body, res->body_len, &reg, &nreg) < 0) {
        watch_failed(w, "the answer is not a JSON array");
        return;
    }
    uint64_t idx = http_client_index(res);
    /* A lower index means the registry's history restarted: refetch (docs/api.md) */
    w->index = idx < w->index ? 0 : idx;
    if (w->outage)
        log_info("registry %s: reachable again", w->addr);
    w->outage = false;
    w->backoff_ms = 0;
    atomic_store(&w->b->registry_ok, 1);
    cands_free(w->reg, w->nreg);
    w->reg = reg;
    w->nreg = nreg;
    watch_rebuild(w);
    uint64_t since = uv_now(w->loop) - w->last_fetch_ms;
    watch_schedule(w, since >= WATCH_MIN_GAP_MS ? 0 : WATCH_MIN_GAP_MS - since);
}

static void watch_fetch(struct lb_watch *w)
{
    struct buf target = BUF_INIT;
    struct http_header token = {STR_LIT("X-Consul-Token"), str_from(w->token)};

    if (!w->service || w->stopping)
        return;
    buf_append_cstr(&target, "/v1/health/service/");
    url_encode(&target, str_from(w->service), false);
    buf_append_cstr(&target, "?passing");
    if (w->tag) {
        buf_append_cstr(&target, "&tag=");
        url_encode(&target, str_from(w->tag), false);
    }
    buf_printf(&target, "&index=%llu&wait=" WATCH_WAIT, (unsigned long long)w->index);
    struct http_client_request req = {
        .method = "GET",
        .host = w->host,
        .port = w->port,
        .target = target.data,
        .headers = &token,
        .num_headers = w->token ? 1 : 0,
        .timeout_ms = WATCH_TIMEOUT_MS,
        .tls = w->tls,
        .tls_ca_file = w->ca_file,
    };
    w->last_fetch_ms = uv_now(w->loop);
    w->call = http_client_send(w->client, &req, on_answer, w);
    buf_free(&target);
}

/* ---- settings ---------------------------------------------------------------------------- */

static bool str_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? xstrdup(v) : NULL;
}

/* True when cfg's registry settings differ from w's. */
static bool registry_changed(const struct lb_watch *w, const struct lb_config *cfg)
{
    return !str_same(w->service, cfg->service) || !str_same(w->tag, cfg->service_tag) ||
           !str_same(w->addr, cfg->registry_addr) || !str_same(w->token, cfg->registry_token) ||
           !str_same(w->ca_file, cfg->registry_ca_file) || w->tls != cfg->registry_tls;
}

int lb_watch_configure(struct lb_watch *w, const struct lb_config *cfg, struct err *e)
{
    struct cand *statics;
    size_t nstatics;
    char host[256];
    int port;

    if (cfg->service && net_split_host_port(cfg->registry_addr, host, sizeof(host), &port,
                                            cfg->registry_tls ? 8501 : 8500) < 0)
        return err_set(e, "registry address \"%s\": expected HOST:PORT", cfg->registry_addr);
    if (parse_statics(&cfg->servers, &statics, &nstatics, e) < 0)
        return -EINVAL;
    cands_free(w->statics, w->nstatics);
    w->statics = statics;
    w->nstatics = nstatics;
    if (registry_changed(w, cfg)) {
        if (w->call)
            http_call_cancel(w->call);
        uv_timer_stop(&w->timer);
        set_str(&w->service, cfg->service);
        set_str(&w->tag, cfg->service_tag);
        set_str(&w->addr, cfg->registry_addr);
        set_str(&w->token, cfg->registry_token);
        set_str(&w->ca_file, cfg->registry_ca_file);
        w->tls = cfg->registry_tls;
        if (w->service) {
            snprintf(w->host, sizeof(w->host), "%s", host);
            w->port = port;
        }
        w->index = 0;
        w->backoff_ms = 0;
        w->outage = false;
        atomic_store(&w->b->registry_ok, 1);
        /* A new service keeps the old instances in use until its first answer replaces them. */
        if (!w->service) {
            cands_free(w->reg, w->nreg);
            w->reg = NULL;
            w->nreg = 0;
        }
        watch_schedule(w, 0);
    }
    watch_rebuild(w);
    return 0;
}

int lb_watch_start(struct lb_watch **out, uv_loop_t *loop, const struct lb_config *cfg,
                   struct lb_backend *b, lb_watch_cb on_publish, void *data, struct err *e)
{
    struct lb_watch *w = xcalloc(1, sizeof(*w));

    w->loop = loop;
    w->b = b;
    w->on_publish = on_publish;
    w->data = data;
    w->client = http_client_new(loop);
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    atomic_store(&b->registry_ok, 1);
    int rc = lb_watch_configure(w, cfg, e);
    if (rc < 0) {
        lb_watch_free(w);
        return rc;
    }
    if (w->service)
        log_info("backend %s: following service \"%s\"%s%s at %s", b->name, w->service,
                 w->tag ? " tag " : "", w->tag ? w->tag : "", w->addr);
    *out = w;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct lb_watch *w = h->data;

    cands_free(w->statics, w->nstatics);
    cands_free(w->reg, w->nreg);
    lb_server_set_unref(w->last);
    free(w->last_weights);
    free(w->service);
    free(w->tag);
    free(w->addr);
    free(w->token);
    free(w->ca_file);
    free(w);
}

void lb_watch_free(struct lb_watch *w)
{
    if (!w)
        return;
    w->stopping = true;
    http_client_free(w->client); /* cancels the query in flight */
    w->client = NULL;
    w->call = NULL;
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}
