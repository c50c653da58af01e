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
#include "lib/consul_client.h"
#include "lib/http_client.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/url.h"

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
    struct consul_watch *query; /* NULL without a service */
    /* registry settings */
    char *service, *tag;
    struct consul_endpoint ep;
    /* sources and what was last published */
    struct cand *statics, *reg;
    size_t nstatics, nreg;
    struct lb_server_set *last; /* a reference */
    int *last_weights;          /* the weight each server of last was given by its source */
};

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

static void on_outage(void *data, const char *why)
{
    struct lb_watch *w = data;

    if (why)
        log_warn("registry %s: %s; keeping the last %zu server%s of %s", w->ep.addr, why,
                 w->last ? w->last->n : 0, w->last && w->last->n == 1 ? "" : "s", w->b->name);
    else
        log_info("registry %s: reachable again", w->ep.addr);
    atomic_store(&w->b->registry_ok, why ? 0 : 1);
}

static int on_answer(void *data, const struct http_client_response *res, struct err *e)
{
    struct lb_watch *w = data;
    struct cand *reg;
    size_t nreg;

    if (res->status != 200) {
        consul_status_error(res->status, res->body, res->body_len, e);
        return -EINVAL;
    }
    if (parse_instances(res->body, res->body_len, &reg, &nreg) < 0)
        return err_set(e, "the answer is not a JSON array");
    cands_free(w->reg, w->nreg);
    w->reg = reg;
    w->nreg = nreg;
    watch_rebuild(w);
    return 0;
}

static const struct consul_watch_ops watch_ops = {.answer = on_answer, .outage = on_outage};

/* (Re)starts the blocking queries of the service at the endpoint, from index 0. */
static void watch_restart(struct lb_watch *w)
{
    struct buf target = BUF_INIT;

    consul_watch_free(w->query);
    w->query = NULL;
    if (!w->service)
        return;
    buf_append_cstr(&target, "/v1/health/service/");
    url_encode(&target, str_from(w->service), false);
    buf_append_cstr(&target, "?passing");
    if (w->tag) {
        buf_append_cstr(&target, "&tag=");
        url_encode(&target, str_from(w->tag), false);
    }
    w->query = consul_watch_start(w->client, w->loop, &w->ep, target.data, false, &watch_ops, w);
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

/* The registry endpoint cfg asks for: its flags, then the environment (lib/consul_client.h). */
static int resolve_endpoint(const struct lb_config *cfg, struct consul_endpoint *ep, struct err *e)
{
    const struct consul_flags flags = {
        .addr = cfg->registry_addr,
        .token = cfg->registry_token,
        .ca_file = cfg->registry_ca_file,
        .cert_file = cfg->registry_cert_file,
        .key_file = cfg->registry_key_file,
        .tls = cfg->registry_tls,
    };
    int rc = consul_endpoint_resolve(ep, &flags, e);

    if (rc < 0)
        err_prefix(e, "registry");
    return rc;
}

int lb_watch_configure(struct lb_watch *w, const struct lb_config *cfg, struct err *e)
{
    struct consul_endpoint ep = {0};
    struct cand *statics;
    size_t nstatics;

    if (cfg->service && resolve_endpoint(cfg, &ep, e) < 0)
        return -EINVAL;
    if (parse_statics(&cfg->servers, &statics, &nstatics, e) < 0) {
        consul_endpoint_free(&ep);
        return -EINVAL;
    }
    cands_free(w->statics, w->nstatics);
    w->statics = statics;
    w->nstatics = nstatics;
    if (!str_same(w->service, cfg->service) || !str_same(w->tag, cfg->service_tag) ||
        (cfg->service && !consul_endpoint_equal(&w->ep, &ep))) {
        set_str(&w->service, cfg->service);
        set_str(&w->tag, cfg->service_tag);
        consul_endpoint_free(&w->ep);
        w->ep = ep;
        memset(&ep, 0, sizeof(ep));
        atomic_store(&w->b->registry_ok, 1);
        /* A new service keeps the old instances in use until its first answer replaces them. */
        if (!w->service) {
            cands_free(w->reg, w->nreg);
            w->reg = NULL;
            w->nreg = 0;
        }
        watch_restart(w);
    }
    consul_endpoint_free(&ep);
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
    atomic_store(&b->registry_ok, 1);
    int rc = lb_watch_configure(w, cfg, e);
    if (rc < 0) {
        lb_watch_free(w);
        return rc;
    }
    if (w->service)
        log_info("backend %s: following service \"%s\"%s%s at %s", b->name, w->service,
                 w->tag ? " tag " : "", w->tag ? w->tag : "", w->ep.addr);
    *out = w;
    return 0;
}

void lb_watch_free(struct lb_watch *w)
{
    if (!w)
        return;
    consul_watch_free(w->query); /* cancels the query in flight */
    http_client_free(w->client);
    cands_free(w->statics, w->nstatics);
    cands_free(w->reg, w->nreg);
    lb_server_set_unref(w->last);
    free(w->last_weights);
    free(w->service);
    free(w->tag);
    consul_endpoint_free(&w->ep);
    free(w);
}
