/* The /v1/kv endpoints: the key/value store (docs/api.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/render.h"
#include "registry/settings/settings.h"

#define KV_MAX_VALUE_SIZE (512 * 1024)

/*
 * KV flags are uint64 (the Go lock helper writes 0x2ddccbc058a50c18, and clients may use all
 * 64 bits) but jansson integers are int64, so flags above INT64_MAX leave jansson negative.
 * Flags are never negative, so a negative "Flags" value in the rendered text is such a number:
 * print it back as unsigned. Matching the raw text is sound because inside JSON strings every
 * '"' is escaped, so '"Flags":' can only be an object key.
 */
static void unsign_flags(struct buf *body)
{
    static const char key[] = "\"Flags\":";
    struct buf out = BUF_INIT;
    const char *p = body->data, *end = body->data + body->len, *hit;

    if (!memmem(p, body->len, "\"Flags\":", sizeof(key) - 1) || !memchr(p, '-', body->len))
        return;
    while ((hit = memmem(p, (size_t)(end - p), key, sizeof(key) - 1))) {
        const char *v = hit + sizeof(key) - 1;
        while (v < end && *v == ' ')
            v++;
        buf_append(&out, p, (size_t)(v - p));
        p = v;
        if (v < end && *v == '-') {
            char *num_end;
            long long n = strtoll(v, &num_end, 10);
            buf_printf(&out, "%llu", (unsigned long long)n);
            p = num_end;
        }
    }
    buf_append(&out, p, (size_t)(end - p));
    buf_free(body);
    *body = out;
}

static void kv_index(struct reg_api_call *c, struct reg_api_result *res, uint64_t index)
{
    res->index = index ? index : c->api->state->table_index[REG_TABLE_KV];
    res->index_headers = true;
}

/* 404 with an empty body, but with the index headers: watchers block on missing keys. */
static void not_found(struct reg_api_call *c, struct reg_api_result *res)
{
    buf_reset(&res->body);
    res->status = 404;
    res->content_type = NULL;
    kv_index(c, res, 0);
}

static void kv_keys(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct smap *kv = &c->api->state->kv;
    const char *sep = reg_api_query(c, "separator");
    size_t first, end, plen = strlen(c->arg);
    json_t *list = json_array();
    const char *last = NULL;
    size_t last_len = 0;

    if (!sep)
        sep = reg_api_query(c, "seperator"); /* Consul accepts the misspelling too */
    smap_prefix_range(kv, c->arg, &first, &end);
    for (size_t i = first; i < end; i++) {
        const char *key = kv->v[i].key;
        size_t len = strlen(key);
        if (!reg_api_acl_allow(c, REG_ACL_RES_KEY, key, REG_ACL_ACCESS_READ)) {
            reg_api_acl_filtered(c, res);
            continue;
        }
        /* With a separator, list each "folder" once: the key cut just after the first
         * separator past the prefix. Keys are sorted, so duplicates are adjacent. */
        if (sep && sep[0]) {
            const char *hit = strstr(key + plen, sep);
            if (hit)
                len = (size_t)(hit - key) + strlen(sep);
        }
        if (last && last_len == len && strncmp(last, key, len) == 0)
            continue;
        json_array_append_new(list, json_stringn(key, len));
        last = key;
        last_len = len;
    }
    if (json_array_size(list) == 0 && c->arg[0]) {
        json_decref(list);
        not_found(c, res);
        return;
    }
    kv_index(c, res, reg_kv_prefix_index(c->api->state, c->arg));
    reg_api_result_json(c, res, list);
}

static void kv_recurse(struct reg_api_call *c, struct reg_api_result *res)
{
    const struct smap *kv = &c->api->state->kv;
    size_t first, end;

    smap_prefix_range(kv, c->arg, &first, &end);
    if (first == end) {
        not_found(c, res);
        return;
    }
    json_t *list = json_array();
    for (size_t i = first; i < end; i++) {
        if (reg_api_acl_allow(c, REG_ACL_RES_KEY, kv->v[i].key, REG_ACL_ACCESS_READ))
            json_array_append_new(list, reg_render_kv(kv->v[i].val));
        else
            reg_api_acl_filtered(c, res);
    }
    if (json_array_size(list) == 0) { /* everything filtered out: as if absent */
        json_decref(list);
        not_found(c, res);
        return;
    }
    kv_index(c, res, reg_kv_prefix_index(c->api->state, c->arg));
    reg_api_result_json(c, res, list);
    unsign_flags(&res->body);
}

