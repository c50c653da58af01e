#include "registry/state/state.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "registry/state/state_index.h"
#include "registry/state/state_journal.h"

static const char *const health_names[REG_HEALTH_COUNT] = {"passing", "warning", "critical"};

const char *reg_health_name(enum reg_health h)
{
    return health_names[h];
}

bool reg_health_parse(const char *s, enum reg_health *out)
{
    for (int i = 0; i < REG_HEALTH_COUNT; i++) {
        if (strcmp(s, health_names[i]) == 0) {
            *out = (enum reg_health)i;
            return true;
        }
    }
    return false;
}

char *reg_fold(const char *s)
{
    char *f = xstrdup(s);
    for (char *p = f; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return f;
}

void reg_state_init(struct reg_state *st)
{
    memset(st, 0, sizeof(*st));
    st->index = 1;
    for (int t = 0; t < REG_TABLE_COUNT; t++)
        st->table_index[t] = 1;
}

/* ---- entity lifetimes -------------------------------------------------------------------- */

void reg_service_clear(struct reg_service *s)
{
    free(s->id);
    free(s->name);
    for (size_t i = 0; i < s->ntags; i++)
        free(s->tags[i]);
    free(s->tags);
    free(s->address);
    free(s->kind);
    json_decref(s->meta);
    json_decref(s->tagged_addresses);
    json_decref(s->proxy);
    json_decref(s->connect);
    memset(s, 0, sizeof(*s));
}

/* Frees a stored service: its strings, and its holds on interned JSON. */
static void service_free(struct reg_state *st, struct reg_service *s)
{
    json_t **json[] = {&s->meta, &s->tagged_addresses, &s->proxy, &s->connect};

    for (size_t i = 0; i < sizeof(json) / sizeof(json[0]); i++) {
        reg_json_release(&st->json_pool, *json[i]);
        *json[i] = NULL;
    }
    reg_service_clear(s);
    free(s);
}

void reg_check_clear(struct reg_check *c)
{
    free(c->id);
    free(c->name);
    free(c->notes);
    free(c->output);
    free(c->service_id);
    free(c->type);
    json_decref(c->definition);
    memset(c, 0, sizeof(*c));
}

/* Frees a stored check: its strings, and its hold on its interned Definition. */
static void check_free(struct reg_state *st, struct reg_check *c)
{
    reg_json_release(&st->json_pool, c->definition);
    c->definition = NULL;
    reg_check_clear(c);
    free(c);
}

static void node_free(struct reg_state *st, struct reg_node *n)
{
    smap_foreach(&n->services, e) service_free(st, e->val);
    smap_free(&n->services);
    smap_foreach(&n->checks, e) check_free(st, e->val);
    smap_free(&n->checks);
    free(n->name);
    free(n->id);
    free(n->address);
    free(n->datacenter);
    json_decref(n->tagged_addresses);
    json_decref(n->meta);
    free(n);
}

static void kv_free(struct reg_kv *kv)
{
    free(kv->key);
    free(kv->value);
    free(kv->session);
    free(kv);
}

void reg_state_free(struct reg_state *st)
{
    smap_foreach(&st->nodes, e) node_free(st, e->val);
    smap_free(&st->nodes);
    reg_json_pool_free(&st->json_pool);
    smap_foreach(&st->kv, e) kv_free(e->val);
    smap_free(&st->kv);
    smap_free(&st->kv_tombstones);
    reg_index_free(st);
    reg_acl_state_free(st);
    smap_foreach(&st->sessions, e) reg_session_free(e->val);
    smap_free(&st->sessions);
    smap_free(&st->lock_delay);
    reg_query_state_free(st);
}

/* The pool's value equal to v, or to {} when v is NULL. */
static json_t *intern_or_empty(struct reg_state *st, const json_t *v)
{
    json_t *empty = v ? NULL : json_object();
    json_t *shared = reg_json_intern(&st->json_pool, v ? v : empty);

    json_decref(empty);
    return shared;
}

/* A stored copy of the template t: strings copied, JSON interned. */
static struct reg_service *service_copy(struct reg_state *st, const struct reg_service *t)
{
    struct reg_service *s = xcalloc(1, sizeof(*s));

    s->id = xstrdup(t->id ? t->id : t->name);
    s->name = xstrdup(t->name);
    s->ntags = t->ntags;
    s->tags = xcalloc(t->ntags ? t->ntags : 1, sizeof(char *));
    for (size_t i = 0; i < t->ntags; i++)
        s->tags[i] = xstrdup(t->tags[i]);
    s->address = xstrdup(t->address ? t->address : "");
    s->port = t->port;
    s->meta = intern_or_empty(st, t->meta);
    s->tagged_addresses = reg_json_intern(&st->json_pool, t->tagged_addresses);
    s->weight_passing = t->weight_passing ? t->weight_passing : 1;
    s->weight_warning = t->weight_warning ? t->weight_warning : 1;
    s->enable_tag_override = t->enable_tag_override;
    s->kind = xstrdup(t->kind ? t->kind : "");
    s->proxy = reg_json_intern(&st->json_pool, t->proxy);
    s->connect = reg_json_intern(&st->json_pool, t->connect);
    s->create_index = t->create_index;
    s->modify_index = t->modify_index;
    return s;
}

/* A stored copy of the template t: strings copied, the Definition interned. */
static struct reg_check *check_copy(struct reg_state *st, const struct reg_check *t)
{
    struct reg_check *c = xcalloc(1, sizeof(*c));

    c->id = xstrdup(t->id);
    c->name = xstrdup(t->name ? t->name : t->id);
    c->status = t->status;
    c->notes = xstrdup(t->notes ? t->notes : "");
    c->output = xstrdup(t->output ? t->output : "");
    c->service_id = xstrdup(t->service_id ? t->service_id : "");
    c->type = xstrdup(t->type ? t->type : "");
    c->definition = intern_or_empty(st, t->definition);
    c->interval_ns = t->interval_ns;
    c->timeout_ns = t->timeout_ns;
    c->create_index = t->create_index;
    c->modify_index = t->modify_index;
    return c;
}

static bool str_same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool json_same(const json_t *a, const json_t *b)
{
    if (!a || !b)
        return (!a || json_object_size(a) == 0) && (!b || json_object_size(b) == 0);
    return json_equal(a, b);
}

/* A template's weight of 0 means the default, 1, as service_copy stores it. */
static int weight_or_one(int w)
{
    return w ? w : 1;
}

static bool service_same(const struct reg_service *a, const struct reg_service *b)
{
    if (!str_same(a->name, b->name) || !str_same(a->address, b->address) || a->port != b->port ||
        a->ntags != b->ntags ||
        weight_or_one(a->weight_passing) != weight_or_one(b->weight_passing) ||
        weight_or_one(a->weight_warning) != weight_or_one(b->weight_warning) ||
        a->enable_tag_override != b->enable_tag_override || !str_same(a->kind, b->kind) ||
        !json_same(a->meta, b->meta) || !json_same(a->tagged_addresses, b->tagged_addresses) ||
        !json_same(a->proxy, b->proxy) || !json_same(a->connect, b->connect))
        return false;
    for (size_t i = 0; i < a->ntags; i++)
        if (strcmp(a->tags[i], b->tags[i]) != 0)
            return false;
    return true;
}

static bool check_same(const struct reg_check *a, const struct reg_check *b)
{
    return str_same(a->name, b->name) && a->status == b->status && str_same(a->notes, b->notes) &&
           str_same(a->output, b->output) && str_same(a->service_id, b->service_id) &&
           str_same(a->type, b->type) && json_same(a->definition, b->definition) &&
           a->interval_ns == b->interval_ns && a->timeout_ns == b->timeout_ns;
}

/* ---- commit ------------------------------------------------------------------------------ */

uint64_t reg_state_next_index(struct reg_state *st, enum reg_table table)
{
    st->index++;
    st->table_index[table] = st->index;
    return st->index;
}

void reg_state_commit(struct reg_state *st, enum reg_table table, json_t *record)
{
    if (st->journal)
        st->journal(record, st->journal_data);
    json_decref(record);
    if (st->on_change)
        st->on_change(table, st->change_data);
}

void reg_state_commit_all(struct reg_state *st, enum reg_table table, json_t *records)
{
    size_t n = json_array_size(records);

    if (n == 0) {
        json_decref(records);
        return;
    }
    if (n == 1) {
        json_t *only = json_incref(json_array_get(records, 0));
        json_decref(records);
        reg_state_commit(st, table, only);
        return;
    }
    reg_state_commit(st, table, reg_journal_batch(records));
}

/* ---- catalog ----------------------------------------------------------------------------- */

struct reg_node *reg_node_get(const struct reg_state *st, const char *name)
{
    char *key = reg_fold(name);
    struct reg_node *n = smap_get(&st->nodes, key);
    free(key);
    return n;
}

struct reg_service *reg_service_get(const struct reg_node *node, const char *id)
{
    return smap_get(&node->services, id);
}

struct reg_check *reg_check_get(const struct reg_node *node, const char *id)
{
    return smap_get(&node->checks, id);
}

static int check_order(const void *a, const void *b)
{
    const struct reg_check *x = *(const struct reg_check *const *)a;
    const struct reg_check *y = *(const struct reg_check *const *)b;
    int c = strcasecmp(x->id, y->id);
    return c ? c : strcmp(x->id, y->id);
}

const struct reg_check **reg_node_checks_ordered(const struct reg_node *node)
{
    const struct reg_check **v = xcalloc(node->checks.n ? node->checks.n : 1, sizeof(*v));

    for (size_t i = 0; i < node->checks.n; i++)
        v[i] = node->checks.v[i].val;
    qsort(v, node->checks.n, sizeof(*v), check_order);
    return v;
}

bool reg_service_has_tags(const struct reg_service *svc, const char *const *tags, size_t ntags)
{
    for (size_t i = 0; i < ntags; i++) {
        bool found = false;
        for (size_t j = 0; j < svc->ntags && !found; j++)
            found = strcasecmp(svc->tags[j], tags[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static void replace_str(char **dst, const char *src)
{
    if (src) {
        free(*dst);
        *dst = xstrdup(src);
    }
}

static void replace_json(json_t **dst, const json_t *src)
{
    if (src) {
        json_decref(*dst);
        *dst = json_deep_copy(src);
    }
}

/* Applies node fields at index; creates the node when new. Returns NULL when unchanged. */
struct reg_node *reg_state_node_put(struct reg_state *st, const struct reg_node_fields *f,
                                    uint64_t index, bool *changed)
{
    char *key = reg_fold(f->name);
    struct reg_node *n = smap_get(&st->nodes, key);

    *changed = false;
    if (!n) {
        n = xcalloc(1, sizeof(*n));
        n->name = xstrdup(f->name);
        n->id = xstrdup("");
        n->address = xstrdup("");
        n->datacenter = xstrdup("");
        n->tagged_addresses = json_object();
        n->meta = json_object();
        n->create_index = index;
        smap_put(&st->nodes, key, n);
        *changed = true;
    }
    free(key);
    if ((f->id && !str_same(f->id, n->id)) || (f->address && !str_same(f->address, n->address)) ||
        (f->datacenter && !str_same(f->datacenter, n->datacenter)) ||
        (f->tagged_addresses && !json_equal(f->tagged_addresses, n->tagged_addresses)) ||
        (f->meta && !json_equal(f->meta, n->meta)) || strcmp(f->name, n->name) != 0)
        *changed = true;
    if (*changed) {
        replace_str(&n->name, f->name);
        replace_str(&n->id, f->id);
        replace_str(&n->address, f->address);
        replace_str(&n->datacenter, f->datacenter);
        replace_json(&n->tagged_addresses, f->tagged_addresses);
        replace_json(&n->meta, f->meta);
        n->modify_index = index;
        reg_index_node(st, n, index);
    }
    return n;
}

uint64_t reg_node_upsert(struct reg_state *st, const struct reg_node_fields *f)
{
    bool changed;
    uint64_t index = st->index + 1;
    struct reg_node *n = reg_state_node_put(st, f, index, &changed);

    if (!changed)
        return st->index;
    reg_state_next_index(st, REG_TABLE_CATALOG);
    reg_state_commit(st, REG_TABLE_CATALOG, reg_journal_node(n, index));
    return index;
}

bool reg_state_node_remove(struct reg_state *st, const char *name, uint64_t index)
{
    char *key = reg_fold(name);
    struct reg_node *n = smap_del(&st->nodes, key);

    free(key);
    if (n) {
        reg_index_node_gone(st, n, index);
        node_free(st, n);
    }
    return n != NULL;
}

uint64_t reg_node_delete(struct reg_state *st, const char *name)
{
    struct reg_node *n = reg_node_get(st, name);

    if (!n)
        return 0;
    reg_sessions_node_gone(st, n->name); /* a session lives no longer than its node */
    uint64_t index = reg_state_next_index(st, REG_TABLE_CATALOG);
    json_t *record = reg_journal_node_delete(n->name, index);
    reg_state_node_remove(st, name, index);
    reg_state_commit(st, REG_TABLE_CATALOG, record);
    return index;
}

/* Stores a copy of the template at index, keeping CreateIndex of a replaced service. */
void reg_state_service_put(struct reg_state *st, struct reg_node *node, const struct reg_service *t,
                           uint64_t index)
{
    struct reg_service *s = service_copy(st, t);
    struct reg_service *old = smap_get(&node->services, s->id);

    s->node = node;
    s->create_index = old ? old->create_index : (t->create_index ? t->create_index : index);
    s->modify_index = index;
    if (!old || strcasecmp(old->name, s->name) != 0) {
        reg_index_instance_add(st, s->name);
        if (old) /* renamed: the old name lost an instance */
            reg_index_instance_drop(st, old->name, index);
    }
    smap_put(&node->services, s->id, s);
    if (old)
        service_free(st, old);
    if (index > st->services_index)
        st->services_index = index;
    reg_index_service(st, node, s->name, index);
}

uint64_t reg_service_upsert(struct reg_state *st, struct reg_node *node,
                            const struct reg_service *svc)
{
    const char *id = svc->id ? svc->id : svc->name;
    struct reg_service *old = smap_get(&node->services, id);

    if (old && service_same(old, svc))
        return st->index;
    uint64_t index = reg_state_next_index(st, REG_TABLE_CATALOG);
    reg_state_service_put(st, node, svc, index);
    reg_state_commit(st, REG_TABLE_CATALOG,
                     reg_journal_service(smap_get(&node->services, id), index));
    return index;
}

/* Removes the service and its checks without journaling. */
bool reg_state_service_remove(struct reg_state *st, struct reg_node *node, const char *id,
                              uint64_t index)
{
    struct reg_service *s = smap_get(&node->services, id);

    if (!s)
        return false;
    for (size_t i = 0; i < node->checks.n;) {
        struct reg_check *c = node->checks.v[i].val;
        if (strcmp(c->service_id, id) == 0) {
            reg_index_check(st, node, id, index);
            check_free(st, smap_del_at(&node->checks, i));
        } else {
            i++;
        }
    }
    reg_index_service(st, node, s->name, index);
    reg_index_instance_drop(st, s->name, index);
    service_free(st, smap_del(&node->services, id));
    return true;
}

uint64_t reg_service_delete(struct reg_state *st, struct reg_node *node, const char *id)
{
    if (!smap_get(&node->services, id))
        return 0;
    for (size_t i = 0; i < node->checks.n; i++) { /* its checks go with it */
        const struct reg_check *c = node->checks.v[i].val;
        if (strcmp(c->service_id, id) == 0)
            reg_sessions_check_gone(st, node->name, c->id);
    }
    uint64_t index = reg_state_next_index(st, REG_TABLE_CATALOG);
    json_t *record = reg_journal_service_delete(node->name, id, index);
    reg_state_service_remove(st, node, id, index);
    reg_state_commit(st, REG_TABLE_CATALOG, record);
    return index;
}

void reg_state_check_put(struct reg_state *st, struct reg_node *node, const struct reg_check *t,
                         uint64_t index)
{
    struct reg_check *c = check_copy(st, t);
    struct reg_check *old = smap_get(&node->checks, c->id);

    c->node = node;
    c->create_index = old ? old->create_index : (t->create_index ? t->create_index : index);
    c->modify_index = index;
    /* A check moved from one instance to another changes both. */
    if (old && strcmp(old->service_id, c->service_id) != 0)
        reg_index_check(st, node, old->service_id, index);
    smap_put(&node->checks, c->id, c);
    if (old)
        check_free(st, old);
    reg_index_check(st, node, c->service_id, index);
}

bool reg_state_check_remove(struct reg_state *st, struct reg_node *node, const char *id,
                            uint64_t index)
{
    struct reg_check *c = smap_get(&node->checks, id);

    if (!c)
        return false;
    reg_index_check(st, node, c->service_id, index);
    check_free(st, smap_del(&node->checks, id));
    return true;
}

uint64_t reg_check_upsert(struct reg_state *st, struct reg_node *node, const struct reg_check *chk)
{
    struct reg_check *old = smap_get(&node->checks, chk->id);

    if (old && check_same(old, chk))
        return st->index;
    uint64_t index = reg_state_next_index(st, REG_TABLE_CATALOG);
    reg_state_check_put(st, node, chk, index);
    reg_state_commit(st, REG_TABLE_CATALOG,
                     reg_journal_check(smap_get(&node->checks, chk->id), index));
    if (chk->status == REG_CRITICAL)
        reg_sessions_check_gone(st, node->name, chk->id);
    return index;
}

uint64_t reg_check_set_status(struct reg_state *st, struct reg_check *chk, enum reg_health status,
                              const char *output)
{
    if (output && strcmp(output, chk->output) != 0) {
        free(chk->output);
        chk->output = xstrdup(output);
    }
    if (status == chk->status)
        return 0;
    chk->status = status;
    uint64_t index = reg_state_next_index(st, REG_TABLE_CATALOG);
    chk->modify_index = index;
    reg_index_check(st, chk->node, chk->service_id, index);
    reg_state_commit(st, REG_TABLE_CATALOG, reg_journal_check(chk, index));
    if (status == REG_CRITICAL)
        reg_sessions_check_gone(st, chk->node->name, chk->id);
    return index;
}

uint64_t reg_check_delete(struct reg_state *st, struct reg_node *node, const char *id)
{
    if (!smap_get(&node->checks, id))
        return 0;
    reg_sessions_check_gone(st, node->name, id);
    uint64_t index = reg_state_next_index(st, REG_TABLE_CATALOG);
    json_t *record = reg_journal_check_delete(node->name, id, index);
    reg_state_check_remove(st, node, id, index);
    reg_state_commit(st, REG_TABLE_CATALOG, record);
    return index;
}

/* ---- KV ---------------------------------------------------------------------------------- */

struct reg_kv *reg_kv_get(const struct reg_state *st, const char *key)
{
    return smap_get(&st->kv, key);
}

void reg_state_kv_put(struct reg_state *st, const struct reg_kv *t)
{
    struct reg_kv *kv = smap_get(&st->kv, t->key);

    if (!kv) {
        kv = xcalloc(1, sizeof(*kv));
        kv->key = xstrdup(t->key);
        smap_put(&st->kv, t->key, kv);
    }
    /* Copy before freeing: a rewrite passes the entry's own value or session back in. */
    unsigned char *value = t->value_len ? xmemdup(t->value, t->value_len) : NULL;
    char *session = t->session ? xstrdup(t->session) : NULL;
    free(kv->value);
    kv->value = value;
    kv->value_len = t->value_len;
    kv->flags = t->flags;
    free(kv->session);
    kv->session = session;
    kv->lock_index = t->lock_index;
    kv->create_index = t->create_index;
    kv->modify_index = t->modify_index;
}

uint64_t reg_kv_set(struct reg_state *st, const char *key, const void *value, size_t len,
                    uint64_t flags, const uint64_t *cas)
{
    struct reg_kv *old = smap_get(&st->kv, key);

    if (cas && (old ? old->modify_index != *cas : *cas != 0))
        return 0;
    uint64_t index = reg_state_next_index(st, REG_TABLE_KV);
    struct reg_kv t = {
        .key = (char *)key,
        .value = (unsigned char *)value,
        .value_len = len,
        .flags = flags,
        .session = old ? old->session : NULL,
        .lock_index = old ? old->lock_index : 0,
        .create_index = old ? old->create_index : index,
        .modify_index = index,
    };
    reg_state_kv_put(st, &t);
    smap_del(&st->kv_tombstones, key);
    reg_state_commit(st, REG_TABLE_KV, reg_journal_kv(smap_get(&st->kv, key), index));
    return index;
}

uint64_t reg_kv_delete(struct reg_state *st, const char *key, const uint64_t *cas)
{
    struct reg_kv *old = smap_get(&st->kv, key);

    if (cas && (!old || old->modify_index != *cas))
        return 0;
    uint64_t index = reg_state_next_index(st, REG_TABLE_KV);
    /* The record first: key may be the entry's own string, freed by the removal. */
    json_t *record = reg_journal_kv_delete(key, false, index);
    reg_state_kv_remove(st, key, index);
    reg_state_commit(st, REG_TABLE_KV, record);
    return index;
}

#define KV_TOMBSTONES_MAX 4096

static void add_tombstone(struct reg_state *st, const char *key, uint64_t index)
{
    if (st->kv_tombstones.n >= KV_TOMBSTONES_MAX) {
        smap_foreach(&st->kv_tombstones, e)
        {
            uint64_t i = (uint64_t)(uintptr_t)e->val;
            if (i > st->kv_tombstone_floor)
                st->kv_tombstone_floor = i;
        }
        smap_free(&st->kv_tombstones);
    }
    smap_put(&st->kv_tombstones, key, (void *)(uintptr_t)index);
}

void reg_state_kv_remove(struct reg_state *st, const char *key, uint64_t index)
{
    struct reg_kv *kv = smap_del(&st->kv, key);
    if (kv) {
        add_tombstone(st, key, index);
        kv_free(kv);
    }
}

void reg_state_kv_remove_tree(struct reg_state *st, const char *prefix, uint64_t index)
{
    size_t first, end;

    smap_prefix_range(&st->kv, prefix, &first, &end);
    for (size_t i = end; i > first; i--) {
        add_tombstone(st, st->kv.v[i - 1].key, index);
        kv_free(smap_del_at(&st->kv, i - 1));
    }
}

uint64_t reg_kv_prefix_index(const struct reg_state *st, const char *prefix)
{
    uint64_t max = st->kv_tombstone_floor;
    size_t first, end;

    smap_prefix_range(&st->kv, prefix, &first, &end);
    for (size_t i = first; i < end; i++) {
        const struct reg_kv *kv = st->kv.v[i].val;
        if (kv->modify_index > max)
            max = kv->modify_index;
    }
    smap_prefix_range(&st->kv_tombstones, prefix, &first, &end);
    for (size_t i = first; i < end; i++) {
        uint64_t t = (uint64_t)(uintptr_t)st->kv_tombstones.v[i].val;
        if (t > max)
            max = t;
    }
    return max ? max : st->table_index[REG_TABLE_KV];
}

uint64_t reg_kv_delete_tree(struct reg_state *st, const char *prefix)
{
    uint64_t index = reg_state_next_index(st, REG_TABLE_KV);

    reg_state_kv_remove_tree(st, prefix, index);
    reg_state_commit(st, REG_TABLE_KV, reg_journal_kv_delete(prefix, true, index));
    return index;
}

/* Called by replay: moves the index forward to a record's index. */
void reg_state_advance(struct reg_state *st, enum reg_table table, uint64_t index)
{
    if (index > st->index)
        st->index = index;
    if (index > st->table_index[table])
        st->table_index[table] = index;
}
