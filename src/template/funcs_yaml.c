/*
 * toYAML and parseYAML as consul-template has them, through gopkg.in/yaml.v2: YAML 1.1, whose
 * plain scalars resolve to booleans (yes, on, y), nulls (~), integers (0x1f, 0o17, 017, 1_000),
 * floats and timestamps. libyaml parses and emits: yaml.v2's parser and emitter are ports of it,
 * so what is left here is yaml.v2's own layer, the resolution of plain scalars, the choice of a
 * string's style and the order of map keys.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/alloc.h"
#include "lib/numfmt.h"
#include "lib/base64.h"
#include "lib/smap.h"
#include "lib/yaml_budget.h"
#include "template/tmpl_internal.h"

#define YAML_MAX_OUTPUT (64u << 20) /* as much as one render may write */
#define YAML_MAX_DEPTH  2048        /* as deep as parseJSON reads (jansson's bound) */
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

/* ---- resolving plain scalars (yaml.v2's resolve.go) -------------------------------------- */

enum yaml_res {
    YAML_RES_STR,
    YAML_RES_NULL,
    YAML_RES_BOOL,
    YAML_RES_INT,
    YAML_RES_UINT, /* above 2^63-1: a YAML integer the template's int64 cannot hold */
    YAML_RES_FLOAT,
    YAML_RES_TIMESTAMP,
};

struct yaml_scalar {
    enum yaml_res res;
    bool b;
    long long i;
    double d;
};