void reg_api_kv_get(struct reg_api_call *c, struct reg_api_result *res)
{
    if (reg_api_query_has(c, "keys")) {
        kv_keys(c, res);
        return;
    }
    if (reg_api_query_has(c, "recurse")) {
        kv_recurse(c, res);
        return;
    }
    if (!c->arg[0]) {
        reg_api_result_error(res, 400, "Missing key name");
        return;
    }
    if (!reg_api_acl_require_read(c, res, REG_ACL_RES_KEY, c->arg))
        return;
    const struct reg_kv *kv = reg_kv_get(c->api->state, c->arg);
    if (!kv) {
        not_found(c, res);
        return;
    }
    kv_index(c, res, kv->modify_index);
    if (reg_api_query_has(c, "raw")) {
        buf_reset(&res->body);
        buf_append(&res->body, kv->value, kv->value_len);
        res->content_type = "text/plain";
        return;
    }
    reg_api_result_json(c, res, json_pack("[o]", reg_render_kv(kv)));
    unsign_flags(&res->body);
}

/* Parses a uint64 query parameter; answers 400 and fails when malformed. */
static int query_u64(struct reg_api_call *c, const char *name, uint64_t *out, bool *present)
{
    const char *v = reg_api_query(c, name);
    unsigned long long n;

    *present = v != NULL;
    if (!v)
        return 0;
    if (!str_to_u64(str_from(v), &n)) {
        reg_api_error(c, 400, "Invalid %s: \"%s\"", name, v);
        return -EINVAL;
    }
    *out = n;
    return 0;
}

/*
 * ?acquire / ?release: the lock operations (docs/agent.md, Sessions). Returns false when neither is
 * present; otherwise answers and returns true.
 */
static bool lock_ops(struct reg_api_call *c, uint64_t flags)
{
    const char *acquire = reg_api_query(c, "acquire"), *release = reg_api_query(c, "release");
    struct reg_state *st = c->api->state;
    uint64_t index;
    int rc;

    if (!acquire && !release)
        return false;
    if (acquire) {
        rc = reg_kv_acquire(st, c->arg, c->req->body, c->req->body_len, flags, acquire, &index);
        if (rc == -ENOENT) {
            reg_api_error(c, 500, "invalid session \"%s\"", acquire);
            return true;
        }
    } else {
        rc = reg_kv_release(st, c->arg, c->req->body, c->req->body_len, flags, release, &index);
    }
    reg_api_ok_json(c, json_boolean(rc == 0));
    return true;
}

void reg_api_kv_put(struct reg_api_call *c)
{
    struct reg_state *st = c->api->state;
    uint64_t flags = 0, cas = 0;
    bool has_flags, has_cas;
    int locks = reg_api_query_has(c, "cas") + reg_api_query_has(c, "acquire") +
                reg_api_query_has(c, "release");

    if (!c->arg[0]) {
        reg_api_error(c, 400, "Missing key name");
        return;
    }
    if (locks > 1) {
        reg_api_error(c, 400, "Conflicting flags: %.*s", STR_FMT(c->req->query));
        return;
    }
    if (c->req->body_len > KV_MAX_VALUE_SIZE) {
        reg_api_error(c, 413,
                      "Request body(%zu bytes) too large, max size: %d bytes. See "
                      "https://developer.hashicorp.com/consul/docs/agent/config/"
                      "config-files#kv_max_value_size.",
                      c->req->body_len, KV_MAX_VALUE_SIZE);
        return;
    }
    if (query_u64(c, "flags", &flags, &has_flags) < 0 || query_u64(c, "cas", &cas, &has_cas) < 0 ||
        lock_ops(c, flags))
        return;
    uint64_t index =
        reg_kv_set(st, c->arg, c->req->body, c->req->body_len, flags, has_cas ? &cas : NULL);
    reg_api_ok_json(c, json_boolean(index != 0));
}

void reg_api_kv_delete(struct reg_api_call *c)
{
    struct reg_state *st = c->api->state;
    uint64_t cas = 0;
    bool has_cas;
    bool recurse = reg_api_query_has(c, "recurse");

    if (recurse && reg_api_query_has(c, "cas")) {
        reg_api_error(c, 400, "Conflicting flags: %.*s", STR_FMT(c->req->query));
        return;
    }
    if (!c->arg[0] && !recurse) {
        reg_api_error(c, 400, "Missing key name");
        return;
    }
    if (query_u64(c, "cas", &cas, &has_cas) < 0)
        return;
    if (recurse) {
        /* The router checked key:write on the prefix; every key under it must be writable. */
        if (!reg_acl_allowed_subtree(&c->authz, REG_ACL_RES_KEY, c->arg, REG_ACL_ACCESS_WRITE)) {
            struct buf b = BUF_INIT;
            reg_acl_denied_text(&c->authz, REG_ACL_RES_KEY, c->arg, REG_ACL_ACCESS_WRITE, &b);
            reg_api_error(c, 403, "%s (a rule under the prefix grants less)", b.data);
            buf_free(&b);
            return;
        }
        reg_kv_delete_tree(st, c->arg);
        reg_api_ok_json(c, json_true());
        return;
    }
    reg_api_ok_json(c, json_boolean(reg_kv_delete(st, c->arg, has_cas ? &cas : NULL) != 0));
}
