#include "lib/bexpr.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/re.h"

enum bexpr_kind { BX_OR, BX_AND, BX_NOT, BX_MATCH };

/* The positive operators; a match node may negate its operator. */
enum bexpr_op { OP_EQUAL, OP_CONTAINS, OP_MATCHES, OP_EMPTY, OP_NIL };

#define MAX_PATH 16

struct bexpr {
    enum bexpr_kind kind;
    struct bexpr *left, *right; /* or, and: both; not: left */
    /* match */
    enum bexpr_op op;
    bool negate;
    char *path[MAX_PATH];
    size_t npath;
    char *value; /* raw text of the value; NULL for is empty / is nil */
    bool has_re;
    regex_t re;
};

void bexpr_free(struct bexpr *x)
{
    if (!x)
        return;
    bexpr_free(x->left);
    bexpr_free(x->right);
    for (size_t i = 0; i < x->npath; i++)
        free(x->path[i]);
    free(x->value);
    if (x->has_re)
        regfree(&x->re);
    free(x);
}

/* ---- parsing ----------------------------------------------------------------------------- */

struct parser {
    const char *s;
    size_t pos;
    int depth;
    struct err *e;
    bool failed;
};

static void fail(struct parser *p, size_t at, const char *msg)
{
    if (!p->failed)
        err_set(p->e, "1:%zu: %s", at + 1, msg);
    p->failed = true;
}

static void skip_ws(struct parser *p)
{
    while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\r' ||
           p->s[p->pos] == '\n')
        p->pos++;
}

static bool ident_start(char c)
{
    return isalpha((unsigned char)c);
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '/';
}

/* True (and consumed, with the blanks after it) when the next word is w. */
static bool take_word(struct parser *p, const char *w)
{
    size_t n = strlen(w);

    skip_ws(p);
    if (strncmp(p->s + p->pos, w, n) != 0 || ident_char(p->s[p->pos + n]))
        return false;
    p->pos += n;
    skip_ws(p);
    return true;
}

static bool take(struct parser *p, const char *tok)
{
    size_t n = strlen(tok);

    skip_ws(p);
    if (strncmp(p->s + p->pos, tok, n) != 0)
        return false;
    p->pos += n;
    skip_ws(p);
    return true;
}

/* Identifier: [A-Za-z][A-Za-z0-9_/]*. Returns a heap copy or NULL (nothing consumed). */
static char *identifier(struct parser *p)
{
    size_t start = p->pos;

    if (!ident_start(p->s[p->pos]))
        return NULL;
    while (ident_char(p->s[p->pos]))
        p->pos++;
    return xstrndup(p->s + start, p->pos - start);
}

/* A double-quoted (Go escapes) or backtick string. Returns heap text, or NULL when the next
 * token is not a string (or, with p->failed, when it is a broken one). */
static char *string_literal(struct parser *p)
{
    char q = p->s[p->pos];
    size_t start = p->pos;
    struct buf b = BUF_INIT;

    if (q != '"' && q != '`')
        return NULL;
    p->pos++;
    while (p->s[p->pos] && p->s[p->pos] != q) {
        char c = p->s[p->pos++];
        if (c == '\\' && q == '"' && p->s[p->pos]) {
            char x = p->s[p->pos++];
            c = x == 'n' ? '\n' : x == 't' ? '\t' : x == 'r' ? '\r' : x;
        }
        buf_append(&b, &c, 1);
    }
    if (!p->s[p->pos]) {
        buf_free(&b);
        fail(p, start, "unterminated string literal");
        return NULL;
    }
    p->pos++;
    buf_append(&b, "", 1);
    return b.data;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)? followed by a blank, ')' or the end. */
static char *number_literal(struct parser *p)
{
    size_t i = p->pos, start = p->pos;

    if (p->s[i] == '-')
        i++;
    if (!isdigit((unsigned char)p->s[i]))
        return NULL;
    if (p->s[i] == '0')
        i++;
    else
        while (isdigit((unsigned char)p->s[i]))
            i++;
    if (p->s[i] == '.' && isdigit((unsigned char)p->s[i + 1])) {
        i++;
        while (isdigit((unsigned char)p->s[i]))
            i++;
    }
    char after = p->s[i];
    if (after && after != ' ' && after != '\t' && after != '\r' && after != '\n' && after != ')') {
        fail(p, start, "invalid number literal");
        return NULL;
    }
    p->pos = i;
    return xstrndup(p->s + start, i - start);
}

