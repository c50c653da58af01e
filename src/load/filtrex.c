/*
 * Filtrex expressions (see filtrex.h): a recursive-descent parser that evaluates as it goes,
 * with JavaScript's values and conversions, one level per precedence level of filtrex's grammar.
 */
#include "load/filtrex.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/numfmt.h"
#include "lib/alloc.h"
#include "lib/buf.h"
#include "load/payload.h"
#include "load/template.h"

#define MAX_DEPTH 32
#define MAX_NAME  256

enum fx_type { FX_UNDEF, FX_NUM, FX_STR, FX_BOOL, FX_OBJ };

struct fx_val {
    enum fx_type t;
    double n; /* FX_NUM, FX_BOOL (0 or 1) */
    char *s;  /* FX_STR: owned */
    size_t len;
};

struct fx {
    const char *p;
    load_fx_lookup_cb lookup;
    void *data;
    struct err *e;
    int depth;
};

static void val_free(struct fx_val *v)
{
    free(v->s);
    *v = (struct fx_val){FX_UNDEF, 0, NULL, 0};
}

static struct fx_val num(double n)
{
    return (struct fx_val){FX_NUM, n, NULL, 0};
}

static struct fx_val str(const char *s, size_t len)
{
    return (struct fx_val){FX_STR, 0, xstrndup(s, len), len};
}

/* JavaScript's ToNumber. */
static double to_number(const struct fx_val *v)
{
    json_t *j;
    double d;
    size_t i = 0;

    switch (v->t) {
    case FX_NUM:
    case FX_BOOL:
        return v->n;
    case FX_STR:
        while (i < v->len && isspace((unsigned char)v->s[i]))
            i++;
        if (i == v->len)
            return 0;
        if (!(j = load_csv_number(v->s, v->len)))
            return NAN;
        d = json_number_value(j);
        json_decref(j);
        return d;
    default:
        return NAN;
    }
}

static bool truthy(const struct fx_val *v)
{
    switch (v->t) {
    case FX_NUM:
    case FX_BOOL:
        return v->n != 0 && !isnan(v->n);
    case FX_STR:
        return v->len > 0;
    case FX_OBJ:
        return true;
    default:
        return false;
    }
}

/* JavaScript's ToString, for + with a string. */
static void append_text(struct buf *b, const struct fx_val *v)
{
    switch (v->t) {
    case FX_STR:
        buf_append(b, v->s, v->len);
        break;
    case FX_NUM:
        numfmt_js(b, v->n);
        break;
    case FX_BOOL:
        buf_append_cstr(b, v->n ? "true" : "false");
        break;
    case FX_OBJ:
        buf_append_cstr(b, "[object Object]");
        break;
    default:
        buf_append_cstr(b, "undefined");
    }
}

/* JavaScript's == (loose), and strict for `in` (includes). */
static bool equal(const struct fx_val *a, const struct fx_val *b, bool strict)
{
    if (a->t == FX_STR && b->t == FX_STR)
        return a->len == b->len && memcmp(a->s, b->s, a->len) == 0;
    if (a->t == FX_UNDEF || b->t == FX_UNDEF)
        return a->t == b->t;
    if (a->t == FX_OBJ || b->t == FX_OBJ)
        return false;
    if (strict && a->t != b->t)
        return false;
    if (strict && isnan(a->n) && isnan(b->n))
        return true; /* includes() uses SameValueZero */
    return to_number(a) == to_number(b);
}

static int fail(struct fx *x)
{
    while (isspace((unsigned char)*x->p))
        x->p++;
    if (strncmp(x->p, "~=", 2) == 0)
        return err_set(x->e, "\"~=\" is not supported");
    if (*x->p)
        return err_set(x->e, "unexpected \"%.20s\"", x->p);
    return err_set(x->e, "unexpected end of expression");
}

/* Consumes word next (a keyword only when no name character follows). */
static bool accept(struct fx *x, const char *word)
{
    size_t n = strlen(word);
    char after;

    while (isspace((unsigned char)*x->p))
        x->p++;
    if (strncmp(x->p, word, n) != 0)
        return false;
    after = x->p[n];
    if (isalpha((unsigned char)word[0]) && (isalnum((unsigned char)after) || after == '_'))
        return false;
    if (n == 1 && strchr("<>=!", word[0]) && after == '=')
        return false;
    x->p += n;
    return true;
}

