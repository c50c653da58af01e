#include "lib/re.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"

/* RE2 shorthands into POSIX classes, outside brackets. Returns a heap string. */
static char *translate(const char *re)
{
    static const char *const from = "dDwWsS";
    static const char *const to[] = {"[0-9]",         "[^0-9]",      "[A-Za-z0-9_]",
                                     "[^A-Za-z0-9_]", "[[:space:]]", "[^[:space:]]"};
    struct buf b = BUF_INIT;
    bool in_bracket = false;

    for (const char *p = re; *p; p++) {
        const char *m = p[0] == '\\' && p[1] ? strchr(from, p[1]) : NULL;
        if (!in_bracket && m) {
            buf_append_cstr(&b, to[m - from]);
            p++;
            continue;
        }
        if (p[0] == '\\' && p[1]) {
            buf_append(&b, p, 2);
            p++;
            continue;
        }
        if (*p == '[' && !in_bracket) {
            in_bracket = true;
            buf_append(&b, p, 1);
            /* "[]" and "[^]" take a literal ] first */
            if (p[1] == '^')
                buf_append(&b, ++p, 1);
            if (p[1] == ']')
                buf_append(&b, ++p, 1);
            continue;
        }
        if (*p == ']')
            in_bracket = false;
        buf_append(&b, p, 1);
    }
    return b.data ? buf_steal(&b) : xstrdup("");
}

/* Skips a bracket expression starting at p ('['); returns the character after its ']'. */
static const char *skip_bracket(const char *p)
{
    p++;
    if (*p == '^')
        p++;
    if (*p == ']')
        p++;
    while (*p && *p != ']') {
        if (p[0] == '[' && (p[1] == ':' || p[1] == '.' || p[1] == '=')) {
            const char *end = strchr(p + 2, p[1]);
            p = end && end[1] == ']' ? end + 2 : p + 1;
        } else {
            p++;
        }
    }
    return *p ? p + 1 : p;
}

/* A repetition operator at p ({n}, {n,}, {n,m}, *, +, ?): its largest count, and p moved past
 * it. NULL when fine, else the reason. */
static const char *repeat_count(const char **p, long *max)
{
    const char *q = *p;

    *max = *q == '+' ? 2 : 1; /* one more copy for "+"; "*" and "?" keep the atom's size */
    if (*q == '{') {
        char *end;
        long lo = strtol(q + 1, &end, 10), hi = lo;
        bool open = *end == ',' && end[1] == '}'; /* {n,}: count one more copy than n */
        if (*end == ',' && !open)
            hi = strtol(end + 1, &end, 10);
        if (lo > RE_MAX_REPEAT || hi > RE_MAX_REPEAT || lo < 0 || hi < 0)
            return "invalid repeat count";
        /* Only after the bound check: strtol saturates at LONG_MAX (found by fuzzing). */
        if (open)
            hi = lo + 1;
        *max = hi > lo ? hi : lo;
        q = strchr(q, '}') ? strchr(q, '}') : q + strlen(q) - 1;
    }
    *p = q + 1;
    return NULL;
}

/* Whether each group level's pattern read so far can match the empty string. */
struct re_empty {
    bool seq[RE_MAX_DEPTH + 1];  /* the current alternative */
    bool prev[RE_MAX_DEPTH + 1]; /* the current alternative before its last item */
    bool alt[RE_MAX_DEPTH + 1];  /* an earlier alternative */
    bool last;                   /* the last item */
};

static void empty_item(struct re_empty *m, int depth, bool empty)
{
    m->prev[depth] = m->seq[depth];
    m->seq[depth] = m->seq[depth] && empty;
    m->last = empty;
}

/*
 * The size of the automaton regcomp would build, counted in atoms with every repetition
 * expanded, per group level, and the repeated groups that can match the empty string. NULL
 * when within the bounds, else the reason.
 */
