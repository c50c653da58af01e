/*
 * DNS on a client agent. Its state holds only its own node, so, as Consul's client agents ask a
 * server over RPC, a lookup that needs the catalog becomes one read of the server's HTTP API
 * (the same reads the agent forwards for HTTP clients): /v1/health/service/NAME for services
 * and the NS records, /v1/catalog/node/NAME for nodes. The answer is rebuilt in a scratch state
 * and answered by the same code as on a server. The server filters by the agent's default token;
 * a server that cannot be reached gives SERVFAIL, as Consul's RPC errors do.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/url.h"
#include "registry/api/catalog_query.h"
#include "registry/dns/dns.h"
#include "registry/state/state.h"

#define REMOTE_TIMEOUT_MS 5000 /* resolvers give up after about 5 s anyway */
/* Lookups waiting for the server at once; beyond, SERVFAIL at once rather than a connection per
 * query of a flood (a resolver retries). */
#define REMOTE_MAX_INFLIGHT 128

struct reg_dns_remote {
    struct reg_dns *d;
    uint8_t *msg;
    size_t len;
    bool tcp;
    reg_dns_done_cb done;
    void *data;
    bool counted; /* in d->remote_inflight */
};

/* Re-parses the kept message: the query and lookup point into it. */
static void reparse(const struct reg_dns_remote *r, struct dns_query *q, struct reg_dns_lookup *l)
{
    char domain[DNS_NAME_TEXT_MAX];

    dns_query_parse(r->msg, r->len, q);
    reg_dns_domain(r->d, domain);
    reg_dns_lookup_parse(q->qname, q->qtype, domain, l);
}

static void finish(struct reg_dns_remote *r, const struct reg_state *st, enum dns_rcode failed)
{
    uint8_t *out = xmalloc(DNS_MSG_MAX);
    struct dns_query q;
    struct reg_dns_lookup l;
    size_t n;

    reparse(r, &q, &l);
    if (r->counted)
        r->d->remote_inflight--;
    if (st)
        n = reg_dns_answer_from(r->d, st, false, &q, &l, r->tcp, out, DNS_MSG_MAX);
    else
        n = reg_dns_answer_rcode(&q, failed, out, DNS_MSG_MAX);
    r->done(out, n, r->data);
    free(out);
    free(r->msg);
    free(r);
}

/* Registers one node (a Node object of Consul's API) with an optional service and its checks
 * in st, through the catalog's own registration decoder. */
static void add_entry(struct reg_state *st, const json_t *node, const json_t *svc,
                      const json_t *checks)
{
    struct reg_catalog_registration reg;
    struct err e;
    json_t *body = json_object();

    json_object_set(body, "Node", json_object_get(node, "Node"));
    json_object_set(body, "ID", json_object_get(node, "ID"));
    json_object_set(body, "Address", json_object_get(node, "Address"));
    json_object_set(body, "Datacenter", json_object_get(node, "Datacenter"));
    if (json_is_object(json_object_get(node, "Meta")))
        json_object_set(body, "NodeMeta", json_object_get(node, "Meta"));
    if (svc)
        json_object_set(body, "Service", (json_t *)svc);
    if (checks)
        json_object_set(body, "Checks", (json_t *)checks);
    /* Fields the decoder does not know are dropped by it; one that does not decode drops the
     * entry (a server answering nonsense gets fewer records, not a crash). */
    if (reg_catalog_registration_decode(body, &reg, &e) < 0 ||
        reg_catalog_registration_apply(st, &reg, &e) < 0)
        log_debug("dns: an entry from the server is left out: %s", e.msg);
    reg_catalog_registration_free(&reg);
    json_decref(body);
}

static void on_remote(int status, const struct http_client_response *res, void *data)
{
    struct reg_dns_remote *r = data;
    struct reg_state st;

    if (status < 0 || res->status != 200) {
        finish(r, NULL, DNS_RCODE_SERVFAIL);
        return;
    }
    json_t *body = json_loadb(res->body, res->body_len, 0, NULL);
    reg_state_init(&st);
    if (json_is_array(body)) { /* /v1/health/service: [{Node, Service, Checks}] */
        size_t i;
        json_t *entry;
        json_array_foreach(body, i, entry)
        {
            const json_t *node = json_object_get(entry, "Node");
            if (json_is_object(node))
                add_entry(&st, node, json_object_get(entry, "Service"),
                          json_object_get(entry, "Checks"));
        }
    } else if (json_is_object(body) && json_is_object(json_object_get(body, "Node"))) {
        add_entry(&st, json_object_get(body, "Node"), NULL, NULL); /* /v1/catalog/node */
    }
    finish(r, &st, DNS_RCODE_NOERROR);
    reg_state_free(&st);
    json_decref(body);
}

static char *remote_target(const struct reg_dns_lookup *l)
{
    struct buf t = BUF_INIT;

    if (l->kind == REG_DNS_LOOKUP_NODE) {
        buf_append_cstr(&t, "/v1/catalog/node/");
        url_encode(&t, str_from(l->name), false);
        return buf_steal(&t);
    }
    buf_append_cstr(&t, "/v1/health/service/");
    url_encode(&t, str_from(l->kind == REG_DNS_LOOKUP_APEX ? "consul" : l->name), false);
    if (l->kind == REG_DNS_LOOKUP_SERVICE && l->tag[0]) {
        buf_append_cstr(&t, "?tag=");
        url_encode(&t, str_from(l->tag), false);
    }
    return buf_steal(&t);
}

void reg_dns_remote_lookup(struct reg_dns *d, const uint8_t *msg, size_t len, bool tcp,
                           reg_dns_done_cb done, void *data)
{
    struct reg_dns_remote *r = xcalloc(1, sizeof(*r));
    struct dns_query q;
    struct reg_dns_lookup l;

    r->d = d;
    r->msg = xmalloc(len);
    memcpy(r->msg, msg, len);
    r->len = len;
    r->tcp = tcp;
    r->done = done;
    r->data = data;
    if (d->remote_inflight >= REMOTE_MAX_INFLIGHT) {
        finish(r, NULL, DNS_RCODE_SERVFAIL);
        return;
    }
    reparse(r, &q, &l);
    char *target = remote_target(&l);
    r->counted = true;
    d->remote_inflight++;
    if (d->ops->server_get(d->agent, target, REMOTE_TIMEOUT_MS, on_remote, r) < 0)
        finish(r, NULL, DNS_RCODE_SERVFAIL); /* no server known (yet) */
    free(target);
}
