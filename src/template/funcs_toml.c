/*
 * toTOML as consul-template has it, through BurntSushi/toml's encoder: in each table the keys
 * holding plain values first, then those holding tables and arrays of tables, each group in
 * byte order; a table's header and its keys indented two spaces per level below the top; a
 * blank line before each top-level table and each array-of-tables entry; nil values left out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/numfmt.h"
#include "template/tmpl_internal.h"

#define TOML_MAX_OUTPUT (64u << 20) /* as much as one render may write */
#define TOML_MAX_DEPTH  2048        /* as deep as parseJSON reads */

/* What BurntSushi's tomlTypeOfGo calls a value: an array of tables is a non-empty list of maps. */
enum toml_kind {
    TOML_NIL,
    TOML_VALUE, /* a string, number, bool or inline array */
    TOML_TABLE,
    TOML_TABLE_ARRAY,
};

struct toml_out {
    struct buf b;
    bool written;      /* anything written yet: the encoder's newlines wait for it */
    const char *error; /* the encoder's message, after "toml: " */
    const char **key;  /* the dotted key of the table being written, pieces borrowed */
    size_t nkey, capkey;
};

static void toml_write(struct toml_out *o, const char *s, size_t n)
{
    if (o->b.len + n > TOML_MAX_OUTPUT)
        o->error = o->error ? o->error : "output larger than 64 MiB";
    if (o->error)
        return;
    buf_append(&o->b, s, n);
    o->written = true;
}

static void toml_puts(struct toml_out *o, const char *s)
{
    toml_write(o, s, strlen(s));
}

static void toml_newline(struct toml_out *o)
{
    if (o->written)
        toml_puts(o, "\n");
}

/* Every list below v holds no nil: BurntSushi refuses one wherever it classifies a list. */
static int toml_kind_of(struct toml_out *o, const json_t *v, enum toml_kind *kind)
{
    size_t i;
    json_t *x;
    bool tables = json_array_size(v) > 0;

    if (!v || json_is_null(v)) {
        *kind = TOML_NIL;
        return 0;
    }
    if (json_is_object(v)) {
        *kind = TOML_TABLE;
        return 0;
    }
    json_array_foreach(v, i, x)
    {
        enum toml_kind k;
        if (toml_kind_of(o, x, &k) < 0)
            return -EINVAL;
        if (k == TOML_NIL) {
            o->error = "cannot encode array with nil element";
            return -EINVAL;
        }
        tables = tables && k == TOML_TABLE;
    }
    *kind = tables ? TOML_TABLE_ARRAY : TOML_VALUE;
    return 0;
}

