/*
 * Artillery's ensure checks over a finished run's aggregate metrics (the report's "aggregate"):
 * thresholds ("http.response_time.p99": 100 means p99 < 100), conditions (filtrex expressions,
 * filtrex.h, over metric names) and maxErrorRate (percent of VUs that did not complete). A metric
 * the run never produced is undefined, as the plugin's filtrex sees it, so a check that reads
 * one fails.
 */
#ifndef MESH_LOAD_ENSURE_H
#define MESH_LOAD_ENSURE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "lib/err.h"
#include "load/script.h"

/*
 * The value of a metric in an aggregate: counters and rates by name, summaries as
 * "<name>.<stat>" (http.response_time.p99). False when absent.
 */
bool load_metric_value(const json_t *aggregate, const char *name, double *out);

/*
 * Evaluates an ensure expression. Returns 0 with *result, or -EINVAL with e set to what is
 * wrong with it ("unexpected token ...").
 */
int load_ensure_eval(const char *expr, const json_t *aggregate, bool *result, struct err *e);

/*
 * Runs every check of s against aggregate, printing "ok: ..." or "fail: ..." lines under a
 * "Checks:" title to f. Returns the number of failed checks: a malformed expression counts as
 * failed; a condition with strict: false is printed when it fails ("(optional)") but not
 * counted.
 */
int load_ensure_check(const struct load_script *s, const json_t *aggregate, FILE *f);

#endif