static int parse_ternary(struct fx *x, struct fx_val *v);

static struct fx_val from_json(const json_t *j)
{
    if (json_is_number(j))
        return num(json_number_value(j));
    if (json_is_string(j))
        return str(json_string_value(j), json_string_length(j));
    if (json_is_boolean(j))
        return (struct fx_val){FX_BOOL, json_is_true(j), NULL, 0};
    if (json_is_object(j) || json_is_array(j))
        return (struct fx_val){FX_OBJ, 0, NULL, 0};
    return (struct fx_val){FX_UNDEF, 0, NULL, 0};
}

/* A quoted string or symbol: \\ and \<quote> are the escapes filtrex knows. */
static int parse_quoted(struct fx *x, struct buf *out)
{
    char q = *x->p++;

    for (; *x->p && *x->p != q; x->p++) {
        if (*x->p == '\\' && (x->p[1] == '\\' || x->p[1] == q))
            x->p++;
        else if (*x->p == '\\')
            return err_set(x->e, "unknown escape \"\\%c\"", x->p[1] ? x->p[1] : ' ');
        buf_append(out, x->p, 1);
    }
    if (*x->p != q)
        return err_set(x->e, "unterminated %s", q == '"' ? "string" : "quoted name");
    x->p++;
    return 0;
}

static int call_function(struct fx *x, const char *name, struct fx_val *v)
{
    static const char *const fns[] = {"abs", "ceil",   "floor", "log",  "max",
                                      "min", "random", "round", "sqrt", NULL};
    double args[16];
    size_t n = 0, k;
    struct fx_val a;

    for (k = 0; fns[k] && strcmp(fns[k], name) != 0; k++)
        ;
    if (!fns[k])
        return err_set(x->e, "unknown function %s()", name);
    if (!accept(x, ")")) {
        do {
            if (n == ARRAY_LEN(args))
                return err_set(x->e, "too many arguments to %s()", name);
            if (parse_ternary(x, &a) < 0)
                return -EINVAL;
            args[n++] = to_number(&a);
            val_free(&a);
        } while (accept(x, ","));
        if (!accept(x, ")"))
            return fail(x);
    }
    *v = num(NAN);
    if (k == 6) /* random */
        v->n = (double)rand() / ((double)RAND_MAX + 1);
    else if (k == 4 || k == 5) { /* max, min: over every argument */
        v->n = k == 4 ? -INFINITY : INFINITY;
        for (size_t i = 0; i < n; i++)
            v->n = isnan(args[i]) || isnan(v->n) ? NAN
                   : k == 4                      ? fmax(v->n, args[i])
                                                 : fmin(v->n, args[i]);
    } else if (n > 0) {
        double (*const one[])(double) = {fabs, ceil, floor, log, NULL, NULL, NULL, round, sqrt};

        /* JavaScript's Math.round rounds halves up, C's away from zero */
        v->n = k == 7 ? floor(args[0] + 0.5) : one[k](args[0]);
    }
    return 0;
}

static int parse_primary(struct fx *x, struct fx_val *v)
{
    struct buf name = BUF_INIT;
    int rc = 0;

    while (isspace((unsigned char)*x->p))
        x->p++;
    if (isdigit((unsigned char)*x->p)) {
        char *end;

        *v = num(strtod(x->p, &end));
        x->p = end;
    } else if (*x->p == '"') {
        if ((rc = parse_quoted(x, &name)) == 0)
            *v = str(name.data ? name.data : "", name.len);
    } else if (*x->p == '\'' || isalpha((unsigned char)*x->p) || *x->p == '$' || *x->p == '_') {
        if (*x->p == '\'') {
            rc = parse_quoted(x, &name);
        } else {
            const char *start = x->p;

            while (isalnum((unsigned char)*x->p) || (*x->p && strchr("$_.", *x->p)))
                x->p++;
            buf_append(&name, start, (size_t)(x->p - start));
        }
        if (rc == 0 && name.len >= MAX_NAME)
            rc = err_set(x->e, "name too long");
        else if (rc == 0 && accept(x, "("))
            rc = call_function(x, name.data, v);
        else if (rc == 0 && accept(x, "of"))
            rc = err_set(x->e, "\"of\" is not supported");
        else if (rc == 0)
            *v = from_json(x->lookup ? x->lookup(x->data, name.data) : NULL);
    } else if (accept(x, "(")) {
        if ((rc = parse_ternary(x, v)) == 0 && !accept(x, ")")) {
            /* on an error v holds nothing: the callers do not free it */
            val_free(v);
            rc = accept(x, ",") ? err_set(x->e, "a list belongs after \"in\"") : fail(x);
        }
    } else {
        rc = fail(x);
    }
    buf_free(&name);
    return rc;
}