/* Selector: Identifier ("." Identifier | "." digits | "[" string "]")*. Fills m->path. */
static bool selector(struct parser *p, struct bexpr *m)
{
    size_t start = p->pos;
    char *first = identifier(p);

    if (!first) {
        fail(p, start, "expected a selector");
        return false;
    }
    m->path[m->npath++] = first;
    for (;;) {
        char *seg = NULL;
        size_t at = p->pos;
        if (p->s[p->pos] == '.' && ident_start(p->s[p->pos + 1])) {
            p->pos++;
            seg = identifier(p);
        } else if (p->s[p->pos] == '.' && isdigit((unsigned char)p->s[p->pos + 1])) {
            size_t d = ++p->pos;
            while (isdigit((unsigned char)p->s[p->pos]))
                p->pos++;
            seg = xstrndup(p->s + d, p->pos - d);
        } else if (p->s[p->pos] == '[') {
            p->pos++;
            skip_ws(p);
            seg = string_literal(p);
            if (!seg) {
                fail(p, at, "invalid index: expected a quoted string");
                return false;
            }
            skip_ws(p);
            if (p->s[p->pos] != ']') {
                free(seg);
                fail(p, at, "unclosed index expression");
                return false;
            }
            p->pos++;
        } else {
            return true;
        }
        if (m->npath == MAX_PATH) {
            free(seg);
            fail(p, at, "selector too deep");
            return false;
        }
        m->path[m->npath++] = seg;
    }
}

static void path_free(struct bexpr *m)
{
    for (size_t i = 0; i < m->npath; i++)
        free(m->path[i]);
    m->npath = 0;
}

/* A value: string, number, or a bare selector-like word taken as text (`Status == passing`). */
static char *value(struct parser *p)
{
    size_t start = p->pos;
    char *v = string_literal(p);

    if (v || p->failed)
        return v;
    v = number_literal(p);
    if (v || p->failed)
        return v;
    struct bexpr word = {0};
    if (!ident_start(p->s[p->pos])) {
        fail(p, start, "expected a value (a string, a number or a word)");
        return NULL;
    }
    if (selector(p, &word))
        v = xstrndup(p->s + start, p->pos - start);
    path_free(&word);
    return v;
}

static struct bexpr *node_new(enum bexpr_kind kind)
{
    struct bexpr *x = xcalloc(1, sizeof(*x));
    x->kind = kind;
    return x;
}

/* The operator after a selector. Returns false (p failed) when there is none. */
static bool match_operator(struct parser *p, struct bexpr *m)
{
    skip_ws(p);
    size_t at = p->pos;

    if (take(p, "==")) {
        m->op = OP_EQUAL;
    } else if (take(p, "!=")) {
        m->op = OP_EQUAL, m->negate = true;
    } else if (take_word(p, "contains")) {
        m->op = OP_CONTAINS;
    } else if (take_word(p, "matches")) {
        m->op = OP_MATCHES;
    } else if (take_word(p, "is")) {
        m->negate = take_word(p, "not");
        if (take_word(p, "empty"))
            m->op = OP_EMPTY;
        else if (take_word(p, "nil"))
            m->op = OP_NIL;
        else
            return fail(p, p->pos, "expected \"empty\" or \"nil\" after \"is\""), false;
        return true;
    } else if (take_word(p, "not")) {
        m->negate = true;
        if (take_word(p, "contains"))
            m->op = OP_CONTAINS;
        else if (take_word(p, "matches"))
            m->op = OP_MATCHES;
        else
            return fail(p, p->pos, "expected \"contains\" or \"matches\" after \"not\""), false;
    } else {
        fail(p, at, "expected an operator (==, !=, contains, matches, in, is empty, ...)");
        return false;
    }
    m->value = value(p);
    return m->value != NULL;
}

/* The pattern comes from the request (?filter=): bounded, see lib/re.h. */
static int compile_regex(struct parser *p, struct bexpr *m, size_t at)
{
    struct err e;

    if (re_compile(&m->re, m->value, REG_NOSUB, &e) < 0) {
        err_prefix(&e, "failed to compile regular expression");
        fail(p, at, e.msg);
        return -EINVAL;
    }
    m->has_re = true;
    return 0;
}

/* Value (in | not in) Selector, or Selector Operator [Value]. */
static struct bexpr *match(struct parser *p)
{
    struct bexpr *m = node_new(BX_MATCH);
    size_t at = p->pos;
    bool value_first =
        p->s[at] == '"' || p->s[at] == '`' || p->s[at] == '-' || isdigit((unsigned char)p->s[at]);

