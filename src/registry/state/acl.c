/* ACL rules (HCL subset and JSON), the authorizer, and token resolution. */
#include "registry/state/acl.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "lib/alloc.h"
#include "lib/uuid.h"
#include "registry/state/state.h"

/* ---- names ------------------------------------------------------------------------------- */

static const char *const resource_names[REG_ACL_RES_COUNT] = {
    "", "agent", "node", "service", "key", "session", "event", "operator", "acl",
};

const char *reg_acl_resource_name(enum reg_acl_resource res)
{
    return resource_names[res];
}

const char *reg_acl_access_name(enum reg_acl_access acc)
{
    return acc == REG_ACL_ACCESS_WRITE ? "write" : acc == REG_ACL_ACCESS_LIST ? "list" : "read";
}

static bool parse_level(const char *s, enum reg_acl_resource res, enum reg_acl_level *out)
{
    if (strcmp(s, "read") == 0)
        *out = REG_ACL_LEVEL_READ;
    else if (strcmp(s, "write") == 0)
        *out = REG_ACL_LEVEL_WRITE;
    else if (strcmp(s, "deny") == 0)
        *out = REG_ACL_LEVEL_DENY;
    else if (strcmp(s, "list") == 0 && res == REG_ACL_RES_KEY)
        *out = REG_ACL_LEVEL_LIST;
    else
        return false;
    return true;
}

/* Named resources: "key" / "key_prefix" ... Sets *prefix. REG_ACL_RES_NONE when unknown. */
static enum reg_acl_resource named_resource(const char *word, bool *prefix)
{
    size_t n = strlen(word);

    *prefix = n > 7 && strcmp(word + n - 7, "_prefix") == 0;
    size_t base = *prefix ? n - 7 : n;
    for (int r = REG_ACL_RES_AGENT; r <= REG_ACL_RES_EVENT; r++)
        if (strlen(resource_names[r]) == base && strncmp(word, resource_names[r], base) == 0)
            return (enum reg_acl_resource)r;
    return REG_ACL_RES_NONE;
}

/* Valid in Consul's rules but without meaning here: accepted and ignored. */
static bool ignored_block(const char *word)
{
    return strcmp(word, "query") == 0 || strcmp(word, "query_prefix") == 0 ||
           strcmp(word, "identity") == 0 || strcmp(word, "identity_prefix") == 0;
}

static bool ignored_scalar(const char *word)
{
    return strcmp(word, "keyring") == 0 || strcmp(word, "mesh") == 0 ||
           strcmp(word, "peering") == 0;
}

static void add_rule(struct reg_acl_rules *r, enum reg_acl_resource res, bool prefix,
                     const char *name, enum reg_acl_level level)
{
    r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
    r->v[r->n++] = (struct reg_acl_rule){res, prefix, xstrdup(name), level};
}

/* Adds `word "name" { policy = value }`. */
static int add_named(struct reg_acl_rules *r, const char *word, const char *name, const char *value,
                     struct err *e)
{
    bool prefix;
    enum reg_acl_resource res = named_resource(word, &prefix);
    enum reg_acl_level level;

    if (ignored_block(word))
        return 0;
    if (res == REG_ACL_RES_NONE)
        return err_set(e, "unknown rule type \"%s\"", word);
    if (!value)
        return err_set(e, "%s \"%s\": missing policy", word, name);
    if (!parse_level(value, res, &level))
        return err_set(e, "%s \"%s\": invalid policy \"%s\"", word, name, value);
    add_rule(r, res, prefix, name, level);
    return 0;
}

/* Adds `word = "value"` (operator, acl, ...). */
static int add_scalar(struct reg_acl_rules *r, const char *word, const char *value, struct err *e)
{
    enum reg_acl_resource res = strcmp(word, "operator") == 0 ? REG_ACL_RES_OPERATOR
                                : strcmp(word, "acl") == 0    ? REG_ACL_RES_ACL
                                                              : REG_ACL_RES_NONE;
    enum reg_acl_level level;

    if (res == REG_ACL_RES_NONE && !ignored_scalar(word))
        return err_set(e, "unknown rule \"%s\"", word);
    if (!parse_level(value, REG_ACL_RES_OPERATOR, &level))
        return err_set(e, "%s: invalid policy \"%s\"", word, value);
    if (res != REG_ACL_RES_NONE)
        add_rule(r, res, true, "", level);
    return 0;
}

