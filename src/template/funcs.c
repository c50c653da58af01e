/*
 * The functions that need no registry data: Go's builtins (eq ne lt le gt ge and or not len
 * index printf print println) and consul-template's string and list helpers. Argument order is
 * consul-template's, shaped for pipelines: {{ .Tags | join "," }} calls join "," .Tags.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "template/tmpl_internal.h"

#define LOOP_MAX 1000000

/* ---- calling ----------------------------------------------------------------------------- */

const struct tmpl_func *tmpl_func_lookup(const struct tmpl_func *table, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

static bool is_nil(const json_t *v)
{
    return !v || json_is_null(v);
}

int tmpl_func_check_count(struct tmpl_eval *ev, const struct tmpl_func *f, size_t nargs)
{
    if ((int)nargs < f->min_args || (f->max_args >= 0 && (int)nargs > f->max_args))
        return tmpl_fail(ev, "wrong number of args for %s: want %s%d got %zu", f->name,
                         f->max_args < 0 ? "at least " : "",
                         (int)nargs < f->min_args ? f->min_args : f->max_args, nargs);
    return 0;
}

int tmpl_func_call(struct tmpl_eval *ev, const struct tmpl_func *f, json_t *const *args,
                   size_t nargs, json_t **out)
{
    size_t ntypes = f->types ? strlen(f->types) : 0;

    if (tmpl_func_check_count(ev, f, nargs) < 0)
        return -EINVAL;
    for (size_t i = 0; i < nargs && ntypes; i++) {
        char want = f->types[i < ntypes ? i : ntypes - 1];
        const json_t *v = args[i];
        bool ok = want == 's'   ? json_is_string(v)
                  : want == 'i' ? json_is_integer(v)
                  : want == 'l' ? json_is_array(v) || is_nil(v)
                                : true;
        if (!ok)
            return tmpl_fail(ev, "wrong type for value; expected %s; got %s",
                             want == 's'   ? "string"
                             : want == 'i' ? "int"
                                           : "[]string",
                             tmpl_type_name(v));
    }
    return f->fn(ev, args, nargs, out);
}

/* A finished buffer as a string value. */
static json_t *buf_string(const struct buf *b)
{
    return json_stringn_nocheck(b->data ? b->data : "", b->len);
}

/* ---- comparisons ------------------------------------------------------------------------- */

/*
 * Go's basic kinds: what eq, lt and the others compare. Lists and maps are valid values of no
 * basic kind; nil is no value at all.
 */
enum basic_kind { KIND_NONE, KIND_BOOL, KIND_INT, KIND_FLOAT, KIND_STRING };

static enum basic_kind basic_kind(const json_t *v)
{
    return json_is_boolean(v)   ? KIND_BOOL
           : json_is_integer(v) ? KIND_INT
           : json_is_real(v)    ? KIND_FLOAT
           : json_is_string(v)  ? KIND_STRING
                                : KIND_NONE;
}

/* -1, 0 or 1 for two values of the same basic kind (bools: 0 or 1, for equality only). */
static int compare_same(const json_t *a, const json_t *b, enum basic_kind k)
{
    if (k == KIND_INT) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    if (k == KIND_FLOAT) {
        double x = json_real_value(a), y = json_real_value(b);
        return x < y ? -1 : x > y;
    }
    if (k == KIND_STRING) {
        size_t na = json_string_length(a), nb = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), na < nb ? na : nb);
        return c ? (c < 0 ? -1 : 1) : na < nb ? -1 : na > nb;
    }
    return json_is_true(a) != json_is_true(b);
}

/* Go's eq for one pair: values of different kinds are an error unless one is nil; lists and
 * maps are only comparable with nil. */
