/* CSS selectors over gumbo trees, as css-select matches them (see selector.h). */
#include "load/selector.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/str.h"

enum sel_op {
    SEL_EXISTS, /* [a] */
    SEL_EQUALS, /* [a=v], #id */
    SEL_WORD,   /* [a~=v], .class: one of the whitespace-separated words */
    SEL_HYPHEN, /* [a|=v]: v, or v followed by "-" */
    SEL_PREFIX, /* [a^=v] */
    SEL_SUFFIX, /* [a$=v] */
    SEL_SUBSTR  /* [a*=v] */
};

struct sel_attr {
    char *name; /* lower case, as css-select takes an HTML attribute's name */
    char *value;
    size_t len;
    enum sel_op op;
    bool icase;
};

struct sel_compound {
    char *tag; /* lower case; NULL for any element */
    struct sel_attr *attrs;
    size_t n_attrs;
    bool child; /* joined to the compound before it by ">" (else by white space) */
};

struct sel_complex {
    struct sel_compound *parts;
    size_t n;
};

struct load_sel {
    struct sel_complex *alts;
    size_t n;
};

/* The attributes whose values HTML compares case aside, as css-select lists them. */
static const char *const icase_attrs[] = {
    "accept",     "accept-charset", "align",     "alink",    "axis",     "bgcolor", "charset",
    "checked",    "clear",          "codetype",  "color",    "compact",  "declare", "defer",
    "dir",        "direction",      "disabled",  "enctype",  "face",     "frame",   "hreflang",
    "http-equiv", "lang",           "language",  "link",     "media",    "method",  "multiple",
    "nohref",     "noresize",       "noshade",   "nowrap",   "readonly", "rel",     "rev",
    "rules",      "scope",          "scrolling", "selected", "shape",    "target",  "text",
    "type",       "valign",         "valuetype", "vlink"};

#define SUPPORTED                                                                                  \
    "(type, *, #id, .class, [attr], [attr=value], ~= |= ^= $= *=, the descendant and > "           \
    "combinators and lists with \",\" are)"

