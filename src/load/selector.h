/*
 * CSS selectors for `capture: {selector: ...}`, the subset of what cheerio (css-select) takes
 * that scripts use: a type (`input`) or `*`, `#id`, `.class`, attributes (`[name]`,
 * `[name=value]`, `~= |= ^= $= *=`, quoted or not, with an `i` or `s` flag), compounds of them
 * (`input.hidden[name=csrf]`), the descendant (space) and child (`>`) combinators, and lists
 * (`a, b`). Matched as css-select matches HTML: type and attribute names case aside, values
 * exactly, except the attributes HTML compares case aside (`type`, `method`, ...) and a
 * `^= $= *=` with an empty value, which matches nothing.
 *
 * Everything else (pseudo-classes such as `:first`, the `+` and `~` combinators, namespaces) is
 * refused when the selector is compiled, naming what is not supported.
 */
#ifndef MESH_LOAD_SELECTOR_H
#define MESH_LOAD_SELECTOR_H

#include <gumbo.h>
#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

struct load_sel;

/* Compiles text (borrowed). Returns the selector (load_sel_free it), or NULL with e saying what
 * is wrong and where ("the pseudo-class :first is not supported"). */
struct load_sel *load_sel_compile(const char *text, struct err *e);

void load_sel_free(struct load_sel *s);

/* Whether element node (an element of a gumbo tree) matches s. */
bool load_sel_match(const struct load_sel *s, const GumboNode *node);

/*
 * The elements under root (a gumbo document or element, borrowed) that match s, in document
 * order, as cheerio's $(selector) lists them: *out (caller frees) holds their pointers, borrowed
 * from the tree. Returns how many.
 */
size_t load_sel_select(const struct load_sel *s, const GumboNode *root, const GumboNode ***out);

#endif
