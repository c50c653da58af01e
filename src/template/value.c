/*
 * Values as Go prints and judges them: truth, fmt's %v (floats in their shortest form, maps in
 * key order), strconv.Quote, and the printf verbs templates use.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/numfmt.h"
#include "lib/str.h"
#include "template/tmpl_internal.h"

bool tmpl_truth(const json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    case JSON_TRUE:
        return true;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return false;
    }
}

const char *tmpl_type_name(const json_t *v)
{
    if (!v || json_is_null(v))
        return "<nil>";
    switch (json_typeof(v)) {
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "int";
    case JSON_REAL:
        return "float64";
    case JSON_ARRAY:
        return "[]interface {}";
    case JSON_OBJECT:
        return "map[string]interface {}";
    default:
        return "bool";
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char **tmpl_sorted_keys(const json_t *obj, size_t *n)
{
    const char **keys = xcalloc(json_object_size(obj) + 1, sizeof(*keys));
    const char *k;
    json_t *v;

    *n = 0;
    json_object_foreach((json_t *)obj, k, v) keys[(*n)++] = k;
    qsort(keys, *n, sizeof(*keys), cmp_str);
    return keys;
}

void tmpl_sort_map(json_t *obj, bool deep)
{
    size_t n, i;
    json_t *x;

    if (deep && json_is_array(obj))
        json_array_foreach(obj, i, x) tmpl_sort_map(x, true);
    if (!json_is_object(obj))
        return;
    const char **keys = tmpl_sorted_keys(obj, &n);
    for (i = 0; i < n; i++) {
        /* the key string belongs to the member: keep a copy across its removal */
        char *k = xstrdup(keys[i]);
        x = json_incref(json_object_get(obj, k));
        json_object_del(obj, k);
        if (deep)
            tmpl_sort_map(x, true);
        json_object_set_new_nocheck(obj, k, x);
        free(k);
    }
    free(keys);
}

void tmpl_trim_space(const char **s, size_t *n)
{
    while (*n && memchr(" \t\r\n\v\f", (*s)[0], 6))
        (*s)++, (*n)--;
    while (*n && memchr(" \t\r\n\v\f", (*s)[*n - 1], 6))
        (*n)--;
}

static void print_value(struct buf *out, const json_t *v, bool top)
{
    size_t n;

    if (!v || json_is_null(v)) {
        buf_append_cstr(out, top ? "<no value>" : "<nil>");
        return;
    }
    switch (json_typeof(v)) {
    case JSON_STRING:
        buf_append(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        numfmt_go_g(out, json_real_value(v));
        break;
    case JSON_ARRAY:
        buf_append_cstr(out, "[");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                buf_append_cstr(out, " ");
            print_value(out, json_array_get(v, i), false);
        }
        buf_append_cstr(out, "]");
        break;
    case JSON_OBJECT: {
        const char **keys = tmpl_sorted_keys(v, &n);
        buf_append_cstr(out, "map[");
        for (size_t i = 0; i < n; i++) {
            buf_printf(out, "%s%s:", i ? " " : "", keys[i]);
            print_value(out, json_object_get(v, keys[i]), false);
        }
        buf_append_cstr(out, "]");
        free(keys);
        break;
    }
    default:
        buf_append_cstr(out, json_is_true(v) ? "true" : "false");
        break;
    }
}

void tmpl_print(struct buf *out, const json_t *v)
{
    print_value(out, v, true);
}

void tmpl_quote(struct buf *out, const char *s, size_t len)
{
    static const char named_from[] = "\a\b\f\n\r\t\v", named_to[] = "abfnrtv";

    buf_append_cstr(out, "\"");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *m = c ? memchr(named_from, c, sizeof(named_from) - 1) : NULL;
        if (c == '"' || c == '\\')
            buf_printf(out, "\\%c", c);
        else if (m)
            buf_printf(out, "\\%c", named_to[m - named_from]);
        else if (c < 0x20 || c == 0x7f)
            buf_printf(out, "\\x%02x", c);
        else
            buf_append(out, &s[i], 1);
    }
    buf_append_cstr(out, "\"");
}