static int equal_pair(struct tmpl_eval *ev, const char *fn, const json_t *a, const json_t *b,
                      bool *eq)
{
    enum basic_kind ka = basic_kind(a), kb = basic_kind(b);

    if (ka != kb) {
        if (!is_nil(a) && !is_nil(b))
            return tmpl_fail(ev, "error calling %s: incompatible types for comparison: %s and %s",
                             fn, tmpl_type_name(a), tmpl_type_name(b));
        *eq = false;
    } else if (ka != KIND_NONE) {
        *eq = compare_same(a, b, ka) == 0;
    } else if (is_nil(a) || is_nil(b)) {
        *eq = is_nil(a) && is_nil(b);
    } else {
        struct buf sa = BUF_INIT, sb = BUF_INIT;
        int rc;
        tmpl_sprintf(&sa, "%v", 2, (json_t *const *)&a, 1);
        tmpl_sprintf(&sb, "%v", 2, (json_t *const *)&b, 1);
        if (json_typeof(a) != json_typeof(b))
            rc = tmpl_fail(ev, "error calling %s: non-comparable types %.*s: %s, %s: %.*s", fn,
                           (int)sa.len, sa.data, tmpl_type_name(a), tmpl_type_name(b), (int)sb.len,
                           sb.data);
        else
            rc = tmpl_fail(ev, "error calling %s: non-comparable type %.*s: %s", fn, (int)sb.len,
                           sb.data, tmpl_type_name(b));
        buf_free(&sa);
        buf_free(&sb);
        return rc;
    }
    return 0;
}

/* Go's lt: both of the same basic kind, and not bools. */
static int less_pair(struct tmpl_eval *ev, const char *fn, const json_t *a, const json_t *b,
                     bool *lt)
{
    enum basic_kind ka = basic_kind(a), kb = basic_kind(b);

    if (ka == KIND_NONE || kb == KIND_NONE)
        return tmpl_fail(ev, "error calling %s: invalid type for comparison", fn);
    if (ka != kb)
        return tmpl_fail(ev, "error calling %s: incompatible types for comparison: %s and %s", fn,
                         tmpl_type_name(a), tmpl_type_name(b));
    if (ka == KIND_BOOL)
        return tmpl_fail(ev, "error calling %s: invalid type for comparison", fn);
    *lt = compare_same(a, b, ka) < 0;
    return 0;
}

/* eq A B C...: A equals B or C or ... */
static int fn_eq(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    bool eq = false;

    if (nargs < 2)
        return tmpl_fail(ev, "error calling eq: missing argument for comparison");
    for (size_t i = 1; i < nargs && !eq; i++)
        if (equal_pair(ev, "eq", args[0], args[i], &eq) < 0)
            return -EINVAL;
    *out = json_boolean(eq);
    return 0;
}

/* ne is not eq, le is lt or eq, gt is not le, ge is not lt: as Go derives them, errors too. */
static int fn_order(struct tmpl_eval *ev, json_t *const *args, const char *op, json_t **out)
{
    bool r = false, lt = false;

    if (op[0] == 'n') {
        if (equal_pair(ev, op, args[0], args[1], &r) < 0)
            return -EINVAL;
        r = !r;
    } else if (strcmp(op, "lt") == 0 || strcmp(op, "ge") == 0) {
        if (less_pair(ev, op, args[0], args[1], &lt) < 0)
            return -EINVAL;
        r = op[0] == 'l' ? lt : !lt;
    } else {
        if (less_pair(ev, op, args[0], args[1], &lt) < 0 ||
            (!lt && equal_pair(ev, op, args[0], args[1], &r) < 0))
            return -EINVAL;
        r = op[0] == 'l' ? lt || r : !(lt || r);
    }
    *out = json_boolean(r);
    return 0;
}

