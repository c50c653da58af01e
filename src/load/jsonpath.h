/*
 * JSONPath for `capture: {json: ...}` and `match`, as Artillery's jsonpath-plus reads it: `$`,
 * members (`.name`, `['a b']`, `["a"]`), elements (`[0]`; `[-1]` the last, which jsonpath-plus
 * does not take), `*` and `[*]` (every member or element), `..` (the value and every object and
 * list under it, then the rest of the path), unions (`[0,2]`, `['a','b']`), slices
 * (`[1:3]`, `[-2:]`, `[::2]`) and `.length` of a list. Filters (`[?(@.x)]`) and the other
 * script forms are refused when the script is read.
 */
#ifndef MESH_LOAD_JSONPATH_H
#define MESH_LOAD_JSONPATH_H

#include <jansson.h>

#include "lib/err.h"

/* Checks path (borrowed). Returns 0, or -EINVAL with e saying what is not supported. */
int load_jsonpath_check(const char *path, struct err *e);

/*
 * Appends to out (a JSON array) every value path finds in doc, in jsonpath-plus's order, each a
 * new reference (a list's length a new number). A path load_jsonpath_check refuses finds
 * nothing. The work is bounded: at most 4096 values, 64 levels deep, and a million values
 * visited (past which it finds no more).
 */
void load_jsonpath_all(const json_t *doc, const char *path, json_t *out);

#endif
