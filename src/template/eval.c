/*
 * The evaluator: walks the tree with Go's text/template semantics (truth, variable scopes that
 * end at {{end}}, range over maps in key order, pipelines passing their value as the last
 * argument, "and"/"or" stopping at the deciding argument).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "template/tmpl_internal.h"

#define EVAL_MAX_DEPTH 200
/* Bounds on one render, so that a template cannot spin or fill memory forever (Go has none):
 * range iterations in all, and the output's size. */
#define EVAL_MAX_ITERATIONS 10000000
#define EVAL_MAX_OUTPUT     (64u << 20)
/* What statements return while {{break}} or {{continue}} (ev->jump) unwinds to its range. */
#define EVAL_JUMP 1

static char dollar[] = "$";

void tmpl_report(struct tmpl_eval *ev, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_setf(ev->e, "%s:%d:%d: %s", ev->t->name, ev->at ? ev->at->line : 0,
             ev->at ? ev->at->col : 0, msg);
}

void tmpl_used_free(struct tmpl_used *u)
{
    for (size_t i = 0; i < u->n; i++)
        tmpl_dep_clear(&u->deps[i]);
    FREE_NULL(u->deps);
    u->n = 0;
    u->missing = 0;
    tmpl_file_writes_free(u->writes, u->nwrites);
    u->writes = NULL;
    u->nwrites = 0;
}

/* Maps marked in a render are held in set, "%p" -> entry (the map, or an array whose first item
 * is the map), so that no other value takes the address of one while the render runs. Consumes
 * entry. */
static void mark_map(json_t **set, const json_t *obj, json_t *entry)
{
    char key[32];

    snprintf(key, sizeof(key), "%p", (const void *)obj);
    if (!*set)
        *set = json_object();
    json_object_set_new(*set, key, entry);
}

/* The entry mark_map holds for obj in set, or NULL. */
static json_t *map_entry(const json_t *set, const json_t *obj)
{
    char key[32];

    snprintf(key, sizeof(key), "%p", (const void *)obj);
    return set ? json_object_get(set, key) : NULL;
}

static bool map_marked(const json_t *set, const json_t *obj)
{
    return map_entry(set, obj) == obj;
}

static void mark_map_zero(void *arg, json_t *map, const json_t *zero)
{
    struct tmpl_eval *ev = arg;
    mark_map(&ev->map_zeros, map, json_pack("[OO]", map, zero));
}

json_t *tmpl_missing_key(const struct tmpl_eval *ev, const json_t *obj)
{
    const json_t *entry = map_entry(ev->map_zeros, obj);

    if (!entry || json_array_get(entry, 0) != obj)
        return NULL;
    /* a copy: functions that sort what they make in place must not reorder the shared zero */
    return json_deep_copy(json_array_get(entry, 1));
}

int tmpl_eval_dep(struct tmpl_eval *ev, enum tmpl_dep_kind kind, const char *arg, json_t **data)
{
    struct tmpl_dep dep;
    struct err e;
    bool seen = false;

    if (tmpl_dep_parse(kind, arg, &dep, &e) < 0)
        return tmpl_fail(ev, "%s", e.msg);
    *data = smap_get(ev->store, dep.id);
    for (size_t i = 0; i < ev->used->n && !seen; i++)
        seen = strcmp(ev->used->deps[i].id, dep.id) == 0;
    if (seen) {
        tmpl_dep_clear(&dep);
        return 0;
    }
    ev->used->deps = xrealloc(ev->used->deps, (ev->used->n + 1) * sizeof(*ev->used->deps));
    ev->used->deps[ev->used->n++] = dep;
    if (!*data)
        ev->used->missing++;
    else
        tmpl_dep_map_zeros(&dep, *data, mark_map_zero, ev);
    return 0;
}

/* ---- variables --------------------------------------------------------------------------- */

static void var_push(struct tmpl_eval *ev, char *name, json_t *val)
{
    if (ev->nvars == ev->capvars) {
        ev->capvars = ev->capvars ? ev->capvars * 2 : 16;
        ev->vars = xrealloc(ev->vars, ev->capvars * sizeof(*ev->vars));
    }
    ev->vars[ev->nvars++] = (struct tmpl_var){name, val};
}

