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
 * Evaluates x against v (borrowed). Returns 1 (match), 0 (no match) or -EINVAL with e set when
 * a value cannot be compared (`Port == abc`: not a number).
 */
int bexpr_eval(const struct bexpr *x, const json_t *v, struct err *e);

#endif
