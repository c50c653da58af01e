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
        return tmpl_fail(ev, "wrong number of args for %s: want %d got %zu", f->name,
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

/* Orders a and b (numbers with numbers, strings with strings, bools for equality only). */
static int compare(struct tmpl_eval *ev, const json_t *a, const json_t *b, bool ordered, int *cmp)
{
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b)) {
            json_int_t x = json_integer_value(a), y = json_integer_value(b);
            *cmp = x < y ? -1 : x > y;
        } else {
            double x = json_number_value(a), y = json_number_value(b);
            *cmp = x < y ? -1 : x > y;
        }
        return 0;
    }
    if (json_is_string(a) && json_is_string(b)) {
        size_t na = json_string_length(a), nb = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), na < nb ? na : nb);
        *cmp = c ? (c < 0 ? -1 : 1) : na < nb ? -1 : na > nb;
        return 0;
    }
    if (!ordered && json_is_boolean(a) && json_is_boolean(b)) {
        *cmp = json_is_true(a) != json_is_true(b);
        return 0;
    }
    if (!ordered && (is_nil(a) || is_nil(b))) {
        *cmp = !(is_nil(a) && is_nil(b));
        return 0;
    }
    if (!ordered && (json_is_array(a) || json_is_object(a)) && json_typeof(a) == json_typeof(b)) {
        *cmp = !json_equal((json_t *)a, (json_t *)b);
        return 0;
    }
    if (ordered && (is_nil(a) || json_is_boolean(a) || json_is_array(a) || json_is_object(a)))
        return tmpl_fail(ev, "invalid type for comparison");
    return tmpl_fail(ev, "incompatible types for comparison");
}

static int fn_eq(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    bool eq = false;
    int cmp = 0;

    for (size_t i = 1; i < nargs && !eq; i++) {
        if (compare(ev, args[0], args[i], false, &cmp) < 0)
            return -EINVAL;
        eq = cmp == 0;
    }
    *out = json_boolean(eq);
    return 0;
}

static int fn_order(struct tmpl_eval *ev, json_t *const *args, const char *op, json_t **out)
{
    int cmp = 0;
    bool ordered = op[0] == 'l' || op[0] == 'g';

    if (compare(ev, args[0], args[1], ordered, &cmp) < 0)
        return -EINVAL;
    bool r = op[0] == 'n'   ? cmp != 0
             : op[0] == 'l' ? (op[1] == 't' ? cmp < 0 : cmp <= 0)
                            : (op[1] == 't' ? cmp > 0 : cmp >= 0);
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

static int fn_index(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_t *v = args[0];

    if (is_nil(v))
        return tmpl_fail(ev, "error calling index: index of untyped nil");
    for (size_t i = 1; i < nargs; i++) {
        const json_t *k = args[i];
        if (json_is_array(v) && json_is_integer(k)) {
            json_int_t at = json_integer_value(k);
            if (at < 0 || (size_t)at >= json_array_size(v))
                return tmpl_fail(ev, "error calling index: index out of range: %lld",
                                 (long long)at);
            v = json_array_get(v, (size_t)at);
        } else if (json_is_object(v) && json_is_string(k)) {
            v = json_object_get(v, json_string_value(k));
        } else if (json_is_object(v) && json_is_integer(k)) {
            /* byPort's map, whose keys are Go ints: index it by the port */
            char key[24];
            snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(k));
            v = json_object_get(v, key);
        } else if (is_nil(v)) {
            v = NULL; /* a missing map entry indexes to nil, as Go's zero value */
        } else {
            return tmpl_fail(ev, "error calling index: cannot index %s with %s", tmpl_type_name(v),
                             tmpl_type_name(k));
        }
    }
    *out = json_incref(v);
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

/* Go's fmt.Sprint adds spaces between operands when neither is a string; Sprintln always. */
static int print_common(json_t *const *args, size_t nargs, bool ln, json_t **out)
{
    struct buf b = BUF_INIT;

    for (size_t i = 0; i < nargs; i++) {
        if (i && (ln || (!json_is_string(args[i]) && !json_is_string(args[i - 1]))))
            buf_append_cstr(&b, " ");
        tmpl_sprintf(&b, "%v", 2, &args[i], 1);
    }
    if (ln)
        buf_append_cstr(&b, "\n");
    *out = buf_string(&b);
    buf_free(&b);
    return 0;
}

static int fn_print(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return print_common(args, nargs, false, out);
}

static int fn_println(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return print_common(args, nargs, true, out);
}

/* ---- consul-template's helpers ----------------------------------------------------------- */

static bool has_item(const json_t *haystack, const json_t *needle)
{
    size_t i;
    json_t *x;

    if (json_is_string(haystack) && json_is_string(needle))
        return memmem(json_string_value(haystack), json_string_length(haystack),
                      json_string_value(needle), json_string_length(needle)) != NULL;
    json_array_foreach(haystack, i, x) if (json_equal(x, (json_t *)needle)) return true;
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

static int fn_parse_int(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    size_t n = json_string_length(args[0]);
    char *end, *c = xstrndup(json_string_value(args[0]), n);

    errno = 0;
    long long v = strtoll(c, &end, 10);
    int rc = 0;
    if (n == 0 || *end || errno || c[0] == ' ' || c[0] == '\t' || c[0] == '\n')
        rc = tmpl_fail(ev, "error calling parseInt: strconv.ParseInt: parsing \"%s\": %s", c,
                       errno == ERANGE ? "value out of range" : "invalid syntax");
    else
        *out = json_integer(v);
    free(c);
    return rc;
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

/* loop N (0..N-1) or loop FROM TO (FROM..TO-1): a list of integers, bounded. */
static int fn_loop(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_int_t from = 0, to;

    to = json_integer_value(args[nargs - 1]);
    if (nargs == 2)
        from = json_integer_value(args[0]);
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
    {"eq", fn_eq, 2, -1, NULL},
    {"ne", fn_ne, 2, 2, NULL},
    {"lt", fn_lt, 2, 2, NULL},
    {"le", fn_le, 2, 2, NULL},
    {"gt", fn_gt, 2, 2, NULL},
    {"ge", fn_ge, 2, 2, NULL},
    {"len", fn_len, 1, 1, NULL},
    {"index", fn_index, 1, -1, NULL},
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
    {"loop", fn_loop, 1, 2, "i"},
    {"scratch", fn_scratch, 0, 0, NULL},
    {"executeTemplate", fn_execute_template, 1, 2, "s."},
};

const struct tmpl_func *tmpl_func_find(const char *name)
{
    const struct tmpl_func *f;

    if ((f = tmpl_func_lookup(builtins, ARRAY_LEN(builtins), name)) ||
        (f = tmpl_data_func_find(name)) || (f = tmpl_conv_func_find(name)) ||
        (f = tmpl_format_func_find(name)) || (f = tmpl_yaml_func_find(name)) ||
        (f = tmpl_toml_func_find(name)))
        return f;
    return tmpl_regex_func_find(name);
}

/*
 * consul-template's functions that are not here (docs/template.md says why for each group), so
 * that a template using one is told it is unsupported rather than misspelled.
 */
static const char *const unsupported[] = {
    "caLeaf",           "caRoots",       "connect",     "exportedServices", "importedServices",
    "nomadService",     "nomadServices", "nomadVar",    "nomadVarExists",   "nomadVarList",
    "nomadVarListSafe", "partitions",    "peerings",    "pkiCert",          "plugin",
    "secret",           "secrets",       "sockaddr",    "spew_dump",        "spew_printf",
    "spew_sdump",       "spew_sprintf",  "writeToFile",
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
