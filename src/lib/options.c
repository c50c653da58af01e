#include "lib/options.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/json.h"

static void *field(void *settings, const struct option_def *d)
{
    return (char *)settings + d->offset;
}

size_t options_bind_flags(const struct option_def *defs, size_t n, void *settings, struct flag *out)
{
    static const enum flag_type types[] = {
        [OPTION_BOOL] = FLAG_BOOL,
        [OPTION_STRING] = FLAG_STRING,
        [OPTION_INT] = FLAG_INT,
        [OPTION_PORT] = FLAG_INT,
        [OPTION_PORT_OFF] = FLAG_INT,
        [OPTION_DURATION] = FLAG_DURATION,
        [OPTION_STRING_LIST] = FLAG_STRING_LIST,
    };
    size_t nflags = 0;

    for (size_t i = 0; i < n; i++) {
        const struct option_def *d = &defs[i];
        if (d->flag)
            out[nflags++] =
                (struct flag){d->flag, types[d->type], field(settings, d), d->help, false};
    }
    return nflags;
}

const struct option_def *options_find(const struct option_def *defs, size_t n, const char *path)
{
    for (size_t i = 0; i < n; i++)
        if (defs[i].key && strcmp(defs[i].key, path) == 0)
            return &defs[i];
    return NULL;
}

bool options_is_section(const struct option_def *defs, size_t n, const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < n; i++)
        if (defs[i].key && strncmp(defs[i].key, path, len) == 0 && defs[i].key[len] == '.')
            return true;
    return false;
}

static void list_add(struct flag_list *l, const char *s)
{
    l->items = xrealloc(l->items, (l->n + 1) * sizeof(char *));
    l->items[l->n++] = xstrdup(s);
}

static int read_list(const struct config_doc *doc, const char *path, const json_t *v,
                     struct flag_list *l, struct err *e)
{
    size_t i;
    json_t *s;

    if (json_is_string(v)) {
        list_add(l, json_string_value(v));
        return 0;
    }
    if (!json_is_array(v))
        return config_error(doc, path, e, "%s: expected a list of strings, got %s", path,
                            json_type_name(v));
    json_array_foreach(v, i, s)
    {
        if (!json_is_string(s)) {
            char elem[160];
            snprintf(elem, sizeof(elem), "%s[%zu]", path, i);
            return config_error(doc, elem, e, "%s: expected a string, got %s", elem,
                                json_type_name(s));
        }
        list_add(l, json_string_value(s));
    }
    return 0;
}

int options_read(const struct option_def *def, void *settings, const struct config_doc *doc,
                 const char *path, const json_t *v, struct err *e)
{
    void *dst = field(settings, def);
    const char *got = json_is_string(v) ? json_string_value(v) : json_type_name(v);

    switch (def->type) {
    case OPTION_BOOL:
        if (!json_is_boolean(v))
            return config_error(doc, path, e, "%s: expected a boolean, got %s", path, got);
        *(bool *)dst = json_is_true(v);
        return 0;
    case OPTION_STRING:
        if (!json_is_string(v))
            return config_error(doc, path, e, "%s: expected a string, got %s", path, got);
        free(*(char **)dst);
        *(char **)dst = xstrdup(json_string_value(v));
        return 0;
    case OPTION_PORT_OFF:
        if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > 65535)
            return config_error(doc, path, e,
                                "%s: expected a port number (0-65535, or -1: off), got %s", path,
                                got);
        *(int *)dst = (int)json_integer_value(v);
        return 0;
    case OPTION_INT:
    case OPTION_PORT:
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > (def->type == OPTION_PORT ? 65535 : 1000000000))
            return config_error(doc, path, e, "%s: expected %s, got %s", path,
                                def->type == OPTION_PORT ? "a port number (0-65535)"
                                                         : "a non-negative integer",
                                got);
        *(int *)dst = (int)json_integer_value(v);
        return 0;
    case OPTION_DURATION:
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            *(int64_t *)dst = (int64_t)json_integer_value(v) * DURATION_MS;
            return 0;
        }
        if (json_is_string(v) && duration_parse(str_from(json_string_value(v)), dst) == 0)
            return 0;
        return config_error(doc, path, e, "%s: expected a duration such as \"10s\", got %s", path,
                            got);
    case OPTION_STRING_LIST:
        return read_list(doc, path, v, dst, e);
    }
    return 0;
}

void options_free(const struct option_def *defs, size_t n, void *settings)
{
    for (size_t i = 0; i < n; i++) {
        if (defs[i].type == OPTION_STRING)
            FREE_NULL(*(char **)field(settings, &defs[i]));
        else if (defs[i].type == OPTION_STRING_LIST)
            flag_list_free(field(settings, &defs[i]));
    }
}

int options_load(const struct options_loader *l, void *settings, void *scratch, struct flag *flags,
                 size_t *nflags, int argc, char **argv, void *data, struct err *e)
{
    int first;
    int rc;

    l->defaults(scratch);
    *nflags = options_bind_flags(l->defs, l->n, scratch, flags);
    rc = flags_parse(flags, *nflags, argc, argv, &first, e);
    if (rc == FLAGS_HELP)
        flags_usage(stdout, l->usage, flags, *nflags);
    if (rc == 0 && first < argc)
        rc = err_set(e, "unexpected argument: %s", argv[first]);
    l->defaults(settings);
    if (rc == 0)
        rc = l->read_files(settings, scratch, data, e);
    l->free(scratch);
    *nflags = options_bind_flags(l->defs, l->n, settings, flags);
    if (rc == 0)
        rc = flags_parse(flags, *nflags, argc, argv, &first, e);
    return rc;
}