    if (!value_first) {
        if (!selector(p, m))
            goto err;
        /* A bare word followed by "in" was a value: `primary in Service.Tags`. */
        size_t after = p->pos;
        if (take_word(p, "in") || (take_word(p, "not") && take_word(p, "in"))) {
            p->pos = after;
            path_free(m);
            value_first = true;
            p->pos = at;
        } else {
            p->pos = after;
        }
    }
    if (value_first) {
        m->value = value(p);
        if (!m->value)
            goto err;
        if (take_word(p, "in")) {
            m->op = OP_CONTAINS;
        } else if (take_word(p, "not") && take_word(p, "in")) {
            m->op = OP_CONTAINS, m->negate = true;
        } else {
            fail(p, p->pos, "expected \"in\" or \"not in\" after a value");
            goto err;
        }
        if (!selector(p, m))
            goto err;
        return m;
    }
    if (!match_operator(p, m))
        goto err;
    if (m->op == OP_MATCHES && compile_regex(p, m, at) < 0)
        goto err;
    return m;
err:
    bexpr_free(m);
    return NULL;
}

static struct bexpr *or_expr(struct parser *p);

static struct bexpr *primary(struct parser *p)
{
    size_t at = p->pos;

    if (++p->depth > BEXPR_MAX_DEPTH) {
        fail(p, at, "expression nested too deeply");
        return NULL;
    }
    struct bexpr *x = NULL;
    if (take_word(p, "not")) {
        struct bexpr *inner = primary(p);
        if (inner) {
            x = node_new(BX_NOT);
            x->left = inner;
        }
    } else if (take(p, "(")) {
        x = or_expr(p);
        if (x && !take(p, ")")) {
            fail(p, at, "unmatched parentheses");
            bexpr_free(x);
            x = NULL;
        }
    } else {
        x = match(p);
    }
    p->depth--;
    skip_ws(p);
    return x;
}

static struct bexpr *binary(struct parser *p, enum bexpr_kind kind, struct bexpr *left,
                            struct bexpr *(*operand)(struct parser *))
{
    if (!left)
        return NULL;
    while (take_word(p, kind == BX_OR ? "or" : "and")) {
        struct bexpr *right = operand(p);
        if (!right) {
            bexpr_free(left);
            return NULL;
        }
        struct bexpr *x = node_new(kind);
        x->left = left;
        x->right = right;
        left = x;
    }
    return left;
}

static struct bexpr *and_expr(struct parser *p)
{
    return binary(p, BX_AND, primary(p), primary);
}

static struct bexpr *or_expr(struct parser *p)
{
    return binary(p, BX_OR, and_expr(p), and_expr);
}

struct bexpr *bexpr_parse(const char *src, struct err *e)
{
    struct parser p = {.s = src, .e = e};

    if (strlen(src) > BEXPR_MAX_LEN) {
        err_set(e, "1:1: expression longer than %d bytes", BEXPR_MAX_LEN);
        return NULL;
    }
    skip_ws(&p);
    if (!src[p.pos]) {
        err_set(e, "1:1: empty expression");
        return NULL;
    }
    struct bexpr *x = or_expr(&p);
    if (x && src[p.pos]) {
        fail(&p, p.pos, "unexpected text after the expression");
        bexpr_free(x);
        x = NULL;
    }
    return x;
}

/* ---- evaluation -------------------------------------------------------------------------- */

#define NOT_PRESENT 2

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0)
            return *out = true, 0;
        if (strcmp(s, no[i]) == 0)
            return *out = false, 0;
    }
    return -EINVAL;
}

/* value == raw, raw coerced to v's type. 1, 0, or -EINVAL when raw does not convert. */
static int equal(const json_t *v, const char *raw)
{
    char *end;

    if (!v)
        return 0; /* nothing there equals no literal */
    switch (json_typeof(v)) {
    case JSON_STRING:
        return strcmp(json_string_value(v), raw) == 0;
    case JSON_INTEGER: {
        errno = 0;
        long long n = strtoll(raw, &end, 10);
        if (errno || end == raw || *end)
            return -EINVAL;
        return n == json_integer_value(v);
    }
    case JSON_REAL: {
        double d = strtod(raw, &end);
        if (end == raw || *end)
            return -EINVAL;
        return d == json_real_value(v);
    }
    case JSON_TRUE:
    case JSON_FALSE: {
        bool b;
        if (parse_bool(raw, &b) < 0)
            return -EINVAL;
        return b == json_is_true(v);
    }
    default:
        return 0; /* null, object, array: equal to no literal */
    }
}