#define ORDER_FN(name)                                                                             \
    static int fn_##name(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)    \
    {                                                                                              \
        return fn_order(ev, args, #name, out);                                                     \
    }
ORDER_FN(ne)
ORDER_FN(lt)
ORDER_FN(le)
ORDER_FN(gt)
ORDER_FN(ge)

/* Never called: eval.c evaluates and/or lazily; the entries make the names known. */
static int fn_lazy(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return tmpl_fail(ev, "and/or called directly");
}

/* Never called: eval.c evaluates call itself, as it needs the name of what is called. */
static int fn_call(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return tmpl_fail(ev, "call called directly");
}

/* Never called: the parser lets scratch stand only as scratch.Method (funcs_scratch.c). */
static int fn_scratch(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return tmpl_fail(ev, "scratch needs a method");
}

static int fn_not(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    *out = json_boolean(!tmpl_truth(args[0]));
    return 0;
}

/* ---- containers -------------------------------------------------------------------------- */

static int fn_len(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const json_t *v = args[0];
    size_t n;

    if (json_is_string(v))
        n = json_string_length(v);
    else if (json_is_array(v))
        n = json_array_size(v);
    else if (json_is_object(v))
        n = json_object_size(v);
    else
        return tmpl_fail(ev, "error calling len: len of type %s", tmpl_type_name(v));
    *out = json_integer((json_int_t)n);
    return 0;
}

/*
 * Go's indexArg: an integer index into a list or string of n items, at most cap. An index equal
 * to cap passes here (slice's x[n:] needs it); index then fails on it as Go's reflect does.
 */
static int index_arg(struct tmpl_eval *ev, const char *fn, const json_t *k, size_t cap, size_t *at)
{
    if (is_nil(k))
        return tmpl_fail(ev, "error calling %s: cannot index slice/array with nil", fn);
    if (!json_is_integer(k))
        return tmpl_fail(ev, "error calling %s: cannot index slice/array with type %s", fn,
                         tmpl_type_name(k));
    json_int_t x = json_integer_value(k);
    if (x < 0 || (uint64_t)x > cap)
        return tmpl_fail(ev, "error calling %s: index out of range: %lld", fn, (long long)x);
    *at = (size_t)x;
    return 0;
}

/* One step of index: *item receives a new reference to v[k] (NULL for nil): a string's item is
 * its byte, as a number, and a key missing from the registry's map[string]string is "". */
static int index_step(struct tmpl_eval *ev, const json_t *v, const json_t *k, json_t **item)
{
    size_t at;

    if (is_nil(v)) /* a missing map entry, Go's nil interface */
        return tmpl_fail(ev, "error calling index: index of nil pointer");
    if (json_is_array(v) || json_is_string(v)) {
        bool str = json_is_string(v);
        size_t n = str ? json_string_length(v) : json_array_size(v);
        if (index_arg(ev, "index", k, n, &at) < 0)
            return -EINVAL;
        if (at == n)
            return tmpl_fail(ev, "error calling index: reflect: %s index out of range",
                             str ? "string" : "slice");
        *item = str ? json_integer((unsigned char)json_string_value(v)[at])
                    : json_incref(json_array_get(v, at));
        return 0;
    }
    if (json_is_object(v) && (json_is_string(k) || is_nil(k))) {
        /* nil is the key type's zero value, "" */
        json_t *x = json_object_get(v, is_nil(k) ? "" : json_string_value(k));
        *item = x ? json_incref(x) : tmpl_missing_key(ev, v);
        return 0;
    }
    if (json_is_object(v) && json_is_integer(k)) {
        /* byPort's map, whose keys are Go ints: index it by the port */
        char key[24];
        snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(k));
        *item = json_incref(json_object_get(v, key));
        return 0;
    }
    if (json_is_object(v))
        return tmpl_fail(ev, "error calling index: value has type %s; should be string",
                         tmpl_type_name(k));
    return tmpl_fail(ev, "error calling index: can't index item of type %s", tmpl_type_name(v));
}

/* index X I J...: X[I][J]... */
static int fn_index(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *v = args[0];

    if (is_nil(v))
        return tmpl_fail(ev, "error calling index: index of untyped nil");
    json_incref(v);
    for (size_t i = 1; i < nargs; i++) {
        json_t *item = NULL;
        int rc = index_step(ev, v, args[i], &item);
        json_decref(v);
        if (rc < 0)
            return rc;
        v = item;
    }
    *out = v;
    return 0;
}

/* slice X [I [J [K]]]: X[I:J:K] of a list, X[I:J] of a string (bytes). */
static int fn_slice(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const json_t *v = args[0];
    bool str = json_is_string(v);
    size_t idx[3] = {0, 0, 0}, n;

    if (is_nil(v))
        return tmpl_fail(ev, "error calling slice: slice of untyped nil");
    if (nargs > 4)
        return tmpl_fail(ev, "error calling slice: too many slice indexes: %zu", nargs - 1);
    if (str && nargs == 4)
        return tmpl_fail(ev, "error calling slice: cannot 3-index slice a string");
    if (!str && !json_is_array(v))
        return tmpl_fail(ev, "error calling slice: can't slice item of type %s", tmpl_type_name(v));
    n = str ? json_string_length(v) : json_array_size(v);
    idx[1] = n;
    for (size_t i = 1; i < nargs; i++)
        if (index_arg(ev, "slice", args[i], n, &idx[i - 1]) < 0)
            return -EINVAL;
    if (idx[0] > idx[1])
        return tmpl_fail(ev, "error calling slice: invalid slice index: %zu > %zu", idx[0], idx[1]);
    if (nargs == 4 && idx[1] > idx[2])
        return tmpl_fail(ev, "error calling slice: invalid slice index: %zu > %zu", idx[1], idx[2]);
    if (str) {
        *out = json_stringn_nocheck(json_string_value(v) + idx[0], idx[1] - idx[0]);
        return 0;
    }
    *out = json_array();
    for (size_t i = idx[0]; i < idx[1]; i++)
        json_array_append(*out, json_array_get(v, i));
    return 0;
}

