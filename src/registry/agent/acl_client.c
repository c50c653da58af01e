#include "registry/agent/acl_client.h"

#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/consul_client.h"
#include "lib/http_client.h"
#include "lib/log.h"
#include "registry/agent/agent_internal.h"
#include "registry/api/api.h"
#include "registry/agent/sync.h"

#define TOKEN_TTL_MS 30000

/* What one token may do, as a server said. */
struct cached_token {
    bool known; /* false: the servers answered "ACL not found" */
    bool management;
    char *accessor_id;
    struct reg_acl_rules *rules; /* rules[nrules], one per policy */
    size_t nrules;
    uint64_t fetched_ms;
};

struct reg_acl_cache {
    struct reg_agent *agent;
    struct smap tokens; /* secret ("" for anonymous) -> struct cached_token */
    struct fetch *fetches;
};

struct fetch {
    struct fetch *next;
    struct reg_acl_cache *cache;
    struct reg_api_call *call; /* NULL once its client went away */
    char *secret;
    struct http_call *http;
    uint64_t epoch; /* the server epoch it was sent at (reg_sync_server_epoch) */
    void (*resume)(struct reg_api_call *c);
};

static void token_free(struct cached_token *t)
{
    for (size_t i = 0; i < t->nrules; i++)
        reg_acl_rules_free(&t->rules[i]);
    free(t->rules);
    free(t->accessor_id);
    free(t);
}

struct reg_acl_cache *reg_acl_cache_new(struct reg_agent *a)
{
    struct reg_acl_cache *ac = xcalloc(1, sizeof(*ac));
    ac->agent = a;
    return ac;
}

void reg_acl_cache_free(struct reg_acl_cache *ac)
{
    if (!ac)
        return;
    while (ac->fetches)
        http_call_cancel(ac->fetches->http); /* unlinks it */
    smap_foreach(&ac->tokens, e) token_free(e->val);
    smap_free(&ac->tokens);
    free(ac);
}

int reg_acl_cache_lookup(struct reg_acl_cache *ac, const char *secret, struct reg_acl_authz *authz)
{
    const struct reg_agent *a = ac->agent;
    struct cached_token *t = smap_get(&ac->tokens, secret ? secret : "");

    reg_acl_authz_free(authz);
    authz->enabled = true;
    authz->default_allow = strcmp(a->cfg.acl_default_policy, "deny") != 0;
    if (!t)
        return -EAGAIN;
    if (!t->known) {
        authz->default_allow = false;
        return -ENOENT;
    }
    authz->management = t->management;
    authz->accessor_id = t->accessor_id;
    authz->rules = xcalloc(t->nrules ? t->nrules : 1, sizeof(*authz->rules));
    for (size_t i = 0; i < t->nrules; i++)
        authz->rules[authz->nrules++] = &t->rules[i];
    return uv_now(a->loop) - t->fetched_ms > TOKEN_TTL_MS ? REG_ACL_CACHE_STALE : 0;
}

static void unlink_fetch(struct fetch *f)
{
    struct fetch **pp = &f->cache->fetches;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
}

/* Stores the server's answer: {"AccessorID", "Management", "Rules": [text, ...]} or 403. */
static void store(struct reg_acl_cache *ac, const char *secret, int status, const char *body,
                  size_t len)
{
    struct cached_token *t = xcalloc(1, sizeof(*t));
    json_t *v = status == 200 ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *rules = json_object_get(v, "Rules");
    size_t i;
    json_t *text;

    t->known = v != NULL;
    t->management = json_is_true(json_object_get(v, "Management"));
    const char *accessor = json_string_value(json_object_get(v, "AccessorID"));
    t->accessor_id = xstrdup(accessor ? accessor : "");
    t->rules = xcalloc(json_array_size(rules) + 1, sizeof(*t->rules));
    json_array_foreach(rules, i, text)
    {
        struct err e;
        if (reg_acl_rules_parse(json_string_value(text), &t->rules[t->nrules], &e) < 0) {
            log_warn("acl: rules from the server do not parse: %s", e.msg);
            reg_acl_rules_free(&t->rules[t->nrules]);
            continue;
        }
        t->nrules++;
    }
    t->fetched_ms = uv_now(ac->agent->loop);
    json_decref(v);
    struct cached_token *old = smap_put(&ac->tokens, secret, t);
    if (old)
        token_free(old);
}

static void on_resolved(int status, const struct http_client_response *res, void *data)
{
    struct fetch *f = data;
    struct reg_acl_cache *ac = f->cache;
    struct reg_api_call *c = f->call;

    unlink_fetch(f);
    if (status == 0 && (res->status == 200 || res->status == 403))
        store(ac, f->secret, res->status, res->body, res->body_len);
    else if (status != UV_ECANCELED)
        reg_sync_server_failed(ac->agent, f->epoch, status < 0 ? status : UV_EPROTO);
    if (c) {
        c->req->on_abort = NULL;
        struct cached_token *t = smap_get(&ac->tokens, f->secret);
        if (t) {
            /* Fresh, or kept past its TTL because no server answered (extend-cache). */
            t->fetched_ms = status == 0 ? t->fetched_ms : uv_now(ac->agent->loop);
            f->resume(c);
        } else if (status == UV_ECANCELED) {
            reg_api_error(c, 500, "ACL resolution cancelled: the agent is shutting down");
        } else {
            reg_api_error(c, 403, "ACL not found");
        }
    }
    free(f->secret);
    free(f);
}

static void on_abort(struct http_request *req)
{
    struct fetch *f = req->data;
    reg_api_call_free(f->call);
    f->call = NULL; /* the answer is still cached when it comes */
}

void reg_acl_cache_fetch(struct reg_acl_cache *ac, struct reg_api_call *c, const char *secret,
                         void (*resume)(struct reg_api_call *c))
{
    const struct reg_sync_server *srv = reg_sync_current_server(ac->agent);
    struct fetch *f;

    if (!srv) {
        reg_api_error(c, 403, "ACL not found");
        return;
    }
    f = xcalloc(1, sizeof(*f));
    f->cache = ac;
    f->call = c;
    f->secret = xstrdup(secret ? secret : "");
    f->resume = resume;
    f->epoch = reg_sync_server_epoch(ac->agent);
    f->next = ac->fetches;
    ac->fetches = f;
    /* The secret comes from the caller (?token= decoded): the client refuses line breaks in it,
     * and a refused request resolves to "ACL not found". */
    struct http_header token;
    size_t ntoken = consul_token_field(f->secret, &token);
    struct http_client_request r = {
        .host = srv->host,
        .port = srv->port,
        .target = "/v1/internal/mesh/acl/resolve",
        .headers = &token,
        .num_headers = ntoken,
        .timeout_ms = 5000,
        .max_body = CONSUL_MAX_BODY,
    };
    reg_sync_client_options(ac->agent, &r);
    c->req->data = f;
    c->req->on_abort = on_abort;
    f->http = http_client_send(ac->agent->client, &r, on_resolved, f);
}