/* ---- printf ------------------------------------------------------------------------------ */

struct spec {
    bool minus, plus, space, zero, sharp;
    int width, prec; /* -1 when absent */
    char verb;
};

/* Go's utf8.RuneCount: each well-formed sequence, and each byte of an ill-formed one, is one. */
static size_t rune_count(const char *s, size_t n)
{
    size_t runes = 0;

    for (size_t i = 0; i < n; runes++) {
        size_t len = (unsigned char)s[i] < 0x80 ? 1 : str_utf8_seq_len((struct str){s + i, n - i});
        i += len ? len : 1;
    }
    return runes;
}

/* The bytes of s's first max runes (as rune_count counts them). */
static size_t rune_prefix(const char *s, size_t n, size_t max)
{
    size_t i = 0;

    for (size_t runes = 0; i < n && runes < max; runes++) {
        size_t len = (unsigned char)s[i] < 0x80 ? 1 : str_utf8_seq_len((struct str){s + i, n - i});
        i += len ? len : 1;
    }
    return i;
}

/* Pads s to the width in runes, as Go's fmt counts it. */
static void pad(struct buf *out, const struct spec *sp, const char *s, size_t n)
{
    size_t w = sp->width > 0 ? (size_t)sp->width : 0;
    char fill = sp->zero && !sp->minus ? '0' : ' ';

    if (sp->minus)
        buf_append(out, s, n);
    for (size_t i = w ? rune_count(s, n) : 0; i < w; i++)
        buf_append(out, &fill, 1);
    if (!sp->minus)
        buf_append(out, s, n);
}

static void bad_verb(struct buf *out, char verb, const json_t *v)
{
    buf_printf(out, "%%!%c(", verb);
    if (!v || json_is_null(v)) {
        buf_append_cstr(out, "<nil>");
    } else {
        buf_printf(out, "%s=", tmpl_type_name(v));
        print_value(out, v, false);
    }
    buf_append_cstr(out, ")");
}

/* A C conversion for one number, with the spec's flags, width and precision. */
static void c_number(struct buf *out, const struct spec *sp, const char *conv, const json_t *v)
{
    char fmt[32];
    bool is_int = json_is_integer(v);
    /* C ignores the 0 flag of an integer given a precision: pass one only when written */
    bool with_prec = !is_int || sp->prec >= 0;
    int n = snprintf(fmt, sizeof(fmt), "%%%s%s%s%s%s*%s%s", sp->minus ? "-" : "",
                     sp->plus ? "+" : "", sp->space ? " " : "", sp->zero ? "0" : "",
                     sp->sharp ? "#" : "", with_prec ? ".*" : "", conv);
    int prec = sp->prec >= 0 ? sp->prec : 6;

    if (n < 0 || (size_t)n >= sizeof(fmt))
        return;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (is_int && with_prec)
        buf_printf(out, fmt, sp->width, prec, (long long)json_integer_value(v));
    else if (is_int)
        buf_printf(out, fmt, sp->width, (long long)json_integer_value(v));
    else
        buf_printf(out, fmt, sp->width, prec, json_real_value(v));
#pragma GCC diagnostic pop
}

/*
 * Pads a number's text, sign (or none) then body, as Go's fmt: zeros go between the sign and
 * the body; '+' and ' ' flags give non-negative numbers their sign.
 */
static void pad_number(struct buf *out, const struct spec *sp, bool neg, const char *body, size_t n)
{
    char sign = neg ? '-' : sp->plus ? '+' : sp->space ? ' ' : 0;
    size_t len = n + (sign ? 1 : 0), w = sp->width > 0 ? (size_t)sp->width : 0;

    if (sp->zero && !sp->minus && w > len) {
        if (sign)
            buf_append(out, &sign, 1);
        for (size_t i = len; i < w; i++)
            buf_append_cstr(out, "0");
        buf_append(out, body, n);
        return;
    }
    struct buf t = BUF_INIT;
    if (sign)
        buf_append(&t, &sign, 1);
    buf_append(&t, body, n);
    pad(out, sp, t.data, t.len);
    buf_free(&t);
}