static const struct {
    const char *word;
    enum yaml_res res;
    int value; /* the boolean, or the sign of an infinity (0: NaN) */
} yaml_words[] = {
    {"y", YAML_RES_BOOL, 1},       {"Y", YAML_RES_BOOL, 1},       {"yes", YAML_RES_BOOL, 1},
    {"Yes", YAML_RES_BOOL, 1},     {"YES", YAML_RES_BOOL, 1},     {"true", YAML_RES_BOOL, 1},
    {"True", YAML_RES_BOOL, 1},    {"TRUE", YAML_RES_BOOL, 1},    {"on", YAML_RES_BOOL, 1},
    {"On", YAML_RES_BOOL, 1},      {"ON", YAML_RES_BOOL, 1},      {"n", YAML_RES_BOOL, 0},
    {"N", YAML_RES_BOOL, 0},       {"no", YAML_RES_BOOL, 0},      {"No", YAML_RES_BOOL, 0},
    {"NO", YAML_RES_BOOL, 0},      {"false", YAML_RES_BOOL, 0},   {"False", YAML_RES_BOOL, 0},
    {"FALSE", YAML_RES_BOOL, 0},   {"off", YAML_RES_BOOL, 0},     {"Off", YAML_RES_BOOL, 0},
    {"OFF", YAML_RES_BOOL, 0},     {"", YAML_RES_NULL, 0},        {"~", YAML_RES_NULL, 0},
    {"null", YAML_RES_NULL, 0},    {"Null", YAML_RES_NULL, 0},    {"NULL", YAML_RES_NULL, 0},
    {".nan", YAML_RES_FLOAT, 0},   {".NaN", YAML_RES_FLOAT, 0},   {".NAN", YAML_RES_FLOAT, 0},
    {".inf", YAML_RES_FLOAT, 1},   {".Inf", YAML_RES_FLOAT, 1},   {".INF", YAML_RES_FLOAT, 1},
    {"+.inf", YAML_RES_FLOAT, 1},  {"+.Inf", YAML_RES_FLOAT, 1},  {"+.INF", YAML_RES_FLOAT, 1},
    {"-.inf", YAML_RES_FLOAT, -1}, {"-.Inf", YAML_RES_FLOAT, -1}, {"-.INF", YAML_RES_FLOAT, -1},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Go's strconv.ParseUint(s, base, 64); base 0 reads a 0x, 0o, 0b or 0 prefix. */
static bool go_parse_uint(const char *s, size_t n, int base, uint64_t *out)
{
    uint64_t v = 0;

    if (!n)
        return false;
    if (base == 0) {
        base = 10;
        if (s[0] == '0') {
            char p = n >= 3 ? (char)(s[1] | 0x20) : 0;
            base = p == 'b' ? 2 : p == 'x' ? 16 : 8;
            s += p == 'b' || p == 'o' || p == 'x' ? 2 : 1;
            n -= p == 'b' || p == 'o' || p == 'x' ? 2 : 1;
        }
    }
    for (size_t k = 0; k < n; k++) {
        char c = s[k], l = (char)(c | 0x20);
        int d = is_digit(c) ? c - '0' : l >= 'a' && l <= 'z' ? l - 'a' + 10 : 99;
        if (d >= base || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return true;
}

bool tmpl_go_parse_int(const char *s, size_t n, int base, long long *out)
{
    bool neg = n && s[0] == '-';
    uint64_t u;

    if (n && (s[0] == '+' || s[0] == '-'))
        s++, n--;
    if (!go_parse_uint(s, n, base, &u) || u > (uint64_t)INT64_MAX + neg)
        return false;
    *out = neg ? (long long)(0 - u) : (long long)u;
    return true;
}

/* Digits from s[*i] (at least one), advancing *i. */
static bool skip_digits(const char *s, size_t n, size_t *i)
{
    size_t from = *i;

    while (*i < n && is_digit(s[*i]))
        (*i)++;
    return *i > from;
}

/* yaml.v2's float syntax, ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$, with a
 * required leading dot when dot_first (what Go's ParseFloat takes of a string starting '.'). */
static bool yaml_float_syntax(const char *s, size_t n, bool dot_first)
{
    size_t i = 0;

    if (!dot_first && i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    if (i < n && s[i] == '.') {
        i++;
        if (!skip_digits(s, n, &i))
            return false;
    } else if (dot_first || !skip_digits(s, n, &i)) {
        return false;
    } else if (i < n && s[i] == '.') {
        i++;
        skip_digits(s, n, &i);
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!skip_digits(s, n, &i))
            return false;
    }
    return i == n;
}

/* The float s (checked by yaml_float_syntax) if finite: Go's ParseFloat fails on overflow. */
static bool finite_float(const char *s, size_t n, double *out)
{
    char *c = xstrndup(s, n);
    double d = strtod(c, NULL);

    free(c);
    *out = d;
    return isfinite(d);
}

/* 1 or 2 digits, as Go's time.Parse reads "1", "2", "15", "4", "5"; at most max. */
static bool time_num(const char *s, size_t n, size_t *i, int max, int *out)
{
    if (*i >= n || !is_digit(s[*i]))
        return false;
    int v = s[(*i)++] - '0';
    if (*i < n && is_digit(s[*i]))
        v = v * 10 + s[(*i)++] - '0';
    *out = v;
    return v <= max;
}

static int days_in(int month, int year)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

    return days[month - 1] + (month == 2 && leap);
}

/*
 * Whether s is one of the timestamps yaml.v2 recognizes, the Go layouts "2006-1-2",
 * "2006-1-2 15:4:5.999999999" and "2006-1-2T15:4:5.999999999Z07:00" (or with 't').
 */
static bool yaml_timestamp(const char *s, size_t n)
{
    size_t i = 0;
    int year, month, day, h, m, sec;

    if (n < 5 || !skip_digits(s, n, &i) || i != 4 || s[i++] != '-')
        return false;
    year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    if (!time_num(s, n, &i, 12, &month) || month < 1 || i >= n || s[i++] != '-' ||
        !time_num(s, n, &i, 31, &day) || day < 1 || day > days_in(month, year))
        return false;
    if (i == n)
        return true;
    char sep = s[i++];
    if ((sep != ' ' && sep != 'T' && sep != 't') || !time_num(s, n, &i, 23, &h) || i >= n ||
        s[i++] != ':' || !time_num(s, n, &i, 59, &m) || i >= n || s[i++] != ':' ||
        !time_num(s, n, &i, 59, &sec))
        return false;
    if (i < n && s[i] == '.') {
        i++;
        skip_digits(s, n, &i);
    }
    if (sep == ' ')
        return i == n;
    if (i < n && s[i] == 'Z')
        return i + 1 == n;
    /* ±hh:mm */
    return i + 6 == n && (s[i] == '+' || s[i] == '-') && is_digit(s[i + 1]) && is_digit(s[i + 2]) &&
           s[i + 3] == ':' && is_digit(s[i + 4]) && is_digit(s[i + 5]) &&
           (s[i + 1] - '0') * 10 + (s[i + 2] - '0') <= 24 &&
           (s[i + 4] - '0') * 10 + (s[i + 5] - '0') <= 60;
}

/* A number after its underscores are dropped: integer, then unsigned, then float, then the
 * binary forms yaml.v2 tries last. */
static bool resolve_number(const char *s, size_t n, struct yaml_scalar *v)
{
    char *plain = xmalloc(n + 1);
    size_t len = 0;
    uint64_t u;
    bool ok = true;

    for (size_t k = 0; k < n; k++)
        if (s[k] != '_')
            plain[len++] = s[k];
    plain[len] = '\0';
    if (tmpl_go_parse_int(plain, len, 0, &v->i))
        v->res = YAML_RES_INT;
    else if (go_parse_uint(plain, len, 0, &u))
        v->res = YAML_RES_UINT;
    else if (yaml_float_syntax(plain, len, false) && finite_float(plain, len, &v->d))
        v->res = YAML_RES_FLOAT;
    else if (len > 2 && strncmp(plain, "0b", 2) == 0 &&
             tmpl_go_parse_int(plain + 2, len - 2, 2, &v->i))
        v->res = YAML_RES_INT;
    else if (len > 2 && strncmp(plain, "0b", 2) == 0 && go_parse_uint(plain + 2, len - 2, 2, &u))
        v->res = YAML_RES_UINT;
    else if (len > 3 && strncmp(plain, "-0b", 3) == 0) {
        plain[2] = '-'; /* ParseInt("-" + rest, 2) */
        ok = tmpl_go_parse_int(plain + 2, len - 2, 2, &v->i);
        v->res = YAML_RES_INT;
    } else
        ok = false;
    free(plain);
    return ok;
}

/* What the plain scalar s (n bytes) is to yaml.v2, with timestamps recognized or not. */
static void yaml_resolve(const char *s, size_t n, bool timestamps, struct yaml_scalar *v)
{
    char hint = n ? s[0] : 0;

    memset(v, 0, sizeof(*v));
    v->res = YAML_RES_STR;
    /* only these first bytes can start a word: yaml.v2 looks the others up nowhere */
    if (n == 0 || (hint && strchr("+-0123456789.yYnNtTfFoO~", hint))) {
        for (size_t k = 0; k < ARRAY_LEN(yaml_words); k++) {
            if (strlen(yaml_words[k].word) == n && memcmp(yaml_words[k].word, s, n) == 0) {
                v->res = yaml_words[k].res;
                v->b = yaml_words[k].value == 1;
                v->d = yaml_words[k].value ? yaml_words[k].value * (double)INFINITY : NAN;
                return;
            }
        }
    }
    if (hint == '.') {
        if (yaml_float_syntax(s, n, true) && finite_float(s, n, &v->d))
            v->res = YAML_RES_FLOAT;
    } else if (hint == '+' || hint == '-' || is_digit(hint)) {
        if (timestamps && yaml_timestamp(s, n))
            v->res = YAML_RES_TIMESTAMP;
        else if (!resolve_number(s, n, v))
            v->res = YAML_RES_STR;
    }
}

/* YAML 1.1's base-60 floats (1:20): yaml.v2 reads them as strings but still quotes them. */
static bool yaml_base60_float(const char *s, size_t n)
{
    size_t i = 0;

    if (n && (s[0] == '+' || s[0] == '-'))
        i++;
    if (i >= n || !is_digit(s[i]) || !memchr(s, ':', n))
        return false;
    while (i < n && (is_digit(s[i]) || s[i] == '_'))
        i++;
    if (i >= n || s[i] != ':')
        return false;
    while (i < n && s[i] == ':') {
        size_t from = ++i;
        skip_digits(s, n, &i);
        if (i == from || i - from > 2 || (i - from == 2 && s[from] > '5'))
            return false;
    }
    if (i < n && s[i] == '.')
        for (i++; i < n && (is_digit(s[i]) || s[i] == '_'); i++)
            ;
    return i == n;
}

/* ---- toYAML ------------------------------------------------------------------------------ */

struct yaml_out {
    yaml_emitter_t em;
    struct buf b;
    bool too_large;
};

static int yaml_write(void *data, unsigned char *buffer, size_t size)
{
    struct yaml_out *o = data;

    if (o->b.len + size > YAML_MAX_OUTPUT) {
        o->too_large = true;
        return 0;
    }
    buf_append(&o->b, buffer, size);
    return 1;
}

static bool emit_scalar(struct yaml_out *o, const char *s, size_t n, const char *tag,
                        yaml_scalar_style_t style)
{
    yaml_event_t event;

    if (!yaml_scalar_event_initialize(&event, NULL, (yaml_char_t *)tag, (yaml_char_t *)s, (int)n,
                                      !tag, !tag, style)) {
        o->em.problem = "cannot emit this string";
        return false;
    }
    return yaml_emitter_emit(&o->em, &event);
}

static bool valid_utf8(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t len = (unsigned char)s[i] < 0x80 ? 1 : str_utf8_seq_len((struct str){s + i, n - i});
        if (!len)
            return false;
        i += len;
    }
    return true;
}

/*
 * A string as yaml.v2 writes it: one that would read back as something else (true, 10, null,
 * 2001-12-14, 1:20) double-quoted, one with a line break as a literal block, else plain, which
 * the emitter quotes itself where plain cannot stand ("-", "a: b", " x"). Invalid UTF-8 is
 * written as !!binary base64, in lines of 70.
 */
static bool emit_string(struct yaml_out *o, const char *s, size_t n)
{
    if (!valid_utf8(s, n)) {
        char *b64 = base64_encode(s, n);
        size_t len = strlen(b64), lines = len / 70 + 1;
        struct buf b = BUF_INIT;
        for (size_t i = 0; i < len; i += 70) {
            buf_append(&b, b64 + i, len - i < 70 ? len - i : 70);
            if (lines > 1)
                buf_append_cstr(&b, "\n");
        }
        bool ok = emit_scalar(o, b.data ? b.data : "", b.len, YAML_TAG_PREFIX "binary",
                              lines > 1 ? YAML_LITERAL_SCALAR_STYLE : YAML_PLAIN_SCALAR_STYLE);
        buf_free(&b);
        free(b64);
        return ok;
    }
    struct yaml_scalar v;
    yaml_resolve(s, n, true, &v);
    bool plain = v.res == YAML_RES_STR && !yaml_base60_float(s, n);
    return emit_scalar(o, s, n, NULL,
                       memchr(s, '\n', n) ? YAML_LITERAL_SCALAR_STYLE
                       : plain            ? YAML_PLAIN_SCALAR_STYLE
                                          : YAML_DOUBLE_QUOTED_SCALAR_STYLE);
}

/* Decodes s into runes as Go's []rune(s) does (an invalid byte is U+FFFD); returns the count. */
static size_t runes_of(const char *s, uint32_t *r)
{
    size_t n = strlen(s), k = 0;

    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : str_utf8_seq_len((struct str){s + i, n - i});
        if (len == 0) {
            r[k++] = 0xfffd;
            i++;
            continue;
        }
        uint32_t cp = len == 1 ? c : c & (0xff >> (len + 1));
        for (size_t j = 1; j < len; j++)
            cp = cp << 6 | ((unsigned char)s[i + j] & 0x3f);
        r[k++] = cp;
        i += len;
    }
    return k;
}

