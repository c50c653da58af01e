/* PUT /v1/txn: atomic KV transactions (Consul's txn endpoint, KV operations only). */
#include <string.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "registry/api/api_acl.h"
#include "registry/api/api_routes.h"
#include "registry/api/render.h"
#include "registry/settings/settings.h"

#define TXN_MAX_OPS        64
#define TXN_MAX_VALUE_SIZE (512 * 1024) /* per value, as kv_max_value_size */

/* Each KV operation needs key:read (get, get-tree, check-*) or key:write (the others) on its
 * key. Answers 403 and returns false when the token lacks it. */
static bool txn_op_allowed(struct reg_api_call *c, const json_t *kv)
{
    const char *verb = json_string_value(json_object_get(kv, "Verb"));
    const char *key = json_string_value(json_object_get(kv, "Key"));
    bool read = verb && (strncmp(verb, "get", 3) == 0 || strncmp(verb, "check-", 6) == 0);

    return reg_api_acl_require(c, REG_ACL_RES_KEY, key ? key : "",
                               read ? REG_ACL_ACCESS_READ : REG_ACL_ACCESS_WRITE);
}

/* Checks the request's shape; answers 400/413 and returns false when it is wrong. */
static bool txn_valid(struct reg_api_call *c, const json_t *ops)
{
    if (!json_is_array(ops)) {
        reg_api_error(c, 400,
                      "Failed to parse body: json: cannot unmarshal %s into Go value of type "
                      "[]*api.TxnOp",
                      json_type_name(ops));
        return false;
    }
    if (json_array_size(ops) > TXN_MAX_OPS) {
        reg_api_error(c, 413, "Transaction contains too many operations (%zu > %d)",
                      json_array_size(ops), TXN_MAX_OPS);
        return false;
    }
    for (size_t i = 0; i < json_array_size(ops); i++) {
        const json_t *op = json_array_get(ops, i);
        const json_t *kv = json_object_get(op, "KV");
        const json_t *value = json_object_get(kv, "Value");
        if (!json_is_object(op)) {
            reg_api_error(c, 400, "Failed to parse body: operation %zu is not an object", i);
            return false;
        }
        if (kv && !json_is_object(kv)) {
            reg_api_error(c, 400, "Failed to parse body: operation %zu: KV is not an object", i);
            return false;
        }
        if (value && !json_is_null(value) &&
            (!json_is_string(value) || json_string_length(value) / 4 * 3 > TXN_MAX_VALUE_SIZE)) {
            reg_api_error(c, json_is_string(value) ? 413 : 400,
                          "Failed to parse body: operation %zu: bad Value", i);
            return false;
        }
        if (kv && !txn_op_allowed(c, kv))
            return false;
    }
    return true;
}

void reg_api_txn(struct reg_api_call *c)
{
    json_error_t jerr;
    json_t *results, *errors;
    json_t *ops = reg_api_body_load(c, &jerr);

    if (!ops) {
        reg_api_error(c, 400, "Failed to parse body: %s", jerr.text);
        return;
    }
    if (!txn_valid(c, ops)) {
        json_decref(ops);
        return;
    }
    int rc = reg_txn_apply(c->api->state, ops, reg_render_kv, &results, &errors);
    json_decref(ops);
    if (rc < 0) {
        struct buf b = BUF_INIT;
        json_t *body = json_pack("{s:n, s:o}", "Results", "Errors", errors);
        json_append(&b, body, c->pretty);
        json_decref(body);
        reg_api_answer(c, 409, "application/json", b.data, b.len);
        buf_free(&b);
        return;
    }
    /* Go encodes an empty results slice as null. */
    if (json_array_size(results) == 0) {
        json_decref(results);
        results = json_null();
    }
    reg_api_ok_json(c, json_pack("{s:o, s:n}", "Results", results, "Errors"));
}