static int parse_unary(struct fx *x, struct fx_val *v)
{
    struct fx_val operand = {FX_UNDEF, 0, NULL, 0};
    int rc;

    if (++x->depth > MAX_DEPTH)
        return err_set(x->e, "expression nested too deep");
    if (accept(x, "not")) {
        if ((rc = parse_unary(x, &operand)) == 0) {
            *v = num(!truthy(&operand));
            val_free(&operand);
        }
    } else if (accept(x, "-")) {
        if ((rc = parse_unary(x, &operand)) == 0) {
            *v = num(-to_number(&operand));
            val_free(&operand);
        }
    } else {
        rc = parse_primary(x, v);
    }
    x->depth--;
    return rc;
}

/* One binary level: operands from next, operators from ops, combined by apply. */
static int binary(struct fx *x, struct fx_val *v, int (*next)(struct fx *, struct fx_val *),
                  const char *const *ops,
                  void (*apply)(size_t op, struct fx_val *, struct fx_val *))
{
    struct fx_val r;

    if (next(x, v) < 0)
        return -EINVAL;
    for (;;) {
        size_t op;

        for (op = 0; ops[op] && !accept(x, ops[op]); op++)
            ;
        if (!ops[op])
            return 0;
        if (next(x, &r) < 0) {
            val_free(v);
            return -EINVAL;
        }
        apply(op, v, &r);
        val_free(&r);
    }
}

static void set_num(struct fx_val *v, double n)
{
    val_free(v);
    *v = num(n);
}

static void apply_pow(size_t op, struct fx_val *a, struct fx_val *b)
{
    (void)op;
    set_num(a, pow(to_number(a), to_number(b)));
}

static int parse_pow(struct fx *x, struct fx_val *v)
{
    static const char *const ops[] = {"^", NULL};

    return binary(x, v, parse_unary, ops, apply_pow);
}

static void apply_mul(size_t op, struct fx_val *a, struct fx_val *b)
{
    double l = to_number(a), r = to_number(b);

    set_num(a, op == 0 ? l * r : op == 1 ? l / r : fmod(l, r));
}

static int parse_mul(struct fx *x, struct fx_val *v)
{
    static const char *const ops[] = {"*", "/", "%", NULL};

    return binary(x, v, parse_pow, ops, apply_mul);
}

static void apply_add(size_t op, struct fx_val *a, struct fx_val *b)
{
    struct buf s = BUF_INIT;

    if (op == 0 && (a->t == FX_STR || b->t == FX_STR)) {
        append_text(&s, a);
        append_text(&s, b);
        val_free(a);
        *a = str(s.data ? s.data : "", s.len);
        buf_free(&s);
        return;
    }
    set_num(a, op == 0 ? to_number(a) + to_number(b) : to_number(a) - to_number(b));
}

static int parse_add(struct fx *x, struct fx_val *v)
{
    static const char *const ops[] = {"+", "-", NULL};

    return binary(x, v, parse_mul, ops, apply_add);
}

static void apply_rel(size_t op, struct fx_val *a, struct fx_val *b)
{
    double c;

    if (a->t == FX_STR && b->t == FX_STR) {
        int m = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);

        c = m ? m : (double)a->len - (double)b->len;
    } else {
        double l = to_number(a), r = to_number(b);

        c = isnan(l) || isnan(r) ? NAN : l - r;
    }
    set_num(a, isnan(c) ? 0 : op == 0 ? c <= 0 : op == 1 ? c >= 0 : op == 2 ? c < 0 : c > 0);
}