/* ---- printing ---------------------------------------------------------------------------- */

static int fn_printf(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    struct buf b = BUF_INIT;

    tmpl_sprintf(&b, json_string_value(args[0]), json_string_length(args[0]), args + 1, nargs - 1);
    *out = buf_string(&b);
    buf_free(&b);
    return 0;
}

/* Go's fmt.Sprint (ln false) or Sprintln, as a string value */
static json_t *sprint(json_t *const *args, size_t nargs, bool ln)
{
    struct buf b = BUF_INIT;

    tmpl_sprint(&b, args, nargs, ln);
    json_t *s = buf_string(&b);
    buf_free(&b);
    return s;
}

static int fn_print(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    *out = sprint(args, nargs, false);
    return 0;
}

static int fn_println(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    *out = sprint(args, nargs, true);
    return 0;
}

/* ---- consul-template's helpers ----------------------------------------------------------- */

static bool has_item(const json_t *haystack, const json_t *needle)
{
    size_t i;
    json_t *x;

    if (json_is_string(haystack) && json_is_string(needle))
        return memmem(json_string_value(haystack), json_string_length(haystack),
                      json_string_value(needle), json_string_length(needle)) != NULL;
    /* consul-template's in() matches integers, floats and strings only, each with its kind */
    json_array_foreach(haystack, i,
                       x) if ((json_is_integer(x) || json_is_real(x) || json_is_string(x)) &&
                              json_equal(x, (json_t *)needle)) return true;
    return false;
}

/* contains NEEDLE HAYSTACK: {{ if .Tags | contains "prod" }} */
static int fn_contains(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    *out = json_boolean(has_item(args[1], args[0]));
    return 0;
}

/* in HAYSTACK NEEDLE: contains with the arguments the other way round */
static int fn_in(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    *out = json_boolean(has_item(args[0], args[1]));
    return 0;
}

/* containsAny / containsAll NEEDLES HAYSTACK; negated, containsNone / containsNotAll */
static int contains_set(struct tmpl_eval *ev, json_t *const *args, bool all, bool negate,
                        json_t **out)
{
    size_t i;
    json_t *x;
    bool r = all;

    json_array_foreach(args[0], i, x)
    {
        if (has_item(args[1], x) != all) {
            r = !all;
            break;
        }
    }
    *out = json_boolean(r != negate);
    return 0;
}

static int fn_contains_any(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return contains_set(ev, args, false, false, out);
}

static int fn_contains_all(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return contains_set(ev, args, true, false, out);
}

static int fn_contains_none(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return contains_set(ev, args, false, true, out);
}

static int fn_contains_not_all(struct tmpl_eval *ev, json_t *const *args, size_t nargs,
                               json_t **out)
{
    return contains_set(ev, args, true, true, out);
}

static int fn_join(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    struct buf b = BUF_INIT;
    size_t i;
    json_t *x;

    json_array_foreach(args[1], i, x)
    {
        if (i)
            buf_append(&b, json_string_value(args[0]), json_string_length(args[0]));
        tmpl_print(&b, x);
    }
    *out = buf_string(&b);
    buf_free(&b);
    return 0;
}

/* consul-template's split: S without its surrounding spaces, split at each SEP ("" splits
 * between bytes); nothing left is no items. */
static json_t *split_list(const json_t *sep_value, const json_t *s_value)
{
    const char *sep = json_string_value(sep_value), *s = json_string_value(s_value);
    size_t seplen = json_string_length(sep_value), n = json_string_length(s_value);
    json_t *list = json_array();

    tmpl_trim_space(&s, &n);
    while (n) {
        const char *at = seplen ? memmem(s, n, sep, seplen) : (n > 1 ? s + 1 : NULL);
        size_t len = at ? (size_t)(at - s) : n;
        json_array_append_new(list, json_stringn_nocheck(s, len));
        if (!at)
            break;
        n -= len + seplen;
        s = at + seplen;
        if (!n) /* a trailing separator leaves one empty item */
            json_array_append_new(list, json_string(""));
    }
    return list;
}

