/*
 * Command-line flags in Consul's style: "-name value", "-name=value", "--name=value"; a bool
 * flag is "-name" or "-name=true|false". Parsing stops at "--" or the first non-flag argument.
 */
#ifndef MESH_LIB_FLAGS_H
#define MESH_LIB_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/err.h"

enum flag_type {
    FLAG_BOOL = 0,
    FLAG_STRING,      /* char **ptr; the old value is freed, the new one is a heap copy */
    FLAG_INT,         /* int *ptr */
    FLAG_DURATION,    /* int64_t *ptr, nanoseconds, Go syntax ("10s") */
    FLAG_STRING_LIST, /* struct flag_list *ptr: repeatable, appends */
};

struct flag_list {
    char **items;
    size_t n;
};

void flag_list_free(struct flag_list *l);

struct flag {
    const char *name; /* without dash */
    enum flag_type type;
    void *ptr;
    const char *help;
    bool seen; /* set by flags_parse when given on the command line */
};

#define FLAGS_HELP 1

/*
 * Parses argv[0..argc). On return *first_arg is the index of the first positional argument.
 * Returns 0; FLAGS_HELP when -h, -help or --help was given; or -EINVAL with e set, e.g.
 * "flag provided but not defined: -foo" or "invalid value "x" for flag -http-port: ...".
 */
int flags_parse(struct flag *flags, size_t n, int argc, char **argv, int *first_arg,
                struct err *e);

/* Prints "Usage: <usage>\n\n" then every flag with its help text. */
void flags_usage(FILE *f, const char *usage, const struct flag *flags, size_t n);

#endif
