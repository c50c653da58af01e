/*
 * JMESPath's subset (jmespath.h): a Pratt parser over the specification's grammar and binding
 * powers, into a tree evaluated over jansson values. The tree is immutable once compiled, and
 * evaluation touches only the document and fresh values (literals are copied, not shared), so
 * worker threads may search with one expression at once.
 */
#include "load/jmespath.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "load/payload.h"

#define MAX_DEPTH 64 /* nesting of the expression: bounds the parser's stack */
/* Nodes on a path from the root, which bounds the evaluator's and node_free's stacks: each
 * operator puts the tree so far one level down, so `a.b.c...` is as deep as it is long. */
#define MAX_HEIGHT 1024

enum jmes_kind {
    J_CURRENT, /* @, and the right side of a projection with nothing after it */
    J_FIELD,
    J_LITERAL,
    J_INDEX,
    J_SLICE,
    J_SUB,     /* l.r: r over l's value, null when that is null */
    J_PIPE,    /* l | r: r over l's value, ending a projection */
    J_PROJECT, /* r over each element of the list l, nulls left out */
    J_VALUES,  /* r over each value of the object l (a `*` projection) */
    J_FLATTEN, /* l's list with its lists' elements spliced in (then projected) */
    J_FILTER,  /* r over each element of l that cond holds for */
    J_CMP,
    J_AND,
    J_OR,
    J_NOT,
    J_LENGTH,
};

enum jmes_cmp { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };

struct jmes_node {
    enum jmes_kind kind;
    struct jmes_node *l, *r, *cond;
    char *name;   /* J_FIELD */
    json_t *lit;  /* J_LITERAL */
    long long at; /* J_INDEX */
    long long slice[3];
    bool has[3]; /* J_SLICE: which of start, stop and step were given */
    enum jmes_cmp op;
};

struct load_jmes {
    struct jmes_node *root;
};

enum tok_kind {
    T_EOF,
    T_IDENT,  /* unquoted: text is the name */
    T_QIDENT, /* "quoted": text is the name */
    T_RAW,    /* 'raw string' */
    T_LITERAL,
    T_NUMBER,
    T_DOT,
    T_STAR,
    T_LBRACKET,
    T_RBRACKET,
    T_FILTER,  /* [? */
    T_FLATTEN, /* [] */
    T_LPAREN,
    T_RPAREN,
    T_COMMA,
    T_COLON,
    T_PIPE,
    T_OR,
    T_AND,
    T_NOT,
    T_CMP,
    T_AT,
    T_LBRACE, /* refused: a multi-select hash */
    T_AMP,    /* refused: an expression reference */
    T_ERROR,
};

struct tok {
    enum tok_kind kind;
    size_t col; /* from 1 */
    char *text; /* T_IDENT, T_QIDENT, T_RAW: owned until a node takes it */
    json_t *lit;
    long long num;
    enum jmes_cmp op;
};

struct parser {
    const char *src, *p;
    struct tok tok; /* the lookahead */
    struct err *e;
    int rc;
    int depth;  /* expression() calls under way */
    int height; /* operators on the path from the root to the node being parsed */
};

static int fail(struct parser *ps, size_t col, const char *what)
{
    if (ps->rc == 0)
        ps->rc = err_set(ps->e, "%s at column %zu", what, col);
    ps->tok.kind = T_ERROR;
    return ps->rc;
}

static void refuse(struct parser *ps, size_t col, const char *construct)
{
    char msg[160];

    snprintf(msg, sizeof(msg), "%s is not supported", construct);
    fail(ps, col, msg);
}

static void tok_clear(struct tok *t)
{
    free(t->text);
    json_decref(t->lit);
    *t = (struct tok){0};
}

