/*
 * Sessions, KV locks, lock-delay and KV transactions: the parts of the registry state that
 * Consul's session and txn endpoints drive. Same rules as state.c: every write takes the next
 * index, journals a record and tells the watchers.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/base64.h"
#include "lib/bug.h"
#include "registry/state/state.h"
#include "registry/state/state_journal.h"

/* ---- commit (state.c's rules, for this file's tables) ------------------------------------ */

static uint64_t bump(struct reg_state *st, enum reg_table table)
{
    st->index++;
    st->table_index[table] = st->index;
    return st->index;
}

uint64_t reg_state_touch(struct reg_state *st, enum reg_table table)
{
    uint64_t index = bump(st, table);
    if (st->on_change)
        st->on_change(table, st->change_data);
    return index;
}

static uint64_t now_ms(const struct reg_state *st)
{
    return st->clock ? st->clock(st->clock_data) : 0;
}

/* ---- session entities -------------------------------------------------------------------- */

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static char **dup_strings(char *const *v, size_t n)
{
    char **out = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        out[i] = xstrdup(v[i]);
    return out;
}

void reg_session_free(struct reg_session *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->name);
    free(s->node);
    free(s->ttl);
    free_strings(s->node_checks, s->n_node_checks);
    free_strings(s->service_checks, s->n_service_checks);
    free(s);
}

static struct reg_session *session_copy(const struct reg_session *t)
{
    struct reg_session *s = xcalloc(1, sizeof(*s));

    s->id = xstrdup(t->id);
    s->name = xstrdup(t->name ? t->name : "");
    s->node = xstrdup(t->node ? t->node : "");
    s->lock_delay_ns = t->lock_delay_ns;
    s->behavior = t->behavior;
    s->ttl = xstrdup(t->ttl ? t->ttl : "");
    s->ttl_ns = t->ttl_ns;
    s->node_checks = dup_strings(t->node_checks, t->n_node_checks);
    s->n_node_checks = t->n_node_checks;
    s->service_checks = dup_strings(t->service_checks, t->n_service_checks);
    s->n_service_checks = t->n_service_checks;
    s->create_index = t->create_index;
    s->modify_index = t->modify_index;
    return s;
}

void reg_state_session_put(struct reg_state *st, const struct reg_session *t)
{
    struct reg_session *s = session_copy(t);
    struct reg_session *old = smap_put(&st->sessions, s->id, s);

    if (old)
        s->expires_ms = old->expires_ms;
    reg_session_free(old);
}

struct reg_session *reg_session_get(const struct reg_state *st, const char *id)
{
    return smap_get(&st->sessions, id);
}

static int check_usable(const struct reg_node *node, const char *id, struct err *e)
{
    const struct reg_check *c = reg_check_get(node, id);

    if (!c)
        return err_set(e, "Missing check '%s' registration", id), -ENOENT;
    if (c->status == REG_CRITICAL)
        return err_set(e, "Check '%s' is in critical state", id), -EINVAL;
    return 0;
}

int reg_session_create(struct reg_state *st, const struct reg_session *t, uint64_t *index,
                       struct err *e)
{
    const struct reg_node *node = reg_node_get(st, t->node ? t->node : "");
    int rc;

    if (!node)
        return err_set(e, "Missing node registration"), -ENOENT;
    for (size_t i = 0; i < t->n_node_checks; i++)
        if ((rc = check_usable(node, t->node_checks[i], e)) < 0)
            return rc;
    for (size_t i = 0; i < t->n_service_checks; i++)
        if ((rc = check_usable(node, t->service_checks[i], e)) < 0)
            return rc;
    *index = bump(st, REG_TABLE_SESSIONS);
    struct reg_session *s = session_copy(t);
    free(s->node);
    s->node = xstrdup(node->name);
    s->create_index = s->modify_index = *index;
    reg_session_free(smap_put(&st->sessions, s->id, s));
    reg_state_commit(st, REG_TABLE_SESSIONS, reg_journal_session(s, *index));
    return 0;
}

/* Releases or deletes the keys a dying session holds, at index, and starts their lock-delay;
 * their records go to the array records. Invalidation is rare, so a walk of the KV store is
 * cheaper than a per-session key index. */