struct parser {
    const char *p;
    struct err *e;
    bool failed;
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static void skip_ws(struct parser *ps)
{
    while (is_ws(*ps->p))
        ps->p++;
}

static bool is_name_char(char c)
{
    unsigned char u = (unsigned char)c;

    return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || u == '_' ||
           u == '-' || u >= 0x80 || u == '\\';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void append_utf8(struct buf *out, uint32_t cp)
{
    char b[4];

    if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        cp = 0xFFFD; /* as CSS reads an escape of none */
    buf_append(out, b, str_utf8_put(b, cp));
}

/* A CSS escape at ps->p (past the backslash): up to 6 hex digits and one white space, or the
 * next character as it is. */
static void read_escape(struct parser *ps, struct buf *out)
{
    uint32_t cp = 0;
    int d, k = 0;

    if (*ps->p == '\0') {
        ps->failed = true;
        err_set(ps->e, "a backslash at the end");
        return;
    }
    while (k < 6 && (d = hex_value(*ps->p)) >= 0) {
        cp = cp * 16 + (uint32_t)d;
        ps->p++;
        k++;
    }
    if (k) {
        append_utf8(out, cp);
        if (is_ws(*ps->p))
            ps->p++;
        return;
    }
    buf_append(out, ps->p++, 1);
}

/* A name (type, attribute, id or class) at ps->p, as css-what reads one; NULL when there is
 * none. lower: in lower case (ASCII), as css-select takes HTML's names. */
static char *read_name(struct parser *ps, bool lower)
{
    struct buf b = BUF_INIT;

    while (!ps->failed && is_name_char(*ps->p)) {
        if (*ps->p == '\\') {
            ps->p++;
            read_escape(ps, &b);
            continue;
        }
        char c = *ps->p++;

        if (lower && c >= 'A' && c <= 'Z')
            c = (char)(c | 0x20);
        buf_append(&b, &c, 1);
    }
    if (ps->failed || !b.len) {
        buf_free(&b);
        return NULL;
    }
    buf_append(&b, "", 1);
    return buf_steal(&b);
}

static bool fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct parser *ps, const char *fmt, ...)
{
    char msg[sizeof(ps->e->msg)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ps->failed = true;
    err_setf(ps->e, "%s", msg);
    return false;
}

/* An attribute value, quoted or not (css-what takes anything up to white space or "]"). */
static bool read_value(struct parser *ps, struct sel_attr *a)
{
    struct buf b = BUF_INIT;
    char quote = *ps->p == '"' || *ps->p == '\'' ? *ps->p++ : '\0';

    while (!ps->failed && *ps->p && (quote ? *ps->p != quote : !is_ws(*ps->p) && *ps->p != ']')) {
        if (*ps->p == '\\') {
            ps->p++;
            if (quote && *ps->p == '\n') { /* a line continued */
                ps->p++;
                continue;
            }
            read_escape(ps, &b);
            continue;
        }
        buf_append(&b, ps->p++, 1);
    }
    if (!ps->failed && quote && *ps->p != quote)
        fail(ps, "an attribute value without its closing %s", quote == '"' ? "\"" : "'");
    if (ps->failed) {
        buf_free(&b);
        return false;
    }
    if (quote)
        ps->p++;
    a->len = b.len;
    buf_append(&b, "", 1);
    a->value = buf_steal(&b);
    return true;
}

static struct sel_attr *add_attr(struct sel_compound *c)
{
    c->attrs = xrealloc(c->attrs, (c->n_attrs + 1) * sizeof(*c->attrs));
    c->attrs[c->n_attrs] = (struct sel_attr){.name = NULL};
    return &c->attrs[c->n_attrs++];
}

/* [name], [name=value], [name OP value] with an optional i or s flag; ps->p is past "[". */
static bool read_attr(struct parser *ps, struct sel_compound *c)
{
    static const char ops[] = "~|^$*";
    static const enum sel_op op_of[] = {SEL_WORD, SEL_HYPHEN, SEL_PREFIX, SEL_SUFFIX, SEL_SUBSTR};
    struct sel_attr *a;
    const char *op;
    int flag = -1;

    skip_ws(ps);
    if (*ps->p == '|' || (*ps->p == '*' && ps->p[1] == '|'))
        return fail(ps, "namespaces such as [%s...] are not supported", ps->p);
    a = add_attr(c);
    if (!(a->name = read_name(ps, true)))
        return !ps->failed && fail(ps, "an attribute selector without a name at \"%s\"", ps->p);
    if (*ps->p == '|' && ps->p[1] != '=')
        return fail(ps, "namespaces such as [%s...] are not supported", a->name);
    skip_ws(ps);
    if (*ps->p == '=') {
        a->op = SEL_EQUALS;
        ps->p++;
    } else if (*ps->p && (op = strchr(ops, *ps->p))) {
        if (ps->p[1] != '=')
            return fail(ps, "an attribute operator without \"=\" at \"%s\"", ps->p);
        a->op = op_of[op - ops];
        ps->p += 2;
    } else {
        a->op = SEL_EXISTS;
    }
    if (a->op != SEL_EXISTS) {
        skip_ws(ps);
        if (!read_value(ps, a))
            return false;
        skip_ws(ps);
        if ((*ps->p | 0x20) == 'i' || (*ps->p | 0x20) == 's') {
            flag = (*ps->p | 0x20) == 'i';
            ps->p++;
            skip_ws(ps);
        }
    }
    if (*ps->p != ']')
        return fail(ps, "an attribute selector without its closing ] at \"%s\"", ps->p);
    ps->p++;
    if (flag >= 0) {
        a->icase = flag;
    } else {
        for (size_t i = 0; i < sizeof(icase_attrs) / sizeof(*icase_attrs) && !a->icase; i++)
            a->icase = strcmp(icase_attrs[i], a->name) == 0;
    }
    return true;
}

/* #id and .class: attributes compared as they are (css-select outside quirks mode). */
static bool read_special(struct parser *ps, struct sel_compound *c, const char *attr,
                         enum sel_op op)
{
    char kind = *ps->p++;
    struct sel_attr *a = add_attr(c);

    if (!(a->value = read_name(ps, false))) {
        char what[2] = {kind, '\0'};

        return !ps->failed && fail(ps, "\"%s\" without a name after it", what);
    }
    a->name = xstrdup(attr);
    a->len = strlen(a->value);
    a->op = op;
    return true;
}

/* A compound selector at ps->p: a type or *, then #id, .class and [attr] in any number. */
static bool read_compound(struct parser *ps, struct sel_compound *c)
{
    const char *start = ps->p;

    if (*ps->p == '*') {
        ps->p++;
    } else if (is_name_char(*ps->p)) {
        if (!(c->tag = read_name(ps, true)))
            return false;
    }
    if (*ps->p == '|')
        return fail(ps, "namespaces such as \"%s\" are not supported", start);
    for (;;) {
        bool ok = true;

        if (*ps->p == '#')
            ok = read_special(ps, c, "id", SEL_EQUALS);
        else if (*ps->p == '.')
            ok = read_special(ps, c, "class", SEL_WORD);
        else if (*ps->p == '[' && (ps->p++, true))
            ok = read_attr(ps, c);
        else
            break;
        if (!ok)
            return false;
    }
    if (*ps->p == ':') {
        const char *name = ps->p + (ps->p[1] == ':' ? 2 : 1);
        int n;

        while (is_name_char(*name) && *name != '\\')
            name++;
        n = (int)(name - ps->p);
        return fail(ps, "the %s %.*s is not supported " SUPPORTED,
                    ps->p[1] == ':' ? "pseudo-element" : "pseudo-class", n, ps->p);
    }
    if (ps->p == start)
        return fail(ps, *ps->p ? "a selector was expected at \"%s\"" : "a selector was expected%s",
                    ps->p);
    return true;
}

static bool read_complex(struct parser *ps, struct sel_complex *cx)
{
    bool child = false;

    for (;;) {
        struct sel_compound *c;
        bool ws;

        cx->parts = xrealloc(cx->parts, (cx->n + 1) * sizeof(*cx->parts));
        c = &cx->parts[cx->n++];
        *c = (struct sel_compound){.child = child};
        if (!read_compound(ps, c))
            return false;
        ws = is_ws(*ps->p);
        skip_ws(ps);
        if (*ps->p == '\0' || *ps->p == ',')
            return true;
        if (*ps->p == '+' || *ps->p == '~')
            return fail(ps, "the sibling combinators + and ~ are not supported (at \"%s\")", ps->p);
        child = *ps->p == '>';
        if (child) {
            ps->p++;
            skip_ws(ps);
        } else if (!ws) {
            return fail(ps, "\"%s\" is not supported " SUPPORTED, ps->p);
        }
    }
}

void load_sel_free(struct load_sel *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->alts[i].n; j++) {
            struct sel_compound *c = &s->alts[i].parts[j];

            for (size_t k = 0; k < c->n_attrs; k++) {
                free(c->attrs[k].name);
                free(c->attrs[k].value);
            }
            free(c->attrs);
            free(c->tag);
        }
        free(s->alts[i].parts);
    }
    free(s->alts);
    free(s);
}

