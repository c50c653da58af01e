/*
 * The parser: tokens into a tree, with Go's checks made at parse time (undefined functions and
 * variables, a missing {{end}}, a stray {{else}}, {{break}} outside a range) so that a typo
 * fails before any query runs. One check is earlier than Go's: a {{template}} naming no
 * definition in the file fails here, where Go fails when it executes.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "template/tmpl_internal.h"

#define PARSE_MAX_DEPTH 100 /* nesting of controls and parentheses */

struct parser {
    const char *name;
    struct tmpl_toks toks;
    size_t i;
    char **scope; /* variable names visible here (borrowed from tokens) */
    size_t nscope, capscope;
    size_t scope_base; /* names below are outside the definition being parsed */
    unsigned depth;
    unsigned open;  /* controls and definitions around here: {{define}} only at 0 */
    unsigned loops; /* ranges around here within the definition: {{break}} needs one */
    struct tmpl_define *defs;
    size_t ndefs;
    const struct tmpl_node **calls; /* the {{template}} nodes, checked once all are defined */
    size_t ncalls;
    struct err *e;
};

static void parse_report(struct parser *p, const struct tmpl_tok *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void parse_report(struct parser *p, const struct tmpl_tok *t, const char *fmt, ...)
{
    char msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_set(p->e, "%s:%d:%d: %s", p->name, t->line, t->col, msg);
}

/*
 * Reports at t and evaluates to -EINVAL. A macro so that the negative value shows at each call
 * site: callers skip *out on it, and the analyzer does not follow variadic calls to see that.
 */
#define parse_fail(p, t, ...) (parse_report((p), (t), __VA_ARGS__), -EINVAL)

static const struct tmpl_tok *peek(const struct parser *p)
{
    return &p->toks.v[p->i];
}

static const struct tmpl_tok *next(struct parser *p)
{
    const struct tmpl_tok *t = &p->toks.v[p->i];
    if (t->kind != TOK_EOF)
        p->i++;
    return t;
}

static bool is_ident(const struct tmpl_tok *t, const char *word)
{
    return t->kind == TOK_IDENT && strcmp(t->text, word) == 0;
}

static struct tmpl_node *node_new(enum tmpl_node_kind kind, const struct tmpl_tok *t)
{
    struct tmpl_node *n = xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = t->line;
    n->col = t->col;
    return n;
}

static void node_add(struct tmpl_node *parent, struct tmpl_node *kid)
{
    parent->kids = xrealloc(parent->kids, (parent->nkids + 1) * sizeof(*parent->kids));
    parent->kids[parent->nkids++] = kid;
}

void tmpl_node_free(struct tmpl_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        tmpl_node_free(n->kids[i]);
    for (size_t i = 0; i < n->nfields; i++)
        free(n->fields[i]);
    for (size_t i = 0; i < n->ndecl; i++)
        free(n->decl[i]);
    free(n->kids);
    free(n->fields);
    free(n->decl);
    free(n->text);
    json_decref(n->value);
    tmpl_node_free(n->pipe);
    tmpl_node_free(n->list);
    tmpl_node_free(n->else_list);
    free(n);
}

static void scope_push(struct parser *p, char *name)
{
    if (p->nscope == p->capscope) {
        p->capscope = p->capscope ? p->capscope * 2 : 16;
        p->scope = xrealloc(p->scope, p->capscope * sizeof(*p->scope));
    }
    p->scope[p->nscope++] = name;
}

static bool scope_has(const struct parser *p, const char *name)
{
    if (strcmp(name, "$") == 0)
        return true;
    for (size_t i = p->nscope; i-- > p->scope_base;)
        if (strcmp(p->scope[i], name) == 0)
            return true;
    return false;
}

static int parse_pipeline(struct parser *p, struct tmpl_node **out, bool in_parens,
                          const char *context);

/* .A.B after an operand, written without spaces between. */
static void parse_fields(struct parser *p, struct tmpl_node *n)
{
    while (peek(p)->kind == TOK_FIELD && !peek(p)->space_before) {
        n->fields = xrealloc(n->fields, (n->nfields + 1) * sizeof(*n->fields));
        n->fields[n->nfields++] = xstrdup(next(p)->text);
    }
}

/* Go's strconv underscoreOK: each '_' stands between digits (or after a base prefix). */
static bool underscores_ok(const char *s)
{
    char saw = '^';
    bool hex = false;

    if (*s == '+' || *s == '-')
        s++;
    if (s[0] == '0' && s[1] && strchr("bBoOxX", s[1])) {
        hex = (s[1] | 0x20) == 'x';
        saw = '0';
        s += 2;
    }
    for (; *s; s++) {
        if (isdigit((unsigned char)*s) || (hex && isxdigit((unsigned char)*s))) {
            saw = '0';
        } else if (*s == '_') {
            if (saw != '0')
                return false;
            saw = '_';
        } else {
            if (saw == '_')
                return false;
            saw = '!';
        }
    }
    return saw != '_';
}

/*
 * A number constant as Go's parse package reads it: an integer in Go's syntax (0x1F, 0o17, 017,
 * 0b101, 1_000) when it is one, else a float (1e3, 0x1p4); as a value, a float when written
 * with . e E p or P (not a hex integer's digits), else an integer.
 */
static int parse_number(struct parser *p, const struct tmpl_tok *t, struct tmpl_node **out)
{
    const char *s = t->text;
    char *clean = xmalloc(t->len + 1), *end = NULL;
    size_t n = 0;
    long long ll = 0;
    double d = 0;
    const char *digits = s + (s[0] == '+' || s[0] == '-');
    char prefix = digits[0] == '0' && digits[1] ? (char)(digits[1] | 0x20) : 0;
    bool hex = prefix == 'x';
    bool written_float = strpbrk(s, hex ? "pP" : ".eEpP") != NULL;

    for (const char *c = s; *c; c++)
        if (*c != '_')
            clean[n++] = *c;
    clean[n] = '\0';
    bool ok = underscores_ok(s), is_int = ok && tmpl_go_parse_int(clean, n, 0, &ll);
    if (ok && !is_int && written_float) {
        errno = 0;
        d = strtod(clean, &end);
        /* C reads hex floats without an exponent and decimal ones with a base prefix: Go not */
        ok = !*end && !errno && (!hex || strpbrk(s, "pP")) && prefix != 'o' && prefix != 'b';
    } else {
        ok = is_int;
    }
    free(clean);
    if (!ok)
        return parse_fail(p, t, "bad number syntax: \"%s\"", t->text);
    *out = node_new(NODE_NUMBER, t);
    (*out)->value = written_float ? json_real(is_int ? (double)ll : d) : json_integer(ll);
    return 0;
}

/* A term: a constant, a function name, dot, a field, a variable or (pipeline). */
static int parse_term(struct parser *p, struct tmpl_node **out)
{
    const struct tmpl_tok *t = next(p);
    struct tmpl_node *n = NULL;
    int rc = 0;

    switch (t->kind) {
    case TOK_IDENT:
        if (strcmp(t->text, "true") == 0 || strcmp(t->text, "false") == 0) {
            n = node_new(NODE_BOOL, t);
            n->value = json_boolean(t->text[0] == 't');
        } else if (strcmp(t->text, "nil") == 0) {
            n = node_new(NODE_NIL, t);
        } else if (!tmpl_func_find(t->text)) {
            return parse_fail(p, t, "function \"%s\" not %s", t->text,
                              tmpl_func_unsupported(t->text) ? "supported" : "defined");
        } else {
            n = node_new(NODE_IDENT, t);
            n->text = xstrdup(t->text);
        }
        break;
    case TOK_DOT:
        n = node_new(NODE_DOT, t);
        break;
    case TOK_FIELD:
        n = node_new(NODE_FIELD, t);
        n->fields = xcalloc(1, sizeof(*n->fields));
        n->fields[n->nfields++] = xstrdup(t->text);
        break;
    case TOK_VAR:
        if (!scope_has(p, t->text))
            return parse_fail(p, t, "undefined variable \"%s\"", t->text);
        n = node_new(NODE_VAR, t);
        n->text = xstrdup(t->text);
        break;
    case TOK_STRING:
        n = node_new(NODE_STRING, t);
        n->text = xmemdup(t->text, t->len + 1);
        n->len = t->len;
        break;
    case TOK_NUMBER:
        if ((rc = parse_number(p, t, &n)) < 0)
            return rc;
        break;
    case TOK_LPAREN:
        n = node_new(NODE_CHAIN, t);
        if ((rc = parse_pipeline(p, &n->pipe, true, "parenthesized pipeline")) < 0) {
            tmpl_node_free(n);
            return rc;
        }
        break;
    default:
        p->i--;
        return 1; /* not a term */
    }
    parse_fields(p, n);
    /* scratch is consul-template's only function whose result has methods */
    if (n->kind == NODE_IDENT && strcmp(n->text, "scratch") == 0 &&
        (n->nfields != 1 || !tmpl_scratch_method_find(n->fields[0]))) {
        rc = n->nfields ? parse_fail(p, t,
                                     "scratch has no method %s (Key, Get, Set, SetX, MapSet, "
                                     "MapSetX, MapValues)",
                                     n->fields[0])
                        : parse_fail(p, t, "scratch needs a method: scratch.Set, scratch.Get, ...");
        tmpl_node_free(n);
        return rc;
    }
    if (n->nfields && (n->kind == NODE_BOOL || n->kind == NODE_NIL || n->kind == NODE_STRING ||
                       n->kind == NODE_NUMBER || n->kind == NODE_DOT ||
                       (n->kind == NODE_IDENT && strcmp(n->text, "scratch") != 0))) {
        tmpl_node_free(n);
        return parse_fail(p, t, "unexpected . after term \"%s\"", t->text);
    }
    *out = n;
    return 0;
}

static int parse_command(struct parser *p, struct tmpl_node **out)
{
    struct tmpl_node *cmd = node_new(NODE_CMD, peek(p));
    int rc;

    for (;;) {
        struct tmpl_node *arg = NULL; /* -O2 cannot tell parse_term sets it */
        const struct tmpl_tok *t = peek(p);
        if (t->kind == TOK_RIGHT || t->kind == TOK_RPAREN || t->kind == TOK_PIPE)
            break;
        if (cmd->nkids && !t->space_before && t->kind != TOK_LPAREN) {
            rc = parse_fail(p, t, "missing space before \"%s\"", t->text);
            goto fail;
        }
        if ((rc = parse_term(p, &arg)) < 0)
            goto fail;
        if (rc > 0) {
            rc = t->kind == TOK_EOF ? parse_fail(p, t, "unclosed action")
                                    : parse_fail(p, t, "unexpected \"%s\" in operand", t->text);
            goto fail;
        }
        node_add(cmd, arg);
    }
    if (cmd->nkids == 0) {
        rc = parse_fail(p, peek(p), "missing value for command");
        goto fail;
    }
    *out = cmd;
    return 0;
fail:
    tmpl_node_free(cmd);
    return rc;
}

/* "$x :=", "$i, $x :=" or "$x =" at the start of a pipeline. */
static int parse_decl(struct parser *p, struct tmpl_node *pipe, const char *context)
{
    size_t save = p->i;
    const struct tmpl_tok *v1 = next(p), *v2 = NULL;

    if (peek(p)->kind == TOK_COMMA && strcmp(context, "range") == 0) {
        next(p);
        if (peek(p)->kind != TOK_VAR)
            return parse_fail(p, peek(p), "range can only initialize variables");
        v2 = next(p);
    }
    const struct tmpl_tok *op = peek(p);
    if (op->kind != TOK_DECLARE && op->kind != TOK_ASSIGN) {
        p->i = save; /* a plain variable operand */
        return 0;
    }
    next(p);
    pipe->assign = op->kind == TOK_ASSIGN;
    pipe->decl = xcalloc(2, sizeof(*pipe->decl));
    pipe->decl[pipe->ndecl++] = xstrdup(v1->text);
    if (v2)
        pipe->decl[pipe->ndecl++] = xstrdup(v2->text);
    for (size_t i = 0; i < pipe->ndecl; i++) {
        if (pipe->assign && !scope_has(p, pipe->decl[i]))
            return parse_fail(p, v1, "undefined variable \"%s\"", pipe->decl[i]);
        if (!pipe->assign)
            scope_push(p, pipe->decl[i]);
    }
    return 0;
}

static int parse_pipeline(struct parser *p, struct tmpl_node **out, bool in_parens,
                          const char *context)
{
    struct tmpl_node *pipe = node_new(NODE_PIPE, peek(p));
    enum tmpl_tok_kind end = in_parens ? TOK_RPAREN : TOK_RIGHT;
    int rc = 0;

    if (++p->depth > PARSE_MAX_DEPTH) {
        rc = parse_fail(p, peek(p), "template nested too deeply");
        goto fail;
    }
    if (peek(p)->kind == TOK_VAR && (rc = parse_decl(p, pipe, context)) < 0)
        goto fail;
    for (;;) {
        struct tmpl_node *cmd = NULL; /* -O2 cannot tell parse_command sets it */
        const struct tmpl_tok *first = peek(p);
        if ((rc = parse_command(p, &cmd)) < 0)
            goto fail;
        node_add(pipe, cmd);
        enum tmpl_node_kind k = cmd->kids[0]->kind;
        /* as Go's checkPipeline: a constant or dot takes no piped value */
        if (pipe->nkids > 1 && (k == NODE_STRING || k == NODE_NUMBER || k == NODE_BOOL ||
                                k == NODE_NIL || k == NODE_DOT)) {
            rc = parse_fail(p, first, "non executable command in pipeline stage %zu", pipe->nkids);
            goto fail;
        }
        const struct tmpl_tok *t = next(p);
        if (t->kind == end)
            break;
        if (t->kind != TOK_PIPE) {
            rc = parse_fail(p, t, "unexpected \"%s\" in %s", t->text, context);
            goto fail;
        }
    }
    p->depth--;
    *out = pipe;
    return 0;
fail:
    tmpl_node_free(pipe);
    return rc;
}

static int parse_list(struct parser *p, struct tmpl_node **out, const struct tmpl_tok **term);

static int expect_right(struct parser *p, const char *what)
{
    const struct tmpl_tok *t = next(p);
    if (t->kind != TOK_RIGHT)
        return parse_fail(p, t, "unexpected \"%s\" in %s", t->text, what);
    return 0;
}

/* if / range / with, after the keyword: pipeline, list, optional else, end. */
static int parse_control(struct parser *p, enum tmpl_node_kind kind, const struct tmpl_tok *kw,
                         struct tmpl_node **out)
{
    struct tmpl_node *n = node_new(kind, kw);
    const struct tmpl_tok *term;
    size_t mark = p->nscope;
    int rc;

    p->open++;
    if ((rc = parse_pipeline(p, &n->pipe, false, kw->text)) < 0)
        goto done;
    if (kind != NODE_RANGE && n->pipe->ndecl > 1) {
        rc = parse_fail(p, kw, "too many declarations in %s", kw->text);
        goto done;
    }
    /* as in Go, {{break}} belongs to the range's list, not to its else */
    p->loops += kind == NODE_RANGE;
    rc = parse_list(p, &n->list, &term);
    p->loops -= kind == NODE_RANGE;
    if (rc < 0)
        goto done;
    if (is_ident(term, "else")) {
        const struct tmpl_tok *t = peek(p);
        if ((kind == NODE_IF && is_ident(t, "if")) || (kind == NODE_WITH && is_ident(t, "with"))) {
            /* "else if" is an if inside else that shares the outer end, and "else with" a with
             * (Go 1.23); as in Go, each only after its own kind */
            next(p);
            n->else_list = node_new(NODE_LIST, t);
            struct tmpl_node *inner;
            if ((rc = parse_control(p, kind, t, &inner)) < 0)
                goto done;
            node_add(n->else_list, inner);
            goto done;
        }
        if ((rc = expect_right(p, "else")) < 0 || (rc = parse_list(p, &n->else_list, &term)) < 0)
            goto done;
    }
    if (!is_ident(term, "end")) {
        rc = parse_fail(p, term, "unexpected %s in %s", term->kind == TOK_EOF ? "EOF" : "{{else}}",
                        kw->text);
        goto done;
    }
    rc = expect_right(p, "end");
done:
    p->nscope = mark;
    p->open--;
    if (rc < 0)
        tmpl_node_free(n);
    else
        *out = n;
    return rc;
}

static const struct tmpl_define *defs_find(const struct tmpl_define *defs, size_t n,
                                           const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

const struct tmpl_define *tmpl_define_find(const struct tmpl *t, const char *name)
{
    return defs_find(t->defs, t->ndefs, name);
}

/* The quoted name after define, template or block. */
static int parse_template_name(struct parser *p, const struct tmpl_tok *kw,
                               const struct tmpl_tok **name)
{
    const struct tmpl_tok *t = next(p);

    if (t->kind != TOK_STRING)
        return parse_fail(p, t, "unexpected \"%s\" in %s clause", t->text, kw->text);
    *name = t;
    return 0;
}

/*
 * The body of {{define}} or {{block}} up to its {{end}}, parsed as a template of its own (as Go
 * does): no variable but $ from outside, no enclosing range. Records it under name's text.
 */
static int parse_definition(struct parser *p, const struct tmpl_tok *kw,
                            const struct tmpl_tok *name)
{
    size_t mark = p->nscope, base = p->scope_base;
    unsigned loops = p->loops;
    const struct tmpl_tok *term;
    struct tmpl_node *body = NULL;
    int rc;

    p->scope_base = p->nscope;
    p->loops = 0;
    p->open++;
    if ((rc = parse_list(p, &body, &term)) < 0)
        goto done;
    if (!is_ident(term, "end"))
        rc = parse_fail(p, term, "unexpected %s in %s", term->kind == TOK_EOF ? "EOF" : "{{else}}",
                        kw->text);
    else if (defs_find(p->defs, p->ndefs, name->text))
        rc = parse_fail(p, name, "multiple definition of template \"%s\"", name->text);
    else
        rc = expect_right(p, "end");
    if (rc < 0) {
        tmpl_node_free(body);
        goto done;
    }
    p->defs = xrealloc(p->defs, (p->ndefs + 1) * sizeof(*p->defs));
    p->defs[p->ndefs++] = (struct tmpl_define){xstrdup(name->text), body};
done:
    p->nscope = mark;
    p->scope_base = base;
    p->loops = loops;
    p->open--;
    return rc;
}

/*
 * {{template "name" [PIPE]}} and {{block "name" PIPE}}...{{end}} (a definition used in place):
 * a NODE_TEMPLATE appended to list.
 */
static int parse_template_call(struct parser *p, const struct tmpl_tok *kw, struct tmpl_node *list)
{
    bool block = is_ident(kw, "block");
    const struct tmpl_tok *name;
    struct tmpl_node *n;
    int rc;

    if ((rc = parse_template_name(p, kw, &name)) < 0)
        return rc;
    n = node_new(NODE_TEMPLATE, kw);
    n->text = xstrdup(name->text);
    if (block || peek(p)->kind != TOK_RIGHT) {
        char context[32];
        snprintf(context, sizeof(context), "%s clause", kw->text);
        if ((rc = parse_pipeline(p, &n->pipe, false, context)) < 0)
            goto fail;
        if (n->pipe->ndecl) {
            rc = parse_fail(p, kw, "%s cannot declare variables", context);
            goto fail;
        }
    } else {
        next(p);
    }
    if (block && (rc = parse_definition(p, kw, name)) < 0)
        goto fail;
    node_add(list, n);
    p->calls = xrealloc(p->calls, (p->ncalls + 1) * sizeof(*p->calls));
    p->calls[p->ncalls++] = n;
    return 0;
fail:
    tmpl_node_free(n);
    return rc;
}

/* {{define}}, {{template}}, {{block}}, {{break}} and {{continue}}, after the keyword kw. */
static int parse_keyword(struct parser *p, const struct tmpl_tok *kw, struct tmpl_node *list)
{
    const struct tmpl_tok *name;
    int rc;

    if (is_ident(kw, "template") || is_ident(kw, "block"))
        return parse_template_call(p, kw, list);
    if (is_ident(kw, "define")) {
        if (p->open)
            return parse_fail(p, kw, "{{define}} only at the top level of a template");
        if ((rc = parse_template_name(p, kw, &name)) < 0 ||
            (rc = expect_right(p, "define clause")) < 0)
            return rc;
        return parse_definition(p, kw, name);
    }
    if (!p->loops)
        return parse_fail(p, kw, "{{%s}} outside {{range}}", kw->text);
    if ((rc = expect_right(p, kw->text)) < 0)
        return rc;
    node_add(list, node_new(kw->text[0] == 'b' ? NODE_BREAK : NODE_CONTINUE, kw));
    return 0;
}

/* One action after "{{": a control, a terminator (returned in *term), or a pipeline. */
static int parse_action(struct parser *p, struct tmpl_node *list, const struct tmpl_tok **term)
{
    const struct tmpl_tok *t = peek(p);
    static const char *const keywords[] = {"define", "template", "block", "break", "continue"};
    struct tmpl_node *n;
    int rc;

    for (size_t k = 0; k < ARRAY_LEN(keywords); k++)
        if (is_ident(t, keywords[k]))
            return parse_keyword(p, next(p), list);
    if (is_ident(t, "end") || is_ident(t, "else")) {
        next(p);
        *term = t; /* the control that owns it reads the rest */
        return 0;
    }
    if (is_ident(t, "if") || is_ident(t, "range") || is_ident(t, "with")) {
        next(p);
        enum tmpl_node_kind k = t->text[0] == 'i'   ? NODE_IF
                                : t->text[0] == 'r' ? NODE_RANGE
                                                    : NODE_WITH;
        if ((rc = parse_control(p, k, t, &n)) < 0)
            return rc;
        node_add(list, n);
        return 0;
    }
    n = node_new(NODE_ACTION, t);
    if ((rc = parse_pipeline(p, &n->pipe, false, "command")) < 0) {
        tmpl_node_free(n);
        return rc;
    }
    node_add(list, n);
    return 0;
}

/* Items until {{end}}, {{else}} or EOF; *term is that token. */
static int parse_list(struct parser *p, struct tmpl_node **out, const struct tmpl_tok **term)
{
    struct tmpl_node *list = node_new(NODE_LIST, peek(p));
    int rc = 0;

    *term = NULL;
    if (++p->depth > PARSE_MAX_DEPTH) {
        rc = parse_fail(p, peek(p), "template nested too deeply");
        goto done;
    }
    while (rc == 0 && !*term) {
        const struct tmpl_tok *t = next(p);
        if (t->kind == TOK_EOF) {
            *term = t;
        } else if (t->kind == TOK_TEXT) {
            struct tmpl_node *n = node_new(NODE_TEXT, t);
            n->text = xmemdup(t->text, t->len + 1);
            n->len = t->len;
            node_add(list, n);
        } else {
            rc = parse_action(p, list, term);
        }
    }
    p->depth--;
done:
    if (rc < 0)
        tmpl_node_free(list);
    else
        *out = list;
    return rc;
}

int tmpl_parse(const char *name, const char *text, size_t len, struct tmpl **out, struct err *e)
{
    struct parser p = {.name = name, .e = e};
    struct tmpl_node *root = NULL;
    const struct tmpl_tok *term;
    int rc;

    if ((rc = tmpl_lex(name, text, len, &p.toks, e)) < 0)
        return rc;
    if ((rc = parse_list(&p, &root, &term)) == 0 && term->kind != TOK_EOF) {
        rc = parse_fail(&p, term, "unexpected {{%s}}", term->text);
        tmpl_node_free(root);
    }
    if (rc == 0) {
        *out = xcalloc(1, sizeof(**out));
        (*out)->name = xstrdup(name);
        (*out)->root = root;
        (*out)->defs = p.defs;
        (*out)->ndefs = p.ndefs;
        p.defs = NULL;
        p.ndefs = 0;
        for (size_t i = 0; i < p.ncalls && rc == 0; i++) {
            const struct tmpl_node *call = p.calls[i];
            struct tmpl_tok at = {.line = call->line, .col = call->col};
            if (!tmpl_define_find(*out, call->text))
                rc = parse_fail(&p, &at, "template \"%s\" not defined", call->text);
        }
        if (rc < 0) {
            tmpl_free(*out);
            *out = NULL;
        }
    }
    for (size_t i = 0; i < p.ndefs; i++) {
        free(p.defs[i].name);
        tmpl_node_free(p.defs[i].list);
    }
    free(p.defs);
    free(p.calls);
    free(p.scope);
    tmpl_toks_free(&p.toks);
    return rc;
}

void tmpl_free(struct tmpl *t)
{
    if (!t)
        return;
    tmpl_node_free(t->root);
    for (size_t i = 0; i < t->ndefs; i++) {
        free(t->defs[i].name);
        tmpl_node_free(t->defs[i].list);
    }
    free(t->defs);
    free(t->name);
    free(t);
}