static void drop_locks(struct reg_state *st, const struct reg_session *s, uint64_t index,
                       json_t *records)
{
    uint64_t delay_ms = s->lock_delay_ns > 0 ? (uint64_t)s->lock_delay_ns / 1000000 : 0;
    uint64_t now = now_ms(st);

    for (size_t i = st->kv.n; i > 0; i--) {
        struct reg_kv *kv = st->kv.v[i - 1].val;
        if (!kv->session || strcmp(kv->session, s->id) != 0)
            continue;
        if (delay_ms && st->clock)
            smap_put(&st->lock_delay, kv->key, (void *)(uintptr_t)(now + delay_ms));
        st->table_index[REG_TABLE_KV] = index;
        if (s->behavior == REG_SESSION_DELETE) {
            json_array_append_new(records, reg_journal_kv_delete(kv->key, false, index));
            char *key = xstrdup(kv->key);
            reg_state_kv_remove(st, key, index);
            free(key);
            continue;
        }
        free(kv->session);
        kv->session = NULL;
        kv->modify_index = index;
        json_array_append_new(records, reg_journal_kv(kv, index));
    }
}

uint64_t reg_session_destroy(struct reg_state *st, const char *id)
{
    struct reg_session *s = smap_get(&st->sessions, id);

    if (!s)
        return 0;
    uint64_t index = bump(st, REG_TABLE_SESSIONS);
    json_t *records = json_array();
    drop_locks(st, s, index, records);
    bool released = json_array_size(records) > 0;
    json_array_append_new(records, reg_journal_session_delete(s->id, index));
    reg_session_free(smap_del(&st->sessions, s->id));
    /* One record: a crash never leaves the session alive with its locks gone. */
    reg_state_commit_all(st, REG_TABLE_SESSIONS, records);
    if (released && st->on_change)
        st->on_change(REG_TABLE_KV, st->change_data);
    return index;
}

static bool has_string(char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* Destroys the sessions on node that match check_id (NULL: all of the node's). IDs are copied
 * first: destroying shifts the map under a walk. */
static void destroy_matching(struct reg_state *st, const char *node, const char *check_id)
{
    char **ids = xcalloc(st->sessions.n + 1, sizeof(char *));
    size_t n = 0;

    smap_foreach(&st->sessions, e)
    {
        const struct reg_session *s = e->val;
        if (strcasecmp(s->node, node) != 0)
            continue;
        if (check_id && !has_string(s->node_checks, s->n_node_checks, check_id) &&
            !has_string(s->service_checks, s->n_service_checks, check_id))
            continue;
        ids[n++] = xstrdup(s->id);
    }
    for (size_t i = 0; i < n; i++)
        reg_session_destroy(st, ids[i]);
    free_strings(ids, n);
}

void reg_sessions_node_gone(struct reg_state *st, const char *node)
{
    destroy_matching(st, node, NULL);
}

void reg_sessions_check_gone(struct reg_state *st, const char *node, const char *check_id)
{
    destroy_matching(st, node, check_id);
}

static json_t *strings_json(char *const *v, size_t n)
{
    if (n == 0)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *reg_session_json(const struct reg_session *s)
{
    json_t *o = json_object();

    json_object_set_new(o, "ID", json_string(s->id));
    json_object_set_new(o, "Name", json_string(s->name));
    json_object_set_new(o, "Node", json_string(s->node));
    json_object_set_new(o, "LockDelay", json_integer((json_int_t)s->lock_delay_ns));
    json_object_set_new(o, "Behavior",
                        json_string(s->behavior == REG_SESSION_DELETE ? "delete" : "release"));
    json_object_set_new(o, "TTL", json_string(s->ttl));
    /* Legacy Checks: every check ID, left out when it would only say serfHealth. */
    size_t nall = s->n_node_checks + s->n_service_checks;
    if (nall &&
        !(nall == 1 && s->n_node_checks == 1 && strcmp(s->node_checks[0], "serfHealth") == 0)) {
        json_t *all = json_array();
        for (size_t i = 0; i < s->n_node_checks; i++)
            json_array_append_new(all, json_string(s->node_checks[i]));
        for (size_t i = 0; i < s->n_service_checks; i++)
            json_array_append_new(all, json_string(s->service_checks[i]));
        json_object_set_new(o, "Checks", all);
    }
    json_object_set_new(o, "NodeChecks", strings_json(s->node_checks, s->n_node_checks));
    json_t *svc = json_null();
    if (s->n_service_checks) {
        svc = json_array();
        for (size_t i = 0; i < s->n_service_checks; i++)
            json_array_append_new(
                svc, json_pack("{s:s, s:s}", "ID", s->service_checks[i], "Namespace", ""));
    }
    json_object_set_new(o, "ServiceChecks", svc);
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)s->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)s->modify_index));
    return o;
}

