/* YAML to jansson with line numbers: see yaml.h. */
#include "load/yaml.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/alloc.h"
#include "lib/smap.h"
#include "lib/yaml_budget.h"

#define MAX_DEPTH 64

/* An anchored node's value and how many nodes it stands for, so that aliases count as what
 * they expand to (lib/yaml_budget.h). */
struct anchor {
    json_t *v;
    size_t nodes;
};

struct yaml_ctx {
    yaml_parser_t parser;
    struct load_yaml *y;
    struct smap anchors; /* name -> struct anchor (owned, with its reference) */
    size_t decoded;      /* nodes so far, aliases counted at their expansion */
    size_t aliased;      /* of which through aliases */
    struct err *e;
};

void load_yaml_add_line(struct load_yaml *y, const json_t *parent, const char *key, size_t index,
                        int line)
{
    if (y->n_lines == y->cap_lines) {
        y->cap_lines = y->cap_lines ? y->cap_lines * 2 : 64;
        y->lines = xrealloc(y->lines, y->cap_lines * sizeof(*y->lines));
    }
    y->lines[y->n_lines++] =
        (struct load_yaml_line){parent, key ? xstrdup(key) : NULL, index, line, NULL};
}

static const struct load_yaml_line *line_of(const struct load_yaml *y, const json_t *parent,
                                            const char *key, size_t index)
{
    /* the last entry wins, as the last duplicate key does in the tree */
    for (size_t i = y->n_lines; i-- > 0;) {
        const struct load_yaml_line *l = &y->lines[i];

        if (l->parent != parent)
            continue;
        if (key ? (l->key && strcmp(l->key, key) == 0) : (!l->key && l->index == index))
            return l;
    }
    return NULL;
}

int load_yaml_where(const struct load_yaml *y, const json_t *parent, const char *key, size_t index,
                    const char **file)
{
    const struct load_yaml_line *l = line_of(y, parent, key, index);

    if (file)
        *file = l && l->file ? l->file : y->path;
    return l ? l->line : 0;
}

int load_yaml_line(const struct load_yaml *y, const json_t *parent, const char *key, size_t index)
{
    return load_yaml_where(y, parent, key, index, NULL);
}

/* dst's member key (or element index) becomes v, which stands at line in file. */
static void merge_set(struct load_yaml *y, json_t *dst, const char *key, size_t index, json_t *v,
                      int line, const char *file)
{
    if (key)
        json_object_set(dst, key, v);
    else if (index < json_array_size(dst))
        json_array_set(dst, index, v);
    else
        json_array_append(dst, v);
    load_yaml_add_line(y, dst, key, key ? 0 : json_array_size(dst) - 1, line);
    y->lines[y->n_lines - 1].file = file;
}

static void merge_node(struct load_yaml *y, const struct load_yaml *src, json_t *dst,
                       const json_t *from, bool replace_lists, const char *file);

/* from's member key (or element index), v, laid over d, what dst holds there (or NULL). */
static void merge_member(struct load_yaml *y, const struct load_yaml *src, json_t *dst,
                         const json_t *from, const char *key, size_t index, json_t *v, json_t *d,
                         bool replace_lists, const char *file)
{
    if ((json_is_object(v) && json_is_object(d)) ||
        (!replace_lists && json_is_array(v) && json_is_array(d)))
        merge_node(y, src, d, v, replace_lists, file);
    else
        merge_set(y, dst, key, index, v, load_yaml_line(src, from, key, index), file);
}

static void merge_node(struct load_yaml *y, const struct load_yaml *src, json_t *dst,
                       const json_t *from, bool replace_lists, const char *file)
{
    const char *key;
    json_t *v;
    size_t i;

    if (json_is_object(from))
        json_object_foreach((json_t *)from, key, v) merge_member(
            y, src, dst, from, key, 0, v, json_object_get(dst, key), replace_lists, file);
    else
        json_array_foreach(from, i, v) merge_member(y, src, dst, from, NULL, i, v,
                                                    json_array_get(dst, i), replace_lists, file);
}

void load_yaml_merge(struct load_yaml *y, struct load_yaml *src, bool replace_lists)
{
    load_yaml_merge_at(y, y->root, src, replace_lists);
}

void load_yaml_merge_at(struct load_yaml *y, json_t *at, struct load_yaml *src, bool replace_lists)
{
    json_t *path = json_string(src->path);
    const char *file = json_string_value(path);

    if (!y->merged)
        y->merged = json_array();
    /* src's tree stays alive: its nodes' line entries must not meet a new node at their
     * address */
    json_array_append_new(y->merged, json_pack("[o,O]", path, src->root));
    for (size_t i = 0; i < src->n_lines; i++) {
        const struct load_yaml_line *l = &src->lines[i];

        load_yaml_add_line(y, l->parent, l->key, l->index, l->line);
        y->lines[y->n_lines - 1].file = file;
    }
    merge_node(y, src, at, src->root, replace_lists, file);
    load_yaml_free(src);
}

