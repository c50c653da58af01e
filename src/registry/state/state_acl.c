/* ACL tokens and policies in the replicated state, with their journal records. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "registry/state/acl.h"
#include "registry/state/state.h"

/* ---- entities ---------------------------------------------------------------------------- */

static void token_free(struct reg_acl_token *t)
{
    free(t->accessor_id);
    free(t->secret_id);
    free(t->description);
    for (size_t i = 0; i < t->npolicies; i++)
        free(t->policy_ids[i]);
    free(t->policy_ids);
    free(t->create_time);
    free(t);
}

static void policy_free(struct reg_acl_policy *p)
{
    free(p->id);
    free(p->name);
    free(p->description);
    free(p->rules);
    json_decref(p->datacenters);
    if (p->parsed)
        reg_acl_rules_free(p->parsed);
    free(p->parsed);
    free(p);
}

static char *dup_or_empty(const char *s)
{
    return xstrdup(s ? s : "");
}

static struct reg_acl_token *token_copy(const struct reg_acl_token *t)
{
    struct reg_acl_token *c = xcalloc(1, sizeof(*c));

    c->accessor_id = dup_or_empty(t->accessor_id);
    c->secret_id = dup_or_empty(t->secret_id);
    c->description = dup_or_empty(t->description);
    c->npolicies = t->npolicies;
    c->policy_ids = xcalloc(t->npolicies ? t->npolicies : 1, sizeof(char *));
    for (size_t i = 0; i < t->npolicies; i++)
        c->policy_ids[i] = xstrdup(t->policy_ids[i]);
    c->local = t->local;
    c->create_time = dup_or_empty(t->create_time);
    c->create_index = t->create_index;
    c->modify_index = t->modify_index;
    return c;
}

void reg_acl_state_free(struct reg_state *st)
{
    smap_foreach(&st->acl_tokens, e) token_free(e->val);
    smap_free(&st->acl_tokens);
    smap_free(&st->acl_secrets);
    smap_foreach(&st->acl_policies, e) policy_free(e->val);
    smap_free(&st->acl_policies);
}

/* ---- reads ------------------------------------------------------------------------------- */

const struct reg_acl_token *reg_acl_token_get(const struct reg_state *st, const char *accessor)
{
    return smap_get(&st->acl_tokens, accessor);
}

const struct reg_acl_token *reg_acl_token_by_secret(const struct reg_state *st, const char *secret)
{
    return smap_get(&st->acl_secrets, secret);
}

const struct reg_acl_policy *reg_acl_policy_get(const struct reg_state *st, const char *id)
{
    return smap_get(&st->acl_policies, id);
}

const struct reg_acl_policy *reg_acl_policy_by_name(const struct reg_state *st, const char *name)
{
    smap_foreach(&st->acl_policies, e)
    {
        const struct reg_acl_policy *p = e->val;
        if (strcmp(p->name, name) == 0)
            return p;
    }
    return NULL;
}

bool reg_acl_token_is_management(const struct reg_acl_token *t)
{
    for (size_t i = 0; i < t->npolicies; i++)
        if (strcmp(t->policy_ids[i], REG_ACL_MANAGEMENT_POLICY_ID) == 0)
            return true;
    return false;
}

/* ---- journal records --------------------------------------------------------------------- */

static json_t *record(const char *op, uint64_t index)
{
    return json_pack("{s:s, s:I}", "op", op, "index", (json_int_t)index);
}

static json_t *token_record(const struct reg_acl_token *t)
{
    json_t *r = record("acl-token", t->modify_index ? t->modify_index : 1);
    json_t *pol = json_array();

    for (size_t i = 0; i < t->npolicies; i++)
        json_array_append_new(pol, json_string(t->policy_ids[i]));
    json_object_set_new(r, "token",
                        json_pack("{s:s, s:s, s:s, s:o, s:b, s:s, s:I, s:I}", "accessor_id",
                                  t->accessor_id, "secret_id", t->secret_id, "description",
                                  t->description, "policies", pol, "local", t->local, "create_time",
                                  t->create_time, "create_index", (json_int_t)t->create_index,
                                  "modify_index", (json_int_t)t->modify_index));
    return r;
}

static json_t *policy_record(const struct reg_acl_policy *p)
{
    json_t *r = record("acl-policy", p->modify_index ? p->modify_index : 1);

    json_object_set_new(r, "policy",
                        json_pack("{s:s, s:s, s:s, s:s, s:O, s:I, s:I}", "id", p->id, "name",
                                  p->name, "description", p->description, "rules", p->rules,
                                  "datacenters", p->datacenters, "create_index",
                                  (json_int_t)p->create_index, "modify_index",
                                  (json_int_t)p->modify_index));
    return r;
}

