/*
 * consul-template's functions that turn values into text: toJSON, toJSONPretty and their
 * Unescaped variants (Go's encoding/json), toTitle, indent, and the digests sha256Hex, md5sum and
 * hmacSHA256Hex.
 */
#include <errno.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/numfmt.h"
#include "lib/digest.h"
#include "lib/str.h"
#include "template/tmpl_internal.h"

/* ---- JSON as Go's encoding/json writes it ------------------------------------------------ */

/*
 * A string as json.Marshal quotes it: <, > and & escaped for embedding in HTML (unless html is
 * false, as with an Encoder's SetEscapeHTML(false)), U+2028 and U+2029 escaped for
 * JavaScript, invalid UTF-8 as U+FFFD.
 */
static void go_json_string(struct buf *out, const char *s, size_t n, bool html)
{
    buf_append_cstr(out, "\"");
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            size_t len = str_utf8_seq_len((struct str){s + i, n - i});
            if (!len)
                buf_append_cstr(out, "\\ufffd");
            else if (len == 3 && c == 0xe2 && (unsigned char)s[i + 1] == 0x80 &&
                     ((unsigned char)s[i + 2] | 1) == 0xa9)
                buf_append_cstr(out, s[i + 2] == '\xa8' ? "\\u2028" : "\\u2029");
            else
                buf_append(out, s + i, len);
            i += len ? len : 1;
            continue;
        }
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                                      : NULL;
        if (esc)
            buf_append_cstr(out, esc);
        else if (c < 0x20 || (html && (c == '<' || c == '>' || c == '&')))
            buf_printf(out, "\\u%04x", c);
        else
            buf_append(out, s + i, 1);
        i++;
    }
    buf_append_cstr(out, "\"");
}

static void go_json_newline(struct buf *out, int indent, int depth)
{
    if (!indent)
        return;
    buf_append_cstr(out, "\n");
    for (int i = 0; i < indent * depth; i++)
        buf_append_cstr(out, " ");
}

/*
 * json.Marshal (indent 0) or json.MarshalIndent(v, "", "  ") (indent 2). Objects keep their
 * order: the registry's objects are Go structs in field order, and the maps this renderer makes
 * (parseJSON, explode, splitToMap, ...) are built in key order, as Go sorts map keys.
 */
static void go_json(struct buf *out, const json_t *v, int indent, bool html, int depth)
{
    const char *key;
    json_t *x;
    size_t i;
    bool first = true;

    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        go_json_string(out, json_string_value(v), json_string_length(v), html);
        break;
    case JSON_INTEGER:
        buf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL:
        numfmt_json(out, json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        buf_append_cstr(out, json_is_true(v) ? "true" : "false");
        break;
    case JSON_ARRAY:
        buf_append_cstr(out, "[");
        json_array_foreach(v, i, x)
        {
            buf_append_cstr(out, i ? "," : "");
            go_json_newline(out, indent, depth + 1);
            go_json(out, x, indent, html, depth + 1);
        }
        if (json_array_size(v))
            go_json_newline(out, indent, depth);
        buf_append_cstr(out, "]");
        break;
    case JSON_OBJECT:
        buf_append_cstr(out, "{");
        json_object_foreach((json_t *)v, key, x)
        {
            buf_append_cstr(out, first ? "" : ",");
            first = false;
            go_json_newline(out, indent, depth + 1);
            go_json_string(out, key, strlen(key), html);
            buf_append_cstr(out, indent ? ": " : ":");
            go_json(out, x, indent, html, depth + 1);
        }
        if (json_object_size(v))
            go_json_newline(out, indent, depth);
        buf_append_cstr(out, "}");
        break;
    default:
        buf_append_cstr(out, "null");
        break;
    }
}

static int to_json(const json_t *v, int indent, bool html, json_t **out)
{
    struct buf b = BUF_INIT;

    go_json(&b, v, indent, html, 0);
    *out = json_stringn_nocheck(b.data, b.len);
    buf_free(&b);
    return 0;
}

static int fn_to_json(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return to_json(args[0], 0, true, out);
}

static int fn_to_json_pretty(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    return to_json(args[0], 2, true, out);
}

/* toUnescapedJSON, toUnescapedJSONPretty: the same without escaping <, > and &. */
static int fn_to_unescaped_json(struct tmpl_eval *ev, json_t *const *args, size_t nargs,
                                json_t **out)
{
    return to_json(args[0], 0, false, out);
}

static int fn_to_unescaped_json_pretty(struct tmpl_eval *ev, json_t *const *args, size_t nargs,
                                       json_t **out)
{
    return to_json(args[0], 2, false, out);
}

/* ---- text -------------------------------------------------------------------------------- */

/* What the rune at s (n bytes left) is to toTitle; *len receives its length. */
static enum tmpl_word_class title_class(const char *s, size_t n, size_t *len)
{
    unsigned char ch = (unsigned char)s[0];

