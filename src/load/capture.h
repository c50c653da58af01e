/*
 * Captures, as Artillery's engine_util takes them: `json` (a JSONPath into the body), `header`
 * (a response header), `regexp` (a regular expression over the body, with `group` and
 * `flags`) and `selector` (a CSS selector over the body as HTML, with `attr` and `index`:
 * html_capture.h), each into the variable `as`. A capture that finds nothing, or finds "", fails;
 * unless it is `strict: false` (or http.defaults.strictCapture is false), a failed capture
 * fails the user and sets none of the request's captures.
 *
 * Regular expressions are JavaScript's as far as POSIX extended expressions (lib/re.h) can
 * take them: \d \w \s and their negations, (?:...) and named groups (?<name>...) are
 * translated; lookarounds, backreferences and lazy quantifiers (*?, +?) are refused, naming
 * what is wrong. Unlike JavaScript, `.` matches a line end too (JavaScript's `s` flag), and
 * alternatives take the longest match rather than the first.
 */
#ifndef MESH_LOAD_CAPTURE_H
#define MESH_LOAD_CAPTURE_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http_parse.h"
#include "load/script.h"

/*
 * Compiles a JavaScript pattern with its flags (i, m, g, s, u; may be NULL) into *re. group
 * (borrowed, may be NULL): the submatch to take, a number or a group's name; *group_index
 * is set to its submatch in *re (0 for the whole match) and *named to whether it was named.
 * Returns 0 (regfree *re later), or -EINVAL with e saying why.
 */
int load_regexp_compile(const char *pattern, const char *flags, const json_t *group, regex_t *re,
                        int *group_index, bool *named, struct err *e);

/* What load_regexp_extract found. */
enum load_rx_found {
    LOAD_RX_NONE = 0,  /* no match */
    LOAD_RX_TEXT,      /* a match: its text is in out */
    LOAD_RX_UNDEFINED, /* a match in which the named group took no part: JavaScript's undefined */
};

/*
 * The capture of re in s[len] into out, as Artillery's extractRegExp picks it: a named group's
 * text (even when empty; undefined when the group took no part in the match, as match.groups
 * has it), a numbered group's when it matched something, else the whole match.
 */
enum load_rx_found load_regexp_extract(const regex_t *re, int group, bool named, const char *s,
                                       size_t len, struct buf *out);

/* What r's captures and matches find, into found, each under its index in r->captures ("0"),
 * as Artillery's extractors give it ("" from a regexp that does not match or a header not
 * there; nothing for undefined): the head's (header) while its slices are valid, then the
 * body's (json, regexp and selector). *headers is h's headers as Node gives them
 * (node_headers.h): made here when a header capture needs them and *headers is NULL, so the
 * caller (which releases it) makes them once for its hooks too.
 * An expression's templates render from vars, as Artillery renders them; rng for them and for
 * picking one of several values. */
void load_captures_head(const struct load_request *r, const struct http_response_head *h,
                        json_t **headers, const json_t *vars, uint64_t *rng, json_t *found);
void load_captures_body(const struct load_request *r, const struct buf *body, const json_t *vars,
                        uint64_t *rng, json_t *found);

/*
 * Applies what found holds to vars, as Artillery does: when a strict capture of r found
 * nothing (or ""), or a strict match did not find its value (rendered from vars, compared as
 * JavaScript's ===), none is set and false is returned; else every capture is set and true is
 * returned. What found lacks is undefined, what Artillery's JSONPath and selector extractors
 * give when they find nothing (and its regexp one for a named group that took no part): a
 * non-strict capture of it removes the variable. Its regexp and header extractors give "".
 * Of captures into one name, the last is the one set and the one whose failure counts. A name
 * is a path, set as lodash's set does it (load_vars_set).
 */
bool load_captures_apply(const struct load_request *r, const json_t *found, json_t *vars,
                         uint64_t *rng);

#endif