/* A quoted identifier is a JSON string; a raw string takes \' (and \\) and nothing else. */
static void lex_quoted(struct parser *ps, char quote, size_t col)
{
    const char *start = ps->p + 1, *q = start;

    while (*q && *q != quote)
        q += q[0] == '\\' && q[1] ? 2 : 1;
    if (!*q) {
        fail(ps, col, quote == '"' ? "a quoted name never closed" : "a raw string never closed");
        return;
    }
    ps->p = q + 1;
    if (quote == '"') {
        json_t *s = json_loadb(start - 1, (size_t)(q + 1 - (start - 1)), JSON_DECODE_ANY, NULL);

        if (!json_is_string(s)) {
            json_decref(s);
            fail(ps, col, "a quoted name that is not a JSON string");
            return;
        }
        ps->tok = (struct tok){.kind = T_QIDENT, .col = col, .text = xstrdup(json_string_value(s))};
        json_decref(s);
        return;
    }
    char *out = xmalloc((size_t)(q - start) + 1), *o = out;

    for (const char *c = start; c < q; c++) {
        if (c[0] == '\\' && (c[1] == '\'' || c[1] == '\\'))
            c++;
        *o++ = *c;
    }
    *o = '\0';
    ps->tok = (struct tok){.kind = T_RAW, .col = col, .text = out};
}

/* `json`: a JSON value, with \` for a backquote inside. */
static void lex_literal(struct parser *ps, size_t col)
{
    const char *start = ps->p + 1, *q = start;
    char *text, *o;

    while (*q && *q != '`')
        q += q[0] == '\\' && q[1] == '`' ? 2 : 1;
    if (!*q) {
        fail(ps, col, "a `literal` never closed");
        return;
    }
    text = o = xmalloc((size_t)(q - start) + 1);
    for (const char *c = start; c < q; c++) {
        if (c[0] == '\\' && c[1] == '`')
            c++;
        *o++ = *c;
    }
    *o = '\0';
    ps->p = q + 1;
    ps->tok = (struct tok){.kind = T_LITERAL, .col = col};
    ps->tok.lit = json_loads(text, JSON_DECODE_ANY, NULL);
    free(text);
    if (!ps->tok.lit)
        fail(ps, col, "a `literal` that is not JSON");
}

static const struct {
    const char *text;
    enum tok_kind kind;
    enum jmes_cmp op;
} punct[] = {
    {"[?", T_FILTER, 0},   {"[]", T_FLATTEN, 0},  {"==", T_CMP, CMP_EQ}, {"!=", T_CMP, CMP_NE},
    {"<=", T_CMP, CMP_LE}, {">=", T_CMP, CMP_GE}, {"||", T_OR, 0},       {"&&", T_AND, 0},
    {"<", T_CMP, CMP_LT},  {">", T_CMP, CMP_GT},  {".", T_DOT, 0},       {"*", T_STAR, 0},
    {"[", T_LBRACKET, 0},  {"]", T_RBRACKET, 0},  {"(", T_LPAREN, 0},    {")", T_RPAREN, 0},
    {",", T_COMMA, 0},     {":", T_COLON, 0},     {"|", T_PIPE, 0},      {"!", T_NOT, 0},
    {"@", T_AT, 0},        {"{", T_LBRACE, 0},    {"&", T_AMP, 0},
};

static void next(struct parser *ps)
{
    size_t col;

    tok_clear(&ps->tok);
    if (ps->rc) {
        ps->tok.kind = T_ERROR;
        return;
    }
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
    col = (size_t)(ps->p - ps->src) + 1;
    ps->tok.col = col;
    if (!*ps->p)
        return; /* T_EOF */
    if (isalpha((unsigned char)*ps->p) || *ps->p == '_') {
        const char *start = ps->p;

        while (isalnum((unsigned char)*ps->p) || *ps->p == '_')
            ps->p++;
        ps->tok.kind = T_IDENT;
        ps->tok.text = xstrndup(start, (size_t)(ps->p - start));
        return;
    }
    if (isdigit((unsigned char)*ps->p) || (*ps->p == '-' && isdigit((unsigned char)ps->p[1]))) {
        char *end;

        errno = 0;
        ps->tok.kind = T_NUMBER;
        ps->tok.num = strtoll(ps->p, &end, 10);
        ps->p = end;
        if (errno)
            fail(ps, col, "a number out of range");
        return;
    }
    if (*ps->p == '"' || *ps->p == '\'') {
        lex_quoted(ps, *ps->p, col);
        return;
    }
    if (*ps->p == '`') {
        lex_literal(ps, col);
        return;
    }
    for (size_t i = 0; i < sizeof(punct) / sizeof(punct[0]); i++) {
        size_t n = strlen(punct[i].text);

        if (strncmp(ps->p, punct[i].text, n) == 0) {
            ps->p += n;
            ps->tok.kind = punct[i].kind;
            ps->tok.op = punct[i].op;
            return;
        }
    }
    fail(ps, col, "an unexpected character");
}

