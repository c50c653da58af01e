/*
 * The part of JMESPath that expect's `jmespath` checks use in practice, as jmespath.js 0.16
 * (what artillery-plugin-expect runs) evaluates it: fields (`a`, `"a b"`), sub-expressions
 * (`a.b`), indexes (`a[0]`, `a[-1]`), slices (`a[1:3]`, `a[::-1]`), projections (`a[*].b`,
 * `a.*`, `a[]`), filters (`a[?b == 'x']`), comparisons, `&&`, `||`, `!`, pipes (`|`), `@`,
 * literals (`'raw'`, `` `2` ``) and the function `length()`. `==` is deep equality (numbers by
 * value); `<` and the others are JavaScript's operators, as jmespath.js leaves them: text with
 * text, anything else as numbers (null as 0, lists and objects never). Multi-select lists and
 * hashes, expression references and every other function are refused when the expression is
 * compiled, naming the construct and its column.
 */
#ifndef MESH_LOAD_JMESPATH_H
#define MESH_LOAD_JMESPATH_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/err.h"

struct load_jmes;

/*
 * Compiles expr (borrowed) into *out, which the caller owns (load_jmes_free). Returns 0, or
 * -EINVAL with e saying what is wrong and at which column (from 1).
 */
int load_jmes_compile(const char *expr, struct load_jmes **out, struct err *e);

/*
 * The expression's value over doc (borrowed): a new reference, json_null() for JMESPath's null.
 * NULL with e set when a function meets an argument of the wrong type (jmespath.js throws
 * there). Safe from several threads at once on one compiled expression.
 */
json_t *load_jmes_search(const struct load_jmes *q, const json_t *doc, struct err *e);

/* JavaScript's truthiness of v, which the plugin applies to the result: null, false, 0 and ""
 * are false; every list and object, even an empty one, is true. */
bool load_jmes_js_truthy(const json_t *v);

void load_jmes_free(struct load_jmes *q);

#endif
