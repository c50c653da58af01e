/*
 * Settings defined once (redis's standardConfig idea): a table of options, each naming its
 * key in JSON config files, its command-line flag, its type and the field of the settings
 * struct it fills. A command binds the table to its struct to parse flags (lib/flags.h), reads
 * config files through it with file:line errors (lib/config.h), prints -help from it and frees
 * its strings with it. `mesh agent` and `mesh lb` share this.
 */
#ifndef MESH_LIB_OPTIONS_H
#define MESH_LIB_OPTIONS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/config.h"
#include "lib/err.h"
#include "lib/flags.h"

enum option_type {
    OPTION_BOOL = 0,   /* bool */
    OPTION_STRING,     /* char *, heap or NULL */
    OPTION_INT,        /* int, 0..1e9 */
    OPTION_PORT,       /* int, 0..65535 */
    OPTION_PORT_OFF,   /* int, -1..65535: Consul's ports.* where -1 turns a listener off */
    OPTION_DURATION,   /* int64_t nanoseconds: "10s" in files and flags, or a bare number of
                        * milliseconds in files (as HAProxy's) */
    OPTION_STRING_LIST /* struct flag_list: repeatable flag; a list (or one string) in files */
};

struct option_def {
    const char *key;  /* dotted path in config files ("acl.tokens.agent"); NULL: flag only */
    const char *flag; /* flag name without dash; NULL: config files only */
    enum option_type type;
    size_t offset; /* of the field in the settings struct */
    const char *help;
};

/*
 * Writes into out[] a flag for every option that has one, bound to the fields of settings.
 * out needs room for n entries. Returns the number written.
 */
size_t options_bind_flags(const struct option_def *defs, size_t n, void *settings,
                          struct flag *out);

/* The option whose key is path, or NULL. */
const struct option_def *options_find(const struct option_def *defs, size_t n, const char *path);

/* True when some option's key lies below path ("acl" for "acl.tokens.agent"). */
bool options_is_section(const struct option_def *defs, size_t n, const char *path);

/*
 * Stores the config file value v (found at path in doc) into def's field of settings.
 * Returns 0, or -EINVAL with e = "file:line: path: expected ..., got ...".
 */
int options_read(const struct option_def *def, void *settings, const struct config_doc *doc,
                 const char *path, const json_t *v, struct err *e);

/* Frees the strings and lists that the options' fields hold, and clears them. */
void options_free(const struct option_def *defs, size_t n, void *settings);

/* How a command's settings are made: see options_load. */
struct options_loader {
    const struct option_def *defs;
    size_t n;
    const char *usage; /* printed for -help */
    /* Fills settings with the defaults (they hold nothing to free before). */
    void (*defaults)(void *settings);
    /* Frees what settings hold (options_free and more). */
    void (*free)(void *settings);
    /* Reads into settings the config files that the flags parsed into named ask for. */
    int (*read_files)(void *settings, const void *named, void *data, struct err *e);
};

/*
 * Flags win over config files, yet the flags name the files: parses argv into defaults (in
 * scratch, a second settings struct) to learn the files, reads them into settings made from the
 * defaults, then parses argv again on top. flags (room for l->n entries) is left bound to
 * settings, *nflags entries, for checks of what was given (flags[i].seen). Returns 0,
 * FLAGS_HELP (usage printed), or -EINVAL with e set ("unexpected argument: x", a bad flag, what
 * read_files says). settings must be freed with l->free whatever the result.
 */
int options_load(const struct options_loader *l, void *settings, void *scratch, struct flag *flags,
                 size_t *nflags, int argc, char **argv, void *data, struct err *e);

#endif