/* %b: an integer in binary ("0b" with '#'); a float64 as strconv's 'b' format, mantissa
 * "p" binary exponent (8 is 4503599627370496p-49). */
static void format_binary(struct buf *out, const struct spec *sp, const json_t *v)
{
    struct buf b = BUF_INIT;
    bool neg;

    if (json_is_integer(v)) {
        json_int_t x = json_integer_value(v);
        uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
        char digits[64];
        size_t n = 0;
        neg = x < 0;
        do
            digits[n++] = (char)('0' + (u & 1));
        while (u >>= 1);
        if (sp->sharp)
            buf_append_cstr(&b, "0b");
        while (n)
            buf_append(&b, &digits[--n], 1);
    } else {
        double d = json_real_value(v);
        uint64_t bits;
        memcpy(&bits, &d, sizeof(bits));
        int exp = (int)((bits >> 52) & 0x7ff);
        uint64_t mant = bits & ((UINT64_C(1) << 52) - 1);
        neg = bits >> 63;
        if (exp == 0)
            exp = 1; /* subnormal */
        else
            mant |= UINT64_C(1) << 52;
        buf_printf(&b, "%" PRIu64 "p%+d", mant, exp - 1075);
    }
    pad_number(out, sp, neg, b.data, b.len);
    buf_free(&b);
}

/* %c: the rune's UTF-8 (U+FFFD for what is not one); %U: "U+0041", with '#' "U+0041 'A'". */
static void format_rune(struct buf *out, const struct spec *sp, json_int_t r)
{
    struct buf b = BUF_INIT;
    uint32_t c = r < 0 || r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff) ? 0xfffd : (uint32_t)r;
    char u8[4];
    size_t n = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;

    u8[0] = (char)(n == 1 ? c : n == 2 ? 0xc0 | c >> 6 : n == 3 ? 0xe0 | c >> 12 : 0xf0 | c >> 18);
    for (size_t i = 1; i < n; i++)
        u8[i] = (char)(0x80 | ((c >> (6 * (n - 1 - i))) & 0x3f));
    if (sp->verb == 'c') {
        buf_append(&b, u8, n);
    } else {
        buf_printf(&b, "U+%04llX", (unsigned long long)r);
        if (sp->sharp && r >= 0 && r <= 0x10ffff && tmpl_unicode_is_print((uint32_t)r)) {
            buf_append_cstr(&b, " '");
            buf_append(&b, u8, n);
            buf_append_cstr(&b, "'");
        }
    }
    pad(out, sp, b.data, b.len);
    buf_free(&b);
}

static void format_one(struct buf *out, const struct spec *sp, const json_t *v)
{
    struct buf tmp = BUF_INIT;
    bool is_int = json_is_integer(v), is_num = is_int || json_is_real(v);

    switch (sp->verb) {
    case 'v':
    case 's':
        if (sp->verb == 's' && !json_is_string(v) && !json_is_array(v) && !json_is_object(v)) {
            bad_verb(out, sp->verb, v);
            break;
        }
        print_value(&tmp, v, false);
        if (sp->prec >= 0 && json_is_string(v)) /* a precision counts runes */
            tmp.len = rune_prefix(tmp.data, tmp.len, (size_t)sp->prec);
        pad(out, sp, tmp.data, tmp.len);
        break;
    case 'q':
        if (!json_is_string(v)) {
            bad_verb(out, sp->verb, v);
            break;
        }
        tmpl_quote(&tmp, json_string_value(v), json_string_length(v));
        pad(out, sp, tmp.data, tmp.len);
        break;
    case 'T':
        pad(out, sp, tmpl_type_name(v), strlen(tmpl_type_name(v)));
        break;
    case 'b':
        if (is_num)
            format_binary(out, sp, v);
        else
            bad_verb(out, sp->verb, v);
        break;
    case 'c':
    case 'U':
        if (is_int)
            format_rune(out, sp, json_integer_value(v));
        else
            bad_verb(out, sp->verb, v);
        break;
    case 't':
        if (!json_is_boolean(v)) {
            bad_verb(out, sp->verb, v);
            break;
        }
        pad(out, sp, json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5);
        break;
    case 'd':
    case 'x':
    case 'X':
    case 'o':
        if (!is_int) {
            if (json_is_string(v) && sp->verb != 'd' && sp->verb != 'o') {
                for (size_t i = 0; i < json_string_length(v); i++)
                    buf_printf(&tmp, sp->verb == 'x' ? "%02x" : "%02X",
                               (unsigned char)json_string_value(v)[i]);
                pad(out, sp, tmp.data, tmp.len);
            } else {
                bad_verb(out, sp->verb, v);
            }
            break;
        }
        c_number(out, sp,
                 sp->verb == 'd'   ? "lld"
                 : sp->verb == 'x' ? "llx"
                 : sp->verb == 'X' ? "llX"
                                   : "llo",
                 v);
        break;
    case 'f':
    case 'F':
    case 'e':
    case 'E':
    case 'g':
    case 'G':
        if (!is_num || is_int) {
            bad_verb(out, sp->verb, v);
            break;
        }
        c_number(out, sp, (char[]){sp->verb == 'F' ? 'f' : sp->verb, '\0'}, v);
        break;
    default:
        bad_verb(out, sp->verb, v);
        break;
    }
    buf_free(&tmp);
}