/* The specification's binding powers: how tightly each token holds its left operand. */
static int binding_power(enum tok_kind k)
{
    switch (k) {
    case T_PIPE:
        return 1;
    case T_OR:
        return 2;
    case T_AND:
        return 3;
    case T_CMP:
        return 5;
    case T_FLATTEN:
        return 9;
    case T_STAR:
        return 20;
    case T_FILTER:
        return 21;
    case T_DOT:
        return 40;
    case T_NOT:
        return 45;
    case T_LBRACE:
        return 50;
    case T_LBRACKET:
        return 55;
    case T_LPAREN:
        return 60;
    default:
        return 0;
    }
}

#define BP_STAR            20
#define BP_FILTER          21
#define BP_PROJECTION_STOP 10

static struct jmes_node *node(enum jmes_kind kind, struct jmes_node *l, struct jmes_node *r)
{
    struct jmes_node *n = xcalloc(1, sizeof(*n));

    n->kind = kind;
    n->l = l;
    n->r = r;
    return n;
}

static void node_free(struct jmes_node *n)
{
    if (!n)
        return;
    node_free(n->l);
    node_free(n->r);
    node_free(n->cond);
    free(n->name);
    json_decref(n->lit);
    free(n);
}

static struct jmes_node *expression(struct parser *ps, int rbp);

static bool expect_tok(struct parser *ps, enum tok_kind k, const char *what)
{
    if (ps->tok.kind != k) {
        if (ps->tok.kind != T_ERROR)
            fail(ps, ps->tok.col, what);
        return false;
    }
    next(ps);
    return true;
}

/* After `[`: an index (`[0]`) or a slice (`[1:3]`, `[::2]`), the `[` taken. */
static struct jmes_node *index_or_slice(struct parser *ps)
{
    struct jmes_node *n = node(J_INDEX, NULL, NULL);
    int part = 0;
    size_t col = ps->tok.col;

    while (ps->tok.kind != T_RBRACKET && ps->tok.kind != T_ERROR) {
        if (ps->tok.kind == T_COLON) {
            if (++part > 2) {
                fail(ps, ps->tok.col, "a slice with more than three parts");
                break;
            }
            n->kind = J_SLICE;
        } else if (ps->tok.kind == T_NUMBER && !n->has[part]) {
            n->slice[part] = ps->tok.num;
            n->has[part] = true;
        } else {
            fail(ps, ps->tok.col, "want a number, `:` or `]` in an index");
            break;
        }
        next(ps);
    }
    if (n->kind == J_INDEX) {
        if (!n->has[0] && !ps->rc)
            fail(ps, col, "an empty index");
        n->at = n->slice[0];
    } else if (n->has[2] && n->slice[2] == 0 && !ps->rc) {
        fail(ps, col, "a slice's step of 0");
    }
    expect_tok(ps, T_RBRACKET, "want `]`");
    return n;
}

/* What follows a projection: nothing (then @), `[...]`, `[?...]` or `.name`. */
static struct jmes_node *projection_rhs(struct parser *ps, int rbp);

/* After `.`: a name, `*`, or the multi-selects this subset refuses. */
static struct jmes_node *dot_rhs(struct parser *ps, int rbp)
{
    switch (ps->tok.kind) {
    case T_IDENT:
    case T_QIDENT:
    case T_STAR:
        return expression(ps, rbp);
    case T_LBRACKET:
    case T_FILTER:
    case T_FLATTEN:
        refuse(ps, ps->tok.col, "a multi-select list .[a, b]");
        return NULL;
    case T_LBRACE:
        refuse(ps, ps->tok.col, "a multi-select hash .{k: v}");
        return NULL;
    default:
        fail(ps, ps->tok.col, "want a name after `.`");
        return NULL;
    }
}