static int fn_split(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    *out = split_list(args[0], args[1]);
    return 0;
}

/* splitToMap SEP1 SEP2 S: split S at SEP1, each item at its first SEP2 into key and value
 * (items without SEP2 are left out; a later key wins). */
static int fn_split_to_map(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *items = split_list(args[0], args[2]), *item;
    const char *sep = json_string_value(args[1]);
    size_t seplen = json_string_length(args[1]), i;

    *out = json_object();
    json_array_foreach(items, i, item)
    {
        const char *s = json_string_value(item);
        size_t n = json_string_length(item);
        const char *at = seplen ? memmem(s, n, sep, seplen) : s;
        if (!at)
            continue;
        char *key = xstrndup(s, (size_t)(at - s));
        json_object_set_new_nocheck(
            *out, key, json_stringn_nocheck(at + seplen, n - (size_t)(at - s) - seplen));
        free(key);
    }
    json_decref(items);
    tmpl_sort_map(*out, false);
    return 0;
}

static int fn_replace_all(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const char *from = json_string_value(args[0]), *s = json_string_value(args[2]);
    size_t nfrom = json_string_length(args[0]), n = json_string_length(args[2]);
    struct buf b = BUF_INIT;

    while (n) {
        const char *at = nfrom ? memmem(s, n, from, nfrom) : NULL;
        size_t len = at ? (size_t)(at - s) : n;
        buf_append(&b, s, len);
        if (!at)
            break;
        buf_append(&b, json_string_value(args[1]), json_string_length(args[1]));
        n -= len + nfrom;
        s = at + nfrom;
    }
    *out = buf_string(&b);
    buf_free(&b);
    return 0;
}

/* toLower, toUpper, trimSpace */
static int map_string(const json_t *v, char how, json_t **out)
{
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);

    if (how == 't') {
        tmpl_trim_space(&s, &n);
        *out = json_stringn_nocheck(s, n);
        return 0;
    }
    char *c = xstrndup(s, n);
    for (size_t i = 0; i < n; i++)
        if ((how == 'l' && c[i] >= 'A' && c[i] <= 'Z') ||
            (how == 'u' && c[i] >= 'a' && c[i] <= 'z'))
            c[i] = (char)(c[i] ^ 0x20);
    *out = json_stringn_nocheck(c, n);
    free(c);
    return 0;
}

static int fn_to_lower(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return map_string(args[0], 'l', out);
}

static int fn_to_upper(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return map_string(args[0], 'u', out);
}

static int fn_trim_space(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return map_string(args[0], 't', out);
}

/*
 * consul-template's parseInt of v (a string) for the function fn: "" is 0, else Go's
 * strconv.ParseInt(s, 10, 64): an optional sign and decimal digits, nothing around them.
 */
static int parse_int(struct tmpl_eval *ev, const char *fn, const json_t *v, long long *out)
{
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    char *end, *c = xstrndup(s, n);
    size_t digits = c[0] == '+' || c[0] == '-';
    int rc = 0;

    errno = 0;
    *out = n ? strtoll(c, &end, 10) : 0;
    /* strtoll skips spaces and stops at a NUL: Go takes neither */
    if (n && (strlen(c) != n || !(c[digits] >= '0' && c[digits] <= '9') || *end || errno)) {
        struct buf q = BUF_INIT;
        tmpl_quote(&q, s, n);
        rc = tmpl_fail(ev, "error calling %s: parseInt: strconv.ParseInt: parsing %.*s: %s", fn,
                       (int)q.len, q.data,
                       errno == ERANGE ? "value out of range" : "invalid syntax");
        buf_free(&q);
    }
    free(c);
    return rc;
}

static int fn_parse_int(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    long long v;

    if (parse_int(ev, "parseInt", args[0], &v) < 0)
        return -EINVAL;
    *out = json_integer(v);
    return 0;
}

/*
 * Go's reference-time layout words, in the order Go's layout scanner tries them (a longer
 * word before its prefix: "2006" before "2", "15" before "1"), and their strftime
 * equivalents. The time is UTC, so the zone words are constants.
 */
