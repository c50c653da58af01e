/*
 * consul-template's conversion and arithmetic helpers: trim, trimPrefix, trimSuffix, parseBool,
 * parseFloat, parseUint, parseJSON, base64Encode/Decode and their URL variants, and add,
 * subtract, multiply, divide, modulo, minimum, maximum. Two-argument helpers take their
 * operand last, for pipelines: {{ .Port | add 1 }} is Port + 1, {{ 10 | subtract 3 }} is 7.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/base64.h"
#include "template/tmpl_internal.h"

/* ---- strings ----------------------------------------------------------------------------- */

/* trim CUTSET S: Go's strings.Trim (the cutset's bytes off both ends). */
static int fn_trim(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const char *set = json_string_value(args[0]), *s = json_string_value(args[1]);
    size_t nset = json_string_length(args[0]), n = json_string_length(args[1]);

    while (n && memchr(set, s[0], nset))
        s++, n--;
    while (n && memchr(set, s[n - 1], nset))
        n--;
    *out = json_stringn_nocheck(s, n);
    return 0;
}

/* trimPrefix PREFIX S, trimSuffix SUFFIX S: S without it when S has it. */
static int trim_affix(json_t *const *args, bool prefix, json_t **out)
{
    const char *a = json_string_value(args[0]), *s = json_string_value(args[1]);
    size_t na = json_string_length(args[0]), n = json_string_length(args[1]);

    if (na <= n && memcmp(prefix ? s : s + n - na, a, na) == 0) {
        n -= na;
        s += prefix ? na : 0;
    }
    *out = json_stringn_nocheck(s, n);
    return 0;
}

static int fn_trim_prefix(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return trim_affix(args, true, out);
}

static int fn_trim_suffix(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return trim_affix(args, false, out);
}

/* ---- parsing ----------------------------------------------------------------------------- */

/* The string argument of a parse function as a C string (free it); "" is answered with a zero
 * value by consul-template's parse functions. */
static char *parse_arg(const json_t *v)
{
    return xstrndup(json_string_value(v), json_string_length(v));
}

static const char *const bool_words[][2] = {
    {"1", "0"}, {"t", "f"}, {"T", "F"}, {"true", "false"}, {"TRUE", "FALSE"}, {"True", "False"},
};

static int fn_parse_bool(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    char *c = parse_arg(args[0]);
    bool empty = json_string_length(args[0]) == 0;
    int rc = -EINVAL;

    for (size_t i = 0; i < ARRAY_LEN(bool_words) && rc < 0; i++) {
        if (empty || strcmp(c, bool_words[i][0]) == 0 || strcmp(c, bool_words[i][1]) == 0) {
            *out = json_boolean(!empty && strcmp(c, bool_words[i][0]) == 0);
            rc = 0;
        }
    }
    if (rc < 0)
        rc = tmpl_fail(ev,
                       "error calling parseBool: parseBool: strconv.ParseBool: parsing \"%s\": "
                       "invalid syntax",
                       c);
    free(c);
    return rc;
}

/* Go's number syntax starts with a sign or an alphanumeric: strtod's leading spaces are not it. */
static bool number_start(const char *c)
{
    return c[0] == '+' || c[0] == '-' || c[0] == '.' || (c[0] >= '0' && c[0] <= '9') ||
           (c[0] | 0x20) == 'i' || (c[0] | 0x20) == 'n';
}

/*
 * parseFloat, parseUint: Go's strconv over the whole string; "" is 0. Beyond Go: a float must be
 * finite (the values are JSON's) and an unsigned integer at most 2^63-1 (the template's
 * integers are int64).
 */
static int parse_number(struct tmpl_eval *ev, const json_t *v, bool is_float, json_t **out)
{
    const char *name = is_float ? "parseFloat" : "parseUint";
    char *c = parse_arg(v), *end = NULL;
    bool empty = json_string_length(v) == 0, ok;
    int rc = 0;

    errno = 0;
    if (is_float) {
        double d = empty ? 0.0 : strtod(c, &end);
        ok = empty || (number_start(c) && !*end && isfinite(d));
        if (ok)
            *out = json_real(d);
        else if (number_start(c) && !*end && !errno)
            errno = ERANGE; /* inf or nan */
    } else {
        long long ll = empty ? 0 : strtoll(c, &end, 10);
        ok = empty || (c[0] >= '0' && c[0] <= '9' && !*end && !errno);
        if (ok)
            *out = json_integer(ll);
    }
    if (!ok)
        rc = tmpl_fail(ev, "error calling %s: %s: strconv.Parse%s: parsing \"%s\": %s", name, name,
                       name + 5, c, errno == ERANGE ? "value out of range" : "invalid syntax");
    free(c);
    return rc;
}