static struct jmes_node *projection_rhs(struct parser *ps, int rbp)
{
    if (binding_power(ps->tok.kind) < BP_PROJECTION_STOP)
        return node(J_CURRENT, NULL, NULL);
    switch (ps->tok.kind) {
    case T_LBRACKET:
    case T_FILTER:
        return expression(ps, rbp);
    case T_DOT:
        next(ps);
        return dot_rhs(ps, rbp);
    default:
        fail(ps, ps->tok.col, "want `.`, `[` or the end after a projection");
        return NULL;
    }
}

/* name(...) once name is taken and the lookahead is `(`. */
static struct jmes_node *function_call(struct parser *ps, char *name, size_t col)
{
    struct jmes_node *n = NULL;

    if (strcmp(name, "length") != 0) {
        char what[96];

        snprintf(what, sizeof(what), "the function %.40s() (length() is supported)", name);
        refuse(ps, col, what);
        free(name);
        return NULL;
    }
    free(name);
    next(ps);
    if (ps->tok.kind == T_AMP) {
        refuse(ps, ps->tok.col, "an expression reference &expr");
        return NULL;
    }
    n = node(J_LENGTH, ps->tok.kind == T_RPAREN ? NULL : expression(ps, 0), NULL);
    if (ps->tok.kind == T_COMMA)
        fail(ps, ps->tok.col, "length() takes one argument");
    else if (!n->l && !ps->rc)
        fail(ps, ps->tok.col, "length() takes one argument");
    expect_tok(ps, T_RPAREN, "want `)`");
    return n;
}

/* After `[` (taken): an index or slice of left, `[*]`, or a multi-select list. */
static struct jmes_node *bracket(struct parser *ps, struct jmes_node *left)
{
    struct jmes_node *n;

    if (ps->tok.kind == T_NUMBER || ps->tok.kind == T_COLON) {
        n = index_or_slice(ps);
        if (n->kind == J_INDEX)
            return node(J_SUB, left, n);
        return node(J_PROJECT, node(J_SUB, left, n), projection_rhs(ps, BP_STAR));
    }
    if (ps->tok.kind == T_STAR) {
        next(ps);
        if (ps->tok.kind == T_RBRACKET) {
            next(ps);
            return node(J_PROJECT, left, projection_rhs(ps, BP_STAR));
        }
    }
    node_free(left);
    if (ps->tok.kind == T_EOF || ps->tok.kind == T_RBRACKET)
        fail(ps, ps->tok.col, "want a number, `:` or `*` after `[`");
    else if (ps->tok.kind != T_ERROR)
        refuse(ps, ps->tok.col, "a multi-select list [a, b]");
    return NULL;
}

static struct jmes_node *nud(struct parser *ps)
{
    struct tok t = ps->tok;
    struct jmes_node *n;

    ps->tok = (struct tok){0}; /* t owns the token's text and literal now */
    next(ps);
    switch (t.kind) {
    case T_IDENT:
        if (ps->tok.kind == T_LPAREN)
            return function_call(ps, t.text, t.col);
        /* fall through */
    case T_QIDENT:
        n = node(J_FIELD, NULL, NULL);
        n->name = t.text;
        return n;
    case T_RAW:
        n = node(J_LITERAL, NULL, NULL);
        n->lit = json_string(t.text);
        free(t.text);
        return n;
    case T_LITERAL:
        n = node(J_LITERAL, NULL, NULL);
        n->lit = t.lit;
        return n;
    case T_AT:
        return node(J_CURRENT, NULL, NULL);
    case T_STAR:
        return node(J_VALUES, node(J_CURRENT, NULL, NULL), projection_rhs(ps, BP_STAR));
    case T_FLATTEN:
        return node(J_PROJECT, node(J_FLATTEN, node(J_CURRENT, NULL, NULL), NULL),
                    projection_rhs(ps, binding_power(T_FLATTEN)));
    case T_FILTER:
        n = node(J_FILTER, node(J_CURRENT, NULL, NULL), NULL);
        n->cond = expression(ps, 0);
        expect_tok(ps, T_RBRACKET, "want `]` after a filter");
        n->r = projection_rhs(ps, BP_FILTER);
        return n;
    case T_LBRACKET:
        return bracket(ps, node(J_CURRENT, NULL, NULL));
    case T_NOT:
        return node(J_NOT, expression(ps, binding_power(T_NOT)), NULL);
    case T_LPAREN:
        n = expression(ps, 0);
        expect_tok(ps, T_RPAREN, "want `)`");
        return n;
    case T_LBRACE:
        refuse(ps, t.col, "a multi-select hash {k: v}");
        return NULL;
    case T_AMP:
        refuse(ps, t.col, "an expression reference &expr");
        return NULL;
    case T_ERROR:
        tok_clear(&t);
        return NULL;
    default:
        tok_clear(&t);
        fail(ps, ps->tok.col, "an unexpected token");
        return NULL;
    }
}

