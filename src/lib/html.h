/*
 * Text that goes into generated HTML pages (the lb's stats page, mesh load's report). Names in
 * those pages come from peers (X-Served-By headers, server names, scenario files), so every one
 * of them passes through here.
 */
#ifndef MESH_LIB_HTML_H
#define MESH_LIB_HTML_H

#include <jansson.h>

#include "lib/buf.h"

/* Appends s with & < > " ' written as entities: safe in element text and quoted attributes. */
void html_escape(struct buf *out, const char *s);

/*
 * Appends v as compact JSON that can sit inside <script type="application/json">: non-ASCII is
 * \u-escaped and so are < > & (which JSON only allows inside strings), so neither "</script>" nor
 * "<!--" can appear. flags adds jansson dump flags, e.g. JSON_REAL_PRECISION(6) to keep a page
 * of measurements small (without one, JSON_MESH_REAL_PRECISION). A value jansson cannot encode is
 * written as null.
 */
void html_append_json(struct buf *out, const json_t *v, size_t flags);

#endif
