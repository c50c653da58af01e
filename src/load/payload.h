/*
 * Artillery's config.payload: CSV files whose rows give each virtual user variables. A row is
 * picked per user, at random or in sequence (one order shared by every worker thread), and its
 * columns become the variables the payload's `fields` name; with `loadAll` and `name`, the whole
 * file is one variable. The CSV dialect is csv-parse's, as Artillery reads it: a delimiter
 * (default ","), double quotes with "" inside, LF, CRLF or CR line ends, empty lines skipped,
 * every row as long as the first, and (with `cast`, the default) fields that read as numbers
 * turned into numbers.
 */
#ifndef MESH_LOAD_PAYLOAD_H
#define MESH_LOAD_PAYLOAD_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define LOAD_PAYLOAD_MAX_FILE (64u << 20) /* bytes of one CSV file */

struct load_csv_opts {
    const char *delimiter; /* one or more bytes, not a quote or a line end */
    bool skip_header;      /* the first line is not data */
    bool skip_empty;       /* lines with nothing on them are not rows */
    bool cast;             /* "12", " 1.5e3 " become numbers */
};

/*
 * Parses text[len] (borrowed) into *rows, a new JSON array with one array of fields per row.
 * Returns 0, or -EINVAL with e set to "line N: what is wrong" (a quote left open, a row
 * longer or shorter than the first, text after a closing quote, bytes that are not UTF-8) and
 * *rows untouched.
 */
int load_csv_parse(const char *text, size_t len, const struct load_csv_opts *o, json_t **rows,
                   struct err *e);

/* The number a CSV field reads as with cast (JavaScript's Number(), decimal forms only): a new
 * integer or real; NULL when it is not one. */
json_t *load_csv_number(const char *s, size_t n);

struct load_payload {
    char *path;    /* as resolved: relative to the script's directory */
    char **fields; /* variable names, column by column */
    size_t n_fields;
    char *name;         /* loadAll: the variable that gets every row */
    bool sequence;      /* order: sequence (else random) */
    json_t *rows;       /* array of arrays, or with loadAll and fields an array of objects */
    atomic_size_t next; /* sequence: the row the next user takes */
};

/* Sets the variables of the script's payloads (n of them) in vars for one new user. */
void load_payload_vars(struct load_payload *p, size_t n, json_t *vars, uint64_t *rng);

void load_payload_free(struct load_payload *p);

#endif
