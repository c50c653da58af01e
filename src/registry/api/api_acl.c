/* The /v1/acl endpoints, PUT /v1/agent/token/<kind>, and the HTTP side of authorization. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/uuid.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/render.h"
#include "registry/settings/settings.h"

/* ---- token transport and authorization --------------------------------------------------- */

/* The request's token: ?token=, X-Consul-Token, Authorization: Bearer, first
 * found wins (docs/agent.md, ACLs). */
static char *request_token(const struct reg_api_call *c)
{
    const char *q = reg_api_query(c, "token");
    const struct http_header *h;

    if (q && q[0])
        return xstrdup(q);
    h = http_request_header(c->req, "X-Consul-Token");
    if (h && h->value.n)
        return xasprintf("%.*s", STR_FMT(h->value));
    h = http_request_header(c->req, "Authorization");
    if (h && h->value.n > 7 && strncasecmp(h->value.p, "bearer", 6) == 0 &&
        isspace((unsigned char)h->value.p[6])) {
        const char *p = h->value.p + 6, *end = h->value.p + h->value.n;
        while (p < end && isspace((unsigned char)*p))
            p++;
        const char *w = p;
        while (p < end && !isspace((unsigned char)*p))
            p++;
        if (p > w)
            return xasprintf("%.*s", (int)(p - w), w);
    }
    return NULL;
}

int reg_api_acl_resolve(struct reg_api_call *c)
{
    struct reg_api *a = c->api;

    if (!c->token_picked) {
        c->token_picked = true;
        c->token = request_token(c);
        c->token_given = c->token != NULL;
        if (!c->token && a->cfg->acl_default_token && a->cfg->acl_default_token[0])
            c->token = xstrdup(a->cfg->acl_default_token);
    }
    return a->ops->acl_resolve(a->agent, c);
}

bool reg_api_acl_allow(const struct reg_api_call *c, enum reg_acl_resource res, const char *name,
                       enum reg_acl_access acc)
{
    return reg_acl_allowed(&c->authz, res, name, acc);
}

bool reg_api_acl_require(struct reg_api_call *c, enum reg_acl_resource res, const char *name,
                         enum reg_acl_access acc)
{
    struct buf b = BUF_INIT;

    if (reg_acl_allowed(&c->authz, res, name, acc))
        return true;
    reg_acl_denied_text(&c->authz, res, name, acc, &b);
    reg_api_error(c, 403, "%s", b.data);
    buf_free(&b);
    return false;
}

bool reg_api_acl_require_read(struct reg_api_call *c, struct reg_api_result *res,
                              enum reg_acl_resource res_kind, const char *name)
{
    struct buf b = BUF_INIT;

    if (reg_acl_allowed(&c->authz, res_kind, name, REG_ACL_ACCESS_READ))
        return true;
    reg_acl_denied_text(&c->authz, res_kind, name, REG_ACL_ACCESS_READ, &b);
    reg_api_result_error(res, 403, "%s", b.data);
    buf_free(&b);
    return false;
}

void reg_api_acl_filtered(const struct reg_api_call *c, struct reg_api_result *res)
{
    /* Consul tells only callers that sent a token, so anonymous probes learn nothing. */
    if (c->token_given)
        res->acl_filtered = true;
}

/* ---- rendering --------------------------------------------------------------------------- */

/* Consul's Hash: a digest of the fields a client may change, base64. */
static json_t *hash_of(const char *const *parts, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    unsigned char b[8];

    for (size_t i = 0; i < n; i++)
        for (const char *p = parts[i]; p && *p; p++)
            h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(h >> (8 * i));
    char *s = base64_encode(b, sizeof(b));
    json_t *v = json_string(s);
    free(s);
    return v;
}

static json_t *render_token(const struct reg_state *st, const struct reg_acl_token *t)
{
    json_t *pol = json_array();
    const char *parts[3] = {t->description, t->local ? "local" : "global", ""};

    for (size_t i = 0; i < t->npolicies; i++) {
        const struct reg_acl_policy *p = reg_acl_policy_get(st, t->policy_ids[i]);
        if (p)
            json_array_append_new(pol, json_pack("{s:s, s:s}", "ID", p->id, "Name", p->name));
    }
    parts[2] = t->npolicies ? t->policy_ids[0] : "";
    return json_pack("{s:s, s:s, s:s, s:o, s:b, s:s, s:o, s:I, s:I}", "AccessorID", t->accessor_id,
                     "SecretID", t->secret_id, "Description", t->description, "Policies", pol,
                     "Local", t->local, "CreateTime", t->create_time, "Hash", hash_of(parts, 3),
                     "CreateIndex", (json_int_t)t->create_index, "ModifyIndex",
                     (json_int_t)t->modify_index);
}

