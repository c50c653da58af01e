/*
 * Filtrex expressions, as Artillery evaluates them (filtrex 2.2): ensure's conditions over a
 * run's metrics and a request's `ifTrue` over a virtual user's variables. Values are
 * JavaScript's: undefined, numbers, strings, booleans (objects and lists only as truthy
 * values); operators as filtrex compiles them to JavaScript:
 *   ?:  or  and  in / not in (a parenthesized list)  == !=  < <= > >=  + -  * / %  ^  not  unary -
 * lowest precedence first; `and`, `or`, `not` and comparisons give 1 or 0; == is JavaScript's
 * loose equality ("1" == 1), + concatenates when either side is a string; numbers are
 * decimal ("12", "1.5"), strings double-quoted ("a \"b\""); a symbol is a name as a whole
 * (`http.codes.200` is one name, not a path), 'single-quoted' for other characters; functions
 * abs ceil floor log max min random round sqrt. Not supported (refused when compiled): `~=`
 * and `of`.
 */
#ifndef MESH_LOAD_FILTREX_H
#define MESH_LOAD_FILTREX_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/err.h"

/* A symbol's value (borrowed, may be NULL for undefined): numbers, strings and booleans are
 * used as such, anything else is only truthy. */
typedef const json_t *(*load_fx_lookup_cb)(void *data, const char *name);

/*
 * Evaluates expr with symbols from lookup. Returns 0 with *truthy (JavaScript's truthiness of
 * the result) and *number (its numeric value, NaN when it has none), or -EINVAL with e set to
 * what is wrong with expr ("unexpected \"...\"", "unexpected end of expression").
 */
int load_fx_eval(const char *expr, load_fx_lookup_cb lookup, void *data, bool *truthy,
                 double *number, struct err *e);

/* Whether expr parses (symbols are not looked up). 0 or -EINVAL with e set. */
int load_fx_check(const char *expr, struct err *e);

#endif