static bool all_digits(const char *p, int base)
{
    if (*p == '\0')
        return false;
    for (; *p; p++) {
        bool ok = base == 16 ? strchr("0123456789abcdefABCDEF", *p) != NULL
                             : *p >= '0' && *p <= (base == 8 ? '7' : '9');

        if (!ok)
            return false;
    }
    return true;
}

/* Decimal with an optional sign, or unsigned 0x hex / 0o octal, as YAML 1.2's core schema. */
static bool full_match_int(const char *s, json_int_t *out)
{
    int base = 10;
    const char *digits = s + (*s == '+' || *s == '-');
    long long v;

    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
        base = s[1] == 'x' ? 16 : 8;
        digits = s + 2;
    }
    if (!all_digits(digits, base))
        return false;
    errno = 0;
    v = strtoll(base == 10 ? s : digits, NULL, base);
    if (errno)
        return false;
    *out = v;
    return true;
}

static bool full_match_real(const char *s, double *out)
{
    char *end;
    const char *p = s + (*s == '+' || *s == '-');
    bool digit = false;

    if (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(p, ".INF") == 0) {
        *out = *s == '-' ? -INFINITY : INFINITY;
        return true;
    }
    /* only decimal floats: strtod also takes hex, "inf" and "nan" words */
    for (const char *q = p; *q; q++) {
        if (*q >= '0' && *q <= '9')
            digit = true;
        else if (!strchr(".eE+-", *q))
            return false;
    }
    if (!digit)
        return false;
    *out = strtod(s, &end);
    return *end == '\0';
}

/* Plain scalars get YAML 1.2 core-schema types; everything quoted stays a string. */
static json_t *scalar_value(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    json_int_t i;
    double d;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || ev->data.scalar.tag)
        return json_stringn_nocheck(s, ev->data.scalar.length);
    if (*s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 ||
        strcmp(s, "NULL") == 0)
        return json_null();
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0)
        return json_true();
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0)
        return json_false();
    if (full_match_int(s, &i))
        return json_integer(i);
    if (full_match_real(s, &d) && isfinite(d))
        return json_real(d);
    return json_stringn_nocheck(s, ev->data.scalar.length);
}

static int fail(struct yaml_ctx *c, int line, const char *msg)
{
    return err_set(c->e, "%s:%d: %s", c->y->path, line, msg);
}

static int next_event(struct yaml_ctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        int line = (int)c->parser.problem_mark.line + 1;

        return err_set(c->e, "%s:%d: %s%s%s", c->y->path, line,
                       c->parser.problem ? c->parser.problem : "YAML syntax error",
                       c->parser.context ? " " : "", c->parser.context ? c->parser.context : "");
    }
    return 0;
}

static int parse_node(struct yaml_ctx *c, yaml_event_t *ev, int depth, json_t **out);

static int parse_children(struct yaml_ctx *c, json_t *node, bool mapping, int depth)
{
    yaml_event_t ev;
    size_t index = 0;
    int rc;

    for (;;) {
        char *key = NULL;
        int line;
        json_t *child;

        if ((rc = next_event(c, &ev)) < 0)
            return rc;
        if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        line = (int)ev.start_mark.line + 1;
        if (mapping) {
            if (ev.type != YAML_SCALAR_EVENT) {
                yaml_event_delete(&ev);
                return fail(c, line, "mapping keys must be plain strings");
            }
            key = xstrndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
            yaml_event_delete(&ev);
            if ((rc = next_event(c, &ev)) < 0) {
                free(key);
                return rc;
            }
        }
        rc = parse_node(c, &ev, depth + 1, &child);
        if (rc < 0) {
            free(key);
            return rc;
        }
        load_yaml_add_line(c->y, node, key, index, line);
        if (mapping)
            json_object_set_new_nocheck(node, key, child);
        else
            json_array_append_new(node, child);
        index++;
        free(key);
    }
}