static const char *const layout_map[][2] = {
    {"January", "%B"},      {"Jan", "%b"},        {"Monday", "%A"},   {"Mon", "%a"},
    {"MST", "UTC"},         {"2006", "%Y"},       {"_2006", "_%Y"},   {"002", "%j"},
    {"01", "%m"},           {"02", "%d"},         {"03", "%I"},       {"04", "%M"},
    {"05", "%S"},           {"06", "%y"},         {"15", "%H"},       {"1", "%-m"},
    {"2", "%-d"},           {"_2", "%e"},         {"3", "%-I"},       {"4", "%-M"},
    {"5", "%-S"},           {"PM", "%p"},         {"pm", "%P"},       {"-07:00:00", "+00:00:00"},
    {"-070000", "+000000"}, {"-07:00", "+00:00"}, {"-0700", "+0000"}, {"-07", "+00"},
    {"Z07:00:00", "Z"},     {"Z070000", "Z"},     {"Z07:00", "Z"},    {"Z0700", "Z"},
    {"Z07", "Z"},
};

static int fn_timestamp(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const char *layout = nargs ? json_string_value(args[0]) : "2006-01-02T15:04:05Z07:00";
    time_t now = time(NULL);
    struct tm tm;
    struct buf f = BUF_INIT;
    char res[256];

    if (strcmp(layout, "unix") == 0) {
        *out = json_sprintf("%lld", (long long)now);
        return 0;
    }
    gmtime_r(&now, &tm);
    for (const char *p = layout; *p;) {
        size_t k = 0;
        while (k < ARRAY_LEN(layout_map) && strncmp(p, layout_map[k][0], strlen(layout_map[k][0])))
            k++;
        if (k == ARRAY_LEN(layout_map)) {
            buf_append_cstr(&f, *p == '%' ? "%%" : (char[]){*p, '\0'});
            p++;
        } else {
            buf_append_cstr(&f, layout_map[k][1]);
            p += strlen(layout_map[k][0]);
        }
    }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    size_t len = f.len ? strftime(res, sizeof(res), f.data, &tm) : 0;
#pragma GCC diagnostic pop
    buf_free(&f);
    *out = json_stringn_nocheck(res, len);
    return 0;
}

/* env NAME: the value, "" when unset; envOrDefault NAME DEFAULT: DEFAULT only when unset (a
 * variable set to "" gives ""). */
static int fn_env(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const char *v = getenv(json_string_value(args[0]));

    *out = !v && nargs > 1 ? json_incref(args[1]) : json_str_or_empty(v);
    return 0;
}

static int fn_must_env(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const char *v = getenv(json_string_value(args[0]));

    if (!v || !*v)
        return tmpl_fail(ev, "error calling mustEnv: required environment variable %s is empty",
                         json_string_value(args[0]));
    *out = json_str_or_empty(v);
    return 0;
}

/* loop's bound: an integer, or a string as parseInt reads it, as consul-template takes them. */
static int loop_bound(struct tmpl_eval *ev, const json_t *v, json_int_t *out)
{
    long long n;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return tmpl_fail(ev, "error calling loop: loop: bad argument type: %s", tmpl_type_name(v));
    if (parse_int(ev, "loop", v, &n) < 0)
        return -EINVAL;
    *out = n;
    return 0;
}

/* loop N (0..N-1) or loop FROM TO (FROM..TO-1): a list of integers, bounded. */
static int fn_loop(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_int_t from = 0, to;

    if (nargs < 1 || nargs > 2)
        return tmpl_fail(ev,
                         "error calling loop: loop: wrong number of arguments, expected 1 or 2, "
                         "but got %zu",
                         nargs);
    if ((nargs == 2 && loop_bound(ev, args[0], &from) < 0) ||
        loop_bound(ev, args[nargs - 1], &to) < 0)
        return -EINVAL;
    /* in unsigned arithmetic: TO - FROM overflows int64 for far-apart bounds */
    if (to > from && (uint64_t)to - (uint64_t)from > LOOP_MAX)
        return tmpl_fail(ev, "error calling loop: more than %d items", LOOP_MAX);
    *out = json_array();
    for (json_int_t i = from; i < to; i++)
        json_array_append_new(*out, json_integer(i));
    return 0;
}

