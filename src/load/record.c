/*
 * What virtual users count into their worker's stats: users created and ended, requests,
 * responses with their times and codes, errors, bytes, X-Served-By, the expect plugin's checks,
 * metrics-by-endpoint and http.extendedMetrics. Every count goes into the second its moment
 * falls in, under the stats' lock, as the main thread reads them while the run goes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "load/engine_internal.h"

#define STATS_LOCKED(w, now, sec, body)                                                            \
    do {                                                                                           \
        struct load_stats *st_ = &(w)->stats;                                                      \
        uv_mutex_lock(&st_->lock);                                                                 \
        struct load_sec *sec = load_stats_at(st_, load_sec_index((w)->eng, (now)));                \
        load_sec_touch(sec, (now));                                                                \
        body;                                                                                      \
        uv_mutex_unlock(&st_->lock);                                                               \
    } while (0)

/* Distinct endpoint counters a second keeps (codes and errors come from the peer). */
#define ENDPOINT_COUNTS_MAX 4096

/* Artillery's response time summaries by status class. */
static const char *const rt_class[] = {"http.response_time.2xx", "http.response_time.3xx",
                                       "http.response_time.4xx", "http.response_time.5xx"};

/* metrics-by-endpoint: "<endpoint>.codes.200" and the response time, or "<endpoint>.errors.X". */
static void endpoint_record(struct load_sec *sec, const struct load_request *r, const char *what,
                            int status, const char *code, uint64_t us)
{
    char name[512];
    int n = code ? snprintf(name, sizeof(name), "%s%s.%s", r->endpoint_counters, what, code)
                 : snprintf(name, sizeof(name), "%s%s.%d", r->endpoint_counters, what, status);

    if (n > 0 && (size_t)n < sizeof(name))
        load_counts_add(&sec->user, name, (size_t)n, 1, ENDPOINT_COUNTS_MAX);
    if (!code)
        load_hists_record(&sec->hists, r->endpoint_rt, us, SIZE_MAX);
}

/* A check the plugin counts under a name of its own ("header x-id values equals"). */
static void expect_named_record(struct load_sec *sec, const struct load_expect_run *run, size_t i,
                                bool failed)
{
    const char *type = json_string_value(json_object_get(json_array_get(run->results, i), "type"));
    char name[512];
    int n = snprintf(name, sizeof(name), "plugins.expect.%s.%s", failed ? "failed" : "ok",
                     type ? type : "");

    if (n > 0 && (size_t)n < sizeof(name))
        load_counts_add(&sec->user, name, (size_t)n, 1, ENDPOINT_COUNTS_MAX);
}

/* http.extendedMetrics, as Artillery records them per response: the phases of a connection
 * made for this request (0 for one reused, and for the name lookup, done once at start), and
 * the time from the send to the last byte. */
static void extended_record(struct load_sec *sec, struct load_conn *c, uint64_t now)
{
    bool fresh = c->connected_ns != 0;

    load_hists_record(&sec->hists, "http.dns", 0, SIZE_MAX);
    load_hists_record(&sec->hists, "http.tcp", fresh ? (c->connected_ns - c->connect_ns) / 1000 : 0,
                      SIZE_MAX);
    if (c->https)
        load_hists_record(&sec->hists, "http.tls",
                          fresh && c->tls_ns ? (c->tls_ns - c->connected_ns) / 1000 : 0, SIZE_MAX);
    load_hists_record(&sec->hists, "http.total", c->sent_ns ? (now - c->sent_ns) / 1000 : 0,
                      SIZE_MAX);
    c->connected_ns = c->tls_ns = 0;
}

void load_record_error(struct load_vu *vu, const char *code)
{
    uint64_t now = uv_hrtime();

    STATS_LOCKED(vu->w, now, sec,
                 load_counts_add(&sec->errors, code, strlen(code), 1, LOAD_COUNTS_MAX));
    if (vu->w->hook) { /* the last one is what failed a before or after flow */
        free(vu->w->hook_error);
        vu->w->hook_error = xstrdup(code);
    }
}

void load_record_endpoint_error(struct load_worker *w, const struct load_request *r,
                                const char *code)
{
    uint64_t now = uv_hrtime();

    STATS_LOCKED(w, now, sec, endpoint_record(sec, r, "errors", 0, code, 0));
}

void load_record_request(struct load_worker *w)
{
    uint64_t now = uv_hrtime();

    STATS_LOCKED(w, now, sec, sec->requests++);
}

void load_record_bytes(struct load_worker *w, size_t n)
{
    uint64_t now = uv_hrtime();

    STATS_LOCKED(w, now, sec, sec->bytes += n);
}

void load_record_served_by(struct load_worker *w, uint64_t now, const char *name, size_t n)
{
    STATS_LOCKED(w, now, sec, load_counts_add(&sec->served_by, name, n, 1, LOAD_COUNTS_MAX));
}

void load_record_redirect(struct load_worker *w, struct load_conn *c, uint64_t now, uint64_t us)
{
    STATS_LOCKED(w, now, sec, {
        sec->responses++;
        sec->codes[c->status]++;
        histogram_record(&sec->rt, us);
        load_hists_record(&sec->hists, rt_class[1], us, SIZE_MAX);
        if (w->eng->script->extended_metrics)
            extended_record(sec, c, now);
    });
}

void load_record_response(struct load_worker *w, const struct load_request *r, struct load_conn *c,
                          uint64_t now, uint64_t us)
{
    int status = c->status;

    STATS_LOCKED(w, now, sec, {
        sec->responses++;
        sec->codes[status < LOAD_CODES ? status : 0]++;
        histogram_record(&sec->rt, us);
        if (r->endpoint_rt)
            endpoint_record(sec, r, "codes", status, NULL, us);
        if (status >= 200 && status < 600)
            load_hists_record(&sec->hists, rt_class[status / 100 - 2], us, SIZE_MAX);
        if (w->eng->script->extended_metrics)
            extended_record(sec, c, now);
        for (size_t i = 0; i < r->n_expects; i++) {
            bool failed = c->expect.failed & (1u << i);

            if (failed)
                sec->expect_failed[r->expects[i].kind]++;
            else
                sec->expect_ok[r->expects[i].kind]++;
            if (r->expects[i].kind == LOAD_EXPECT_HEADER_EQUALS)
                expect_named_record(sec, &c->expect, i, failed);
        }
    });
}

void load_record_user_created(struct load_worker *w, const struct load_scenario *sc, uint64_t now)
{
    STATS_LOCKED(w, now, sec, {
        sec->created++;
        load_counts_add(&sec->created_by, sc->name, strlen(sc->name), 1, SIZE_MAX);
    });
}

void load_record_user_ended(struct load_worker *w, bool failed, uint64_t now, uint64_t session_us)
{
    STATS_LOCKED(w, now, sec, {
        if (failed) {
            sec->failed++;
        } else {
            sec->completed++;
            histogram_record(&sec->session, session_us);
        }
    });
}
