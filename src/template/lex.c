/*
 * The lexer: text and actions, as Go's text/template/parse/lex.go splits them. "{{- " trims
 * the whitespace before an action and " -}}" the whitespace after it (the dash must touch
 * the braces and be separated from the action by a space); comments are "{{/ * ... * /}}" (without
 * the inner spaces) alone in their action.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/str.h"
#include "template/tmpl_internal.h"

struct lexer {
    const char *name;
    const char *s;
    size_t len, pos;
    /* line and column of `mark` (a position at or before pos), advanced lazily */
    size_t mark;
    int line, col;
    struct tmpl_toks *out;
    struct err *e;
};

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_alnum(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static void where(struct lexer *lx, size_t pos, int *line, int *col)
{
    for (; lx->mark < pos; lx->mark++) {
        if (lx->s[lx->mark] == '\n') {
            lx->line++;
            lx->col = 1;
        } else {
            lx->col++;
        }
    }
    *line = lx->line;
    *col = lx->col;
}

static void lex_report(struct lexer *lx, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void lex_report(struct lexer *lx, size_t pos, const char *fmt, ...)
{
    char msg[400];
    int line, col;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    where(lx, pos, &line, &col);
    err_setf(lx->e, "%s:%d:%d: %s", lx->name, line, col, msg);
}

/* Reports at pos and evaluates to -EINVAL, visibly at each call site (as parse.c's parse_fail). */
#define lex_fail(lx, pos, ...) (lex_report((lx), (pos), __VA_ARGS__), -EINVAL)

static struct tmpl_tok *emit(struct lexer *lx, enum tmpl_tok_kind kind, size_t pos,
                             const char *text, size_t len, bool space)
{
    struct tmpl_toks *o = lx->out;

    o->v = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
    struct tmpl_tok *t = &o->v[o->n++];
    *t = (struct tmpl_tok){
        .kind = kind, .text = xstrndup(text ? text : "", len), .len = len, .space_before = space};
    where(lx, pos, &t->line, &t->col);
    return t;
}

static bool at(const struct lexer *lx, const char *lit)
{
    size_t n = strlen(lit);
    return lx->len - lx->pos >= n && memcmp(lx->s + lx->pos, lit, n) == 0;
}

/* At a right delimiter, with or without a trim marker: the length to skip, else 0. */
static size_t right_delim(const struct lexer *lx, bool *trim)
{
    const char *p = lx->s + lx->pos;
    size_t left = lx->len - lx->pos;

    *trim = false;
    if (left >= 2 && p[0] == '}' && p[1] == '}')
        return 2;
    if (left >= 4 && is_space(p[0]) && p[1] == '-' && p[2] == '}' && p[3] == '}') {
        *trim = true;
        return 4;
    }
    return 0;
}

static void utf8_put(struct buf *b, unsigned long cp)
{
    char u[4];
    size_t n;

    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        cp = 0xfffd;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    buf_append(b, u, n);
}

/* One escape after a backslash at lx->pos (pointing past it). 0 or -EINVAL. */
static int lex_escape(struct lexer *lx, struct buf *b)
{
    static const char from[] = "abfnrtv\\\"'", to[] = "\a\b\f\n\r\t\v\\\"'";

    if (lx->pos >= lx->len) /* a backslash ends the input */
        return lex_fail(lx, lx->pos, "unterminated quoted string");
    char c = lx->s[lx->pos];
    const char *m = c ? strchr(from, c) : NULL;
    int digits = c == 'x' ? 2 : c == 'u' ? 4 : c == 'U' ? 8 : 0;
    unsigned long cp = 0;

    if (m) {
        buf_append(b, &to[m - from], 1);
        lx->pos++;
        return 0;
    }
    if (c >= '0' && c <= '7') {
        for (int i = 0; i < 3; i++, lx->pos++) {
            if (lx->pos >= lx->len || lx->s[lx->pos] < '0' || lx->s[lx->pos] > '7')
                return lex_fail(lx, lx->pos, "invalid syntax in quoted string");
            cp = cp * 8 + (unsigned long)(lx->s[lx->pos] - '0');
        }
        if (cp > 255)
            return lex_fail(lx, lx->pos, "invalid syntax in quoted string");
        buf_append(b, &(char){(char)cp}, 1);
        return 0;
    }
    if (!digits)
        return lex_fail(lx, lx->pos, "invalid syntax in quoted string");
    lx->pos++;
    for (int i = 0; i < digits; i++, lx->pos++) {
        int h = lx->pos < lx->len ? str_hex_digit(lx->s[lx->pos]) : -1;
        if (h < 0)
            return lex_fail(lx, lx->pos, "invalid syntax in quoted string");
        cp = cp * 16 + (unsigned long)h;
    }
    if (c == 'x')
        buf_append(b, &(char){(char)cp}, 1);
    else
        utf8_put(b, cp);
    return 0;
}

static int lex_string(struct lexer *lx, bool space)
{
    size_t start = lx->pos;
    char q = lx->s[lx->pos++];
    struct buf b = BUF_INIT;
    int rc = 0;

    for (;;) {
        if (lx->pos >= lx->len || (q == '"' && lx->s[lx->pos] == '\n')) {
            rc = lex_fail(lx, start,
                          q == '"' ? "unterminated quoted string"
                                   : "unterminated raw quoted string");
            break;
        }
        char c = lx->s[lx->pos++];
        if (c == q)
            break;
        if (c == '\\' && q == '"') {
            if ((rc = lex_escape(lx, &b)) < 0)
                break;
            continue;
        }
        buf_append(&b, &c, 1);
    }
    if (rc == 0)
        emit(lx, TOK_STRING, start, b.data, b.len, space);
    buf_free(&b);
    return rc;
}

/* The rune of a character constant's body (between the quotes, n bytes at s): 0, or -1 when
 * it is not exactly one rune or escape. */
static int char_value(struct lexer *lx, size_t from, size_t to, unsigned long *out)
{
    const char *s = lx->s + from;
    size_t n = to - from;

    if (n && s[0] == '\\') {
        struct buf b = BUF_INIT;
        char kind = n > 1 ? s[1] : 0;
        size_t saved = lx->pos;
        int rc = 0;
        lx->pos = from + 1;
        if (kind == '"' || lex_escape(lx, &b) < 0 || lx->pos != to) {
            rc = -1;
        } else if (kind == 'x' || (kind >= '0' && kind <= '7')) {
            *out = (unsigned char)b.data[0]; /* a byte value: '\377' is 255 */
        } else {
            size_t len =
                (unsigned char)b.data[0] < 0x80 ? 1 : str_utf8_seq_len((struct str){b.data, b.len});
            unsigned long cp =
                len == 1 ? (unsigned char)b.data[0] : (unsigned char)b.data[0] & (0x7fu >> len);
            for (size_t i = 1; i < len; i++)
                cp = cp << 6 | ((unsigned char)b.data[i] & 0x3fu);
            *out = cp;
        }
        lx->pos = saved;
        buf_free(&b);
        return rc;
    }
    if (!n || s[0] == '\'')
        return -1;
    size_t len = (unsigned char)s[0] < 0x80 ? 1 : str_utf8_seq_len((struct str){s, n});
    if (!len) { /* Go reads an invalid byte as U+FFFD */
        *out = 0xfffd;
        return n == 1 ? 0 : -1;
    }
    unsigned long cp = len == 1 ? (unsigned char)s[0] : (unsigned char)s[0] & (0x7fu >> len);
    for (size_t i = 1; i < len; i++)
        cp = cp << 6 | ((unsigned char)s[i] & 0x3fu);
    *out = cp;
    return len == n ? 0 : -1;
}

/* A character constant, 'a' or '\n': a number, the rune's value, as in Go. */
static int lex_char(struct lexer *lx, bool space)
{
    size_t start = lx->pos, end = start + 1;
    unsigned long cp = 0;
    char num[16];

    for (;; end++) {
        if (end >= lx->len || lx->s[end] == '\n')
            return lex_fail(lx, start, "unterminated character constant");
        if (lx->s[end] == '\\' && end + 1 < lx->len && lx->s[end + 1] != '\n')
            end++;
        else if (lx->s[end] == '\'')
            break;
    }
    if (char_value(lx, start + 1, end, &cp) < 0)
        return lex_fail(lx, start, "malformed character constant: %.*s", (int)(end + 1 - start),
                        lx->s + start);
    snprintf(num, sizeof(num), "%lu", cp);
    lx->pos = end + 1;
    emit(lx, TOK_NUMBER, start, num, strlen(num), space);
    return 0;
}

static void lex_number(struct lexer *lx, bool space)
{
    size_t start = lx->pos;

    if (lx->s[lx->pos] == '+' || lx->s[lx->pos] == '-')
        lx->pos++;
    /* digits, hex digits, dots, exponents and underscores; the parser validates */
    while (lx->pos < lx->len) {
        char c = lx->s[lx->pos];
        if (is_alnum(c) || c == '.' ||
            ((c == '+' || c == '-') && strchr("eEpP", lx->s[lx->pos - 1])))
            lx->pos++;
        else
            break;
    }
    emit(lx, TOK_NUMBER, start, lx->s + start, lx->pos - start, space);
}

/* One token inside an action; sets *done at the right delimiter. 0 or -EINVAL. */
static int lex_token(struct lexer *lx, bool *done, bool *trim_after)
{
    bool space = false, trim;
    size_t n;

    for (;;) {
        if ((n = right_delim(lx, &trim)) > 0) {
            emit(lx, TOK_RIGHT, lx->pos, "}}", 2, space);
            lx->pos += n;
            *done = true;
            *trim_after = trim;
            return 0;
        }
        if (lx->pos >= lx->len)
            return lex_fail(lx, lx->pos, "unclosed action");
        if (!is_space(lx->s[lx->pos]))
            break;
        space = true;
        lx->pos++;
    }
    size_t start = lx->pos;
    char c = lx->s[start], next = start + 1 < lx->len ? lx->s[start + 1] : '\0';
    static const char singles[] = "|(),=";
    static const enum tmpl_tok_kind single_kinds[] = {TOK_PIPE, TOK_LPAREN, TOK_RPAREN, TOK_COMMA,
                                                      TOK_ASSIGN};
    if (c == '"' || c == '`')
        return lex_string(lx, space);
    if (c == '\'')
        return lex_char(lx, space);
    if (isdigit((unsigned char)c) || ((c == '-' || c == '+') && isdigit((unsigned char)next)) ||
        (c == '.' && isdigit((unsigned char)next))) {
        lex_number(lx, space);
        return 0;
    }
    if (c == ':' && next == '=') {
        emit(lx, TOK_DECLARE, start, ":=", 2, space);
        lx->pos += 2;
        return 0;
    }
    if (c && strchr(singles, c)) {
        emit(lx, single_kinds[strchr(singles, c) - singles], start, &c, 1, space);
        lx->pos++;
        return 0;
    }
    if (c == '.' || c == '$' || is_alnum(c)) {
        lx->pos++;
        while (lx->pos < lx->len && is_alnum(lx->s[lx->pos]))
            lx->pos++;
        size_t len = lx->pos - start;
        if (c == '.')
            emit(lx, len == 1 ? TOK_DOT : TOK_FIELD, start, lx->s + start + 1, len - 1, space);
        else
            emit(lx, c == '$' ? TOK_VAR : TOK_IDENT, start, lx->s + start, len, space);
        return 0;
    }
    /* Go's %#U: the code point, and the character when printable */
    if (isprint((unsigned char)c))
        return lex_fail(lx, start, "unrecognized character in action: U+%04X '%c'",
                        (unsigned char)c, c);
    return lex_fail(lx, start, "unrecognized character in action: U+%04X", (unsigned char)c);
}

/* A comment right after "{{" or "{{- ": skips it and its right delimiter. */
static int lex_comment(struct lexer *lx, bool *trim_after)
{
    size_t start = lx->pos;
    const char *end = memmem(lx->s + lx->pos, lx->len - lx->pos, "*/", 2);
    bool trim;
    size_t n;

    if (!end)
        return lex_fail(lx, start, "unclosed comment");
    lx->pos = (size_t)(end - lx->s) + 2;
    if ((n = right_delim(lx, &trim)) == 0)
        return lex_fail(lx, start, "comment ends before closing delimiter");
    lx->pos += n;
    *trim_after = trim;
    return 0;
}

static void emit_text(struct lexer *lx, size_t from, size_t to, bool trim_left, bool trim_right)
{
    while (trim_left && from < to && is_space(lx->s[from]))
        from++;
    while (trim_right && to > from && is_space(lx->s[to - 1]))
        to--;
    if (to > from)
        emit(lx, TOK_TEXT, from, lx->s + from, to - from, false);
}

int tmpl_lex(const char *name, const char *text, size_t len, struct tmpl_toks *out, struct err *e)
{
    struct lexer lx = {
        .name = name, .s = text, .len = len, .line = 1, .col = 1, .out = out, .e = e};
    bool trim_after = false;
    int rc = 0;

    *out = (struct tmpl_toks){NULL, 0};
    while (rc == 0 && lx.pos < len) {
        const char *open = memmem(text + lx.pos, len - lx.pos, "{{", 2);
        size_t at_open = open ? (size_t)(open - text) : len;
        bool trim_before =
            open && at_open + 3 < len && text[at_open + 2] == '-' && is_space(text[at_open + 3]);
        emit_text(&lx, lx.pos, at_open, trim_after, trim_before);
        trim_after = false;
        if (!open)
            break;
        lx.pos = at_open + 2 + (trim_before ? 2 : 0);
        if (at(&lx, "/*")) {
            rc = lex_comment(&lx, &trim_after);
            continue;
        }
        emit(&lx, TOK_LEFT, at_open, "{{", 2, false);
        for (bool done = false; rc == 0 && !done;)
            rc = lex_token(&lx, &done, &trim_after);
    }
    if (rc == 0)
        emit(&lx, TOK_EOF, len, "", 0, false);
    else
        tmpl_toks_free(out);
    return rc;
}

void tmpl_toks_free(struct tmpl_toks *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i].text);
    FREE_NULL(t->v);
    t->n = 0;
}