static int fn_parse_float(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return parse_number(ev, args[0], true, out);
}

static int fn_parse_uint(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return parse_number(ev, args[0], false, out);
}

/* Go's json.Unmarshal into interface{}: every number is a float64 ({{ .n }} of 1e6 prints
 * 1e+06, as there); "" is an empty map. */
static int fn_parse_json(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    const char *s = json_string_value(args[0]);
    size_t n = json_string_length(args[0]);
    json_error_t jerr;

    if (n == 0) {
        *out = json_object();
        return 0;
    }
    json_t *v = json_loadb(s, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (!v)
        return tmpl_fail(ev, "error calling parseJSON: %s at offset %d", jerr.text, jerr.position);
    *out = json_is_null(v) ? NULL : v;
    if (!*out)
        json_decref(v);
    tmpl_sort_map(*out, true); /* Go's maps: toJSON writes their keys sorted */
    return 0;
}

/* ---- base64 ------------------------------------------------------------------------------ */

/* The URL alphabet differs from the standard one in two characters. */
static void base64_swap(char *s, size_t n, char from62, char from63, char to62, char to63)
{
    for (size_t i = 0; i < n; i++)
        s[i] = s[i] == from62 ? to62 : s[i] == from63 ? to63 : s[i];
}

static int base64_encode_fn(const json_t *v, bool url, json_t **out)
{
    char *e = base64_encode(json_string_value(v), json_string_length(v));

    if (url)
        base64_swap(e, strlen(e), '+', '/', '-', '_');
    *out = json_string_nocheck(e);
    free(e);
    return 0;
}

static int base64_decode_fn(struct tmpl_eval *ev, const json_t *v, bool url, json_t **out)
{
    const char *s = json_string_value(v), *name = url ? "base64URLDecode" : "base64Decode";
    size_t n = json_string_length(v), len;

    /* the other alphabet's two characters are not data in this one */
    char *c = xstrndup(s, n);
    bool foreign = strlen(c) != n || strpbrk(c, url ? "+/" : "-_");
    if (url)
        base64_swap(c, n, '-', '_', '+', '/');
    unsigned char *d = foreign ? NULL : base64_decode(c, &len);
    free(c);
    if (!d)
        return tmpl_fail(ev, "error calling %s: %s: illegal base64 data", name, name);
    *out = json_stringn_nocheck((const char *)d, len);
    free(d);
    return 0;
}

static int fn_base64_encode(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return base64_encode_fn(args[0], false, out);
}

static int fn_base64_decode(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return base64_decode_fn(ev, args[0], false, out);
}

static int fn_base64_url_encode(struct tmpl_eval *ev, json_t *const *args, size_t nargs,
                                json_t **out)
{
    return base64_encode_fn(args[0], true, out);
}

static int fn_base64_url_decode(struct tmpl_eval *ev, json_t *const *args, size_t nargs,
                                json_t **out)
{
    return base64_decode_fn(ev, args[0], true, out);
}

/* ---- arithmetic -------------------------------------------------------------------------- */

/*
 * consul-template's OP B A computes A op B: integers stay integers (wrapping on overflow, as in
 * Go), a float on either side makes a float; modulo takes integers only.
 */
static int arith(struct tmpl_eval *ev, const char *op, char sym, json_t *const *args, json_t **out)
{
    const json_t *b = args[0], *a = args[1];

    for (int i = 1; i >= 0; i--) {
        const json_t *x = args[i];
        if (json_is_integer(x) || (json_is_real(x) && sym != '%'))
            continue;
        struct buf q = BUF_INIT;
        if (json_is_string(x))
            tmpl_quote(&q, json_string_value(x), json_string_length(x));
        else
            tmpl_print(&q, x);
        int rc = tmpl_fail(ev, "error calling %s: %s: unknown type for %.*s (%s)", op, op,
                           (int)q.len, q.data ? q.data : "", tmpl_type_name(x));
        buf_free(&q);
        return rc;
    }
    if (json_is_integer(a) && json_is_integer(b)) {
        /* + - * in unsigned arithmetic: Go wraps where C's signed overflow is undefined */
        uint64_t x = (uint64_t)json_integer_value(a), y = (uint64_t)json_integer_value(b);
        json_int_t sx = json_integer_value(a), sy = json_integer_value(b), r;
        if ((sym == '/' || sym == '%') && sy == 0)
            return tmpl_fail(ev, "error calling %s: runtime error: integer divide by zero", op);
        switch (sym) {
        case '+':
            r = (json_int_t)(x + y);
            break;
        case '-':
            r = (json_int_t)(x - y);
            break;
        case '*':
            r = (json_int_t)(x * y);
            break;
        /* INT64_MIN / -1 wraps in Go; in C it traps */
        case '/':
            r = sy == -1 ? (json_int_t)(0 - x) : sx / sy;
            break;
        default:
            r = sy == -1 ? 0 : sx % sy;
            break;
        }
        *out = json_integer(r);
        return 0;
    }
    double x = json_number_value(a), y = json_number_value(b);
    *out = json_real(sym == '+' ? x + y : sym == '-' ? x - y : sym == '*' ? x * y : x / y);
    return 0;
}

#define ARITH_FN(fn, name, sym)                                                                    \
    static int fn(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)           \
    {                                                                                              \
        return arith(ev, name, sym, args, out);                                                    \
    }
ARITH_FN(fn_add, "add", '+')
ARITH_FN(fn_subtract, "subtract", '-')
ARITH_FN(fn_multiply, "multiply", '*')
ARITH_FN(fn_divide, "divide", '/')
ARITH_FN(fn_modulo, "modulo", '%')

/* minimum B A, maximum B A: A when it is strictly smaller (larger), else B, each as it is. */
static int extreme(struct tmpl_eval *ev, const char *op, json_t *const *args, json_t **out)
{
    const json_t *b = args[0], *a = args[1];

    for (int i = 1; i >= 0; i--)
        if (!json_is_number(args[i]))
            return tmpl_fail(ev, "error calling %s: %s: unknown type for %s", op, op,
                             tmpl_type_name(args[i]));
    bool a_less = json_is_integer(a) && json_is_integer(b)
                      ? json_integer_value(a) < json_integer_value(b)
                      : json_number_value(a) < json_number_value(b);
    bool a_more = json_is_integer(a) && json_is_integer(b)
                      ? json_integer_value(a) > json_integer_value(b)
                      : json_number_value(a) > json_number_value(b);
    *out = json_incref((json_t *)((op[1] == 'i' ? a_less : a_more) ? a : b));
    return 0;
}

static int fn_minimum(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return extreme(ev, "minimum", args, out);
}

static int fn_maximum(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return extreme(ev, "maximum", args, out);
}

static const struct tmpl_func conv_funcs[] = {
    {"trim", fn_trim, 2, 2, "s"},
    {"trimPrefix", fn_trim_prefix, 2, 2, "s"},
    {"trimSuffix", fn_trim_suffix, 2, 2, "s"},
    {"parseBool", fn_parse_bool, 1, 1, "s"},
    {"parseFloat", fn_parse_float, 1, 1, "s"},
    {"parseUint", fn_parse_uint, 1, 1, "s"},
    {"parseJSON", fn_parse_json, 1, 1, "s"},
    {"base64Encode", fn_base64_encode, 1, 1, "s"},
    {"base64Decode", fn_base64_decode, 1, 1, "s"},
    {"base64URLEncode", fn_base64_url_encode, 1, 1, "s"},
    {"base64URLDecode", fn_base64_url_decode, 1, 1, "s"},
    /* the arithmetic checks its operands itself, naming the operation as consul-template does */
    {"add", fn_add, 2, 2, NULL},
    {"subtract", fn_subtract, 2, 2, NULL},
    {"multiply", fn_multiply, 2, 2, NULL},
    {"divide", fn_divide, 2, 2, NULL},
    {"modulo", fn_modulo, 2, 2, NULL},
    {"minimum", fn_minimum, 2, 2, NULL},
    {"maximum", fn_maximum, 2, 2, NULL},
};

const struct tmpl_func *tmpl_conv_func_find(const char *name)
{
    return tmpl_func_lookup(conv_funcs, ARRAY_LEN(conv_funcs), name);
}