/* A key piece as TOML writes it: bare when it is [A-Za-z0-9_-]+, else a quoted string. */
static bool toml_bare(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

/* A basic string: " and \ escaped, \b \t \n \f \r by name, other controls and DEL as \u00XX. */
static void toml_quoted(struct toml_out *o, const char *s, size_t n)
{
    struct buf q = BUF_INIT;

    buf_append_cstr(&q, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\b' ? "\\b"
                          : c == '\t' ? "\\t"
                          : c == '\n' ? "\\n"
                          : c == '\f' ? "\\f"
                          : c == '\r' ? "\\r"
                                      : NULL;
        if (esc)
            buf_append_cstr(&q, esc);
        else if (c < 0x20 || c == 0x7f)
            buf_printf(&q, "\\u%04x", c);
        else
            buf_append(&q, s + i, 1);
    }
    buf_append_cstr(&q, "\"");
    toml_write(o, q.data, q.len);
    buf_free(&q);
}

static void toml_key_piece(struct toml_out *o, const char *piece)
{
    if (toml_bare(piece))
        toml_puts(o, piece);
    else
        toml_quoted(o, piece, strlen(piece));
}

/* Two spaces per level below the top, as the encoder's default Indent. */
static void toml_indent(struct toml_out *o, size_t levels)
{
    for (size_t i = 0; i < levels; i++)
        toml_puts(o, "  ");
}

/* A table header: [a."b c".d] or [[a.b]], indented by its depth. */
static void toml_header(struct toml_out *o, bool array)
{
    toml_indent(o, o->nkey - 1);
    toml_puts(o, array ? "[[" : "[");
    for (size_t i = 0; i < o->nkey; i++) {
        if (i)
            toml_puts(o, ".");
        toml_key_piece(o, o->key[i]);
    }
    toml_puts(o, array ? "]]" : "]");
    toml_newline(o);
}

static int toml_map(struct toml_out *o, const json_t *v, bool inline_table, unsigned depth);

/* A value where TOML writes one: after "key = " or in an inline array or table. */
static int toml_element(struct toml_out *o, const json_t *v, unsigned depth)
{
    struct buf num = BUF_INIT;
    size_t i;
    json_t *x;

    if (depth > TOML_MAX_DEPTH) {
        o->error = "value nested too deeply";
        return -EINVAL;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        toml_quoted(o, json_string_value(v), json_string_length(v));
        return 0;
    case JSON_INTEGER:
        buf_printf(&num, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        /* FormatFloat(f, 'f', -1, 64), with ".0" where that leaves no decimal point */
        numfmt_go_f(&num, json_real_value(v));
        if (!memchr(num.data, '.', num.len))
            buf_append_cstr(&num, ".0");
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        buf_append_cstr(&num, json_is_true(v) ? "true" : "false");
        break;
    case JSON_ARRAY:
        toml_puts(o, "[");
        json_array_foreach(v, i, x)
        {
            if (json_is_null(x)) {
                o->error = "cannot encode array with nil element";
                return -EINVAL;
            }
            if (i)
                toml_puts(o, ", ");
            if (toml_element(o, x, depth + 1) < 0)
                return -EINVAL;
        }
        toml_puts(o, "]");
        return 0;
    case JSON_OBJECT:
        return toml_map(o, v, true, depth + 1);
    default:
        o->error = "cannot encode array with nil element";
        return -EINVAL;
    }
    toml_write(o, num.data, num.len);
    buf_free(&num);
    return 0;
}

/* key = value, the key being the last piece of o->key (or piece in an inline table). */
static int toml_key_value(struct toml_out *o, const char *piece, const json_t *v, bool inline_table,
                          unsigned depth)
{
    toml_indent(o, inline_table ? 0 : o->nkey - 1);
    toml_key_piece(o, piece);
    toml_puts(o, " = ");
    if (toml_element(o, v, depth) < 0)
        return -EINVAL;
    if (!inline_table)
        toml_newline(o);
    return 0;
}

static int toml_encode(struct toml_out *o, const json_t *v, unsigned depth);

/* One group of a map's keys (in order), written as key = value pairs or as tables below
 * o->key. */
static int toml_map_keys(struct toml_out *o, const json_t *v, const char **keys, size_t n,
                         bool inline_table, bool comma_after, unsigned depth)
{
    for (size_t i = 0; i < n; i++) {
        const json_t *x = json_object_get(v, keys[i]);
        if (inline_table) {
            if (toml_key_value(o, keys[i], x, true, depth) < 0)
                return -EINVAL;
            if (comma_after || i != n - 1)
                toml_puts(o, ", ");
            continue;
        }
        if (o->nkey == o->capkey) {
            o->capkey = o->capkey ? o->capkey * 2 : 16;
            o->key = xrealloc(o->key, o->capkey * sizeof(*o->key));
        }
        o->key[o->nkey++] = keys[i];
        int rc = toml_encode(o, x, depth + 1);
        o->nkey--;
        if (rc < 0)
            return -EINVAL;
    }
    return 0;
}

/* A map's keys, sorted: those holding plain values first, then the tables, so that no plain key
 * lands in a table written before it. Nil values are left out, as the encoder leaves them. */
static int toml_map(struct toml_out *o, const json_t *v, bool inline_table, unsigned depth)
{
    size_t n, ndirect = 0, nsub = 0;
    const char **keys = tmpl_sorted_keys(v, &n);
    const char **direct = xcalloc(n ? n : 1, sizeof(*direct));
    const char **sub = xcalloc(n ? n : 1, sizeof(*sub));
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        enum toml_kind kind;
        if ((rc = toml_kind_of(o, json_object_get(v, keys[i]), &kind)) < 0)
            goto out;
        if (kind == TOML_TABLE || kind == TOML_TABLE_ARRAY)
            sub[nsub++] = keys[i];
        else if (kind != TOML_NIL)
            direct[ndirect++] = keys[i];
    }
    if (inline_table)
        toml_puts(o, "{");
    if ((rc = toml_map_keys(o, v, direct, ndirect, inline_table, nsub > 0, depth)) < 0 ||
        (rc = toml_map_keys(o, v, sub, nsub, inline_table, false, depth)) < 0)
        goto out;
    if (inline_table)
        toml_puts(o, "}");
out:
    free(keys);
    free(direct);
    free(sub);
    return rc;
}

/* v under the key o->key: a key = value line, a [table] or [[array of tables]] entries. */
static int toml_encode(struct toml_out *o, const json_t *v, unsigned depth)
{
    enum toml_kind kind;
    size_t i;
    json_t *x;

    if (depth > TOML_MAX_DEPTH) {
        o->error = "value nested too deeply";
        return -EINVAL;
    }
    if (toml_kind_of(o, v, &kind) < 0)
        return -EINVAL;
    switch (kind) {
    case TOML_NIL:
        return 0;
    case TOML_VALUE:
        if (o->nkey == 0)
            return toml_element(o, v, depth);
        return toml_key_value(o, o->key[o->nkey - 1], v, false, depth);
    case TOML_TABLE:
        if (o->nkey == 1) /* a blank line between top-level tables */
            toml_newline(o);
        if (o->nkey > 0)
            toml_header(o, false);
        return toml_map(o, v, false, depth);
    default:
        if (o->nkey == 0) {
            o->error = "top-level values must be Go maps or structs";
            return -EINVAL;
        }
        json_array_foreach(v, i, x)
        {
            toml_newline(o);
            toml_header(o, true);
            if (toml_map(o, x, false, depth + 1) < 0)
                return -EINVAL;
        }
        return 0;
    }
}

/* toTOML X: the encoder's output, surrounding spaces trimmed, as consul-template returns it. */
static int fn_to_toml(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    struct toml_out o = {.b = BUF_INIT};
    int rc = 0;

    if (!args[0] || json_is_null(args[0]))
        o.error = "cannot encode nil";
    else
        toml_encode(&o, args[0], 0);
    if (o.error) {
        rc = tmpl_fail(ev, "error calling toTOML: toTOML: toml: %s", o.error);
    } else {
        const char *s = o.b.data ? o.b.data : "";
        size_t n = o.b.len;
        tmpl_trim_space(&s, &n);
        *out = json_stringn_nocheck(s, n);
    }
    free(o.key);
    buf_free(&o.b);
    return rc;
}

static const struct tmpl_func toml_funcs[] = {
    {"toTOML", fn_to_toml, 1, 1, NULL},
};

const struct tmpl_func *tmpl_toml_func_find(const char *name)
{
    return tmpl_func_lookup(toml_funcs, ARRAY_LEN(toml_funcs), name);
}