struct load_sel *load_sel_compile(const char *text, struct err *e)
{
    struct load_sel *s = xcalloc(1, sizeof(*s));
    struct parser ps = {.p = text, .e = e};

    for (;;) {
        skip_ws(&ps);
        s->alts = xrealloc(s->alts, (s->n + 1) * sizeof(*s->alts));
        s->alts[s->n++] = (struct sel_complex){.n = 0};
        if (!read_complex(&ps, &s->alts[s->n - 1]))
            break;
        if (*ps.p == '\0')
            return s;
        ps.p++; /* "," */
    }
    load_sel_free(s);
    return NULL;
}

/* Matching. */

static bool is_element(const GumboNode *n)
{
    return n && (n->type == GUMBO_NODE_ELEMENT || n->type == GUMBO_NODE_TEMPLATE);
}

static bool tag_is(const GumboElement *el, const char *tag)
{
    GumboStringPiece name = el->original_tag;

    if (el->tag != GUMBO_TAG_UNKNOWN)
        return strcmp(gumbo_normalized_tagname(el->tag), tag) == 0;
    gumbo_tag_from_original_text(&name); /* "<my-tag a=b>" to "my-tag" */
    return name.length == strlen(tag) && strncasecmp(name.data, tag, name.length) == 0;
}

static bool same(const char *a, const char *b, size_t n, bool icase)
{
    return icase ? strncasecmp(a, b, n) == 0 : memcmp(a, b, n) == 0;
}

static bool has_word(const char *v, size_t vn, const struct sel_attr *a)
{
    if (!a->len || memchr(a->value, ' ', a->len) || strpbrk(a->value, "\t\n\r\f"))
        return false;
    for (size_t i = 0; i < vn;) {
        size_t j = i;

        while (j < vn && !is_ws(v[j]))
            j++;
        if (j - i == a->len && same(v + i, a->value, a->len, a->icase))
            return true;
        i = j + 1;
    }
    return false;
}

