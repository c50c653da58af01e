/*
 * Artillery's "{{ name }}" templating over a virtual user's variables. A name is a variable
 * (config.variables, captures, $loopCount), a path into one as lodash reads it ("user.id",
 * "items[0].id"), $env.NAME / $processEnvironment.NAME, $randomNumber(min, max) or
 * $randomString(length). An unknown name renders as "" (Artillery writes "undefined" when the
 * template has other text around it; docs/load.md lists the difference).
 */
#ifndef MESH_LOAD_TEMPLATE_H
#define MESH_LOAD_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/buf.h"

static inline bool load_tmpl_is_static(const char *s)
{
    return s == NULL || strstr(s, "{{") == NULL;
}

/* Appends tmpl (borrowed) with its {{ }} replaced from vars (borrowed). rng: xorshift state. */
void load_tmpl_render(struct buf *out, const char *tmpl, const json_t *vars, uint64_t *rng);

/* The value at a path ("user.id", "items[0].id", "a['b c']") in vars, as lodash's get finds it.
 * Borrowed; NULL when absent. */
const json_t *load_vars_get(const json_t *vars, const char *path);

/*
 * Sets the path in vars to v (stolen; NULL: undefined), as lodash's set does it (Artillery sets
 * captures with it): the whole name if vars has it or it has no dot or bracket, else into
 * nested objects, made where there is no object or list ("a.b" sets b of the object a; a list
 * where the next step is an index: "a[0]"). What the path passes through is copied, not
 * changed, as values may be shared.
 */
void load_vars_set(json_t *vars, const char *path, json_t *v);

/*
 * A deep copy of tmpl with every string rendered; a string that is only "{{ name }}" takes the
 * variable's value with its JSON type (a number stays a number). Caller owns the result.
 */
json_t *load_tmpl_json(const json_t *tmpl, const json_t *vars, uint64_t *rng);
/*
 * load_tmpl_json for a request's json body, as Artillery sends it: a member whose value is only
 * "{{ name }}" of a variable that is not set is left out (undefined, which JSON.stringify
 * drops), and such an element of a list is null.
 */
json_t *load_tmpl_json_body(const json_t *tmpl, const json_t *vars, uint64_t *rng);

/* load_tmpl_json_body, but NULL (undefined) when tmpl itself is only "{{ name }}" of a variable
 * that is not set. */
json_t *load_tmpl_json_value(const json_t *tmpl, const json_t *vars, uint64_t *rng);

/* True when any string in v holds a template. */
bool load_tmpl_json_is_static(const json_t *v);

/*
 * One virtual user's variables: for each config variable (borrowed object), its value, or one
 * element picked at random when it is a list. Caller owns the result.
 */
json_t *load_vars_new(const json_t *variables, uint64_t *rng);

/*
 * A loop's count as Artillery reads a string: "5" (0..4) or a range "2-5" (2..4). Returns 0
 * with *from and *to, or -1 when s is neither.
 */
int load_loop_count(const char *s, int64_t *from, int64_t *to);

/* xorshift64*: a per-thread generator (state never 0). */
uint64_t load_rand(uint64_t *state);

#endif