static void vars_pop(struct tmpl_eval *ev, size_t mark)
{
    while (ev->nvars > mark)
        json_decref(ev->vars[--ev->nvars].val);
}

static struct tmpl_var *var_find(struct tmpl_eval *ev, const char *name)
{
    for (size_t i = ev->nvars; i-- > ev->var_base;)
        if (strcmp(ev->vars[i].name, name) == 0)
            return &ev->vars[i];
    return NULL;
}

/* ---- operands ---------------------------------------------------------------------------- */

static int eval_pipe(struct tmpl_eval *ev, const struct tmpl_node *pipe, json_t *dot, json_t **out);

/* v.f1.f2...: map lookups; a missing key is the map's zero value: "" for the registry's
 * map[string]string, an empty address for its map[string]api.ServiceAddress, nil for others.
 * Consumes v. */
static int eval_fields(struct tmpl_eval *ev, json_t *v, char *const *fields, size_t n, json_t **out)
{
    for (size_t i = 0; i < n; i++) {
        json_t *next;
        if (!v || json_is_null(v)) {
            json_decref(v);
            return tmpl_fail(ev, "nil pointer evaluating interface {}.%s", fields[i]);
        }
        if (!json_is_object(v)) {
            int rc =
                tmpl_fail(ev, "can't evaluate field %s in type %s", fields[i], tmpl_type_name(v));
            json_decref(v);
            return rc;
        }
        next = json_object_get(v, fields[i]);
        next = next ? json_incref(next) : tmpl_missing_key(ev, v);
        json_decref(v);
        v = next;
    }
    *out = v;
    return 0;
}

static bool is_nil_value(const json_t *v)
{
    return !v || json_is_null(v);
}

/* What an identifier calls: a function, or for scratch.M the method M (the parser checks both). */
static const struct tmpl_func *ident_func(const struct tmpl_node *n)
{
    return n->nfields ? tmpl_scratch_method_find(n->fields[0]) : tmpl_func_find(n->text);
}

static int eval_arg(struct tmpl_eval *ev, const struct tmpl_node *n, json_t *dot, json_t **out)
{
    struct tmpl_var *var;
    json_t *v = NULL;
    int rc;

    ev->at = n;
    switch (n->kind) {
    case NODE_DOT:
        *out = json_incref(dot);
        return 0;
    case NODE_FIELD:
        return eval_fields(ev, json_incref(dot), n->fields, n->nfields, out);
    case NODE_VAR:
        if (!(var = var_find(ev, n->text)))
            return tmpl_fail(ev, "undefined variable \"%s\"", n->text);
        return eval_fields(ev, json_incref(var->val), n->fields, n->nfields, out);
    case NODE_CHAIN:
        if ((rc = eval_pipe(ev, n->pipe, dot, &v)) < 0)
            return rc;
        ev->at = n;
        return eval_fields(ev, v, n->fields, n->nfields, out);
    case NODE_STRING:
        *out = json_stringn_nocheck(n->text, n->len);
        return 0;
    case NODE_NUMBER:
    case NODE_BOOL:
        *out = json_incref(n->value);
        return 0;
    case NODE_NIL:
        *out = NULL;
        return 0;
    case NODE_IDENT:
        /* a function named as an argument is called without arguments */
        return tmpl_func_call(ev, ident_func(n), NULL, 0, out);
    default:
        return tmpl_fail(ev, "can't evaluate node");
    }
}