static json_t *render_policy(const struct reg_acl_policy *p, bool with_rules)
{
    const char *parts[3] = {p->name, p->description, p->rules};
    json_t *o = json_pack("{s:s, s:s, s:s, s:O, s:o, s:I, s:I}", "ID", p->id, "Name", p->name,
                          "Description", p->description, "Datacenters", p->datacenters, "Hash",
                          hash_of(parts, 3), "CreateIndex", (json_int_t)p->create_index,
                          "ModifyIndex", (json_int_t)p->modify_index);
    if (with_rules)
        json_object_set_new(o, "Rules", json_string(p->rules));
    return o;
}

static void acl_index(struct reg_api_call *c, struct reg_api_result *res)
{
    res->index = c->api->state->table_index[REG_TABLE_ACL];
    res->index_headers = true;
}

static bool disabled(struct reg_api_call *c)
{
    if (c->api->cfg->acl_enabled)
        return false;
    reg_api_error(c, 401, "ACL support disabled");
    return true;
}

static bool disabled_read(struct reg_api_call *c, struct reg_api_result *res)
{
    if (c->api->cfg->acl_enabled)
        return false;
    reg_api_result_error(res, 401, "ACL support disabled");
    return true;
}

/* ---- bootstrap and tokens ---------------------------------------------------------------- */

#define BOOTSTRAP_RESET_FILE "acl-bootstrap-reset"

/*
 * Consul's way back in when every management token is lost: the operator writes the reset index
 * a refused bootstrap named (the last bootstrap's index) into DATA_DIR/acl-bootstrap-reset, and
 * the next bootstrap is allowed and removes the file. A file naming another index stays and
 * allows nothing (another bootstrap happened since: the operator asks again).
 */
static bool bootstrap_reset_requested(const struct reg_settings *cfg, uint64_t reset_index)
{
    struct buf path = BUF_INIT;
    char text[32];
    unsigned long long want;
    ssize_t n = -1;
    bool ok = false;

    if (!cfg->data_dir || !cfg->data_dir[0])
        return false;
    buf_printf(&path, "%s/%s", cfg->data_dir, BOOTSTRAP_RESET_FILE);
    int fd = open(path.data, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
    }
    if (n < 0)
        goto out;
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        n--; /* "echo N > file" ends it with a newline */
    text[n] = '\0';
    if (!str_to_u64(str_trim(str_from(text)), &want)) {
        log_warn("%s: not an index; ACL bootstrap reset ignored", path.data);
    } else if (want != reset_index) {
        log_warn("%s: reset index %llu is not the current one (%llu); ACL bootstrap reset ignored",
                 path.data, want, (unsigned long long)reset_index);
    } else if (unlink(path.data) < 0) {
        log_warn("%s: %s; ACL bootstrap reset ignored", path.data, strerror(errno));
    } else {
        log_info("%s: ACL bootstrap reset at index %llu", path.data, want);
        ok = true;
    }
out:
    buf_free(&path);
    return ok;
}

void reg_api_acl_bootstrap(struct reg_api_call *c)
{
    struct reg_state *st = c->api->state;
    uint64_t reset_index = reg_acl_bootstrap_index(st);
    char accessor[37], secret[37], now[40];

    if (disabled(c))
        return;
    if (reset_index && !bootstrap_reset_requested(c->api->cfg, reset_index)) {
        reg_api_error(c, 403,
                      "Permission denied: ACL bootstrap no longer allowed (reset index: %llu)",
                      (unsigned long long)reset_index);
        return;
    }
    uuid_v4(accessor);
    uuid_v4(secret);
    reg_acl_now_rfc3339(now);
    char *policies[1] = {(char *)REG_ACL_MANAGEMENT_POLICY_ID};
    struct reg_acl_token t = {
        .accessor_id = accessor,
        .secret_id = secret,
        .description = (char *)"Bootstrap Token (Global Management)",
        .policy_ids = policies,
        .npolicies = 1,
        .create_time = now,
    };
    reg_acl_token_bootstrap(st, &t);
    reg_api_ok_json(c, render_token(st, reg_acl_token_get(st, accessor)));
}