static int parse_rel(struct fx *x, struct fx_val *v)
{
    static const char *const ops[] = {"<=", ">=", "<", ">", NULL};

    return binary(x, v, parse_add, ops, apply_rel);
}

static void apply_eq(size_t op, struct fx_val *a, struct fx_val *b)
{
    set_num(a, equal(a, b, false) == (op == 0));
}

static int parse_eq(struct fx *x, struct fx_val *v)
{
    static const char *const ops[] = {"==", "!=", NULL};

    return binary(x, v, parse_rel, ops, apply_eq);
}

/*
 * `in (a, b)` or `in a`: whether the left operand is one of them (strictly). The operand stays in
 * a local until it is final, so no call in between can reach it.
 */
static int parse_in(struct fx *x, struct fx_val *v)
{
    struct fx_val left, item;

    if (parse_eq(x, &left) < 0)
        return -EINVAL;
    for (;;) {
        const char *save = x->p;
        bool negate = accept(x, "not") && accept(x, "in"), found = false, list;

        if (!negate) {
            x->p = save;
            if (!accept(x, "in"))
                break;
        }
        list = accept(x, "(");
        do {
            if ((list ? parse_ternary(x, &item) : parse_eq(x, &item)) < 0) {
                val_free(&left);
                return -EINVAL;
            }
            found |= equal(&left, &item, true);
            val_free(&item);
        } while (list && accept(x, ","));
        if (list && !accept(x, ")")) {
            val_free(&left);
            return fail(x);
        }
        set_num(&left, found != negate);
    }
    *v = left;
    return 0;
}

/* and / or: JavaScript's && and || (the deciding operand), then Number() of it. */
static void apply_logic(size_t op, struct fx_val *a, struct fx_val *b)
{
    bool keep_a = op == 0 ? !truthy(a) : truthy(a);
    const struct fx_val *pick = keep_a ? a : b;

    set_num(a, to_number(pick));
}

static int parse_and(struct fx *x, struct fx_val *v)
{
    static const char *const ops[] = {"and", NULL};

    return binary(x, v, parse_in, ops, apply_logic);
}

static void apply_or(size_t op, struct fx_val *a, struct fx_val *b)
{
    (void)op;
    apply_logic(1, a, b);
}

static int parse_or(struct fx *x, struct fx_val *v)
{
    static const char *const ops[] = {"or", NULL};

    return binary(x, v, parse_and, ops, apply_or);
}

static int parse_ternary(struct fx *x, struct fx_val *v)
{
    struct fx_val a, b;

    if (parse_or(x, v) < 0)
        return -EINVAL;
    while (accept(x, "?")) {
        if (parse_or(x, &a) < 0)
            goto err;
        if (!accept(x, ":") || parse_or(x, &b) < 0) {
            if (!x->e->msg[0])
                fail(x);
            val_free(&a);
            goto err;
        }
        if (truthy(v)) {
            val_free(v);
            val_free(&b);
            *v = a;
        } else {
            val_free(v);
            val_free(&a);
            *v = b;
        }
    }
    return 0;
err:
    val_free(v);
    return -EINVAL;
}

int load_fx_eval(const char *expr, load_fx_lookup_cb lookup, void *data, bool *is_true,
                 double *number, struct err *e)
{
    e->msg[0] = '\0';
    struct fx x = {expr, lookup, data, e, 0};
    struct fx_val v;

    if (parse_ternary(&x, &v) < 0)
        return -EINVAL;
    while (isspace((unsigned char)*x.p))
        x.p++;
    if (*x.p) {
        val_free(&v);
        return fail(&x);
    }
    *is_true = truthy(&v);
    *number = to_number(&v);
    val_free(&v);
    return 0;
}

int load_fx_check(const char *expr, struct err *e)
{
    bool t;
    double n;

    return load_fx_eval(expr, NULL, NULL, &t, &n, e);
}
