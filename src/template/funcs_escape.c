/*
 * Go's text/template escapers: html, js and urlquery. Each prints its arguments as fmt.Sprint
 * does (a nil as "<no value>", as Go's evalArgs makes it) and escapes the result byte for byte
 * as Go's HTMLEscapeString, JSEscapeString and url.QueryEscape do.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/str.h"
#include "lib/url.h"
#include "template/tmpl_internal.h"

/* Go's evalArgs: fmt.Sprint of the arguments, each nil first replaced by "<no value>". */
static void sprint_args(json_t *const *args, size_t nargs, struct buf *out)
{
    json_t **shown = xcalloc(nargs ? nargs : 1, sizeof(*shown));

    for (size_t i = 0; i < nargs; i++)
        shown[i] =
            !args[i] || json_is_null(args[i]) ? json_string("<no value>") : json_incref(args[i]);
    tmpl_sprint(out, shown, nargs, false);
    for (size_t i = 0; i < nargs; i++)
        json_decref(shown[i]);
    free(shown);
}

static json_t *buf_value(const struct buf *b)
{
    return json_stringn_nocheck(b->data ? b->data : "", b->len);
}

/* HTMLEscapeString: ' " & < > as entities, NUL as U+FFFD. */
static int fn_html(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    struct buf s = BUF_INIT, b = BUF_INIT;

    sprint_args(args, nargs, &s);
    for (size_t i = 0; i < s.len; i++) {
        switch (s.data[i]) {
        case '\0':
            buf_append_cstr(&b, "\xef\xbf\xbd");
            break;
        case '"':
            buf_append_cstr(&b, "&#34;");
            break;
        case '\'':
            buf_append_cstr(&b, "&#39;");
            break;
        case '&':
            buf_append_cstr(&b, "&amp;");
            break;
        case '<':
            buf_append_cstr(&b, "&lt;");
            break;
        case '>':
            buf_append_cstr(&b, "&gt;");
            break;
        default:
            buf_append(&b, &s.data[i], 1);
        }
    }
    *out = buf_value(&b);
    buf_free(&s);
    buf_free(&b);
    return 0;
}

/* The code point of the well-formed sequence of n bytes at p. */
static uint32_t utf8_decode(const unsigned char *p, size_t n)
{
    uint32_t r = n == 2 ? p[0] & 0x1fu : n == 3 ? p[0] & 0x0fu : p[0] & 0x07u;

    for (size_t i = 1; i < n; i++)
        r = r << 6 | (p[i] & 0x3fu);
    return r;
}

/* JSEscapeString: \ ' " as backslash escapes, < > & = and control bytes as \u00XX, runes that
 * are not printable as \uXXXX; invalid UTF-8 bytes pass through, as Go's RuneError does (it is
 * printable). */
static int fn_js(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf s = BUF_INIT, b = BUF_INIT;

    sprint_args(args, nargs, &s);
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.data[i];
        if (c >= 0x80) {
            size_t n = str_utf8_seq_len((struct str){s.data + i, s.len - i});
            uint32_t r = n ? utf8_decode((const unsigned char *)s.data + i, n) : 0xfffd;
            if (tmpl_unicode_is_print(r))
                buf_append(&b, s.data + i, n ? n : 1);
            else
                buf_printf(&b, "\\u%04X", (unsigned)r);
            i += n ? n - 1 : 0;
        } else if (c == '\\' || c == '\'' || c == '"') {
            buf_append(&b, (const char[]){'\\', (char)c}, 2);
        } else if (c < ' ' || c == '<' || c == '>' || c == '&' || c == '=') {
            buf_append(&b, (const char[]){'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]}, 6);
        } else {
            buf_append(&b, (const char *)&c, 1);
        }
    }
    *out = buf_value(&b);
    buf_free(&s);
    buf_free(&b);
    return 0;
}

/* url.QueryEscape: RFC 3986's unreserved bytes kept, a space as '+', the rest %XX. */
static int fn_urlquery(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    struct buf s = BUF_INIT, b = BUF_INIT;
    size_t from = 0;

    sprint_args(args, nargs, &s);
    const char *p = s.data ? s.data : "";
    for (size_t i = 0; i <= s.len; i++) {
        if (i < s.len && p[i] != ' ')
            continue;
        url_encode(&b, (struct str){p + from, i - from}, false);
        if (i < s.len)
            buf_append_cstr(&b, "+");
        from = i + 1;
    }
    *out = buf_value(&b);
    buf_free(&s);
    buf_free(&b);
    return 0;
}

static const struct tmpl_func escape_funcs[] = {
    {"html", fn_html, 0, -1, NULL},
    {"js", fn_js, 0, -1, NULL},
    {"urlquery", fn_urlquery, 0, -1, NULL},
};

const struct tmpl_func *tmpl_escape_func_find(const char *name)
{
    return tmpl_func_lookup(escape_funcs, ARRAY_LEN(escape_funcs), name);
}