/* and / or: evaluates arguments left to right until one decides. */
static int eval_logic(struct tmpl_eval *ev, const struct tmpl_node *cmd, json_t *dot, json_t *final,
                      json_t **out)
{
    bool is_and = cmd->kids[0]->text[0] == 'a';
    size_t nargs = cmd->nkids - 1 + (final ? 1 : 0);
    json_t *v = NULL;

    if (nargs < 1)
        return tmpl_fail(ev, "wrong number of args for %s: want at least 1 got 0",
                         cmd->kids[0]->text);
    for (size_t i = 1; i < cmd->nkids + (final ? 1 : 0); i++) {
        json_decref(v);
        v = NULL;
        if (i < cmd->nkids) {
            int rc = eval_arg(ev, cmd->kids[i], dot, &v);
            if (rc < 0)
                return rc;
        } else {
            v = json_incref(final);
        }
        if (tmpl_truth(v) != is_and)
            break;
    }
    *out = v;
    return 0;
}

/* Appends n as Go's parse nodes print themselves (String()): what "call" names in its error. */
static void node_text(struct buf *out, const struct tmpl_node *n)
{
    switch (n->kind) {
    case NODE_PIPE:
        for (size_t i = 0; i < n->ndecl; i++)
            buf_printf(out, "%s%s", i ? ", " : "", n->decl[i]);
        if (n->ndecl)
            buf_append_cstr(out, n->assign ? " = " : " := ");
        for (size_t i = 0; i < n->nkids; i++) {
            if (i)
                buf_append_cstr(out, " | ");
            node_text(out, n->kids[i]);
        }
        return;
    case NODE_CMD:
        for (size_t i = 0; i < n->nkids; i++) {
            if (i)
                buf_append_cstr(out, " ");
            node_text(out, n->kids[i]);
        }
        return;
    case NODE_CHAIN:
        buf_append_cstr(out, "(");
        node_text(out, n->pipe);
        buf_append_cstr(out, ")");
        break;
    case NODE_IDENT:
        buf_append_cstr(out, n->text);
        break;
    case NODE_VAR:
        buf_append_cstr(out, n->text);
        break;
    case NODE_DOT:
        buf_append_cstr(out, ".");
        return;
    case NODE_STRING:
        tmpl_quote(out, n->text, n->len);
        return;
    case NODE_NUMBER:
    case NODE_BOOL:
        tmpl_print(out, n->value);
        return;
    case NODE_NIL:
        buf_append_cstr(out, "nil");
        return;
    default:
        break;
    }
    for (size_t i = 0; i < n->nfields; i++)
        buf_printf(out, ".%s", n->fields[i]);
}

/*
 * Go's call FN ARGS...: calls the function value FN. No value here is a function (they come
 * from JSON), so once its arguments evaluate, call fails as Go does on a value that is not one.
 */
static int eval_call(struct tmpl_eval *ev, const struct tmpl_node *cmd, json_t *const *args,
                     size_t nargs)
{
    struct buf name = BUF_INIT;
    int rc;

    if (is_nil_value(args[0]))
        return tmpl_fail(ev, "error calling call: call of nil");
    if (cmd->nkids > 1)
        node_text(&name, cmd->kids[1]);
    rc = tmpl_fail(ev, "error calling call: non-function %.*s of type %s", (int)name.len,
                   name.data ? name.data : "", tmpl_type_name(args[0]));
    buf_free(&name);
    return rc;
}

static int call_func(struct tmpl_eval *ev, const struct tmpl_node *cmd, json_t *dot, json_t *final,
                     bool has_final, json_t **out)
{
    const struct tmpl_func *f = ident_func(cmd->kids[0]);
    size_t nargs = cmd->nkids - 1 + (has_final ? 1 : 0), got = 0;
    json_t **args = xcalloc(nargs ? nargs : 1, sizeof(*args));
    int rc = 0;

    if (strcmp(f->name, "and") == 0 || strcmp(f->name, "or") == 0) {
        free(args);
        return eval_logic(ev, cmd, dot, has_final ? final : NULL, out);
    }
    /* Go counts the arguments before evaluating them */
    ev->at = cmd->kids[0];
    if ((rc = tmpl_func_check_count(ev, f, nargs)) < 0)
        goto done;
    for (; got < cmd->nkids - 1; got++)
        if ((rc = eval_arg(ev, cmd->kids[got + 1], dot, &args[got])) < 0)
            goto done;
    if (has_final)
        args[got++] = json_incref(final);
    ev->at = cmd->kids[0];
    if (strcmp(f->name, "call") == 0)
        rc = eval_call(ev, cmd, args, nargs);
    else
        rc = tmpl_func_call(ev, f, args, nargs, out);
done:
    for (size_t i = 0; i < got; i++)
        json_decref(args[i]);
    free(args);
    return rc;
}