json_t *reg_session_list_json(const struct reg_state *st, const char *node)
{
    json_t *a = json_array();

    smap_foreach(&st->sessions, e)
    {
        const struct reg_session *s = e->val;
        if (!node || strcasecmp(s->node, node) == 0)
            json_array_append_new(a, reg_session_json(s));
    }
    return a;
}

/* ---- KV locks ---------------------------------------------------------------------------- */

bool reg_kv_lock_delayed(struct reg_state *st, const char *key)
{
    void *v = smap_get(&st->lock_delay, key);

    if (!v)
        return false;
    if (now_ms(st) < (uint64_t)(uintptr_t)v)
        return true;
    smap_del(&st->lock_delay, key);
    return false;
}

/* Writes key with the given lock fields at the next KV index. */
static uint64_t kv_write(struct reg_state *st, const char *key, const void *value, size_t len,
                         uint64_t flags, const char *session, uint64_t lock_index)
{
    const struct reg_kv *old = reg_kv_get(st, key);
    uint64_t index = bump(st, REG_TABLE_KV);
    struct reg_kv t = {
        .key = (char *)key,
        .value = (unsigned char *)value,
        .value_len = len,
        .flags = flags,
        .session = (char *)session,
        .lock_index = lock_index,
        .create_index = old ? old->create_index : index,
        .modify_index = index,
    };
    reg_state_kv_put(st, &t);
    smap_del(&st->kv_tombstones, key);
    reg_state_commit(st, REG_TABLE_KV, reg_journal_kv(reg_kv_get(st, key), index));
    return index;
}

int reg_kv_acquire(struct reg_state *st, const char *key, const void *value, size_t len,
                   uint64_t flags, const char *session, uint64_t *index)
{
    const struct reg_kv *kv = reg_kv_get(st, key);

    if (!reg_session_get(st, session))
        return -ENOENT;
    if (kv && kv->session) {
        if (strcmp(kv->session, session) != 0)
            return -EBUSY;
        /* A re-acquire by the holder updates the value and keeps LockIndex. */
        *index = kv_write(st, key, value, len, flags, session, kv->lock_index);
        return 0;
    }
    if (reg_kv_lock_delayed(st, key))
        return -EBUSY;
    *index = kv_write(st, key, value, len, flags, session, kv ? kv->lock_index + 1 : 1);
    return 0;
}

int reg_kv_release(struct reg_state *st, const char *key, const void *value, size_t len,
                   uint64_t flags, const char *session, uint64_t *index)
{
    const struct reg_kv *kv = reg_kv_get(st, key);

    if (!kv || !kv->session || strcmp(kv->session, session) != 0)
        return -EPERM;
    *index = kv_write(st, key, value, len, flags, NULL, kv->lock_index);
    return 0;
}

/* ---- transactions ------------------------------------------------------------------------ */

/*
 * A transaction runs twice: first against an overlay (key -> the entry as the transaction left
 * it, or the deleted marker) that collects results and errors without touching the state; then,
 * only when no op failed, the overlay is written to the state at one index.
 */
static struct reg_kv txn_deleted;

struct txn {
    struct reg_state *st;
    struct smap over;
    uint64_t index; /* the index the writes will commit at */
    bool writes;
    reg_txn_render_fn render;
    json_t *results;
    json_t *errors;
};

static const struct reg_kv *view_get(const struct txn *t, const char *key)
{
    const struct reg_kv *kv = smap_get(&t->over, key);
    if (kv == &txn_deleted)
        return NULL;
    return kv ? kv : reg_kv_get(t->st, key);
}

static void over_free(struct reg_kv *kv)
{
    if (!kv || kv == &txn_deleted)
        return;
    free(kv->key);
    free(kv->value);
    free(kv->session);
    free(kv);
}

static const struct reg_kv *view_put(struct txn *t, const char *key, const void *value, size_t len,
                                     uint64_t flags, const char *session, uint64_t lock_index)
{
    const struct reg_kv *cur = view_get(t, key);
    struct reg_kv *kv = xcalloc(1, sizeof(*kv));

    kv->key = xstrdup(key);
    kv->value = len ? xmemdup(value, len) : NULL;
    kv->value_len = len;
    kv->flags = flags;
    kv->session = session ? xstrdup(session) : NULL;
    kv->lock_index = lock_index;
    kv->create_index = cur ? cur->create_index : t->index;
    kv->modify_index = t->index;
    over_free(smap_put(&t->over, key, kv));
    t->writes = true;
    return kv;
}

