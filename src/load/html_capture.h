/*
 * Selector captures, as Artillery's extractCheerio takes them: the response body parsed as
 * HTML5 (gumbo, as cheerio parses it with parse5), the elements a CSS selector (selector.h)
 * matches, one of them by `index`, and its attribute `attr` (the element's attributes as an
 * object without one).
 *
 * The work per response is bounded: only the first LOAD_HTML_MAX_BYTES of the body are parsed,
 * and a body whose elements nest deeper than LOAD_HTML_MAX_DEPTH, or whose tags and text
 * times the depth they sit at add up to more than LOAD_HTML_MAX_WORK (estimates from a scan of
 * its tags before parsing) is not parsed at all: the HTML5 tree builder scans its open
 * elements for each tag and character, so its time grows with the square of the depth (gumbo
 * takes a minute over 160 KB of unclosed <div>).
 */
#ifndef MESH_LOAD_HTML_CAPTURE_H
#define MESH_LOAD_HTML_CAPTURE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "load/script.h"
#include "load/selector.h"

#define LOAD_HTML_MAX_BYTES (256u << 10)
#define LOAD_HTML_MAX_DEPTH 256
#define LOAD_HTML_MAX_WORK  (2u << 20)

struct load_html;

/* Parses s[len] (borrowed: it must outlive the result). NULL when the body nests too deep. */
struct load_html *load_html_parse(const char *s, size_t len);

void load_html_free(struct load_html *h);

/* The parse's document node (borrowed from h). */
const GumboNode *load_html_document(const struct load_html *h);

/*
 * Whether the tags of s[len] nest deeper than max_depth, or their depths (and a sixteenth of
 * each text's length times its depth) add up to more than max_work, as a scan of them
 * estimates, erring on the deep side (an element whose end tag HTML may leave out, a void one
 * and raw text do not count).
 */
bool load_html_too_costly(const char *s, size_t len, size_t max_depth, size_t max_work);

/*
 * What capture c (a selector capture; sel its compiled selector, borrowed) finds in h, as
 * cheerio's $(sel).slice(i, i + 1).attr(c->attr) gives it: i from c->index (first, last,
 * random, or a number as JavaScript's slice takes it); the attribute's value (a boolean
 * attribute's name, an option's text for "value", "on" for a checkbox's or radio's missing
 * "value"), or an object of every attribute without c->attr. A new reference, or NULL
 * (undefined) when no element or attribute is there.
 */
json_t *load_html_capture(const struct load_html *h, const struct load_sel *sel,
                          const struct load_capture *c, uint64_t *rng);

#endif