/* ---- HCL subset -------------------------------------------------------------------------- */

enum hcl_tok { HCL_EOF, HCL_IDENT, HCL_STRING, HCL_PUNCT, HCL_ERROR };

struct hcl {
    const char *p;
    int line;
    enum hcl_tok tok;
    char punct;
    struct buf text; /* identifier or decoded string */
};

static void hcl_skip_space(struct hcl *h)
{
    for (;;) {
        if (*h->p == '\n')
            h->line++;
        if (isspace((unsigned char)*h->p) || *h->p == ',') {
            h->p++;
        } else if (*h->p == '#' || (h->p[0] == '/' && h->p[1] == '/')) {
            while (*h->p && *h->p != '\n')
                h->p++;
        } else if (h->p[0] == '/' && h->p[1] == '*') {
            const char *end = strstr(h->p + 2, "*/");
            for (const char *q = h->p; q < (end ? end : h->p + strlen(h->p)); q++)
                h->line += *q == '\n';
            h->p = end ? end + 2 : h->p + strlen(h->p);
        } else {
            return;
        }
    }
}

static void hcl_string(struct hcl *h)
{
    h->p++;
    while (*h->p && *h->p != '"' && *h->p != '\n') {
        char ch = *h->p++;
        if (ch == '\\' && *h->p) {
            ch = *h->p++;
            ch = ch == 'n' ? '\n' : ch == 't' ? '\t' : ch;
        }
        buf_append(&h->text, &ch, 1);
    }
    if (*h->p != '"') {
        h->tok = HCL_ERROR;
        return;
    }
    h->p++;
    h->tok = HCL_STRING;
}

static void hcl_next(struct hcl *h)
{
    hcl_skip_space(h);
    buf_reset(&h->text);
    if (!*h->p) {
        h->tok = HCL_EOF;
    } else if (*h->p == '"') {
        hcl_string(h);
    } else if (isalpha((unsigned char)*h->p) || *h->p == '_') {
        while (isalnum((unsigned char)*h->p) || *h->p == '_' || *h->p == '-')
            buf_append(&h->text, h->p++, 1);
        h->tok = HCL_IDENT;
    } else if (strchr("{}=[]", *h->p)) {
        h->punct = *h->p++;
        h->tok = HCL_PUNCT;
    } else {
        h->tok = HCL_ERROR;
    }
    buf_append(&h->text, "", 0); /* NUL-terminated even when empty */
}

static bool hcl_is(const struct hcl *h, char punct)
{
    return h->tok == HCL_PUNCT && h->punct == punct;
}

/* Reads `{ attr = "value" ... }` after the opening brace was seen; *policy gets "policy". */
static int hcl_block_body(struct hcl *h, char **policy, struct err *e)
{
    for (hcl_next(h); !hcl_is(h, '}'); hcl_next(h)) {
        if (h->tok != HCL_IDENT)
            return err_set(e, "line %d: expected an attribute or '}'", h->line);
        char *attr = xstrdup(h->text.data);
        hcl_next(h);
        if (!hcl_is(h, '=')) {
            err_set(e, "line %d: expected '=' after %s", h->line, attr);
            free(attr);
            return -EINVAL;
        }
        hcl_next(h);
        if (h->tok != HCL_STRING) {
            free(attr);
            return err_set(e, "line %d: expected a string value", h->line);
        }
        if (strcmp(attr, "policy") == 0) {
            free(*policy);
            *policy = xstrdup(h->text.data);
        }
        free(attr); /* intentions and the like: accepted, no meaning here */
    }
    return 0;
}