/* Takes the next index for an ACL write. */
static uint64_t next_index(struct reg_state *st)
{
    st->index++;
    st->table_index[REG_TABLE_ACL] = st->index;
    return st->index;
}

/* Journals a record (consumed) and tells the watchers. */
static void commit(struct reg_state *st, json_t *rec)
{
    if (st->journal)
        st->journal(rec, st->journal_data);
    json_decref(rec);
    if (st->on_change)
        st->on_change(REG_TABLE_ACL, st->change_data);
}

/* ---- raw mutations (shared by the writes and replay) ------------------------------------- */

/*
 * Stores a copy of t with its indexes as given and returns the copy. t may point into the token
 * it replaces, which is freed here: callers use the returned copy, never t, afterwards.
 */
static const struct reg_acl_token *token_store(struct reg_state *st, const struct reg_acl_token *t)
{
    struct reg_acl_token *c = token_copy(t);
    struct reg_acl_token *old = smap_put(&st->acl_tokens, c->accessor_id, c);

    if (old) {
        smap_del(&st->acl_secrets, old->secret_id);
        token_free(old);
    }
    smap_put(&st->acl_secrets, c->secret_id, c);
    return c;
}

static void token_remove(struct reg_state *st, const char *accessor)
{
    struct reg_acl_token *t = smap_del(&st->acl_tokens, accessor);

    if (t) {
        smap_del(&st->acl_secrets, t->secret_id);
        token_free(t);
    }
}

/* Parses and stores a copy of p with its indexes as given. */
static int policy_store(struct reg_state *st, const struct reg_acl_policy *p, struct err *e)
{
    struct reg_acl_rules *parsed = xcalloc(1, sizeof(*parsed));

    if (reg_acl_rules_parse(p->rules, parsed, e) < 0) {
        reg_acl_rules_free(parsed);
        free(parsed);
        return -EINVAL;
    }
    struct reg_acl_policy *c = xcalloc(1, sizeof(*c));
    c->id = dup_or_empty(p->id);
    c->name = dup_or_empty(p->name);
    c->description = dup_or_empty(p->description);
    c->rules = dup_or_empty(p->rules);
    c->datacenters = json_is_array(p->datacenters) ? json_deep_copy(p->datacenters) : json_array();
    c->parsed = parsed;
    c->create_index = p->create_index;
    c->modify_index = p->modify_index;
    struct reg_acl_policy *old = smap_put(&st->acl_policies, c->id, c);
    if (old)
        policy_free(old);
    return 0;
}

/* ---- writes ------------------------------------------------------------------------------ */

static uint64_t token_write(struct reg_state *st, const struct reg_acl_token *t, bool bootstrap)
{
    const struct reg_acl_token *old = reg_acl_token_get(st, t->accessor_id);
    struct reg_acl_token c = *t;
    uint64_t index = next_index(st);

    c.create_index = old ? old->create_index : index;
    c.modify_index = index;
    if (old && (!t->create_time || !t->create_time[0]))
        c.create_time = old->create_time; /* token_store copies before freeing old */
    json_t *rec = token_record(token_store(st, &c));
    if (bootstrap) {
        st->acl_bootstrap = index;
        json_object_set_new(rec, "bootstrap", json_true());
    }
    commit(st, rec);
    return index;
}

uint64_t reg_acl_token_put(struct reg_state *st, const struct reg_acl_token *t)
{
    return token_write(st, t, false);
}

uint64_t reg_acl_token_bootstrap(struct reg_state *st, const struct reg_acl_token *t)
{
    return token_write(st, t, true);
}

uint64_t reg_acl_bootstrap_index(const struct reg_state *st)
{
    uint64_t oldest = 0;

    if (st->acl_bootstrap)
        return st->acl_bootstrap;
    smap_foreach(&st->acl_tokens, e)
    {
        const struct reg_acl_token *t = e->val;
        if (reg_acl_token_is_management(t) && (!oldest || t->create_index < oldest))
            oldest = t->create_index;
    }
    return oldest;
}

uint64_t reg_acl_token_delete(struct reg_state *st, const char *accessor)
{
    if (!reg_acl_token_get(st, accessor))
        return 0;
    uint64_t index = next_index(st);
    json_t *rec = record("acl-token-delete", index);
    json_object_set_new(rec, "accessor_id", json_string(accessor));
    token_remove(st, accessor);
    commit(st, rec);
    return index;
}