/* unicode.IsLetter, with every non-ASCII rune taken as a letter (no Unicode tables here). */
static bool rune_letter(uint32_t r)
{
    return ((r | 0x20) >= 'a' && (r | 0x20) <= 'z') || r >= 0x80;
}

static bool rune_digit(uint32_t r)
{
    return r >= '0' && r <= '9';
}

/*
 * yaml.v2's order of string map keys: letters by code point after anything else, and runs of
 * digits by their value, so "a2" comes before "a10" (a run starting with 0 after non-zero
 * digits counts as a continuation).
 */
static bool yaml_key_less(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; i++) {
        if (a[i] == b[i])
            continue;
        bool al = rune_letter(a[i]), bl = rune_letter(b[i]);
        if (al && bl)
            return a[i] < b[i];
        if (al || bl)
            return bl;
        /* int64 in yaml.v2, where a long run wraps: added up unsigned here, as C's signed
         * overflow is undefined, and compared signed as Go compares them */
        uint64_t an = 0, bn = 0;
        if (a[i] == '0' || b[i] == '0') {
            for (size_t j = i; j-- > 0 && rune_digit(a[j]);) {
                if (a[j] != '0') {
                    an = bn = 1;
                    break;
                }
            }
        }
        size_t ai = i, bi = i;
        for (; ai < na && rune_digit(a[ai]); ai++)
            an = an * 10 + (a[ai] - '0');
        for (; bi < nb && rune_digit(b[bi]); bi++)
            bn = bn * 10 + (b[bi] - '0');
        if (an != bn)
            return (int64_t)an < (int64_t)bn;
        if (ai != bi)
            return ai < bi;
        return a[i] < b[i];
    }
    return na < nb;
}