/* One top-level statement, its first identifier already read into word. */
static int hcl_statement(struct hcl *h, const char *word, struct reg_acl_rules *out, struct err *e)
{
    char *name = NULL, *policy = NULL;
    int rc;

    hcl_next(h);
    if (hcl_is(h, '=')) {
        hcl_next(h);
        if (h->tok != HCL_STRING)
            return err_set(e, "line %d: expected a string after %s =", h->line, word);
        return add_scalar(out, word, h->text.data, e);
    }
    if (h->tok != HCL_STRING)
        return err_set(e, "line %d: expected a name or '=' after %s", h->line, word);
    name = xstrdup(h->text.data);
    hcl_next(h);
    if (!hcl_is(h, '{')) {
        rc = err_set(e, "line %d: expected '{' after %s \"%s\"", h->line, word, name);
        goto done;
    }
    rc = hcl_block_body(h, &policy, e);
    if (rc == 0)
        rc = add_named(out, word, name, policy, e);
done:
    free(name);
    free(policy);
    return rc;
}

static int parse_hcl(const char *text, struct reg_acl_rules *out, struct err *e)
{
    struct hcl h = {.p = text, .line = 1, .text = BUF_INIT};
    int rc = 0;

    for (hcl_next(&h); rc == 0 && h.tok != HCL_EOF; hcl_next(&h)) {
        if (h.tok != HCL_IDENT) {
            rc = err_set(e, "line %d: expected a rule", h.line);
            break;
        }
        char *word = xstrdup(h.text.data);
        rc = hcl_statement(&h, word, out, e);
        free(word);
    }
    buf_free(&h.text);
    return rc;
}

/* ---- JSON -------------------------------------------------------------------------------- */