static bool attr_matches(const GumboElement *el, const struct sel_attr *a)
{
    const GumboAttribute *at = NULL;
    const char *v;
    size_t vn;

    for (unsigned i = 0; i < el->attributes.length && !at; i++) {
        const GumboAttribute *x = el->attributes.data[i];

        if (strcmp(x->name, a->name) == 0)
            at = x;
    }
    if (!at)
        return false;
    v = at->value;
    vn = strlen(v);
    switch (a->op) {
    case SEL_EXISTS:
        return true;
    case SEL_EQUALS:
        return vn == a->len && same(v, a->value, vn, a->icase);
    case SEL_WORD:
        return has_word(v, vn, a);
    case SEL_HYPHEN:
        return vn >= a->len && (vn == a->len || v[a->len] == '-') &&
               same(v, a->value, a->len, a->icase);
    case SEL_PREFIX:
        return a->len && vn >= a->len && same(v, a->value, a->len, a->icase);
    case SEL_SUFFIX:
        return a->len && vn >= a->len && same(v + vn - a->len, a->value, a->len, a->icase);
    case SEL_SUBSTR:
        for (size_t i = 0; a->len && i + a->len <= vn; i++)
            if (same(v + i, a->value, a->len, a->icase))
                return true;
        return false;
    }
    return false;
}

static bool compound_matches(const struct sel_compound *c, const GumboNode *n)
{
    const GumboElement *el = &n->v.element;

    if (c->tag && !tag_is(el, c->tag))
        return false;
    for (size_t i = 0; i < c->n_attrs; i++)
        if (!attr_matches(el, &c->attrs[i]))
            return false;
    return true;
}

/*
 * Whether cx matches node. Right to left over the node's ancestors, without backtracking: row
 * k says at which ancestors the compounds 0..k match (joined as written), each row from the one
 * before, so a selector costs its compounds times the depth whatever it nests.
 */
static bool complex_matches(const struct sel_complex *cx, const GumboNode *node)
{
    const GumboNode **path;
    bool *prev, *cur, ok;
    size_t depth = 0;

    if (!compound_matches(&cx->parts[cx->n - 1], node))
        return false;
    if (cx->n == 1)
        return true;
    for (const GumboNode *p = node; is_element(p); p = p->parent)
        depth++;
    path = xmalloc(depth * sizeof(*path));
    prev = xmalloc(2 * depth * sizeof(*prev));
    cur = prev + depth;
    depth = 0;
    for (const GumboNode *p = node; is_element(p); p = p->parent)
        path[depth++] = p;
    for (size_t i = 0; i < depth; i++)
        prev[i] = compound_matches(&cx->parts[0], path[i]);
    for (size_t k = 1; k < cx->n; k++) {
        bool any = false; /* a descendant: some ancestor above i matched */

        for (size_t i = depth; i-- > 0;) {
            bool left = cx->parts[k].child ? i + 1 < depth && prev[i + 1] : any;

            any = any || prev[i];
            cur[i] = left && compound_matches(&cx->parts[k], path[i]);
        }
        memcpy(prev, cur, depth * sizeof(*prev));
    }
    ok = prev[0];
    free(path);
    free(prev);
    return ok;
}

bool load_sel_match(const struct load_sel *s, const GumboNode *node)
{
    for (size_t i = 0; i < s->n; i++)
        if (complex_matches(&s->alts[i], node))
            return true;
    return false;
}

static const GumboVector *children_of(const GumboNode *n)
{
    if (n->type == GUMBO_NODE_DOCUMENT)
        return &n->v.document.children;
    return is_element(n) ? &n->v.element.children : NULL;
}

/* The node after n in document order under root (a walk without recursion), or NULL. */
static const GumboNode *next_node(const GumboNode *n, const GumboNode *root)
{
    const GumboVector *kids = children_of(n);

    if (kids && kids->length)
        return kids->data[0];
    while (n != root) {
        const GumboNode *parent = n->parent;
        const GumboVector *siblings = children_of(parent);

        if (n->index_within_parent + 1 < siblings->length)
            return siblings->data[n->index_within_parent + 1];
        n = parent;
    }
    return NULL;
}

size_t load_sel_select(const struct load_sel *s, const GumboNode *root, const GumboNode ***out)
{
    size_t n = 0, cap = 0;

    *out = NULL;
    for (const GumboNode *p = next_node(root, root); p; p = next_node(p, root)) {
        if (!is_element(p) || !load_sel_match(s, p))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 8;
            *out = xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[n++] = p;
    }
    return n;
}