struct yaml_key {
    const char *key;
    uint32_t *runes;
    size_t n;
};

static int yaml_key_cmp(const void *pa, const void *pb)
{
    const struct yaml_key *a = pa, *b = pb;

    return yaml_key_less(a->runes, a->n, b->runes, b->n)   ? -1
           : yaml_key_less(b->runes, b->n, a->runes, a->n) ? 1
                                                           : 0;
}

static bool emit_value(struct yaml_out *o, const json_t *v, unsigned depth);

static bool emit_map(struct yaml_out *o, const json_t *v, unsigned depth)
{
    size_t n = json_object_size(v), i = 0;
    struct yaml_key *keys = xcalloc(n ? n : 1, sizeof(*keys));
    const char *key;
    json_t *x;
    yaml_event_t event;
    bool ok;

    json_object_foreach((json_t *)v, key, x)
    {
        keys[i].key = key;
        keys[i].runes = xmalloc((strlen(key) + 1) * sizeof(uint32_t));
        keys[i].n = runes_of(key, keys[i].runes);
        i++;
    }
    qsort(keys, n, sizeof(*keys), yaml_key_cmp);
    yaml_mapping_start_event_initialize(&event, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    ok = yaml_emitter_emit(&o->em, &event);
    for (i = 0; i < n && ok; i++)
        ok = emit_string(o, keys[i].key, strlen(keys[i].key)) &&
             emit_value(o, json_object_get(v, keys[i].key), depth + 1);
    if (ok) {
        yaml_mapping_end_event_initialize(&event);
        ok = yaml_emitter_emit(&o->em, &event);
    }
    for (i = 0; i < n; i++)
        free(keys[i].runes);
    free(keys);
    return ok;
}

static bool emit_value(struct yaml_out *o, const json_t *v, unsigned depth)
{
    yaml_event_t event;
    struct buf num = BUF_INIT;
    size_t i;
    json_t *x;
    bool ok;

    if (depth > YAML_MAX_DEPTH) {
        o->em.problem = "value nested too deeply";
        return false;
    }
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_OBJECT:
        return emit_map(o, v, depth);
    case JSON_ARRAY:
        yaml_sequence_start_event_initialize(&event, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
        ok = yaml_emitter_emit(&o->em, &event);
        json_array_foreach(v, i, x) if (ok) ok = emit_value(o, x, depth + 1);
        if (ok) {
            yaml_sequence_end_event_initialize(&event);
            ok = yaml_emitter_emit(&o->em, &event);
        }
        return ok;
    case JSON_STRING:
        return emit_string(o, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        buf_printf(&num, "%lld", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        numfmt_go_g(&num, json_real_value(v)); /* Go's FormatFloat(f, 'g', -1, 64) */
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        buf_append_cstr(&num, json_is_true(v) ? "true" : "false");
        break;
    default:
        buf_append_cstr(&num, "null");
        break;
    }
    ok = emit_scalar(o, num.data, num.len, NULL, YAML_PLAIN_SCALAR_STYLE);
    buf_free(&num);
    return ok;
}

/* Stream and document around the value, both implicit: no "---" and no "...". */
static bool emit_document(struct yaml_out *o, const json_t *v)
{
    yaml_event_t event;

    yaml_stream_start_event_initialize(&event, YAML_UTF8_ENCODING);
    if (!yaml_emitter_emit(&o->em, &event))
        return false;
    yaml_document_start_event_initialize(&event, NULL, NULL, NULL, 1);
    if (!yaml_emitter_emit(&o->em, &event) || !emit_value(o, v, 0))
        return false;
    yaml_document_end_event_initialize(&event, 1);
    if (!yaml_emitter_emit(&o->em, &event))
        return false;
    o->em.open_ended = 0; /* as yaml.v2 does: no "..." after a final open block scalar */
    yaml_stream_end_event_initialize(&event);
    return yaml_emitter_emit(&o->em, &event) && yaml_emitter_flush(&o->em);
}

/* toYAML X: yaml.v2's Marshal, surrounding spaces trimmed, as consul-template returns it. */
static int fn_to_yaml(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    struct yaml_out o = {.b = BUF_INIT};
    int rc = 0;

    yaml_emitter_initialize(&o.em);
    yaml_emitter_set_output(&o.em, yaml_write, &o);
    yaml_emitter_set_unicode(&o.em, 1);
    if (emit_document(&o, args[0])) {
        const char *s = o.b.data ? o.b.data : "";
        size_t n = o.b.len;
        tmpl_trim_space(&s, &n);
        *out = json_stringn_nocheck(s, n);
    } else if (o.too_large) {
        rc = tmpl_fail(ev, "error calling toYAML: toYAML: more than %u MiB", YAML_MAX_OUTPUT >> 20);
    } else {
        rc = tmpl_fail(ev, "error calling toYAML: toYAML: %s",
                       o.em.problem ? o.em.problem : "cannot emit this value");
    }
    yaml_emitter_delete(&o.em);
    buf_free(&o.b);
    return rc;
}

/* ---- parseYAML --------------------------------------------------------------------------- */

/* An anchored node: its value (NULL while the node is still being read) and how many nodes it
 * stands for, so that aliases count as what they expand to. */
struct yaml_anchor {
    json_t *v;
    size_t nodes;
};

struct yaml_in {
    yaml_parser_t parser;
    yaml_event_t event; /* the current event; valid while have_event */
    bool have_event;
    struct smap anchors; /* name -> struct yaml_anchor (owned) */
    size_t decoded;      /* nodes so far, aliases counted at their expansion */
    size_t aliased;      /* of which through aliases */
    struct buf err;      /* the message after "yaml: " */
};

static int yaml_in_fail(struct yaml_in *in, const char *msg)
{
    size_t line = in->event.start_mark.line + 1;

    buf_printf(&in->err, "line %zu: %s", line, msg);
    return -EINVAL;
}

/* The next event into in->event; on a syntax error the message yaml.v2 gives. */
static int yaml_next(struct yaml_in *in)
{
    yaml_parser_t *p = &in->parser;

    if (in->have_event)
        yaml_event_delete(&in->event);
    in->have_event = yaml_parser_parse(p, &in->event);
    if (in->have_event)
        return 0;
    /* yaml.v2's line: the problem's 0-based line, plus one for scanner errors, else the
     * context's; none when both are on the first line */
    size_t line = p->problem_mark.line ? p->problem_mark.line + (p->error == YAML_SCANNER_ERROR)
                                       : p->context_mark.line;
    if (line)
        buf_printf(&in->err, "line %zu: ", line);
    buf_append_cstr(&in->err, p->problem ? p->problem : "unknown problem parsing YAML content");
    return -EINVAL;
}

static const char *tag_name(const char *tag)
{
    return strncmp(tag, YAML_TAG_PREFIX, strlen(YAML_TAG_PREFIX)) == 0
               ? tag + strlen(YAML_TAG_PREFIX)
               : tag;
}

static const char *const res_tag[] = {
    [YAML_RES_STR] = "str",
    [YAML_RES_NULL] = "null",
    [YAML_RES_BOOL] = "bool",
    [YAML_RES_INT] = "int",
    [YAML_RES_UINT] = "int",
    [YAML_RES_FLOAT] = "float",
    [YAML_RES_TIMESTAMP] = "timestamp",
};

/* A resolved scalar as a template value; NULL with in->err set when it has no such value. */
static json_t *scalar_value(struct yaml_in *in, const struct yaml_scalar *v, const char *text,
                            size_t n)
{
    switch (v->res) {
    case YAML_RES_NULL:
        return json_null();
    case YAML_RES_BOOL:
        return json_boolean(v->b);
    case YAML_RES_INT:
        return json_integer(v->i);
    case YAML_RES_FLOAT:
        if (isfinite(v->d))
            return json_real(v->d);
        yaml_in_fail(in, "infinite and NaN floats are not supported");
        return NULL;
    case YAML_RES_UINT:
        yaml_in_fail(in, "integer larger than 9223372036854775807");
        return NULL;
    default: /* strings, timestamps (kept as written, as yaml.v2 does), "<<" as a value */
        return json_stringn_nocheck(text, n);
    }
}

/* The value of the scalar event in->event, as yaml.v2 decodes it into interface{}. */
static json_t *yaml_scalar_node(struct yaml_in *in, bool *merge)
{
    const yaml_event_t *e = &in->event;
    const char *text = (const char *)e->data.scalar.value, *tag = (const char *)e->data.scalar.tag;
    size_t n = e->data.scalar.length;
    struct yaml_scalar v;

    *merge = false;
    if (!tag) {
        if (!e->data.scalar.plain_implicit) /* quoted or a block scalar: a string */
            return json_stringn_nocheck(text, n);
        *merge = n == 2 && memcmp(text, "<<", 2) == 0;
        yaml_resolve(text, n, true, &v);
        return scalar_value(in, &v, text, n);
    }
    const char *name = tag_name(tag);
    if (name == tag || strcmp(name, "str") == 0) /* a local tag (!foo) or !!str: as written */
        return json_stringn_nocheck(text, n);
    if (strcmp(name, "binary") == 0) {
        struct buf b = BUF_INIT;
        size_t len;
        for (size_t k = 0; k < n; k++) /* Go's base64 decoder skips line breaks */
            if (text[k] != '\n' && text[k] != '\r')
                buf_append(&b, text + k, 1);
        buf_append(&b, "", 1);
        unsigned char *d = base64_decode(b.data, &len);
        buf_free(&b);
        if (!d) {
            yaml_in_fail(in, "!!binary value contains invalid base64 data");
            return NULL;
        }
        json_t *r = json_stringn_nocheck((const char *)d, len);
        free(d);
        return r;
    }
    if (strcmp(name, "merge") == 0) {
        *merge = true;
        return json_stringn_nocheck(text, n);
    }
    bool known = false;
    for (size_t k = 0; k < ARRAY_LEN(res_tag); k++)
        known = known || strcmp(res_tag[k], name) == 0;
    if (!known) /* !!map on a scalar, !!set, ...: yaml.v2 keeps the text */
        return json_stringn_nocheck(text, n);
    yaml_resolve(text, n, strcmp(name, "timestamp") == 0, &v);
    if (v.res == YAML_RES_INT && strcmp(name, "float") == 0) {
        v.res = YAML_RES_FLOAT;
        v.d = (double)v.i;
    }
    if (strcmp(res_tag[v.res], name) != 0) {
        struct buf m = BUF_INIT;
        buf_printf(&m, "cannot decode !!%s `%.*s` as a !!%s", res_tag[v.res], (int)n, text, name);
        yaml_in_fail(in, m.data);
        buf_free(&m);
        return NULL;
    }
    return scalar_value(in, &v, text, n);
}

static int yaml_node(struct yaml_in *in, unsigned depth, json_t **out, bool *merge);

/* A map key as a string: a scalar's text as Go prints its value (1, true, <nil>). */
static char *key_text(struct yaml_in *in, const json_t *k)
{
    struct buf b = BUF_INIT;

    if (json_is_array(k) || json_is_object(k)) {
        yaml_in_fail(in, "a map key must be a scalar");
        return NULL;
    }
    if (json_is_null(k))
        buf_append_cstr(&b, "<nil>");
    else
        tmpl_print(&b, k);
    return b.data ? buf_steal(&b) : xstrdup("");
}

/* The "<<" key: v's maps (v a map or a list of maps) merged into obj, the first list item
 * winning, as yaml.v2 does. */
static int yaml_merge(struct yaml_in *in, json_t *obj, json_t *v)
{
    bool maps = json_is_array(v);
    size_t i;
    json_t *x;

    if (json_is_object(v)) {
        json_object_update(obj, v);
        return 0;
    }
    json_array_foreach(v, i, x) maps = maps && json_is_object(x);
    if (!maps)
        return yaml_in_fail(in, "map merge requires map or sequence of maps as the value");
    for (i = json_array_size(v); i-- > 0;)
        json_object_update(obj, json_array_get(v, i));
    return 0;
}

static int yaml_mapping(struct yaml_in *in, unsigned depth, json_t *obj)
{
    for (;;) {
        json_t *k = NULL, *v = NULL;
        bool merge;
        char *key;
        int rc;

        if (yaml_next(in) < 0)
            return -EINVAL;
        if (in->event.type == YAML_MAPPING_END_EVENT)
            return 0;
        if (yaml_node(in, depth + 1, &k, &merge) < 0)
            return -EINVAL;
        key = merge ? NULL : key_text(in, k);
        json_decref(k);
        if (!merge && !key)
            return -EINVAL;
        rc = yaml_next(in) < 0 ? -EINVAL : yaml_node(in, depth + 1, &v, &(bool){false});
        if (rc == 0 && merge)
            rc = yaml_merge(in, obj, v);
        else if (rc == 0)
            json_object_set_nocheck(obj, key, v);
        json_decref(v);
        free(key);
        if (rc < 0)
            return rc;
    }
}

static int yaml_alias(struct yaml_in *in, json_t **out)
{
    const char *name = (const char *)in->event.data.alias.anchor;
    struct yaml_anchor *a = smap_get(&in->anchors, name);
    struct buf m = BUF_INIT;

    if (!a || !a->v) {
        buf_printf(&m, a ? "anchor '%s' value contains itself" : "unknown anchor '%s' referenced",
                   name);
        yaml_in_fail(in, m.data);
        buf_free(&m);
        return -EINVAL;
    }
    in->decoded += a->nodes;
    in->aliased += a->nodes;
    if (yaml_aliasing_excessive(in->decoded, in->aliased))
        return yaml_in_fail(in, "document contains excessive aliasing");
    *out = json_incref(a->v); /* shared: values are never changed in place */
    return 0;
}

/*
 * The node starting at in->event, into *out (a new reference); *merge tells a "<<" key. Reads
 * the events up to the node's end.
 */
static int yaml_node(struct yaml_in *in, unsigned depth, json_t **out, bool *merge)
{
    const yaml_char_t *anchor = NULL;
    size_t before = in->decoded++;
    int rc = 0;

    *merge = false;
    if (depth > YAML_MAX_DEPTH)
        return yaml_in_fail(in, "nesting deeper than 2048 levels");
    switch (in->event.type) {
    case YAML_ALIAS_EVENT:
        return yaml_alias(in, out);
    case YAML_SCALAR_EVENT:
        anchor = in->event.data.scalar.anchor;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = in->event.data.sequence_start.anchor;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = in->event.data.mapping_start.anchor;
        break;
    default:
        return yaml_in_fail(in, "did not find expected node content");
    }
    /* the anchor is known from here on, without a value until the node ends, so that an alias
     * inside it is told that it refers to itself; the event's name goes with the next event */
    char *name = anchor ? xstrdup((const char *)anchor) : NULL;
    struct yaml_anchor *a = name ? xcalloc(1, sizeof(*a)) : NULL;
    if (name) {
        struct yaml_anchor *old = smap_put(&in->anchors, name, a);
        if (old)
            json_decref(old->v);
        free(old);
    }
    if (in->event.type == YAML_SCALAR_EVENT) {
        *out = yaml_scalar_node(in, merge);
        rc = *out ? 0 : -EINVAL;
    } else if (in->event.type == YAML_MAPPING_START_EVENT) {
        *out = json_object();
        rc = yaml_mapping(in, depth, *out);
    } else {
        *out = json_array();
        while (rc == 0 && (rc = yaml_next(in)) == 0 && in->event.type != YAML_SEQUENCE_END_EVENT) {
            json_t *x = NULL;
            rc = yaml_node(in, depth + 1, &x, &(bool){false});
            if (rc == 0)
                json_array_append_new(*out, x);
        }
    }
    if (rc < 0) {
        json_decref(*out);
        *out = NULL;
    } else if (a && smap_get(&in->anchors, name) == a) { /* not redefined inside itself */
        a->v = json_incref(*out);
        a->nodes = in->decoded - before;
    }
    free(name);
    return rc;
}

/* The first document of the stream, or json null for none. */
static int yaml_document(struct yaml_in *in, json_t **out)
{
    *out = NULL;
    if (yaml_next(in) < 0 || yaml_next(in) < 0) /* the stream start, then a document or the end */
        return -EINVAL;
    if (in->event.type == YAML_STREAM_END_EVENT) {
        *out = json_null();
        return 0;
    }
    if (yaml_next(in) < 0 || yaml_node(in, 0, out, &(bool){false}) < 0)
        return -EINVAL;
    if (yaml_next(in) < 0) { /* the document's end: an error before it counts, as in yaml.v2 */
        json_decref(*out);
        *out = NULL;
        return -EINVAL;
    }
    return 0;
}

/* parseYAML S: yaml.v2's Unmarshal into interface{}; "" is an empty map, as in consul-template. */
static int fn_parse_yaml(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    struct yaml_in in = {.anchors = SMAP_INIT, .err = BUF_INIT};
    int rc;

    if (json_string_length(args[0]) == 0) {
        *out = json_object();
        return 0;
    }
    yaml_parser_initialize(&in.parser);
    yaml_parser_set_input_string(&in.parser, (const unsigned char *)json_string_value(args[0]),
                                 json_string_length(args[0]));
    rc = yaml_document(&in, out);
    if (rc < 0)
        rc = tmpl_fail(ev, "error calling parseYAML: yaml: %.*s", (int)in.err.len,
                       in.err.data ? in.err.data : "");
    else if (json_is_null(*out)) {
        json_decref(*out);
        *out = NULL;
    }
    tmpl_sort_map(*out, true); /* Go's maps print (and toJSON writes) their keys sorted */
    if (in.have_event)
        yaml_event_delete(&in.event);
    yaml_parser_delete(&in.parser);
    for (size_t i = 0; i < in.anchors.n; i++) {
        struct yaml_anchor *a = in.anchors.v[i].val;
        json_decref(a->v);
        free(a);
    }
    smap_free(&in.anchors);
    buf_free(&in.err);
    return rc;
}

static const struct tmpl_func yaml_funcs[] = {
    {"toYAML", fn_to_yaml, 1, 1, NULL},
    {"parseYAML", fn_parse_yaml, 1, 1, "s"},
};

const struct tmpl_func *tmpl_yaml_func_find(const char *name)
{
    return tmpl_func_lookup(yaml_funcs, ARRAY_LEN(yaml_funcs), name);
}