/* The policy IDs of a token body's Policies ([{ID} or {Name}]). Answers 400 on failure. */
static int decode_policy_links(struct reg_api_call *c, const json_t *body, struct reg_acl_token *t)
{
    const json_t *pol = json_iget(body, "Policies");
    size_t i;
    const json_t *link;

    t->npolicies = 0;
    t->policy_ids = xcalloc(json_array_size(pol) + 1, sizeof(char *));
    json_array_foreach(pol, i, link)
    {
        const char *id = json_string_value(json_iget(link, "ID"));
        const char *name = json_string_value(json_iget(link, "Name"));
        const struct reg_acl_policy *p = NULL;
        if (id && id[0])
            p = reg_acl_policy_get(c->api->state, id);
        else if (name && name[0])
            p = reg_acl_policy_by_name(c->api->state, name);
        if (!p) {
            reg_api_error(c, 400, "Invalid Policy: cannot find policy \"%s\"",
                          id && id[0] ? id
                          : name      ? name
                                      : "");
            return -EINVAL;
        }
        t->policy_ids[t->npolicies++] = p->id; /* borrowed: the put copies */
    }
    return 0;
}

static const char *body_str(const json_t *body, const char *key)
{
    const char *s = json_string_value(json_iget(body, key));
    return s ? s : "";
}

/* Create (existing == NULL) or update a token from the request body. */
static void token_write(struct reg_api_call *c, const struct reg_acl_token *existing)
{
    struct reg_state *st = c->api->state;
    char accessor[37], secret[37], now[40];
    struct reg_acl_token t = {0};

    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    const char *acc = existing ? existing->accessor_id : body_str(body, "AccessorID");
    const char *sec = body_str(body, "SecretID");
    if (!existing && acc[0] && reg_acl_token_get(st, acc)) {
        reg_api_error(c, 400, "Invalid Token: AccessorID is already in use");
        goto done;
    }
    if (existing && sec[0] && strcmp(sec, existing->secret_id) != 0) {
        reg_api_error(c, 400, "Changing a token's SecretID is not permitted");
        goto done;
    }
    if (!existing && sec[0] && reg_acl_token_by_secret(st, sec)) {
        reg_api_error(c, 400, "Invalid Token: SecretID is already in use");
        goto done;
    }
    if (decode_policy_links(c, body, &t) < 0)
        goto done;
    if (!acc[0])
        uuid_v4(accessor), acc = accessor;
    if (existing)
        sec = existing->secret_id;
    else if (!sec[0])
        uuid_v4(secret), sec = secret;
    reg_acl_now_rfc3339(now);
    t.accessor_id = (char *)acc;
    t.secret_id = (char *)sec;
    t.description = (char *)body_str(body, "Description");
    t.local = json_is_true(json_iget(body, "Local"));
    t.create_time = existing ? existing->create_time : now;
    char *keep = xstrdup(acc); /* acc may point into the token the put replaces */
    reg_acl_token_put(st, &t);
    reg_api_ok_json(c, render_token(st, reg_acl_token_get(st, keep)));
    free(keep);
done:
    free(t.policy_ids);
    json_decref(body);
}

void reg_api_acl_token_create(struct reg_api_call *c)
{
    if (!disabled(c))
        token_write(c, NULL);
}

void reg_api_acl_token_update(struct reg_api_call *c)
{
    const struct reg_acl_token *t;

    if (disabled(c))
        return;
    t = reg_acl_token_get(c->api->state, c->arg);
    if (!t) {
        reg_api_error(c, 403, "ACL not found");
        return;
    }
    token_write(c, t);
}

void reg_api_acl_token_delete(struct reg_api_call *c)
{
    if (disabled(c))
        return;
    if (strcmp(c->arg, REG_ACL_ANONYMOUS_ID) == 0) {
        reg_api_error(c, 400, "Delete operation not permitted on the anonymous token");
        return;
    }
    reg_acl_token_delete(c->api->state, c->arg);
    reg_api_ok_json(c, json_true());
}

void reg_api_acl_token_read(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_acl_token *t;

    if (disabled_read(c, res))
        return;
    t = reg_acl_token_get(c->api->state, c->arg);
    if (!t) {
        reg_api_result_error(res, 403, "ACL not found");
        return;
    }
    acl_index(c, res);
    reg_api_result_json(c, res, render_token(c->api->state, t));
}