/* executeTemplate NAME [DOT]: a {{ define }}'s output as a string, to pass on in a pipeline. */
static int fn_execute_template(struct tmpl_eval *ev, json_t *const *args, size_t nargs,
                               json_t **out)
{
    return tmpl_eval_execute(ev, json_string_value(args[0]), nargs > 1 ? args[1] : NULL, out);
}

static const struct tmpl_func builtins[] = {
    {"and", fn_lazy, 1, -1, NULL},
    {"or", fn_lazy, 1, -1, NULL},
    {"not", fn_not, 1, 1, NULL},
    {"eq", fn_eq, 1, -1, NULL},
    {"ne", fn_ne, 2, 2, NULL},
    {"lt", fn_lt, 2, 2, NULL},
    {"le", fn_le, 2, 2, NULL},
    {"gt", fn_gt, 2, 2, NULL},
    {"ge", fn_ge, 2, 2, NULL},
    {"len", fn_len, 1, 1, NULL},
    {"index", fn_index, 1, -1, NULL},
    {"slice", fn_slice, 1, -1, NULL},
    {"call", fn_call, 1, -1, NULL},
    {"printf", fn_printf, 1, -1, "s."},
    {"print", fn_print, 0, -1, NULL},
    {"println", fn_println, 0, -1, NULL},
    {"contains", fn_contains, 2, 2, NULL},
    {"containsAny", fn_contains_any, 2, 2, "l."},
    {"containsAll", fn_contains_all, 2, 2, "l."},
    {"containsNone", fn_contains_none, 2, 2, "l."},
    {"containsNotAll", fn_contains_not_all, 2, 2, "l."},
    {"in", fn_in, 2, 2, NULL},
    {"join", fn_join, 2, 2, "sl"},
    {"split", fn_split, 2, 2, "ss"},
    {"splitToMap", fn_split_to_map, 3, 3, "s"},
    {"replaceAll", fn_replace_all, 3, 3, "sss"},
    {"toLower", fn_to_lower, 1, 1, "s"},
    {"toUpper", fn_to_upper, 1, 1, "s"},
    {"trimSpace", fn_trim_space, 1, 1, "s"},
    {"parseInt", fn_parse_int, 1, 1, "s"},
    {"timestamp", fn_timestamp, 0, 1, "s"},
    {"env", fn_env, 1, 1, "s"},
    {"envOrDefault", fn_env, 2, 2, "ss"},
    {"mustEnv", fn_must_env, 1, 1, "s"},
    {"loop", fn_loop, 0, -1, NULL}, /* checks its own arguments, as consul-template's does */
    {"scratch", fn_scratch, 0, 0, NULL},
    {"executeTemplate", fn_execute_template, 1, 2, "s."},
};

const struct tmpl_func *tmpl_func_find(const char *name)
{
    const struct tmpl_func *f;

    if ((f = tmpl_func_lookup(builtins, ARRAY_LEN(builtins), name)) ||
        (f = tmpl_data_func_find(name)) || (f = tmpl_conv_func_find(name)) ||
        (f = tmpl_format_func_find(name)) || (f = tmpl_yaml_func_find(name)) ||
        (f = tmpl_toml_func_find(name)) || (f = tmpl_escape_func_find(name)) ||
        (f = tmpl_write_func_find(name)))
        return f;
    return tmpl_regex_func_find(name);
}

/*
 * consul-template's functions that are not here (docs/template.md says why for each group), so
 * that a template using one is told it is unsupported rather than misspelled.
 */
static const char *const unsupported[] = {
    "caLeaf",           "caRoots",       "connect",  "exportedServices", "importedServices",
    "nomadService",     "nomadServices", "nomadVar", "nomadVarExists",   "nomadVarList",
    "nomadVarListSafe", "partitions",    "peerings", "pkiCert",          "plugin",
    "secret",           "secrets",       "sockaddr", "spew_dump",        "spew_printf",
    "spew_sdump",       "spew_sprintf",
};

bool tmpl_func_unsupported(const char *name)
{
    if (strncmp(name, "sprig_", 6) == 0) /* consul-template's optional Sprig library */
        return true;
    for (size_t i = 0; i < ARRAY_LEN(unsupported); i++)
        if (strcmp(unsupported[i], name) == 0)
            return true;
    return false;
}