static void view_delete(struct txn *t, const char *key)
{
    over_free(smap_put(&t->over, key, &txn_deleted));
    t->writes = true;
}

/* The keys under prefix as the transaction sees them, in order: a heap array of n strings. */
static char **view_keys(const struct txn *t, const char *prefix, size_t *n)
{
    struct smap keys = SMAP_INIT;
    size_t first, end;

    smap_prefix_range(&t->st->kv, prefix, &first, &end);
    for (size_t i = first; i < end; i++)
        smap_put(&keys, t->st->kv.v[i].key, NULL);
    smap_prefix_range(&t->over, prefix, &first, &end);
    if (MESH_BUG_ON(end > t->over.n))
        end = t->over.n;
    for (size_t i = first; i < end; i++)
        smap_put(&keys, t->over.v[i].key, NULL);
    char **v = xcalloc(keys.n + 1, sizeof(char *));
    *n = 0;
    smap_foreach(&keys, e) if (view_get(t, e->key)) v[(*n)++] = xstrdup(e->key);
    smap_free(&keys);
    return v;
}

static void add_result(struct txn *t, const struct reg_kv *kv, bool with_value)
{
    json_t *entry = t->render(kv);
    if (!with_value)
        json_object_set_new(entry, "Value", json_null());
    json_array_append_new(t->results, json_pack("{s:o}", "KV", entry));
}

