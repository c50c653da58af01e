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
    FLAG_STRING,      /* char **ptr; the old value is freed, the new one is a heap copy, so the
                         default must be a heap string or NULL; the caller frees the final value */
    FLAG_INT,         /* int *ptr; decimal, 0x hex or 0-prefixed octal, as Go's ParseInt(s, 0) */
    FLAG_DURATION,    /* int64_t *ptr, nanoseconds, Go syntax ("10s"); negative refused */
    FLAG_STRING_LIST, /* struct flag_list *ptr: repeatable, appends heap copies */
};

struct flag_list {
    char **items;
    size_t n;
};

/* Frees the items and the array, leaving an empty list. */
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
 * Parses argv[0..argc) (pass argv + 1 to skip the program name) with Go's flag package rules: a
 * bool flag never consumes the next argument ("-dev false" leaves "false" positional); other
 * flags take "=value" or the next argument, even one starting with '-'; "--" is consumed and ends
 * flags; "-" or a word ends them too. Values are stored as they are parsed and `seen` is set.
 * On return *first_arg is the index of the first positional argument (or of the argument
 * after the failing one). Returns 0; FLAGS_HELP when -h, -help or --help was given and no flag
 * of that name is defined; or -EINVAL with e set to Go's text: "flag provided but not defined:
 * -foo", "flag needs an argument: -foo", "bad flag syntax: ---foo",
 * "invalid value "x" for flag -http-port: parse error" (or ": value out of range"),
 * "invalid boolean value "x" for -dev: parse error". A bad value leaves the old one.
 */
int flags_parse(struct flag *flags, size_t n, int argc, char **argv, int *first_arg, struct err *e);

/*
 * Prints "Usage: <usage>\n\n" then, in the given order, each flag as "  -name <type>\n" (no type
 * for bools) followed by its help indented 8 spaces (every line of it) and, when the current
 * value is not the zero value, " (default X)" as Go does.
 */
void flags_usage(FILE *f, const char *usage, const struct flag *flags, size_t n);

#endif
