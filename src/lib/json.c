/*
 * Go encoding/json behaviour on top of jansson: case-insensitive field lookup, Go's type-error
 * texts, and output in insertion order, so that answers and 400 messages read like Consul's.
 */
#include "lib/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/duration.h"
#include "lib/numfmt.h"

/* ASCII case-insensitive comparison that skips '_' on both sides. */
static bool snake_ieq(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_')
            a++;
        while (*b == '_')
            b++;
        if (!*a || !*b)
            return !*a && !*b;
        char ca = *a, cb = *b;
        if (ca >= 'A' && ca <= 'Z')
            ca = (char)(ca - 'A' + 'a');
        if (cb >= 'A' && cb <= 'Z')
            cb = (char)(cb - 'A' + 'a');
        if (ca != cb)
            return false;
        a++;
        b++;
    }
}

/* Exact match first, then the first case-insensitive one, then (snake) underscore-blind. */
static json_t *iget(const json_t *obj, const char *key, bool snake)
{
    const char *k;
    json_t *v;
    json_t *found;

    if (!json_is_object(obj) || !key)
        return NULL;
    found = json_object_get(obj, key);
    if (found)
        return found;
    /* jansson's iteration macros take a non-const object but do not modify it. */
    json_object_foreach((json_t *)obj, k, v)
    {
        if (strcasecmp(k, key) == 0)
            return v;
    }
    if (!snake)
        return NULL;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (snake_ieq(k, key))
            return v;
    }
    return NULL;
}

json_t *json_iget(const json_t *obj, const char *key)
{
    return iget(obj, key, false);
}

json_t *json_iget_snake(const json_t *obj, const char *key)
{
    return iget(obj, key, true);
}

const char *json_type_name(const json_t *v)
{
    if (!v)
        return "null"; /* jansson's NULL, e.g. a missing key, reads as JSON null */
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "bool";
    case JSON_NULL:
        break;
    }
    return "null";
}

/*
 * Go's UnmarshalTypeError text. `where` is "Struct.Field", optionally followed by ":gotype" to
 * override the default Go type name (e.g. "ServiceDefinition.Check:structs.CheckType").
 * `value` is Go's description of the JSON value ("string", "number 1.5", ...).
 */
static int type_error(struct err *e, const char *where, const char *value, const char *gotype)
{
    const char *colon = strrchr(where, ':');
    int field_len = colon ? (int)(colon - where) : (int)strlen(where);

    if (colon)
        gotype = colon + 1;
    return err_set(e, "json: cannot unmarshal %s into Go struct field %.*s of type %s", value,
                   field_len, where, gotype);
}

/* "number <literal>" as Go prints a number that does not fit an integer field. */
static void number_literal(const json_t *v, char *out, size_t outlen)
{
    struct buf text = BUF_INIT;

    if (json_is_integer(v))
        buf_printf(&text, "%lld", (long long)json_integer_value(v));
    else /* Go keeps the text; the shortest that reads back is what a Go client would send */
        numfmt_json(&text, json_real_value(v));
    int n = snprintf(out, outlen, "number %s", text.data); /* 64 bytes hold any double */
    MESH_BUG_ON(n < 0 || (size_t)n >= outlen);
    buf_free(&text);
}

/* Looks key up; *v is NULL when absent or null. */
static json_t *lookup(const json_t *obj, const char *key)
{
    json_t *v = json_iget_snake(obj, key);
    return json_is_null(v) ? NULL : v;
}

int json_read_string(const json_t *obj, const char *key, const char *where, const char **out,
                     struct err *e)
{
    json_t *v = lookup(obj, key);

    if (!v)
        return 0;
    if (!json_is_string(v))
        return type_error(e, where, json_type_name(v), "string");
    *out = json_string_value(v);
    return 0;
}

int json_read_bool(const json_t *obj, const char *key, const char *where, bool *out, struct err *e)
{
    json_t *v = lookup(obj, key);

    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return type_error(e, where, json_type_name(v), "bool");
    *out = json_is_true(v);
    return 0;
}

int json_read_int(const json_t *obj, const char *key, const char *where, int64_t *out,
                  struct err *e)
{
    json_t *v = lookup(obj, key);
    char lit[64];

