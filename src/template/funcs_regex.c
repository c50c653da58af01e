/*
 * regexMatch and regexReplaceAll, consul-template's regular-expression helpers. Go uses RE2;
 * this uses POSIX extended expressions (regex.h) with RE2's common shorthands translated
 * outside brackets (\d \D \w \W \s \S), which covers what HAProxy and nginx templates write
 * ("^v([0-9]+)", "[^a-z0-9]", "\d+"). Replacements expand $1..$9 and ${1}..${9} as Go does.
 */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "template/tmpl_internal.h"

#define REGEX_MAX_PATTERN 4096
#define REGEX_GROUPS      10
#define REGEX_MAX_REPEAT  1000  /* RE2's limit on {n,m} */
#define REGEX_MAX_SIZE    20000 /* atoms after repetitions are expanded */
#define REGEX_MAX_DEPTH   64

/* RE2 shorthands into POSIX classes, outside brackets. */
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

/*
 * glibc's regcomp copies a repeated atom once per repetition, so "a{1,1000}{1,1000}" or
 * "a*+++..." would take gigabytes. Refuse what RE2 refuses (a repetition of a repetition,
 * counts over 1000) and patterns whose expanded size passes REGEX_MAX_SIZE. NULL when fine,
 * else the reason.
 */
static const char *too_large(const char *p)
{
    long size[REGEX_MAX_DEPTH + 1] = {0}, last = 0;
    int depth = 0;
    bool after_repeat = false;

    while (*p) {
        bool repeat = false;
        if (*p == '*' || *p == '+' || *p == '?' || *p == '{') {
            long max = *p == '+' ? 2 : 1;
            if (after_repeat)
                return "invalid nested repetition operator";
            if (*p == '{') {
                char *end;
                long lo = strtol(p + 1, &end, 10), hi = lo;
                if (*end == ',')
                    hi = end[1] == '}' ? lo + 1 : strtol(end + 1, &end, 10);
                if (lo > REGEX_MAX_REPEAT || hi > REGEX_MAX_REPEAT)
                    return "invalid repeat count";
                max = hi > lo ? hi : lo;
                p = strchr(p, '}') ? strchr(p, '}') : p + strlen(p) - 1;
            }
            size[depth] += last * (max - 1);
            last *= max;
            repeat = true;
            p++;
        } else if (*p == '(') {
            if (depth == REGEX_MAX_DEPTH)
                return "expression nests too deeply";
            size[++depth] = 0;
            p++;
        } else if (*p == ')' && depth > 0) {
            last = size[depth--] + 1;
            size[depth] += last;
            p++;
        } else {
            p = *p == '[' ? skip_bracket(p) : p + (p[0] == '\\' && p[1] ? 2 : 1);
            last = 1;
            size[depth]++;
        }
        after_repeat = repeat;
        if (size[depth] > REGEX_MAX_SIZE || last > REGEX_MAX_SIZE)
            return "expression too large";
    }
    return NULL;
}

static int compile(struct tmpl_eval *ev, const char *fname, const json_t *v, regex_t *re)
{
    char msg[200];

    if (!json_is_string(v))
        return tmpl_fail(ev, "wrong type for value; expected string; got %s", tmpl_type_name(v));
    if (json_string_length(v) > REGEX_MAX_PATTERN)
        return tmpl_fail(ev, "error calling %s: pattern longer than %d bytes", fname,
                         REGEX_MAX_PATTERN);
    char *pattern = translate(json_string_value(v));
    const char *why = too_large(pattern);
    if (why) {
        free(pattern);
        return tmpl_fail(ev, "error calling %s: error parsing regexp: %s: `%s`", fname, why,
                         json_string_value(v));
    }
    int rc = regcomp(re, pattern, REG_EXTENDED);
    free(pattern);
    if (rc != 0) {
        regerror(rc, re, msg, sizeof(msg));
        regfree(re);
        return tmpl_fail(ev, "error calling %s: error parsing regexp: %s: `%s`", fname, msg,
                         json_string_value(v));
    }
    return 0;
}

static int fn_regex_match(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    regex_t re;

    if (!json_is_string(args[1]))
        return tmpl_fail(ev, "wrong type for value; expected string; got %s",
                         tmpl_type_name(args[1]));
    if (compile(ev, "regexMatch", args[0], &re) < 0)
        return -EINVAL;
    *out = json_boolean(regexec(&re, json_string_value(args[1]), 0, NULL, 0) == 0);
    regfree(&re);
    return 0;
}

/* Appends repl with $N / ${N} replaced by the groups of the match at s. */
static void expand(struct buf *b, const char *repl, const char *s, const regmatch_t *m)
{
    for (const char *p = repl; *p; p++) {
        int g = -1;
        if (p[0] == '$' && p[1] >= '0' && p[1] <= '9') {
            g = p[1] - '0';
            p++;
        } else if (p[0] == '$' && p[1] == '{' && p[2] >= '0' && p[2] <= '9' && p[3] == '}') {
            g = p[2] - '0';
            p += 3;
        } else if (p[0] == '$' && p[1] == '$') {
            buf_append_cstr(b, "$");
            p++;
            continue;
        }
        if (g < 0)
            buf_append(b, p, 1);
        else if (m[g].rm_so >= 0)
            buf_append(b, s + m[g].rm_so, (size_t)(m[g].rm_eo - m[g].rm_so));
    }
}

/* regexReplaceAll PATTERN REPLACEMENT S */
static int fn_regex_replace_all(struct tmpl_eval *ev, json_t *const *args, size_t nargs,
                                json_t **out)
{
    regmatch_t m[REGEX_GROUPS];
    struct buf b = BUF_INIT;
    regex_t re;

    if (!json_is_string(args[1]) || !json_is_string(args[2]))
        return tmpl_fail(ev, "wrong type for value; expected string; got %s",
                         tmpl_type_name(json_is_string(args[1]) ? args[2] : args[1]));
    if (compile(ev, "regexReplaceAll", args[0], &re) < 0)
        return -EINVAL;
    const char *at = json_string_value(args[2]);
    const char *repl = json_string_value(args[1]);
    int flags = 0;
    bool after_match = false; /* at starts right where a non-empty match ended */
    while (regexec(&re, at, REGEX_GROUPS, m, flags) == 0) {
        bool empty = m[0].rm_eo == m[0].rm_so;
        buf_append(&b, at, (size_t)m[0].rm_so);
        /* Go ignores an empty match that abuts the previous match */
        if (!(empty && after_match && m[0].rm_so == 0))
            expand(&b, repl, at, m);
        at += m[0].rm_eo;
        after_match = !empty;
        if (empty) {
            if (!*at)
                break;
            buf_append(&b, at++, 1);
        }
        flags = REG_NOTBOL;
    }
    buf_append_cstr(&b, at);
    regfree(&re);
    *out = json_stringn_nocheck(b.data ? b.data : "", b.len);
    buf_free(&b);
    return 0;
}

static const struct tmpl_func regex_funcs[] = {
    {"regexMatch", fn_regex_match, 2, 2},
    {"regexReplaceAll", fn_regex_replace_all, 3, 3},
};

const struct tmpl_func *tmpl_regex_func_find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(regex_funcs); i++)
        if (strcmp(regex_funcs[i].name, name) == 0)
            return &regex_funcs[i];
    return NULL;
}