/* Reads flags, width and precision after '%' at fmt[*i]; 0, or -1 at the end of fmt. */
static int read_spec(const char *fmt, size_t len, size_t *i, struct spec *sp)
{
    *sp = (struct spec){.width = -1, .prec = -1};
    for (; *i < len && fmt[*i] && strchr("-+ 0#", fmt[*i]); (*i)++) {
        sp->minus |= fmt[*i] == '-';
        sp->plus |= fmt[*i] == '+';
        sp->space |= fmt[*i] == ' ';
        sp->zero |= fmt[*i] == '0';
        sp->sharp |= fmt[*i] == '#';
    }
    for (; *i < len && isdigit((unsigned char)fmt[*i]) && sp->width < 100000; (*i)++)
        sp->width = (sp->width < 0 ? 0 : sp->width * 10) + (fmt[*i] - '0');
    if (*i < len && fmt[*i] == '.') {
        sp->prec = 0;
        for ((*i)++; *i < len && isdigit((unsigned char)fmt[*i]) && sp->prec < 100000; (*i)++)
            sp->prec = sp->prec * 10 + (fmt[*i] - '0');
    }
    if (*i >= len)
        return -1;
    sp->verb = fmt[(*i)++];
    return 0;
}

void tmpl_sprintf(struct buf *out, const char *fmt, size_t len, json_t *const *args, size_t nargs)
{
    size_t argi = 0;
    struct spec sp;

    for (size_t i = 0; i < len;) {
        if (fmt[i] != '%') {
            buf_append(out, &fmt[i++], 1);
            continue;
        }
        i++;
        if (read_spec(fmt, len, &i, &sp) < 0) {
            buf_append_cstr(out, "%!(NOVERB)");
            break;
        }
        if (sp.verb == '%') {
            buf_append_cstr(out, "%");
            continue;
        }
        if (argi >= nargs) {
            buf_printf(out, "%%!%c(MISSING)", sp.verb);
            continue;
        }
        format_one(out, &sp, args[argi++]);
    }
    if (argi < nargs) {
        buf_append_cstr(out, "%!(EXTRA ");
        for (size_t i = argi; i < nargs; i++) {
            buf_printf(out, "%s%s=", i > argi ? ", " : "", tmpl_type_name(args[i]));
            print_value(out, args[i], false);
        }
        buf_append_cstr(out, ")");
    }
}

void tmpl_sprint(struct buf *out, json_t *const *args, size_t nargs, bool ln)
{
    /* Sprint adds a space between operands when neither is a string; Sprintln always */
    for (size_t i = 0; i < nargs; i++) {
        if (i && (ln || (!json_is_string(args[i]) && !json_is_string(args[i - 1]))))
            buf_append_cstr(out, " ");
        tmpl_sprintf(out, "%v", 2, &args[i], 1);
    }
    if (ln)
        buf_append_cstr(out, "\n");
}