static struct jmes_node *led(struct parser *ps, struct jmes_node *left)
{
    enum tok_kind k = ps->tok.kind;
    enum jmes_cmp op = ps->tok.op;
    size_t col = ps->tok.col;
    struct jmes_node *n;

    next(ps);
    switch (k) {
    case T_LBRACKET:
        return bracket(ps, left);
    case T_DOT:
        return node(J_SUB, left, dot_rhs(ps, binding_power(T_DOT)));
    case T_PIPE:
        return node(J_PIPE, left, expression(ps, binding_power(T_PIPE)));
    case T_OR:
        return node(J_OR, left, expression(ps, binding_power(T_OR)));
    case T_AND:
        return node(J_AND, left, expression(ps, binding_power(T_AND)));
    case T_CMP:
        n = node(J_CMP, left, expression(ps, binding_power(T_CMP)));
        n->op = op;
        return n;
    case T_FLATTEN:
        return node(J_PROJECT, node(J_FLATTEN, left, NULL),
                    projection_rhs(ps, binding_power(T_FLATTEN)));
    case T_FILTER:
        n = node(J_FILTER, left, NULL);
        n->cond = expression(ps, 0);
        expect_tok(ps, T_RBRACKET, "want `]` after a filter");
        n->r = projection_rhs(ps, BP_FILTER);
        return n;
    case T_LBRACE:
        node_free(left);
        refuse(ps, col, "a multi-select hash {k: v}");
        return NULL;
    default:
        node_free(left);
        fail(ps, col, "an unexpected token");
        return NULL;
    }
}

static struct jmes_node *expression(struct parser *ps, int rbp)
{
    struct jmes_node *left;
    int height = ps->height;

    if (++ps->depth > MAX_DEPTH) {
        fail(ps, ps->tok.col, "an expression nested too deep");
        ps->depth--;
        return NULL;
    }
    left = nud(ps);
    while (!ps->rc && rbp < binding_power(ps->tok.kind)) {
        if (++ps->height > MAX_HEIGHT) {
            fail(ps, ps->tok.col, "an expression chained too long");
            break;
        }
        left = led(ps, left);
    }
    ps->height = height;
    ps->depth--;
    return left;
}

int load_jmes_compile(const char *expr, struct load_jmes **out, struct err *e)
{
    struct parser ps = {.src = expr, .p = expr, .e = e};
    struct jmes_node *root;

    *out = NULL;
    next(&ps);
    root = expression(&ps, 0);
    if (!ps.rc && ps.tok.kind != T_EOF)
        fail(&ps, ps.tok.col, "an unexpected token");
    tok_clear(&ps.tok);
    if (ps.rc) {
        node_free(root);
        return ps.rc;
    }
    MESH_BUG_ON(!root);
    *out = xmalloc(sizeof(**out));
    (*out)->root = root;
    return 0;
}

void load_jmes_free(struct load_jmes *q)
{
    if (!q)
        return;
    node_free(q->root);
    free(q);
}

/* JMESPath's truthiness, for filters and && || !: false, null, "", [] and {} are false. */
static bool jmes_truthy(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_STRING:
        return json_string_length(v) > 0;
    case JSON_ARRAY:
        return json_array_size(v) > 0;
    case JSON_OBJECT:
        return json_object_size(v) > 0;
    default:
        return true;
    }
}

bool load_jmes_js_truthy(const json_t *v)
{
    if (json_is_number(v)) {
        double d = json_number_value(v);

        return d == d && d != 0; /* NaN and 0 are false */
    }
    if (json_is_string(v))
        return json_string_length(v) > 0;
    return v && !json_is_null(v) && !json_is_false(v);
}

