/*
 * mesh load's HTML report: one self-contained page (inline CSS, inline JS drawing SVG, no
 * external asset) from a report JSON in Artillery 2's shape (aggregate + intermediate) with
 * meshkit's optional "meshkit" section (phases, per-second timeline, X-Served-By spread, drill
 * events). A real Artillery report, without that section, is charted per intermediate period.
 */
#ifndef MESH_LOAD_REPORT_HTML_H
#define MESH_LOAD_REPORT_HTML_H

#include <jansson.h>

#include "lib/buf.h"
#include "lib/err.h"

/*
 * Appends the page for report (borrowed) to out. Returns 0, or -EINVAL with err set when report
 * is not an object or has none of "aggregate", "intermediate" and "meshkit". Sections of the
 * wrong type are skipped and named on the page, never fatal.
 */
int load_report_html_render(const json_t *report, struct buf *out, struct err *err);

/*
 * Renders report (borrowed) and writes it to path through a temporary file renamed into place,
 * so a reader never sees half a page. Returns 0 or -errno / -EINVAL with err set
 * ("path: strerror" for I/O).
 */
int load_report_html_write(const json_t *report, const char *path, struct err *err);

/* `mesh load report REPORT.json [-o REPORT.html]`: argv[0] is "report". Returns the exit code. */
int load_report_main(int argc, char **argv);

#endif