static int eval_cmd(struct tmpl_eval *ev, const struct tmpl_node *cmd, json_t *dot, json_t *final,
                    bool has_final, json_t **out)
{
    const struct tmpl_node *first = cmd->kids[0];

    if (first->kind == NODE_IDENT)
        return call_func(ev, cmd, dot, final, has_final, out);
    if (first->kind == NODE_NIL) { /* nil is only an argument, as in Go */
        ev->at = first;
        return tmpl_fail(ev, "nil is not a command");
    }
    if (cmd->nkids > 1 || has_final) {
        ev->at = first;
        if (first->kind == NODE_FIELD)
            return tmpl_fail(ev, "%s is not a method but has arguments",
                             first->fields[first->nfields - 1]);
        return tmpl_fail(ev, "can't give argument to non-function %s",
                         first->text ? first->text : ".");
    }
    return eval_arg(ev, first, dot, out);
}

static int eval_pipe(struct tmpl_eval *ev, const struct tmpl_node *pipe, json_t *dot, json_t **out)
{
    json_t *v = NULL;
    int rc = 0;

    if (++ev->depth > EVAL_MAX_DEPTH) {
        ev->depth--;
        return tmpl_fail(ev, "exceeded maximum template depth (%d)", EVAL_MAX_DEPTH);
    }
    for (size_t i = 0; i < pipe->nkids && rc == 0; i++) {
        json_t *next = NULL;
        rc = eval_cmd(ev, pipe->kids[i], dot, v, i > 0, &next);
        json_decref(v);
        v = next;
    }
    ev->depth--;
    if (rc < 0) {
        json_decref(v);
        return rc;
    }
    for (size_t i = 0; i < pipe->ndecl; i++) {
        struct tmpl_var *var = pipe->assign ? var_find(ev, pipe->decl[i]) : NULL;
        if (var) {
            json_decref(var->val);
            var->val = json_incref(v);
        } else {
            var_push(ev, pipe->decl[i], json_incref(v));
        }
    }
    *out = v;
    return 0;
}

/* ---- statements -------------------------------------------------------------------------- */

static int eval_list(struct tmpl_eval *ev, const struct tmpl_node *list, json_t *dot);

static int eval_range_item(struct tmpl_eval *ev, const struct tmpl_node *n, json_t *key,
                           json_t *item)
{
    size_t mark = ev->nvars;
    int rc;

    if (++ev->iterations > EVAL_MAX_ITERATIONS) {
        ev->at = n;
        return tmpl_fail(ev, "range: more than %d iterations in one render", EVAL_MAX_ITERATIONS);
    }
    if (n->pipe->ndecl == 1) {
        var_push(ev, n->pipe->decl[0], json_incref(item));
    } else if (n->pipe->ndecl == 2) {
        var_push(ev, n->pipe->decl[0], json_incref(key));
        var_push(ev, n->pipe->decl[1], json_incref(item));
    }
    rc = eval_list(ev, n->list, item);
    vars_pop(ev, mark);
    return rc;
}

void tmpl_mark_int_keyed(struct tmpl_eval *ev, json_t *obj)
{
    mark_map(&ev->int_keyed, obj, json_incref(obj));
}

static bool is_int_keyed(const struct tmpl_eval *ev, const json_t *obj)
{
    return map_marked(ev->int_keyed, obj);
}

struct int_key {
    long long n;
    const char *key;
};