static int apply(const struct bexpr *m, const json_t *v, struct err *e)
{
    int r;

    switch (m->op) {
    case OP_EQUAL:
        if (json_is_object(v) || json_is_array(v))
            return err_set(e, "cannot compare a %s with ==", json_is_object(v) ? "map" : "list");
        r = equal(v, m->value);
        if (r < 0)
            err_set(e, "cannot compare %s with %s", m->value,
                    json_is_string(v) ? "a string" : "a number or bool");
        return r;
    case OP_CONTAINS:
        if (json_is_string(v))
            return strstr(json_string_value(v), m->value) != NULL;
        if (json_is_object(v))
            return json_object_get(v, m->value) != NULL;
        if (json_is_array(v)) {
            size_t i;
            const json_t *item;
            json_array_foreach(v, i, item) if (equal(item, m->value) == 1) return 1;
            return 0;
        }
        if (json_is_null(v))
            return 0;
        return err_set(e, "cannot perform in/contains on a number or bool");
    case OP_MATCHES:
        if (json_is_null(v))
            return 0;
        if (!json_is_string(v))
            return err_set(e, "cannot match a regular expression against a non-string value");
        return regexec(&m->re, json_string_value(v), 0, NULL, 0) == 0;
    case OP_EMPTY:
        if (json_is_null(v))
            return 1;
        if (json_is_string(v))
            return json_string_length(v) == 0;
        if (json_is_array(v))
            return json_array_size(v) == 0;
        if (json_is_object(v))
            return json_object_size(v) == 0;
        return err_set(e, "cannot perform is empty on a number or bool");
    case OP_NIL:
        return json_is_null(v);
    }
    return 0;
}

/* The positive operator on the value at m->path[i..], or NOT_PRESENT. */
static int positive(const struct bexpr *m, const json_t *v, size_t i, struct err *e)
{
    if (i == m->npath)
        return apply(m, v, e);
    const char *seg = m->path[i];
    if (json_is_object(v)) {
        const json_t *child = json_object_get(v, seg);
        return child ? positive(m, child, i + 1, e) : NOT_PRESENT;
    }
    if (!json_is_array(v))
        return NOT_PRESENT;
    if (isdigit((unsigned char)seg[0])) {
        const json_t *child = json_array_get(v, strtoul(seg, NULL, 10));
        return child ? positive(m, child, i + 1, e) : NOT_PRESENT;
    }
    /* A field of a list's elements: does any element have it so? */
    size_t k;
    const json_t *item;
    json_array_foreach(v, k, item)
    {
        int r = positive(m, item, i, e);
        if (r < 0)
            return r;
        if (r == 1 || (r == NOT_PRESENT && (m->op == OP_EMPTY || m->op == OP_NIL)))
            return 1;
    }
    return 0;
}

int bexpr_eval(const struct bexpr *x, const json_t *v, struct err *e)
{
    int l;

    switch (x->kind) {
    case BX_OR:
    case BX_AND:
        l = bexpr_eval(x->left, v, e);
        if (l < 0 || l == (x->kind == BX_OR))
            return l;
        return bexpr_eval(x->right, v, e);
    case BX_NOT:
        l = bexpr_eval(x->left, v, e);
        return l < 0 ? l : !l;
    case BX_MATCH:
        l = positive(x, v, 0, e);
        if (l < 0)
            return l;
        if (l == NOT_PRESENT)
            l = x->op == OP_EMPTY || x->op == OP_NIL;
        return x->negate ? !l : l;
    }
    return 0;
}

/* ---- checking against a type ------------------------------------------------------------- */

/* go-bexpr's name of a match operator, as its errors print it. */
static const char *op_name(const struct bexpr *m)
{
    switch (m->op) {
    case OP_EQUAL:
        return m->negate ? "Not Equal" : "Equal";
    case OP_CONTAINS:
        return m->negate ? "Not In" : "In";
    case OP_MATCHES:
        return m->negate ? "Not Matches" : "Matches";
    case OP_EMPTY:
        return m->negate ? "Is Not Empty" : "Is Empty";
    case OP_NIL:
        return m->negate ? "Is Not Nil" : "Is Nil";
    }
    return "UNKNOWN";
}

#define OP_BIT(op) (1u << (op))

/*
 * The operators each type takes, as OP_BITs. `is nil` is go-bexpr's newest operator (0.1.16):
 * it takes what a Go value can be nil in (maps, slices, pointers) and structs (never nil), and
 * refuses a string, number or bool ("cannot perform is-nil operations on type string").
 */
