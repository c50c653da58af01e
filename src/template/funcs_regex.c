/*
 * regexMatch and regexReplaceAll, consul-template's regular-expression helpers, on the bounded
 * POSIX expressions of lib/re.h (RE2's \d \w \s shorthands included), which covers what
 * HAProxy and nginx templates write ("^v([0-9]+)", "[^a-z0-9]", "\d+"). Replacements expand
 * $1..$9 and ${1}..${9} as Go does.
 */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/re.h"
#include "template/tmpl_internal.h"

#define REGEX_GROUPS 10

static int compile(struct tmpl_eval *ev, const char *fname, const json_t *v, regex_t *re)
{
    struct err e;

    if (re_compile(re, json_string_value(v), 0, &e) < 0)
        return tmpl_fail(ev, "error calling %s: %s", fname, e.msg);
    return 0;
}

static int fn_regex_match(struct tmpl_eval *ev, json_t *const *args, size_t nargs, json_t **out)
{
    regex_t re;

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
    {"regexMatch", fn_regex_match, 2, 2, "ss"},
    {"regexReplaceAll", fn_regex_replace_all, 3, 3, "sss"},
};

const struct tmpl_func *tmpl_regex_func_find(const char *name)
{
    return tmpl_func_lookup(regex_funcs, ARRAY_LEN(regex_funcs), name);
}