void reg_api_acl_token_self(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct reg_state *st = c->api->state;
    const struct reg_acl_token *t;

    if (disabled_read(c, res))
        return;
    t = c->token ? reg_acl_token_by_secret(st, c->token)
                 : reg_acl_token_get(st, REG_ACL_ANONYMOUS_ID);
    if (!t) {
        reg_api_result_error(res, 403, "ACL not found");
        return;
    }
    acl_index(c, res);
    reg_api_result_json(c, res, render_token(st, t));
}

void reg_api_acl_token_list(struct reg_api_call *c, struct reg_api_result *res)
{
    json_t *list = json_array();

    if (disabled_read(c, res)) {
        json_decref(list);
        return;
    }
    smap_foreach(&c->api->state->acl_tokens, e)
        json_array_append_new(list, render_token(c->api->state, e->val));
    acl_index(c, res);
    reg_api_result_json(c, res, list);
}

/* ---- policies ---------------------------------------------------------------------------- */

static void policy_write(struct reg_api_call *c, const struct reg_acl_policy *existing)
{
    struct reg_state *st = c->api->state;
    char id[37];
    struct err e;
    uint64_t index;

    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    const char *name = body_str(body, "Name");
    const struct reg_acl_policy *same = reg_acl_policy_by_name(st, name);
    json_t *dcs = json_iget(body, "Datacenters");
    if (!name[0]) {
        reg_api_error(c, 400, "Invalid Policy: no Name is set");
    } else if (same && same != existing) {
        reg_api_error(c, 400, "Invalid Policy: A Policy with Name \"%s\" already exists", name);
    } else if (existing && strcmp(existing->id, REG_ACL_MANAGEMENT_POLICY_ID) == 0 &&
               strcmp(body_str(body, "Rules"), existing->rules) != 0) {
        reg_api_error(
            c, 400, "Changing the Rules for the builtin global-management policy is not permitted");
    } else {
        if (existing)
            snprintf(id, sizeof(id), "%s", existing->id);
        else
            uuid_v4(id);
        struct reg_acl_policy p = {
            .id = id,
            .name = (char *)name,
            .description = (char *)body_str(body, "Description"),
            .rules = (char *)body_str(body, "Rules"),
            .datacenters = json_is_array(dcs) ? dcs : NULL,
        };
        if (reg_acl_policy_put(st, &p, &index, &e) < 0)
            reg_api_error(c, 400, "Invalid Policy: failed to parse rules: %s", e.msg);
        else
            reg_api_ok_json(c, render_policy(reg_acl_policy_get(st, id), true));
    }
    json_decref(body);
}

void reg_api_acl_policy_create(struct reg_api_call *c)
{
    if (!disabled(c))
        policy_write(c, NULL);
}

void reg_api_acl_policy_update(struct reg_api_call *c)
{
    const struct reg_acl_policy *p;

    if (disabled(c))
        return;
    p = reg_acl_policy_get(c->api->state, c->arg);
    if (!p) {
        reg_api_error(c, 403, "ACL not found");
        return;
    }
    policy_write(c, p);
}

void reg_api_acl_policy_delete(struct reg_api_call *c)
{
    if (disabled(c))
        return;
    if (strcmp(c->arg, REG_ACL_MANAGEMENT_POLICY_ID) == 0) {
        reg_api_error(c, 400,
                      "Delete operation not permitted on the builtin global-management policy");
        return;
    }
    reg_acl_policy_delete(c->api->state, c->arg);
    reg_api_ok_json(c, json_true());
}

static void policy_answer(struct reg_api_call *c, struct reg_api_result *res,
                          const struct reg_acl_policy *p)
{
    if (!p) {
        reg_api_result_error(res, 403, "ACL not found");
        return;
    }
    acl_index(c, res);
    reg_api_result_json(c, res, render_policy(p, true));
}

void reg_api_acl_policy_read(struct reg_api_call *c, struct reg_api_result *res)
{
    if (!disabled_read(c, res))
        policy_answer(c, res, reg_acl_policy_get(c->api->state, c->arg));
}

void reg_api_acl_policy_read_by_name(struct reg_api_call *c, struct reg_api_result *res)
{
    if (!disabled_read(c, res))
        policy_answer(c, res, reg_acl_policy_by_name(c->api->state, c->arg));
}

void reg_api_acl_policy_list(struct reg_api_call *c, struct reg_api_result *res)
{
    json_t *list = json_array();

    if (disabled_read(c, res)) {
        json_decref(list);
        return;
    }
    smap_foreach(&c->api->state->acl_policies, e)
        json_array_append_new(list, render_policy(e->val, false));
    acl_index(c, res);
    reg_api_result_json(c, res, list);
}