static unsigned type_ops(enum bexpr_type t)
{
    switch (t) {
    case BEXPR_STRING:
        return OP_BIT(OP_EQUAL) | OP_BIT(OP_CONTAINS) | OP_BIT(OP_MATCHES);
    case BEXPR_INT:
    case BEXPR_BOOL:
        return OP_BIT(OP_EQUAL);
    case BEXPR_STRINGS:
    case BEXPR_MAP:
        return OP_BIT(OP_CONTAINS) | OP_BIT(OP_EMPTY) | OP_BIT(OP_NIL);
    case BEXPR_LIST:
        return OP_BIT(OP_EMPTY) | OP_BIT(OP_NIL);
    case BEXPR_STRUCT:
    case BEXPR_OPAQUE:
        return OP_BIT(OP_NIL);
    }
    return 0;
}

/* m's selector up to and including segment last, dotted as go-bexpr prints it. */
static void selector_text(const struct bexpr *m, size_t last, struct buf *b)
{
    for (size_t i = 0; i <= last; i++)
        buf_printf(b, "%s%s", i ? "." : "", m->path[i]);
    buf_append(b, "", 1);
}

static const struct bexpr_field *field_named(const struct bexpr_field *t, const char *name)
{
    for (; t && t->name; t++)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

/* The field m's selector names, or NULL with e set. */
static const struct bexpr_field *resolve(const struct bexpr *m, const struct bexpr_field *fields,
                                         struct err *e)
{
    const struct bexpr_field *f = NULL;

    for (size_t i = 0; i < m->npath; i++) {
        if (f && f->type == BEXPR_MAP) {
            f = f->sub; /* any key names a value */
            continue;
        }
        f = field_named(f ? f->sub : fields, m->path[i]);
        if (!f) {
            struct buf b = BUF_INIT;
            selector_text(m, i, &b);
            err_set(e, "Selector \"%s\" is not valid", b.data);
            buf_free(&b);
            return NULL;
        }
    }
    return f;
}

/* Go's strconv error for a value that does not convert to the field's type. */
static int coerce(const struct bexpr *m, enum bexpr_type t, struct err *e)
{
    const char *fn = t == BEXPR_INT ? "ParseInt" : "ParseBool";
    const char *why = "invalid syntax";
    char *end;
    bool b;

    if (t == BEXPR_INT) {
        errno = 0;
        (void)strtoll(m->value, &end, 10);
        if (end != m->value && !*end && !errno)
            return 0;
        if (errno == ERANGE)
            why = "value out of range";
    } else if (parse_bool(m->value, &b) == 0) {
        return 0;
    }
    struct buf sel = BUF_INIT;
    selector_text(m, m->npath - 1, &sel);
    err_set(e, "Failed to coerce value \"%s\" for selector \"%s\": strconv.%s: parsing \"%s\": %s",
            m->value, sel.data, fn, m->value, why);
    buf_free(&sel);
    return -EINVAL;
}

static int check_match(const struct bexpr *m, const struct bexpr_field *fields, struct err *e)
{
    const struct bexpr_field *f = resolve(m, fields, e);

    if (!f)
        return -EINVAL;
    if (!(type_ops(f->type) & OP_BIT(m->op))) {
        struct buf sel = BUF_INIT;
        selector_text(m, m->npath - 1, &sel);
        if (m->op == OP_NIL) /* go-bexpr 0.1.16's words, with the Go kind of the field */
            err_set(e, "cannot perform is-nil operations on type %s for selector: \"%s\"",
                    f->type == BEXPR_STRING ? "string"
                    : f->type == BEXPR_INT  ? "int"
                                            : "bool",
                    sel.data);
        else
            err_set(e, "Invalid match operator \"%s\" for selector \"%s\"", op_name(m), sel.data);
        buf_free(&sel);
        return -EINVAL;
    }
    if (m->op == OP_EQUAL && (f->type == BEXPR_INT || f->type == BEXPR_BOOL))
        return coerce(m, f->type, e);
    return 0;
}

int bexpr_check(const struct bexpr *x, const struct bexpr_field *fields, struct err *e)
{
    int r;

    switch (x->kind) {
    case BX_OR:
    case BX_AND:
        r = bexpr_check(x->left, fields, e);
        return r < 0 ? r : bexpr_check(x->right, fields, e);
    case BX_NOT:
        return bexpr_check(x->left, fields, e);
    case BX_MATCH:
        return check_match(x, fields, e);
    }
    return 0;
}