static void add_error(struct txn *t, size_t op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(struct txn *t, size_t op, const char *fmt, ...)
{
    char what[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap); /* truncation of an error text is harmless */
    va_end(ap);
    json_array_append_new(t->errors,
                          json_pack("{s:I, s:s}", "OpIndex", (json_int_t)op, "What", what));
}

/* One decoded KV operation. */
struct txn_op {
    const char *verb;
    const char *key;
    unsigned char *value; /* heap, NULL when empty */
    size_t value_len;
    uint64_t flags;
    uint64_t index;
    const char *session;
};

static void op_lock(struct txn *t, size_t i, const struct txn_op *op, const struct reg_kv *cur)
{
    if (!op->session[0] || !reg_session_get(t->st, op->session)) {
        add_error(t, i, "invalid session \"%s\"", op->session);
        return;
    }
    bool mine = cur && cur->session && strcmp(cur->session, op->session) == 0;
    if ((cur && cur->session && !mine) || (!mine && reg_kv_lock_delayed(t->st, op->key))) {
        add_error(t, i, "failed to lock key \"%s\", lock is already held", op->key);
        return;
    }
    uint64_t li = cur ? cur->lock_index + (mine ? 0 : 1) : 1;
    add_result(t, view_put(t, op->key, op->value, op->value_len, op->flags, op->session, li),
               false);
}

static void op_write(struct txn *t, size_t i, const struct txn_op *op, const struct reg_kv *cur)
{
    const char *v = op->verb;

    if (strcmp(v, "cas") == 0 && (cur ? cur->modify_index != op->index : op->index != 0)) {
        add_error(t, i, "failed to set key \"%s\", index is stale", op->key);
    } else if (strcmp(v, "set") == 0 || strcmp(v, "cas") == 0) {
        add_result(t,
                   view_put(t, op->key, op->value, op->value_len, op->flags,
                            cur ? cur->session : NULL, cur ? cur->lock_index : 0),
                   false);
    } else if (strcmp(v, "lock") == 0) {
        op_lock(t, i, op, cur);
    } else if (strcmp(v, "unlock") == 0) {
        if (!cur || !cur->session || strcmp(cur->session, op->session) != 0)
            add_error(t, i,
                      "failed to unlock key \"%s\", lock isn't held, or is held by another "
                      "session",
                      op->key);
        else
            add_result(
                t, view_put(t, op->key, op->value, op->value_len, op->flags, NULL, cur->lock_index),
                false);
    } else if (strcmp(v, "delete") == 0) {
        view_delete(t, op->key);
    } else if (strcmp(v, "delete-cas") == 0) {
        if (!cur || cur->modify_index != op->index)
            add_error(t, i, "failed to delete key \"%s\", index is stale", op->key);
        else
            view_delete(t, op->key);
    } else {
        add_error(t, i, "unknown KV verb \"%s\"", v);
    }
}

static void op_tree(struct txn *t, const struct txn_op *op, bool del)
{
    size_t n;
    char **keys = view_keys(t, op->key, &n);

    for (size_t k = 0; k < n; k++) {
        if (del)
            view_delete(t, keys[k]);
        else
            add_result(t, view_get(t, keys[k]), true);
    }
    free_strings(keys, n);
}

static void run_op(struct txn *t, size_t i, const struct txn_op *op)
{
    const struct reg_kv *cur = view_get(t, op->key);
    const char *v = op->verb;

    if (strcmp(v, "get") == 0 || strcmp(v, "check-index") == 0 || strcmp(v, "check-session") == 0) {
        if (!cur)
            add_error(t, i, "key \"%s\" doesn't exist", op->key);
        else if (strcmp(v, "check-index") == 0 && cur->modify_index != op->index)
            add_error(t, i, "current modify index %" PRIu64 " != %" PRIu64, cur->modify_index,
                      op->index);
        else if (strcmp(v, "check-session") == 0 &&
                 strcmp(cur->session ? cur->session : "", op->session) != 0)
            add_error(t, i, "current session \"%s\" != \"%s\"", cur->session ? cur->session : "",
                      op->session);
        else
            add_result(t, cur, v[0] == 'g');
    } else if (strcmp(v, "check-not-exists") == 0) {
        if (cur)
            add_error(t, i, "key \"%s\" exists", op->key);
    } else if (strcmp(v, "get-tree") == 0 || strcmp(v, "delete-tree") == 0) {
        op_tree(t, op, v[0] == 'd');
    } else {
        op_write(t, i, op, cur);
    }
}

static const char *op_str(const json_t *kv, const char *name)
{
    const char *s = json_string_value(json_object_get(kv, name));
    return s ? s : "";
}

/* Writes the overlay into the state at t->index, journaled as one record: a crash never leaves
 * part of a transaction behind. */
static void txn_commit(struct txn *t)
{
    struct reg_state *st = t->st;
    json_t *records = json_array();

    bump(st, REG_TABLE_KV);
    smap_foreach(&t->over, e)
    {
        struct reg_kv *kv = e->val;
        if (kv == &txn_deleted) {
            if (!reg_kv_get(st, e->key))
                continue;
            json_array_append_new(records, reg_journal_kv_delete(e->key, false, t->index));
            reg_state_kv_remove(st, e->key, t->index);
            continue;
        }
        reg_state_kv_put(st, kv);
        smap_del(&st->kv_tombstones, kv->key);
        json_array_append_new(records, reg_journal_kv(reg_kv_get(st, kv->key), t->index));
    }
    reg_state_commit_all(st, REG_TABLE_KV, records);
}

int reg_txn_apply(struct reg_state *st, const json_t *ops, reg_txn_render_fn render,
                  json_t **results, json_t **errors)
{
    struct txn t = {
        .st = st,
        .over = SMAP_INIT,
        .index = st->index + 1,
        .render = render,
        .results = json_array(),
        .errors = json_array(),
    };

    for (size_t i = 0; i < json_array_size(ops); i++) {
        const json_t *kv = json_object_get(json_array_get(ops, i), "KV");
        struct txn_op op = {
            .verb = op_str(kv, "Verb"),
            .key = op_str(kv, "Key"),
            .flags = (uint64_t)json_integer_value(json_object_get(kv, "Flags")),
            .index = (uint64_t)json_integer_value(json_object_get(kv, "Index")),
            .session = op_str(kv, "Session"),
        };
        const char *b64 = op_str(kv, "Value");
        if (b64[0])
            op.value = base64_decode(b64, &op.value_len);
        if (!json_is_object(kv))
            add_error(&t, i, "unsupported operation: only KV operations are supported");
        else if (b64[0] && !op.value)
            add_error(&t, i, "invalid base64 value for key \"%s\"", op.key);
        else
            run_op(&t, i, &op);
        free(op.value);
    }
    int rc = 0;
    if (json_array_size(t.errors)) {
        rc = -EINVAL;
        json_decref(t.results);
        t.results = NULL;
    } else if (t.writes) {
        txn_commit(&t);
    }
    smap_foreach(&t.over, e) over_free(e->val);
    smap_free(&t.over);
    *results = t.results;
    if (!rc) {
        json_decref(t.errors);
        t.errors = NULL;
    }
    *errors = t.errors;
    return rc;
}