/* {"name": {"policy": "write"}} or a list of such objects. */
static int json_named(const char *word, const json_t *v, struct reg_acl_rules *out, struct err *e)
{
    if (json_is_array(v)) {
        size_t i;
        const json_t *item;
        json_array_foreach(v, i, item)
        {
            int rc = json_named(word, item, out, e);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    if (!json_is_object(v))
        return err_set(e, "%s: expected an object", word);
    const char *name;
    const json_t *body;
    json_object_foreach((json_t *)v, name, body)
    {
        const char *policy = json_string_value(json_object_get(body, "policy"));
        int rc = add_named(out, word, name, policy, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_json(const char *text, struct reg_acl_rules *out, struct err *e)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    const char *word;
    json_t *v;
    int rc = 0;

    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(e, "invalid JSON: %s", root ? "not an object" : jerr.text);
    }
    json_object_foreach(root, word, v)
    {
        if (json_is_string(v))
            rc = add_scalar(out, word, json_string_value(v), e);
        else
            rc = json_named(word, v, out, e);
        if (rc < 0)
            break;
    }
    json_decref(root);
    return rc;
}

int reg_acl_rules_parse(const char *text, struct reg_acl_rules *out, struct err *e)
{
    const char *p = text ? text : "";

    memset(out, 0, sizeof(*out));
    while (isspace((unsigned char)*p))
        p++;
    return *p == '{' ? parse_json(p, out, e) : parse_hcl(p, out, e);
}

void reg_acl_rules_free(struct reg_acl_rules *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i].name);
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

/* ---- authorizer -------------------------------------------------------------------------- */

/* Merges two levels of rules for the same name: deny wins, else the most permissive. */
static enum reg_acl_level merge(enum reg_acl_level a, enum reg_acl_level b)
{
    if (a == REG_ACL_LEVEL_DENY || b == REG_ACL_LEVEL_DENY)
        return REG_ACL_LEVEL_DENY;
    return a > b ? a : b;
}

/* The level that governs name: exact rules first, else the longest matching prefix. */
static enum reg_acl_level lookup(const struct reg_acl_authz *a, enum reg_acl_resource res,
                                 const char *name)
{
    enum reg_acl_level exact = REG_ACL_LEVEL_UNSET, pref = REG_ACL_LEVEL_UNSET;
    size_t best = 0;
    bool have_prefix = false;

    for (size_t i = 0; i < a->nrules; i++) {
        const struct reg_acl_rules *rs = a->rules[i];
        for (size_t j = 0; j < rs->n; j++) {
            const struct reg_acl_rule *r = &rs->v[j];
            if (r->res != res)
                continue;
            size_t len = strlen(r->name);
            if (!r->prefix) {
                if (strcmp(r->name, name) == 0)
                    exact = merge(exact, r->level);
            } else if (strncmp(r->name, name, len) == 0) {
                if (!have_prefix || len > best) {
                    pref = r->level;
                    best = len;
                    have_prefix = true;
                } else if (len == best) {
                    pref = merge(pref, r->level);
                }
            }
        }
    }
    return exact != REG_ACL_LEVEL_UNSET ? exact : pref;
}

/* Whether a rule's level grants acc; unset: the default policy decides. */
static bool level_grants(const struct reg_acl_authz *a, enum reg_acl_resource res,
                         enum reg_acl_level level, enum reg_acl_access acc)
{
    switch (level) {
    case REG_ACL_LEVEL_WRITE:
        return true;
    case REG_ACL_LEVEL_LIST:
        return acc != REG_ACL_ACCESS_WRITE;
    case REG_ACL_LEVEL_READ:
        return acc == REG_ACL_ACCESS_READ;
    case REG_ACL_LEVEL_DENY:
        return false;
    case REG_ACL_LEVEL_UNSET:
        break;
    }
    /* Consul's allow-all default still keeps ACL management to explicit grants. */
    return a->default_allow && res != REG_ACL_RES_ACL;
}

bool reg_acl_allowed(const struct reg_acl_authz *a, enum reg_acl_resource res, const char *name,
                     enum reg_acl_access acc)
{
    if (!a->enabled || a->management || res == REG_ACL_RES_NONE)
        return true;
    if (res == REG_ACL_RES_OPERATOR || res == REG_ACL_RES_ACL)
        name = "";
    return level_grants(a, res, lookup(a, res, name ? name : ""), acc);
}

bool reg_acl_allowed_subtree(const struct reg_acl_authz *a, enum reg_acl_resource res,
                             const char *prefix, enum reg_acl_access acc)
{
    size_t plen = strlen(prefix);

    if (!reg_acl_allowed(a, res, prefix, acc))
        return false;
    if (!a->enabled || a->management)
        return true;
    /* Any rule for a name under the prefix governs some of the names: each must grant acc. */
    for (size_t i = 0; i < a->nrules; i++)
        for (size_t j = 0; j < a->rules[i]->n; j++) {
            const struct reg_acl_rule *r = &a->rules[i]->v[j];
            if (r->res == res && strncmp(r->name, prefix, plen) == 0 &&
                !level_grants(a, res, r->level, acc))
                return false;
        }
    return true;
}

void reg_acl_authz_free(struct reg_acl_authz *a)
{
    free(a->rules);
    memset(a, 0, sizeof(*a));
}

void reg_acl_denied_text(const struct reg_acl_authz *a, enum reg_acl_resource res, const char *name,
                         enum reg_acl_access acc, struct buf *out)
{
    buf_printf(out, "Permission denied: token with AccessorID '%s' lacks permission '%s:%s'",
               a->accessor_id ? a->accessor_id : REG_ACL_ANONYMOUS_ID, reg_acl_resource_name(res),
               reg_acl_access_name(acc));
    if (res != REG_ACL_RES_OPERATOR && res != REG_ACL_RES_ACL)
        buf_printf(out, " on \"%s\"", name ? name : "");
}

/* ---- resolution -------------------------------------------------------------------------- */

int reg_acl_resolve(const struct reg_state *st, const struct reg_acl_settings *set,
                    const char *secret, struct reg_acl_authz *a)
{
    const struct reg_acl_token *t;

    reg_acl_authz_free(a);
    a->enabled = set->enabled;
    a->default_allow = set->default_allow;
    if (!a->enabled)
        return 0;
    if (secret && secret[0]) {
        t = reg_acl_token_by_secret(st, secret);
        if (!t) {
            a->default_allow = false; /* unusable: deny whatever the caller does next */
            return -ENOENT;
        }
    } else {
        t = reg_acl_token_get(st, REG_ACL_ANONYMOUS_ID);
    }
    a->accessor_id = t ? t->accessor_id : REG_ACL_ANONYMOUS_ID;
    if (!t)
        return 0;
    a->rules = xcalloc(t->npolicies ? t->npolicies : 1, sizeof(*a->rules));
    for (size_t i = 0; i < t->npolicies; i++) {
        const struct reg_acl_policy *p = reg_acl_policy_get(st, t->policy_ids[i]);
        if (!p) /* deleted since: Consul drops dangling links */
            continue;
        if (strcmp(p->id, REG_ACL_MANAGEMENT_POLICY_ID) == 0)
            a->management = true;
        a->rules[a->nrules++] = p->parsed;
    }
    return 0;
}

/* Built-in global-management rules, as Consul writes them. */
static const char management_rules[] =
    "acl = \"write\"\n"
    "agent_prefix \"\" {\n  policy = \"write\"\n}\n"
    "event_prefix \"\" {\n  policy = \"write\"\n}\n"
    "key_prefix \"\" {\n  policy = \"write\"\n}\n"
    "keyring = \"write\"\n"
    "node_prefix \"\" {\n  policy = \"write\"\n}\n"
    "operator = \"write\"\n"
    "mesh = \"write\"\n"
    "peering = \"write\"\n"
    "query_prefix \"\" {\n  policy = \"write\"\n}\n"
    "service_prefix \"\" {\n  policy = \"write\"\n  intentions = \"write\"\n}\n"
    "session_prefix \"\" {\n  policy = \"write\"\n}";

/* A stable AccessorID for the initial management token, the same on every server. */
static void derived_uuid(const char *secret, char out[37])
{
    unsigned char b[16];
    uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;

    for (const char *p = secret; *p; p++) {
        h1 = (h1 ^ (unsigned char)*p) * 0x100000001b3ull;
        h2 = (h2 ^ (unsigned char)*p) * 0x100000001b3ull + 7;
    }
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(h1 >> (8 * i));
        b[8 + i] = (unsigned char)(h2 >> (8 * i));
    }
    uuid_format_v4(b, out);
}

void reg_acl_now_rfc3339(char out[40])
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 40 - n, ".%09ldZ", ts.tv_nsec);
}