/* ---- what is not implemented ------------------------------------------------------------ */

/*
 * Roles, binding rules, auth methods, login and logout, templated policies, the replication
 * status and /v1/internal/acl/authorize. Consul answers each of them 401 "ACL support disabled"
 * while ACLs are off (agent/acl_endpoint.go: every handler starts with checkACLDisabled), which
 * is how a client tells ACLs off from an endpoint missing; with ACLs on meshkit has none of
 * them, so they are what they were before they had routes: not an endpoint.
 */
#define UNSERVED "Invalid URL path: not a recognized HTTP API endpoint"

void reg_api_acl_unserved_read(struct reg_api_call *c, struct reg_api_result *res)
{
    if (!disabled_read(c, res))
        reg_api_result_error(res, 404, UNSERVED);
}

void reg_api_acl_unserved_write(struct reg_api_call *c)
{
    if (!disabled(c))
        reg_api_error(c, 404, UNSERVED);
}

/* ---- agent tokens ------------------------------------------------------------------------ */

/* PUT /v1/agent/token/<kind> {"Token": "..."}: sets the agent's tokens in memory. */
void reg_api_agent_token(struct reg_api_call *c)
{
    struct reg_settings *cfg = c->api->cfg;
    static const char *const ignored[] = {
        "agent_recovery", "agent_master",          "acl_agent_master_token",
        "replication",    "acl_replication_token", "config_file_service_registration",
    };
    char **slot = NULL;
    bool known = false;

    if (disabled(c))
        return;
    if (strcmp(c->arg, "default") == 0 || strcmp(c->arg, "acl_token") == 0)
        slot = &cfg->acl_default_token;
    else if (strcmp(c->arg, "agent") == 0 || strcmp(c->arg, "acl_agent_token") == 0)
        slot = &cfg->acl_agent_token;
    for (size_t i = 0; i < ARRAY_LEN(ignored) && !slot && !known; i++)
        known = strcmp(c->arg, ignored[i]) == 0;
    if (!slot && !known) {
        reg_api_error(c, 404, "Token \"%s\" is unknown", c->arg);
        return;
    }
    json_t *body = reg_api_body_json(c, false);
    if (!body)
        return;
    const json_t *tok = json_iget(body, "Token");
    if (!json_is_string(tok)) {
        json_decref(body);
        reg_api_error(c, 400, "Request decode failed: missing Token");
        return;
    }
    if (slot) {
        free(*slot);
        *slot = xstrdup(json_string_value(tok));
    }
    json_decref(body);
    reg_api_ok_empty(c);
}

bool reg_api_acl_service_visible(const struct reg_api_call *c, struct reg_api_result *res,
                                 const struct reg_service *s, bool need_node)
{
    if (reg_api_acl_allow(c, REG_ACL_RES_SERVICE, s->name, REG_ACL_ACCESS_READ) &&
        (!need_node || reg_api_acl_allow(c, REG_ACL_RES_NODE, s->node->name, REG_ACL_ACCESS_READ)))
        return true;
    reg_api_acl_filtered(c, res);
    return false;
}

/* The service a check belongs to; NULL for a node-level check (or one whose service is gone). */
static const struct reg_service *check_service(const struct reg_check *chk)
{
    return chk->service_id[0] ? reg_service_get(chk->node, chk->service_id) : NULL;
}

bool reg_api_acl_check_visible(const struct reg_api_call *c, struct reg_api_result *res,
                               const struct reg_check *chk, bool need_node)
{
    const struct reg_service *s = check_service(chk);

    if (s)
        return reg_api_acl_service_visible(c, res, s, need_node);
    if (reg_api_acl_allow(c, REG_ACL_RES_NODE, chk->node->name, REG_ACL_ACCESS_READ))
        return true;
    reg_api_acl_filtered(c, res);
    return false;
}

json_t *reg_api_acl_render_check(const struct reg_api_call *c, const struct reg_check *chk)
{
    const struct reg_service *s = check_service(chk);
    bool secrets =
        s ? reg_api_acl_allow(c, REG_ACL_RES_SERVICE, s->name, REG_ACL_ACCESS_WRITE)
          : reg_api_acl_allow(c, REG_ACL_RES_NODE, chk->node->name, REG_ACL_ACCESS_WRITE);

    return reg_render_check(chk, secrets);
}
