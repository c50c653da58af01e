/*
 * Boolean filter expressions over JSON values, in the language of HashiCorp's go-bexpr (what
 * Consul's `?filter=` takes):
 *
 *     Service.Tags contains "primary" and not (ServiceMeta.env == `prod` or Port != 8080)
 *     "web" in Service.Tags
 *     Node.Meta["rack"] is not empty
 *     Checks.Status matches "^(passing|warning)$"
 *
 * Operators: == != contains, not contains, in, not in (value first), matches, not matches
 * (POSIX extended regular expressions where go-bexpr has RE2), is empty, is not empty, is nil,
 * is not nil; combined with and, or, not and parentheses. Values are double-quoted or backtick
 * strings, numbers, or bare words; they are coerced to the type of the selected JSON value.
 *
 * Selectors are dotted paths (`A.B`, `A["key with.dots"]`, `A.0`). A path through an array
 * without an index asks about every element: a positive operator holds when it holds for some
 * element, a negative one (!=, not contains, not in, not matches, is not empty, is not nil)
 * when the positive one holds for none. A key absent from an object is go-bexpr's "not present":
 * positive operators are false, negative ones true, `is empty` and `is nil` true.
 */
#ifndef MESH_LIB_BEXPR_H
#define MESH_LIB_BEXPR_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/err.h"

struct bexpr;

/* Longest expression accepted, and deepest nesting of parentheses and `not`. */
#define BEXPR_MAX_LEN   4096
#define BEXPR_MAX_DEPTH 32

/*
 * Parses src. Returns a heap expression (free with bexpr_free), or NULL with e set to
 * "1:COL: message" (column of the offending token, from 1).
 */
struct bexpr *bexpr_parse(const char *src, struct err *e);
void bexpr_free(struct bexpr *x);

/*
 * The filterable fields of a data type, as go-bexpr derives them from a Go type: what a
 * selector may name and which operators each field takes. Consul checks a filter against the
 * type of the endpoint's answer before it looks at any data, so an unknown field is refused
 * even when the answer is empty. Tables are static arrays ended by an entry whose name is NULL.
 */
enum bexpr_type {
    BEXPR_STRING,  /* == != contains/in matches, and their negations */
    BEXPR_INT,     /* == != with an integer value */
    BEXPR_BOOL,    /* == != with a bool value */
    BEXPR_STRINGS, /* a list of strings: contains/in, is empty */
    BEXPR_STRUCT,  /* no operator of its own; a selector goes on into .sub */
    BEXPR_LIST,    /* a list of structs: is empty; a selector goes on into the elements' .sub */
    BEXPR_MAP,     /* string keys: contains/in (a key), is empty; any key selects .sub[0] */
    BEXPR_OPAQUE,  /* named, never compared (Go's time.Time) */
};

struct bexpr_field {
    const char *name;
    enum bexpr_type type;
    const struct bexpr_field *sub; /* STRUCT and LIST: the fields; MAP: the value (name unused) */
};

/*
 * Checks every selector and operator of x against fields (borrowed), as go-bexpr does when a
 * filter is created for a type. `is nil` and `is not nil` (newer go-bexpr) take maps, lists
 * and structs, never a string, number or bool.
 * Returns 0, or -EINVAL with e set to go-bexpr's words: `Selector "Service.Foo" is not valid`,
 * `Invalid match operator "Equal" for selector "Service.Tags"`, `Failed to coerce value "x"
 * for selector "Port": strconv.ParseInt: parsing "x": invalid syntax`.
 */
int bexpr_check(const struct bexpr *x, const struct bexpr_field *fields, struct err *e);

/*
 * Evaluates x against v (borrowed). Returns 1 (match), 0 (no match) or -EINVAL with e set when
 * a value cannot be compared (`Port == abc`: not a number).
 */
int bexpr_eval(const struct bexpr *x, const json_t *v, struct err *e);

#endif