int reg_acl_policy_put(struct reg_state *st, const struct reg_acl_policy *p, uint64_t *index,
                       struct err *e)
{
    const struct reg_acl_policy *old = reg_acl_policy_get(st, p->id);
    struct reg_acl_policy c = *p;

    c.create_index = old ? old->create_index : st->index + 1;
    c.modify_index = st->index + 1;
    if (policy_store(st, &c, e) < 0)
        return -EINVAL;
    *index = next_index(st);
    commit(st, policy_record(reg_acl_policy_get(st, p->id)));
    return 0;
}

uint64_t reg_acl_policy_delete(struct reg_state *st, const char *id)
{
    struct reg_acl_policy *p = smap_del(&st->acl_policies, id);

    if (!p)
        return 0;
    policy_free(p);
    uint64_t index = next_index(st);
    json_t *rec = record("acl-policy-delete", index);
    json_object_set_new(rec, "id", json_string(id));
    commit(st, rec);
    return index;
}

/* ---- replay and snapshot ----------------------------------------------------------------- */

static const char *get_str(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static uint64_t get_u64(const json_t *o, const char *k)
{
    return (uint64_t)json_integer_value(json_object_get(o, k));
}

static int apply_token(struct reg_state *st, const json_t *o)
{
    const json_t *pol = json_object_get(o, "policies");
    struct reg_acl_token t = {
        .accessor_id = (char *)get_str(o, "accessor_id"),
        .secret_id = (char *)get_str(o, "secret_id"),
        .description = (char *)get_str(o, "description"),
        .npolicies = json_array_size(pol),
        .local = json_is_true(json_object_get(o, "local")),
        .create_time = (char *)get_str(o, "create_time"),
        .create_index = get_u64(o, "create_index"),
        .modify_index = get_u64(o, "modify_index"),
    };

    if (!json_is_object(o) || !t.accessor_id[0] || !t.secret_id[0])
        return -EINVAL;
    t.policy_ids = xcalloc(t.npolicies ? t.npolicies : 1, sizeof(char *));
    for (size_t i = 0; i < t.npolicies; i++) {
        const char *id = json_string_value(json_array_get(pol, i));
        t.policy_ids[i] = (char *)(id ? id : "");
    }
    token_store(st, &t);
    free(t.policy_ids);
    return 0;
}

static int apply_policy(struct reg_state *st, const json_t *o)
{
    struct reg_acl_policy p = {
        .id = (char *)get_str(o, "id"),
        .name = (char *)get_str(o, "name"),
        .description = (char *)get_str(o, "description"),
        .rules = (char *)get_str(o, "rules"),
        .datacenters = json_object_get(o, "datacenters"),
        .create_index = get_u64(o, "create_index"),
        .modify_index = get_u64(o, "modify_index"),
    };
    struct err e;

    if (!json_is_object(o) || !p.id[0])
        return -EINVAL;
    return policy_store(st, &p, &e);
}

int reg_acl_apply(struct reg_state *st, const json_t *r)
{
    const char *op = get_str(r, "op");

    if (strcmp(op, "acl-token") == 0) {
        if (apply_token(st, json_object_get(r, "token")) < 0)
            return -EINVAL;
        if (json_is_true(json_object_get(r, "bootstrap")))
            st->acl_bootstrap = get_u64(r, "index");
        return 0;
    }
    if (strcmp(op, "acl-bootstrap") == 0) {
        st->acl_bootstrap = get_u64(r, "index");
        return 0;
    }
    if (strcmp(op, "acl-token-delete") == 0) {
        token_remove(st, get_str(r, "accessor_id"));
        return 0;
    }
    if (strcmp(op, "acl-policy") == 0)
        return apply_policy(st, json_object_get(r, "policy"));
    if (strcmp(op, "acl-policy-delete") == 0) {
        struct reg_acl_policy *p = smap_del(&st->acl_policies, get_str(r, "id"));
        if (p)
            policy_free(p);
        return 0;
    }
    return -EINVAL;
}

void reg_acl_dump(const struct reg_state *st, reg_journal_cb emit, void *data)
{
    /* Policies first: nothing depends on the order, but it reads naturally. */
    smap_foreach(&st->acl_policies, e)
    {
        json_t *r = policy_record(e->val);
        emit(r, data);
        json_decref(r);
    }
    smap_foreach(&st->acl_tokens, e)
    {
        json_t *r = token_record(e->val);
        emit(r, data);
        json_decref(r);
    }
    /* The bootstrap's token may be gone or rewritten since: its index travels on its own. */
    if (st->acl_bootstrap) {
        json_t *r = record("acl-bootstrap", st->acl_bootstrap);
        emit(r, data);
        json_decref(r);
    }
}
