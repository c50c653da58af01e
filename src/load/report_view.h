/*
 * The numbers a report page charts, taken out of a report JSON so the page's script only draws:
 * one time axis and, per chart, named series of values on it, plus phases and events.
 */
#ifndef MESH_LOAD_REPORT_VIEW_H
#define MESH_LOAD_REPORT_VIEW_H

#include <jansson.h>

/* Charts keep this many series at most; the smallest of the rest are summed into "other". */
#define LOAD_REPORT_MAX_SERIES 10

/*
 * Builds the view of report (borrowed; any shape, wrong types are skipped). The caller owns the
 * result, never NULL:
 *   {"source": "timeline"|"intermediate"|"none", "bucket_s": S, "t": [seconds since start...],
 *    "charts": [{"id", "title", "unit", "series": [{"name", "values": [number|null...]}]}...],
 *    "phases": [{"name", "start", "end"}...], "events": [{"t", "name"}...]}
 * with the charts rate, latency, codes, errors and served in that order. Rates are per second.
 * meshkit.timeline gives one bucket per second; without it each intermediate period is one.
 */
json_t *load_report_view(const json_t *report);

#endif