    if (ch >= 0x80) {
        *len = str_utf8_seq_len((struct str){s, n});
        if (!*len) { /* Go reads U+FFFD, a symbol */
            *len = 1;
            return TMPL_WORD_BREAK;
        }
        uint32_t r = *len == 2 ? ch & 0x1fu : *len == 3 ? ch & 0x0fu : ch & 0x07u;
        for (size_t k = 1; k < *len; k++)
            r = r << 6 | ((unsigned char)s[k] & 0x3fu);
        return tmpl_unicode_word_class(r);
    }
    *len = 1;
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z')
        return TMPL_WORD_LETTER;
    if ((ch >= '0' && ch <= '9') || ch == '_')
        return TMPL_WORD_NEUTRAL;
    return ch == '\'' || ch == '.' || ch == ':' ? TMPL_WORD_MID : TMPL_WORD_BREAK;
}

/*
 * toTitle: golang.org/x/text's title caser without lowering (cases.NoLower). The first cased
 * letter after a word break is upper-cased; letters continue a word, digits and _ (and other
 * uncased word runes) neither start nor end one, one ' . or : (or U+2019 and the other mid-word
 * runes) between letters continues it (two in a row break it); everything else breaks,
 * non-ASCII punctuation, spaces and symbols too (unicode_tables.c).
 * Non-ASCII letters continue or start a word but keep their case: this renderer has no Unicode
 * case tables.
 */
static int fn_to_title(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    size_t n = json_string_length(args[0]), len;
    char *c = xmemdup(json_string_value(args[0]), n + 1);
    bool mid_word = false, was_mid = false;

    for (size_t i = 0; i < n; i += len) {
        enum tmpl_word_class k = title_class(c + i, n - i, &len);
        bool is_mid = k == TMPL_WORD_MID;
        if (was_mid && is_mid)
            mid_word = false;
        if (k == TMPL_WORD_LETTER) {
            if (c[i] >= 'a' && c[i] <= 'z' && !mid_word)
                c[i] = (char)(c[i] ^ 0x20);
            mid_word = true;
        } else if (k == TMPL_WORD_BREAK) {
            mid_word = false;
        }
        was_mid = is_mid;
    }
    *out = json_stringn_nocheck(c, n);
    free(c);
    return 0;
}

/* indent N S: N spaces before each line of S that is not empty. */
static int fn_indent(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    json_int_t spaces = json_integer_value(args[0]);
    const char *s = json_string_value(args[1]);
    size_t n = json_string_length(args[1]);
    struct buf b = BUF_INIT;

    if (spaces < 0)
        return tmpl_fail(ev, "error calling indent: indent value must be a positive integer");
    for (size_t i = 0; i < n; i++) {
        if ((i == 0 || s[i - 1] == '\n') && s[i] != '\n')
            for (json_int_t k = 0; k < spaces; k++)
                buf_append_cstr(&b, " ");
        buf_append(&b, s + i, 1);
    }
    *out = json_stringn_nocheck(b.data ? b.data : "", b.len);
    buf_free(&b);
    return 0;
}

/* ---- digests ----------------------------------------------------------------------------- */

static int fn_sha256_hex(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    char hex[DIGEST_SHA256_HEX_SIZE];

    digest_sha256_hex(json_string_value(args[0]), json_string_length(args[0]), hex);
    *out = json_string(hex);
    return 0;
}

static int fn_md5sum(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    char hex[DIGEST_MD5_HEX_SIZE];

    digest_md5_hex(json_string_value(args[0]), json_string_length(args[0]), hex);
    *out = json_string(hex);
    return 0;
}

/* hmacSHA256Hex MESSAGE KEY */
static int fn_hmac_sha256_hex(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    char hex[DIGEST_SHA256_HEX_SIZE];

    digest_hmac_sha256_hex(json_string_value(args[1]), json_string_length(args[1]),
                           json_string_value(args[0]), json_string_length(args[0]), hex);
    *out = json_string(hex);
    return 0;
}

static const struct tmpl_func format_funcs[] = {
    {"toJSON", fn_to_json, 1, 1, NULL},
    {"toJSONPretty", fn_to_json_pretty, 1, 1, NULL},
    {"toUnescapedJSON", fn_to_unescaped_json, 1, 1, NULL},
    {"toUnescapedJSONPretty", fn_to_unescaped_json_pretty, 1, 1, NULL},
    {"toTitle", fn_to_title, 1, 1, "s"},
    {"indent", fn_indent, 2, 2, "is"},
    {"sha256Hex", fn_sha256_hex, 1, 1, "s"},
    {"md5sum", fn_md5sum, 1, 1, "s"},
    {"hmacSHA256Hex", fn_hmac_sha256_hex, 2, 2, "s"},
};

const struct tmpl_func *tmpl_format_func_find(const char *name)
{
    return tmpl_func_lookup(format_funcs, ARRAY_LEN(format_funcs), name);
}