    if (!v)
        return 0;
    if (json_is_real(v)) {
        number_literal(v, lit, sizeof(lit));
        return type_error(e, where, lit, "int");
    }
    if (!json_is_integer(v))
        return type_error(e, where, json_type_name(v), "int");
    *out = json_integer_value(v);
    return 0;
}

int json_read_object(const json_t *obj, const char *key, const char *where, json_t **out,
                     struct err *e)
{
    json_t *v = lookup(obj, key);

    if (!v)
        return 0;
    if (!json_is_object(v))
        return type_error(e, where, json_type_name(v), "map[string]interface {}");
    *out = v;
    return 0;
}

int json_read_array(const json_t *obj, const char *key, const char *where, json_t **out,
                    struct err *e)
{
    json_t *v = lookup(obj, key);

    if (!v)
        return 0;
    if (!json_is_array(v))
        return type_error(e, where, json_type_name(v), "[]interface {}");
    *out = v;
    return 0;
}

/* Go's time.quote: the string in double quotes with '"' and '\' escaped. */
static void go_quote(struct buf *b, const char *s)
{
    buf_append(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_append(b, "\\", 1);
        buf_append(b, s, 1);
    }
    buf_append(b, "\"", 1);
}

int json_read_duration(const json_t *obj, const char *key, const char *where, int64_t *ns,
                       struct err *e)
{
    json_t *v = lookup(obj, key);
    char lit[64];

    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *ns = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        number_literal(v, lit, sizeof(lit));
        return type_error(e, where, lit, "time.Duration");
    }
    if (!json_is_string(v))
        return type_error(e, where, json_type_name(v), "time.Duration");

    const char *s = json_string_value(v);
    int64_t parsed;
    if (duration_parse((struct str){s, json_string_length(v)}, &parsed) < 0) {
        struct buf q = BUF_INIT;
        go_quote(&q, s);
        int rc = err_set(e, "time: invalid duration %s", q.data);
        buf_free(&q);
        return rc;
    }
    *ns = parsed;
    return 0;
}

static int append_cb(const char *p, size_t n, void *data)
{
    buf_append(data, p, n);
    return 0;
}

void json_append(struct buf *out, const json_t *v, bool pretty)
{
    size_t flags = JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_MESH_REAL_PRECISION;
    size_t start = out->len;

    flags |= pretty ? JSON_INDENT(2) : JSON_COMPACT;
    if (json_dump_callback(v, append_cb, out, flags) < 0) {
        /* Only invalid UTF-8 let in by *_nocheck constructors, or NaN, gets here: emit null
         * rather than half a document. */
        out->len = start;
        buf_append_cstr(out, "null");
    }
    if (pretty)
        buf_append(out, "\n", 1);
}

json_t *json_real_round(double v, double unit)
{
    if (MESH_BUG_ON(!(unit > 0)) || !isfinite(v))
        return json_real(0);
    /* Dividing by the reciprocal gives the double nearest the decimal (7041 / 1000.0 is 7.041's
     * nearest double; 7041 * 0.001 is not). */
    return json_real(round(v / unit) / (1.0 / unit));
}

json_t *json_str_or_empty(const char *s)
{
    json_t *v = json_string(s ? s : "");

    if (!v) {
        /* Invalid UTF-8: replace each bad byte with U+FFFD, as Go's encoder does. */
        struct buf b = BUF_INIT;
        struct str rest = str_from(s);
        while (rest.n) {
            size_t n = str_utf8_seq_len(rest);
            if (n)
                buf_append(&b, rest.p, n);
            else
                buf_append(&b, "\xef\xbf\xbd", 3);
            rest = str_skip(rest, n ? n : 1);
        }
        v = json_stringn(b.data, b.len);
        buf_free(&b);
    }
    if (!v)
        abort(); /* out of memory: the x*alloc policy */
    return v;
}

size_t json_text_depth(const char *text, size_t len)
{
    size_t depth = 0, max = 0;
    bool in_string = false;

    for (size_t i = 0; i < len; i++) {
        char ch = text[i];
        if (in_string) {
            if (ch == '\\')
                i++; /* the escaped byte cannot end the string */
            else if (ch == '"')
                in_string = false;
        } else if (ch == '"') {
            in_string = true;
        } else if (ch == '[' || ch == '{') {
            if (++depth > max)
                max = depth;
        } else if ((ch == ']' || ch == '}') && depth > 0) {
            depth--;
        }
    }
    return max;
}