static const char *check_bounds(const char *p)
{
    long size[RE_MAX_DEPTH + 1] = {0}, last = 0;
    struct re_empty m = {.seq = {true}, .prev = {true}};
    int depth = 0, empty_loops = 0;
    bool after_repeat = false, after_group = false;

    while (*p) {
        bool repeat = false, group = false;
        if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
            char op = *p;
            bool optional = op == '*' || op == '?' || (op == '{' && strtol(p + 1, NULL, 10) == 0);
            long max;
            if (after_repeat)
                return "invalid nested repetition operator";
            const char *why = repeat_count(&p, &max);
            if (why)
                return why;
            bool loop = op == '*' || op == '+' || (op == '{' && max > 1);
            if (loop && after_group && m.last && ++empty_loops > RE_MAX_EMPTY_LOOPS)
                return "too many repeated groups that match the empty string";
            m.last = m.last || optional;
            m.seq[depth] = m.prev[depth] && m.last;
            size[depth] += last * (max - 1);
            last *= max;
            repeat = true;
        } else if (*p == '(') {
            if (depth == RE_MAX_DEPTH)
                return "expression nests too deeply";
            size[++depth] = 0;
            m.seq[depth] = m.prev[depth] = true;
            m.alt[depth] = false;
            p++;
        } else if (*p == ')') {
            /* glibc takes a stray ')' as a literal; RE2 refuses it, and the one-pass search
             * wraps the pattern in a group that it would close. */
            if (depth == 0)
                return "unexpected )";
            bool empty = m.seq[depth] || m.alt[depth];
            last = size[depth--] + 1;
            size[depth] += last;
            empty_item(&m, depth, empty);
            group = true;
            p++;
        } else if (p[0] == '\\' && p[1] >= '1' && p[1] <= '9') {
            return "invalid escape sequence";
        } else {
            /* '|' starts an alternative; '^' and '$' match the empty string. */
            if (*p == '|') {
                m.alt[depth] = m.alt[depth] || m.seq[depth];
                m.seq[depth] = m.prev[depth] = true;
            } else {
                empty_item(&m, depth, *p == '^' || *p == '$');
            }
            p = *p == '[' ? skip_bracket(p) : p + (p[0] == '\\' && p[1] ? 2 : 1);
            last = 1;
            size[depth]++;
        }
        after_group = group;
        after_repeat = repeat;
        if (size[depth] > RE_MAX_SIZE || last > RE_MAX_SIZE)
            return "expression too large";
    }
    return NULL;
}

/* regcomp, with regerror's text in e on failure. */
static int compile(regex_t *re, const char *posix, int cflags, const char *pattern, struct err *e)
{
    char why[200];
    int status = regcomp(re, posix, cflags);

    if (status == 0)
        return 0;
    regerror(status, re, why, sizeof(why));
    regfree(re);
    return err_set(e, "error parsing regexp: %s: `%s`", why, pattern);
}

int re_compile(regex_t *re, const char *pattern, int cflags, struct err *e)
{
    struct buf anchored = BUF_INIT;
    int rc;

    if (strlen(pattern) > RE_MAX_PATTERN)
        return err_set(e, "pattern longer than %d bytes", RE_MAX_PATTERN);
    cflags |= REG_EXTENDED;
    char *posix = translate(pattern);
    const char *bound = check_bounds(posix);
    if (bound) {
        rc = err_set(e, "error parsing regexp: %s: `%s`", bound, pattern);
        goto out;
    }
    rc = compile(re, posix, cflags, pattern, e);
    if (rc < 0 || !(cflags & REG_NOSUB))
        goto out;
    /*
     * glibc's regexec retries from every start offset, which is quadratic in the subject for
     * a search that fails. Anchored as "^.*(P)" it makes one pass and matches the same
     * subjects (a '^' inside P still matches only at the start). P compiled alone first, so a
     * bad P is refused as itself; no group numbers are seen under REG_NOSUB.
     */
    regfree(re);
    buf_printf(&anchored, "^.*(%s)", posix);
    rc = compile(re, anchored.data, cflags, pattern, e);
out:
    buf_free(&anchored);
    free(posix);
    return rc;
}