/* Consumes the node starting with *ev (which it deletes) and returns its value in *out. */
static int parse_node(struct yaml_ctx *c, yaml_event_t *ev, int depth, json_t **out)
{
    int line = (int)ev->start_mark.line + 1;
    char *anchor = NULL;
    json_t *v = NULL;
    size_t before = c->decoded++;
    int rc = 0;

    if (depth > MAX_DEPTH) {
        yaml_event_delete(ev);
        return fail(c, line, "nesting too deep");
    }
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        struct anchor *a = smap_get(&c->anchors, (const char *)ev->data.alias.anchor);
        yaml_event_delete(ev);
        if (!a)
            return fail(c, line, "unknown alias");
        c->decoded += a->nodes - 1;
        c->aliased += a->nodes;
        if (yaml_aliasing_excessive(c->decoded, c->aliased))
            return fail(c, line, "document contains excessive aliasing");
        *out = json_incref(a->v);
        return 0;
    }
    case YAML_SCALAR_EVENT:
        if (ev->data.scalar.anchor)
            anchor = xstrdup((const char *)ev->data.scalar.anchor);
        v = scalar_value(ev);
        yaml_event_delete(ev);
        break;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        bool mapping = ev->type == YAML_MAPPING_START_EVENT;
        const yaml_char_t *a =
            mapping ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;

        if (a)
            anchor = xstrdup((const char *)a);
        yaml_event_delete(ev);
        v = mapping ? json_object() : json_array();
        load_yaml_add_line(c->y, v, NULL, SIZE_MAX, line);
        rc = parse_children(c, v, mapping, depth);
        break;
    }
    default:
        yaml_event_delete(ev);
        return fail(c, line, "unexpected YAML event");
    }
    if (rc < 0) {
        json_decref(v);
        free(anchor);
        return rc;
    }
    if (anchor) {
        struct anchor *a = xmalloc(sizeof(*a));
        *a = (struct anchor){json_incref(v), c->decoded - before};
        struct anchor *old = smap_put(&c->anchors, anchor, a);
        if (old)
            json_decref(old->v);
        free(old);
        free(anchor);
    }
    *out = v;
    return 0;
}

static int parse_stream(struct yaml_ctx *c)
{
    yaml_event_t ev;
    json_t *root = NULL;
    int rc;

    for (;;) {
        if ((rc = next_event(c, &ev)) < 0)
            goto out;
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_STREAM_START_EVENT || ev.type == YAML_DOCUMENT_START_EVENT ||
            ev.type == YAML_DOCUMENT_END_EVENT) {
            yaml_event_delete(&ev);
            continue;
        }
        if (root) {
            rc = fail(c, (int)ev.start_mark.line + 1, "only one YAML document is allowed");
            yaml_event_delete(&ev);
            goto out;
        }
        if ((rc = parse_node(c, &ev, 0, &root)) < 0)
            goto out;
    }
    if (!json_is_object(root)) {
        rc = fail(c, 1, "a scenario file must be a mapping with config and scenarios");
        goto out;
    }
    c->y->root = root;
    return 0;
out:
    json_decref(root);
    return rc;
}

int load_yaml_parse(const char *path, const char *text, size_t len, struct load_yaml *y,
                    struct err *e)
{
    struct yaml_ctx c = {.y = y, .anchors = SMAP_INIT, .e = e};
    int rc;

    memset(y, 0, sizeof(*y));
    y->path = xstrdup(path);
    if (!yaml_parser_initialize(&c.parser))
        abort();
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
    rc = parse_stream(&c);
    yaml_parser_delete(&c.parser);
    smap_foreach(&c.anchors, ent)
    {
        struct anchor *a = ent->val;
        json_decref(a->v);
        free(a);
    }
    smap_free(&c.anchors);
    if (rc < 0)
        load_yaml_free(y);
    return rc;
}

int load_yaml_load(const char *path, struct load_yaml *y, struct err *e)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    int rc;

    memset(y, 0, sizeof(*y));
    if (!f) {
        rc = -errno;
        err_set(e, "%s: %s", path, strerror(-rc));
        return rc;
    }
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            if (cap > 16u << 20) {
                fclose(f);
                free(text);
                err_set(e, "%s: file too large", path);
                return -EFBIG;
            }
            text = xrealloc(text, cap);
        }
        n = fread(text + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    rc = ferror(f) ? -EIO : 0;
    fclose(f);
    if (rc < 0)
        err_set(e, "%s: read error", path);
    else
        rc = load_yaml_parse(path, text, len, y, e);
    free(text);
    return rc;
}

void load_yaml_free(struct load_yaml *y)
{
    for (size_t i = 0; i < y->n_lines; i++)
        free(y->lines[i].key);
    FREE_NULL(y->lines);
    y->n_lines = y->cap_lines = 0;
    json_decref(y->root);
    y->root = NULL;
    json_decref(y->merged);
    y->merged = NULL;
    FREE_NULL(y->path);
}