/* JMESPath's equality: deep, numbers by value (1 == 1.0). */
static bool equal(const json_t *a, const json_t *b)
{
    const char *key;
    json_t *v;
    size_t i;

    if (json_is_number(a) && json_is_number(b))
        return json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        json_array_foreach(a, i, v) if (!equal(v, json_array_get(b, i))) return false;
        return true;
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b))
            return false;
        json_object_foreach((json_t *)a, key, v)
        {
            const json_t *w = json_object_get(b, key);

            if (!w || !equal(v, w))
                return false;
        }
        return true;
    default:
        return true; /* null, true, false: the type says it all */
    }
}

/* JavaScript's ToNumber, which jmespath.js's < and > apply to what is not two strings; lists
 * and objects (which JavaScript would first join into text) are NaN here. */
static double js_number(const json_t *v)
{
    const char *s;
    size_t n, i = 0;
    json_t *num;
    double d;

    switch (json_typeof(v)) {
    case JSON_INTEGER:
    case JSON_REAL:
        return json_number_value(v);
    case JSON_NULL:
    case JSON_FALSE:
        return 0;
    case JSON_TRUE:
        return 1;
    case JSON_STRING:
        s = json_string_value(v);
        n = json_string_length(v);
        while (i < n && isspace((unsigned char)s[i]))
            i++;
        if (i == n)
            return 0;
        if (!(num = load_csv_number(s, n)))
            return NAN;
        d = json_number_value(num);
        json_decref(num);
        return d;
    default:
        return NAN;
    }
}

static json_t *compare(enum jmes_cmp op, const json_t *a, const json_t *b)
{
    double x, y;

    if (op == CMP_EQ || op == CMP_NE)
        return json_boolean(equal(a, b) == (op == CMP_EQ));
    if (json_is_string(a) && json_is_string(b)) { /* as text, as JavaScript compares them */
        size_t na = json_string_length(a), nb = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), na < nb ? na : nb);

        x = c ? c : (double)na - (double)nb;
        y = 0;
    } else {
        x = js_number(a);
        y = js_number(b);
    }
    switch (op) { /* NaN on either side makes every one false */
    case CMP_LT:
        return json_boolean(x < y);
    case CMP_LE:
        return json_boolean(x <= y);
    case CMP_GT:
        return json_boolean(x > y);
    default:
        return json_boolean(x >= y);
    }
}

/* Python's (and the specification's) slice of a list of n elements. */
static json_t *slice(const struct jmes_node *s, const json_t *list)
{
    long long n = (long long)json_array_size(list);
    long long step = s->has[2] ? s->slice[2] : 1;
    long long lo = step > 0 ? 0 : -1, hi = step > 0 ? n : n - 1;
    long long start = step > 0 ? 0 : n - 1, stop = step > 0 ? n : -1;
    json_t *out = json_array();

    if (s->has[0]) {
        start = s->slice[0] < 0 ? s->slice[0] + n : s->slice[0];
        start = start < lo ? lo : start > hi ? hi : start;
    }
    if (s->has[1]) {
        stop = s->slice[1] < 0 ? s->slice[1] + n : s->slice[1];
        stop = stop < lo ? lo : stop > hi ? hi : stop;
    }
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step)
        json_array_append(out, json_array_get(list, (size_t)i));
    return out;
}

/* The length of a string as JavaScript counts it: UTF-16 code units. */
static size_t js_length(const json_t *s)
{
    const unsigned char *p = (const unsigned char *)json_string_value(s);
    size_t n = 0;

    for (size_t i = 0; i < json_string_length(s); i++)
        if ((p[i] & 0xC0) != 0x80)
            n += p[i] >= 0xF0 ? 2 : 1; /* four bytes: outside the BMP, a surrogate pair */
    return n;
}

static json_t *eval(const struct jmes_node *n, const json_t *cur, struct err *e);

/* r over each of items (a list, owned), nulls left out; when keep is given, only the items it
 * holds for. */
static json_t *project(const struct jmes_node *r, const struct jmes_node *keep, json_t *items,
                       struct err *e)
{
    json_t *out = json_array(), *item;
    size_t i;