static int cmp_int_key(const void *a, const void *b)
{
    const struct int_key *x = a, *y = b;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* The keys of an int-keyed map in numeric order (Go's range over a map[int]). Free the array. */
static struct int_key *int_keys(const json_t *obj, size_t *n)
{
    struct int_key *keys = xcalloc(json_object_size(obj) + 1, sizeof(*keys));
    const char *k;
    json_t *v;

    *n = 0;
    json_object_foreach((json_t *)obj, k, v) keys[(*n)++] =
        (struct int_key){strtoll(k, NULL, 10), k};
    qsort(keys, *n, sizeof(*keys), cmp_int_key);
    return keys;
}

/* After an item: whether the range stops. {{continue}} and {{break}} end their unwinding here. */
static bool range_stops(struct tmpl_eval *ev, int *rc)
{
    if (*rc != EVAL_JUMP)
        return *rc != 0;
    *rc = 0;
    return ev->jump == NODE_BREAK;
}

static int eval_range(struct tmpl_eval *ev, const struct tmpl_node *n, json_t *v, json_t *dot)
{
    int rc = 0;
    size_t count = 0;

    if (json_is_array(v)) {
        count = json_array_size(v);
        for (size_t i = 0; i < count; i++) {
            json_t *k = json_integer((json_int_t)i);
            rc = eval_range_item(ev, n, k, json_array_get(v, i));
            json_decref(k);
            if (range_stops(ev, &rc))
                break;
        }
    } else if (json_is_object(v) && is_int_keyed(ev, v)) {
        struct int_key *keys = int_keys(v, &count);
        for (size_t i = 0; i < count; i++) {
            json_t *k = json_integer(keys[i].n);
            rc = eval_range_item(ev, n, k, json_object_get(v, keys[i].key));
            json_decref(k);
            if (range_stops(ev, &rc))
                break;
        }
        free(keys);
    } else if (json_is_object(v)) {
        const char **keys = tmpl_sorted_keys(v, &count);
        for (size_t i = 0; i < count; i++) {
            json_t *k = json_string(keys[i]);
            rc = eval_range_item(ev, n, k, json_object_get(v, keys[i]));
            json_decref(k);
            if (range_stops(ev, &rc))
                break;
        }
        free(keys);
    } else if (json_is_integer(v)) {
        json_int_t top = json_integer_value(v);
        if (n->pipe->ndecl > 1) { /* Go 1.22's range over an integer has no index to give */
            ev->at = n;
            return tmpl_fail(ev, "can't use %lld to iterate over more than one variable",
                             (long long)top);
        }
        for (json_int_t i = 0; i < top; i++) {
            json_t *k = json_integer(i);
            count++;
            rc = eval_range_item(ev, n, k, k);
            json_decref(k);
            if (range_stops(ev, &rc))
                break;
        }
    } else if (v && !json_is_null(v)) {
        ev->at = n;
        return tmpl_fail(ev, "range can't iterate over %s", tmpl_type_name(v));
    }
    if (rc == 0 && count == 0 && n->else_list)
        rc = eval_list(ev, n->else_list, dot);
    return rc;
}

static int eval_control(struct tmpl_eval *ev, const struct tmpl_node *n, json_t *dot)
{
    size_t mark = ev->nvars;
    json_t *v = NULL;
    int rc;

    ev->at = n;
    if (n->kind == NODE_RANGE) {
        /* the range's own variables are bound per item, not to the whole value */
        struct tmpl_node plain = *n->pipe;
        plain.ndecl = 0;
        if ((rc = eval_pipe(ev, &plain, dot, &v)) == 0)
            rc = eval_range(ev, n, v, dot);
    } else if ((rc = eval_pipe(ev, n->pipe, dot, &v)) == 0) {
        if (tmpl_truth(v))
            rc = eval_list(ev, n->list, n->kind == NODE_WITH ? v : dot);
        else if (n->else_list)
            rc = eval_list(ev, n->else_list, dot);
    }
    json_decref(v);
    vars_pop(ev, mark);
    return rc;
}

/* {{template "name" PIPE}}: the definition runs with PIPE's value as dot and $, and no other
 * variables (Go's semantics). */
/* Runs def with dot and $ set to v (borrowed) and none of the caller's variables. */
static int eval_define(struct tmpl_eval *ev, const struct tmpl_define *def, json_t *v)
{
    size_t mark = ev->nvars, base = ev->var_base;
    int rc;

    if (++ev->depth > EVAL_MAX_DEPTH) {
        ev->depth--;
        return tmpl_fail(ev, "exceeded maximum template depth (%d)", EVAL_MAX_DEPTH);
    }
    ev->var_base = mark;
    var_push(ev, dollar, json_incref(v));
    rc = eval_list(ev, def->list, v);
    vars_pop(ev, mark);
    ev->var_base = base;
    ev->depth--;
    return rc;
}

static int eval_template(struct tmpl_eval *ev, const struct tmpl_node *n, json_t *dot)
{
    const struct tmpl_define *def = tmpl_define_find(ev->t, n->text);
    json_t *v = NULL;
    int rc;

    ev->at = n;
    if (MESH_BUG_ON(!def)) /* the parser checks every name */
        return tmpl_fail(ev, "template \"%s\" not defined", n->text);
    if (n->pipe && (rc = eval_pipe(ev, n->pipe, dot, &v)) < 0)
        return rc;
    ev->at = n;
    rc = eval_define(ev, def, v);
    json_decref(v);
    return rc;
}

int tmpl_eval_execute(struct tmpl_eval *ev, const char *name, json_t *dot, json_t **out)
{
    const struct tmpl_define *def = tmpl_define_find(ev->t, name);
    const struct tmpl_node *at = ev->at;
    struct buf *caller = ev->out, b = BUF_INIT;
    int rc;

    if (!def)
        return tmpl_fail(ev,
                         "error calling executeTemplate: template: no template \"%s\" associated "
                         "with template \"%s\"",
                         name, ev->t->name);
    ev->out = &b;
    rc = eval_define(ev, def, dot);
    ev->out = caller;
    ev->at = at;
    /* the string lands in the caller's output: bound the two together */
    if (rc == 0 && caller->len + b.len > EVAL_MAX_OUTPUT)
        rc = tmpl_fail(ev, "output larger than %u bytes", EVAL_MAX_OUTPUT);
    if (rc == 0)
        *out = json_stringn_nocheck(b.data ? b.data : "", b.len);
    buf_free(&b);
    return rc;
}

static int eval_list(struct tmpl_eval *ev, const struct tmpl_node *list, json_t *dot)
{
    int rc = 0;

    for (size_t i = 0; i < list->nkids && rc == 0; i++) {
        const struct tmpl_node *n = list->kids[i];
        json_t *v = NULL;
        if (ev->out->len > EVAL_MAX_OUTPUT) {
            ev->at = n;
            return tmpl_fail(ev, "output larger than %u bytes", EVAL_MAX_OUTPUT);
        }
        switch (n->kind) {
        case NODE_TEXT:
            buf_append(ev->out, n->text, n->len);
            break;
        case NODE_ACTION:
            ev->at = n;
            if ((rc = eval_pipe(ev, n->pipe, dot, &v)) == 0 && n->pipe->ndecl == 0)
                tmpl_print(ev->out, v);
            json_decref(v);
            break;
        case NODE_TEMPLATE:
            rc = eval_template(ev, n, dot);
            break;
        case NODE_BREAK:
        case NODE_CONTINUE:
            ev->jump = n->kind;
            return EVAL_JUMP;
        default:
            rc = eval_control(ev, n, dot);
            break;
        }
    }
    return rc;
}

int tmpl_render(const struct tmpl *t, const struct smap *store, struct buf *out,
                struct tmpl_used *used, struct err *e)
{
    struct tmpl_eval ev = {.t = t, .store = store, .used = used, .out = out, .e = e};
    int rc;

    *used = (struct tmpl_used){0};
    var_push(&ev, dollar, NULL);
    rc = eval_list(&ev, t->root, NULL);
    if (MESH_BUG_ON(rc == EVAL_JUMP)) /* the parser keeps {{break}} inside ranges */
        rc = tmpl_fail(&ev, "{{break}} outside {{range}}");
    vars_pop(&ev, 0);
    free(ev.vars);
    json_decref(ev.scratch);
    json_decref(ev.int_keyed);
    json_decref(ev.map_zeros);
    return rc;
}
