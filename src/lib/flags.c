/*
 * Go's flag package, as Consul's commands use it: the same syntax, the same stopping rules and
 * the same error texts, so scripts written against consul(1) work against mesh(1).
 */
#include "lib/flags.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bug.h"
#include "lib/duration.h"
#include "lib/str.h"

void flag_list_free(struct flag_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    FREE_NULL(l->items);
    l->n = 0;
}

static struct flag *flag_find(struct flag *flags, size_t n, struct str name)
{
    for (size_t i = 0; i < n; i++) {
        if (MESH_BUG_ON(!flags[i].name)) /* a flag table names every entry */
            continue;
        if (str_eq_cstr(name, flags[i].name))
            return &flags[i];
    }
    return NULL;
}

/* strconv.ParseBool. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};

    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* strconv.ParseInt(s, 0, 32)-ish: decimal, 0x hex, 0 octal; no spaces, no trailing junk. */
static int parse_int(const char *s, int *out)
{
    char *end;
    long long v;

    if (!*s || *s == ' ' || *s == '\t' || *s == '\n')
        return -EINVAL;
    errno = 0;
    v = strtoll(s, &end, 0);
    if (*end)
        return -EINVAL;
    if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
        return -ERANGE;
    *out = (int)v;
    return 0;
}

/* Stores value into f. Returns 0, or -EINVAL / -ERANGE with Go's reason in *why. */
static int flag_set(struct flag *f, const char *value, const char **why)
{
    int rc = 0;

    switch (f->type) {
    case FLAG_BOOL:
        rc = parse_bool(value, f->ptr);
        break;
    case FLAG_STRING: {
        char **p = f->ptr;
        free(*p);
        *p = xstrdup(value);
        break;
    }
    case FLAG_INT:
        rc = parse_int(value, f->ptr);
        break;
    case FLAG_DURATION:
        rc = duration_parse(str_from(value), f->ptr);
        if (rc < 0)
            rc = -EINVAL; /* Go's flag package says "parse error" for any duration failure */
        break;
    case FLAG_STRING_LIST: {
        struct flag_list *l = f->ptr;
        l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
        l->items[l->n++] = xstrdup(value);
        break;
    }
    }
    *why = rc == -ERANGE ? "value out of range" : "parse error";
    return rc;
}

/*
 * Go's FlagSet.parseOne for argv[*i]. Returns 1 when a flag was consumed, 0 when parsing stops
 * (positional argument, or "--" which it consumes), FLAGS_HELP + 1 for help, or -EINVAL.
 */
static int parse_one(struct flag *flags, size_t n, int argc, char **argv, int *i, struct err *e)
{
    const char *arg = argv[*i];
    size_t dashes = 1;

    if (strlen(arg) < 2 || arg[0] != '-')
        return 0;
    if (arg[1] == '-') {
        dashes = 2;
        if (arg[2] == '\0') {
            (*i)++;
            return 0;
        }
    }
    const char *name_start = arg + dashes;
    if (name_start[0] == '-' || name_start[0] == '=')
        return err_set(e, "bad flag syntax: %s", arg);
    (*i)++;

    const char *eq = strchr(name_start, '=');
    struct str name = {name_start, eq ? (size_t)(eq - name_start) : strlen(name_start)};
    const char *value = eq ? eq + 1 : NULL;
    struct flag *f = flag_find(flags, n, name);
    if (!f) {
        if (str_eq_cstr(name, "help") || str_eq_cstr(name, "h"))
            return FLAGS_HELP + 1;
        return err_set(e, "flag provided but not defined: -%.*s", STR_FMT(name));
    }

    const char *why;
    if (f->type == FLAG_BOOL) {
        /* A bool flag never takes the next argument: "-x false" is "-x" then "false". */
        if (!value) {
            *(bool *)f->ptr = true;
        } else if (flag_set(f, value, &why) < 0) {
            return err_set(e, "invalid boolean value \"%s\" for -%s: %s", value, f->name, why);
        }
    } else {
        if (!value) {
            if (*i >= argc)
                return err_set(e, "flag needs an argument: -%s", f->name);
            value = argv[(*i)++];
        }
        if (flag_set(f, value, &why) < 0)
            return err_set(e, "invalid value \"%s\" for flag -%s: %s", value, f->name, why);
    }
    f->seen = true;
    return 1;
}

int flags_parse(struct flag *flags, size_t n, int argc, char **argv, int *first_arg, struct err *e)
{
    int i = 0;
    int rc;

    while (i < argc) {
        rc = parse_one(flags, n, argc, argv, &i, e);
        if (rc == 0)
            break;
        if (rc < 0 || rc == FLAGS_HELP + 1) {
            *first_arg = i;
            return rc < 0 ? rc : FLAGS_HELP;
        }
    }
    *first_arg = i;
    return 0;
}

/* Appends " (default X)" when the current value is not the type's zero value, as Go does. */
static void print_default(FILE *f, const struct flag *fl)
{
    char dur[32];

    switch (fl->type) {
    case FLAG_BOOL:
        if (*(const bool *)fl->ptr)
            fprintf(f, " (default true)");
        break;
    case FLAG_STRING: {
        const char *s = *(char *const *)fl->ptr;
        if (s && *s)
            fprintf(f, " (default \"%s\")", s);
        break;
    }
    case FLAG_INT:
        if (*(const int *)fl->ptr)
            fprintf(f, " (default %d)", *(const int *)fl->ptr);
        break;
    case FLAG_DURATION:
        if (*(const int64_t *)fl->ptr) {
            duration_format(*(const int64_t *)fl->ptr, dur, sizeof(dur));
            fprintf(f, " (default %s)", dur);
        }
        break;
    case FLAG_STRING_LIST:
        break;
    }
}

static const char *type_name(enum flag_type t)
{
    switch (t) {
    case FLAG_BOOL:
        return NULL;
    case FLAG_STRING:
    case FLAG_STRING_LIST:
        return "string";
    case FLAG_INT:
        return "int";
    case FLAG_DURATION:
        return "duration";
    }
    return NULL;
}

void flags_usage(FILE *f, const char *usage, const struct flag *flags, size_t n)
{
    fprintf(f, "Usage: %s\n\n", usage);
    for (size_t i = 0; i < n; i++) {
        const char *t = type_name(flags[i].type);
        const char *help = flags[i].help ? flags[i].help : "";

        fprintf(f, "  -%s", flags[i].name);
        if (t)
            fprintf(f, " <%s>", t);
        fputs("\n        ", f);
        /* Multi-line help keeps its indent on every line. */
        for (const char *p = help; *p; p++) {
            fputc(*p, f);
            if (*p == '\n')
                fputs("        ", f);
        }
        print_default(f, &flags[i]);
        fputc('\n', f);
    }
}