void reg_acl_state_ensure(struct reg_state *st, const struct reg_acl_settings *set)
{
    char now[40];
    struct err e;

    if (!set->enabled)
        return;
    reg_acl_now_rfc3339(now);
    if (!reg_acl_policy_get(st, REG_ACL_MANAGEMENT_POLICY_ID)) {
        struct reg_acl_policy p = {
            .id = (char *)REG_ACL_MANAGEMENT_POLICY_ID,
            .name = (char *)"global-management",
            .description = (char *)"Builtin Policy that grants unlimited access",
            .rules = (char *)management_rules,
        };
        uint64_t index;
        reg_acl_policy_put(st, &p, &index, &e);
    }
    if (!reg_acl_token_get(st, REG_ACL_ANONYMOUS_ID)) {
        struct reg_acl_token t = {
            .accessor_id = (char *)REG_ACL_ANONYMOUS_ID,
            .secret_id = (char *)"anonymous",
            .description = (char *)"Anonymous Token",
            .create_time = now,
        };
        reg_acl_token_put(st, &t);
    }
    const char *root = set->initial_management;
    if (root && root[0] && !reg_acl_token_by_secret(st, root)) {
        char accessor[37];
        char *policies[1] = {(char *)REG_ACL_MANAGEMENT_POLICY_ID};
        derived_uuid(root, accessor);
        struct reg_acl_token t = {
            .accessor_id = accessor,
            .secret_id = (char *)root,
            .description = (char *)"Initial Management Token",
            .policy_ids = policies,
            .npolicies = 1,
            .create_time = now,
        };
        /* As in Consul, the initial management token is the bootstrap when none was made. */
        if (reg_acl_bootstrap_index(st))
            reg_acl_token_put(st, &t);
        else
            reg_acl_token_bootstrap(st, &t);
    }
}