    json_array_foreach(items, i, item)
    {
        json_t *v;

        if (keep) {
            json_t *c = eval(keep, item, e);
            bool yes = c && jmes_truthy(c);

            json_decref(c);
            if (!c)
                goto fail;
            if (!yes)
                continue;
        }
        if (!(v = eval(r, item, e)))
            goto fail;
        if (json_is_null(v))
            json_decref(v);
        else
            json_array_append_new(out, v);
    }
    json_decref(items);
    return out;
fail:
    json_decref(items);
    json_decref(out);
    return NULL;
}

static json_t *eval_list(const struct jmes_node *n, const json_t *base, struct err *e)
{
    json_t *items;
    const char *key;
    json_t *v;
    size_t i;

    switch (n->kind) {
    case J_PROJECT:
        if (!json_is_array(base))
            return json_null();
        return project(n->r, NULL, json_incref((json_t *)base), e);
    case J_FILTER:
        if (!json_is_array(base))
            return json_null();
        return project(n->r, n->cond, json_incref((json_t *)base), e);
    case J_VALUES:
        if (!json_is_object(base))
            return json_null();
        items = json_array();
        json_object_foreach((json_t *)base, key, v) json_array_append(items, v);
        return project(n->r, NULL, items, e);
    case J_FLATTEN:
        if (!json_is_array(base))
            return json_null();
        items = json_array();
        json_array_foreach(base, i, v)
        {
            if (json_is_array(v))
                json_array_extend(items, v);
            else
                json_array_append(items, v);
        }
        return items;
    default:
        MESH_BUG_ON(true);
        return json_null();
    }
}

static json_t *eval(const struct jmes_node *n, const json_t *cur, struct err *e)
{
    json_t *l, *r, *out;

    switch (n->kind) {
    case J_CURRENT:
        return json_incref((json_t *)cur);
    case J_FIELD:
        out = json_is_object(cur) ? json_object_get(cur, n->name) : NULL;
        return out ? json_incref(out) : json_null();
    case J_LITERAL:
        return json_deep_copy(n->lit); /* a copy: the tree is shared by threads */
    case J_INDEX: {
        long long size = (long long)json_array_size(cur), at = n->at < 0 ? n->at + size : n->at;

        out = json_is_array(cur) && at >= 0 && at < size ? json_array_get(cur, (size_t)at) : NULL;
        return out ? json_incref(out) : json_null();
    }
    case J_SLICE:
        return json_is_array(cur) ? slice(n, cur) : json_null();
    case J_LENGTH:
        if (!(l = eval(n->l, cur, e)))
            return NULL;
        if (json_is_string(l))
            out = json_integer((json_int_t)js_length(l));
        else if (json_is_array(l))
            out = json_integer((json_int_t)json_array_size(l));
        else if (json_is_object(l))
            out = json_integer((json_int_t)json_object_size(l));
        else
            out = NULL; /* jmespath.js throws a TypeError */
        if (!out)
            err_setf(e, "length() wants a string, an array or an object");
        json_decref(l);
        return out;
    case J_NOT:
        if (!(l = eval(n->l, cur, e)))
            return NULL;
        out = json_boolean(!jmes_truthy(l));
        json_decref(l);
        return out;
    default:
        break;
    }
    /* the binary nodes */
    if (!(l = eval(n->l, cur, e)))
        return NULL;
    switch (n->kind) {
    case J_SUB:
        if (json_is_null(l))
            return l;
        /* fall through */
    case J_PIPE:
        out = eval(n->r, l, e);
        break;
    case J_AND:
    case J_OR:
        if (jmes_truthy(l) == (n->kind == J_OR))
            return l;
        out = eval(n->r, cur, e);
        break;
    case J_CMP:
        if (!(r = eval(n->r, cur, e))) {
            out = NULL;
            break;
        }
        out = compare(n->op, l, r);
        json_decref(r);
        break;
    default:
        out = eval_list(n, l, e);
        break;
    }
    json_decref(l);
    return out;
}

json_t *load_jmes_search(const struct load_jmes *q, const json_t *doc, struct err *e)
{
    return eval(q->root, doc ? doc : json_null(), e);
}
