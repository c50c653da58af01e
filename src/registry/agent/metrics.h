/*
 * The agent's own telemetry, served by /v1/agent/metrics in Consul's JSON shape or Prometheus'
 * text format: HTTP API requests by method, blocking queries parked, journal append times,
 * and what the catalog holds (nodes, services, checks by status). Everything is counted on
 * the loop thread; the catalog figures are read when asked.
 */
#ifndef MESH_REGISTRY_METRICS_H
#define MESH_REGISTRY_METRICS_H

#include <stdint.h>

#include "lib/buf.h"
#include "lib/histogram.h"
#include "lib/str.h"
#include "registry/state/state.h"

enum reg_metrics_method {
    REG_METHOD_GET = 0,
    REG_METHOD_PUT,
    REG_METHOD_DELETE,
    REG_METHOD_OTHER,
    /* count sentinel */
    REG_METHOD_COUNT
};

/* A timer: a histogram for quantiles plus the sums Consul's samples report. */
struct reg_timer {
    struct histogram us; /* microseconds */
    double sum_sq_ms;    /* for the standard deviation */
};

struct reg_metrics {
    uint64_t requests[REG_METHOD_COUNT];
    struct reg_timer journal; /* one journal record written (persistence on) */
    /* The journal hook wrapped by reg_metrics_time_journal. */
    reg_journal_cb journal_cb;
    void *journal_data;
    struct reg_state *state;
};

void reg_metrics_init(struct reg_metrics *m);
/* Counts one HTTP API request. */
void reg_metrics_request(struct reg_metrics *m, struct str method);
/*
 * Times every record st's journal hook writes from now on: the hook installed in st (by
 * persistence) is wrapped. Call after that hook is set; st must outlive m's use.
 */
void reg_metrics_time_journal(struct reg_metrics *m, struct reg_state *st);

struct reg_agent;
/* /v1/agent/metrics: Consul's JSON ({Timestamp, Gauges, Points, Counters, Samples}), or the
 * Prometheus text exposition format when prometheus. New reference / appended to out. */
json_t *reg_metrics_json(const struct reg_agent *a);
void reg_metrics_prometheus(const struct reg_agent *a, struct buf *out);

#endif
