/*
 * What a drill's users saw, phase by phase, from the per-second timeline of its report (see
 * drill.h). Everything is read at one-second resolution: a bucket t holds what was answered in
 * [t, t+1) seconds after the start, and a bucket belongs to the phase under way at its end. So
 * the bucket an event falls in goes to the phase the event starts: what the event causes (the
 * 503s once the last instance is stopped) comes after it, and must not be blamed on the phase
 * before (where a graceful stop lost nothing).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "load/drill.h"

/* Buckets before an event that show which instances of a node were serving already. Short:
 * drill steps are a few seconds apart, and a longer look back reached the seconds before the
 * node's previous stop, so a node started again counted as already serving (no recovery). */
#define DRILL_LOOKBACK_S 2

static double drill_num(const json_t *v, double fallback)
{
    return json_is_number(v) ? json_number_value(v) : fallback;
}

/* "stop-service web1" -> verb "stop-service", node "web1" (node empty when there is none). */
static void drill_split(const char *name, char *verb, size_t vn, char *node, size_t nn)
{
    const char *sp = strchr(name, ' ');
    size_t n = sp ? (size_t)(sp - name) : strlen(name);

    snprintf(verb, vn, "%.*s", (int)(n < vn ? n : vn - 1), name);
    snprintf(node, nn, "%s", sp ? sp + 1 : "");
}

/* Whether the bucket's served_by names an instance of node ("web1/0" for node "web1"). */
static bool drill_node_served(const json_t *bucket, const char *node, const json_t *except)
{
    const json_t *served = json_object_get(bucket, "served_by");
    size_t n = strlen(node);
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)served, key, v)
    {
        if (strncmp(key, node, n) == 0 && key[n] == '/' && drill_num(v, 0) > 0 &&
            !json_object_get(except, key))
            return true;
    }
    return false;
}

static void drill_add_kind(json_t *by_kind, const char *kind, double n)
{
    json_object_set_new(
        by_kind, kind,
        json_integer((json_int_t)(drill_num(json_object_get(by_kind, kind), 0) + n)));
}

bool load_status_failed(const json_t *accepted, int status)
{
    size_t i;
    json_t *v;

    if (status < 400)
        return false;
    json_array_foreach(accepted, i, v) if (json_integer_value(v) == status) return false;
    return true;
}

/* Requests, failures by kind, accepted answers and the worst p99 of the buckets [from, to). */
static void drill_sum(json_t *phase, const json_t *timeline, const json_t *accepted, double from,
                      double to)
{
    double requests = 0, failures = 0, p99 = -1;
    json_t *by_kind = json_object(), *ok_kind = json_object(), *e, *v;
    const char *key;
    size_t i;

    json_array_foreach(timeline, i, e)
    {
        double t = drill_num(json_object_get(e, "t"), (double)i);
        if (t < from || t >= to)
            continue;
        requests += drill_num(json_object_get(e, "requests"), 0);
        if (json_is_number(json_object_get(e, "p99")))
            p99 = fmax(p99, drill_num(json_object_get(e, "p99"), 0));
        json_object_foreach(json_object_get(e, "codes"), key, v)
        {
            if (atoi(key) >= 400 && drill_num(v, 0) > 0 &&
                !load_status_failed(accepted, atoi(key))) {
                drill_add_kind(ok_kind, key, drill_num(v, 0));
            } else if (drill_num(v, 0) > 0 && load_status_failed(accepted, atoi(key))) {
                drill_add_kind(by_kind, key, drill_num(v, 0));
                failures += drill_num(v, 0);
            }
        }
        json_object_foreach(json_object_get(e, "errors"), key, v)
        {
            if (drill_num(v, 0) > 0) {
                drill_add_kind(by_kind, key, drill_num(v, 0));
                failures += drill_num(v, 0);
            }
        }
    }
    json_object_set_new(phase, "requests", json_integer((json_int_t)requests));
    json_object_set_new(phase, "failures", json_integer((json_int_t)failures));
    json_object_set_new(phase, "by_kind", by_kind);
    json_object_set_new(phase, "accepted", ok_kind);
    json_object_set_new(phase, "p99_ms", p99 >= 0 ? json_real_round(p99, 0.1) : json_null());
}

/* The first bucket that ends after time s: phase [start, end) owns [bucket(start), bucket(end)). */
static double drill_bucket(double s)
{
    return floor(s);
}

/* After a removal at ev: until the node's last bucket with traffic in [from, to) ends. */
static json_t *drill_detect(const json_t *timeline, const char *node, double ev, double from,
                            double to)
{
    double last = -1;
    json_t *e;
    size_t i;

    json_array_foreach(timeline, i, e)
    {
        double t = drill_num(json_object_get(e, "t"), (double)i);
        if (t >= from && t < to && drill_node_served(e, node, NULL))
            last = t;
    }
    if (last + 1 >= to)
        return json_null(); /* still served when the phase ended */
    return json_real_round(last < 0 ? 0 : fmax(0, last + 1 - ev), 0.001);
}

/* After an addition at ev: until an instance of node that was not serving just before serves. */
static json_t *drill_recover(const json_t *timeline, const char *node, double ev, double from,
                             double to)
{
    json_t *before = json_object(), *e, *v, *out = json_null();
    size_t nlen = strlen(node), i;
    const char *key;

    json_array_foreach(timeline, i, e)
    {
        double t = drill_num(json_object_get(e, "t"), (double)i);
        if (t < from - DRILL_LOOKBACK_S || t >= from)
            continue;
        json_object_foreach(json_object_get(e, "served_by"), key, v)
        {
            if (strncmp(key, node, nlen) == 0 && key[nlen] == '/')
                json_object_set_new(before, key, json_true());
        }
    }
    json_array_foreach(timeline, i, e)
    {
        double t = drill_num(json_object_get(e, "t"), (double)i);
        if (t >= from && t < to && drill_node_served(e, node, before)) {
            json_decref(out);
            out = json_real_round(fmax(0, t - ev), 0.001);
            break;
        }
    }
    json_decref(before);
    return out;
}

static json_t *drill_phase(const json_t *timeline, const json_t *accepted, const char *name,
                           double start, double end)
{
    char verb[32], node[64];
    json_t *phase = json_pack("{s:s, s:o, s:o}", "name", name, "start_s",
                              json_real_round(start, 0.001), "end_s", json_real_round(end, 0.001));
    json_t *detect = json_null(), *recover = json_null();
    double from = drill_bucket(start), to = drill_bucket(end);

    drill_sum(phase, timeline, accepted, from, to);
    drill_split(name, verb, sizeof(verb), node, sizeof(node));
    if (*node && (!strcmp(verb, "stop-service") || !strcmp(verb, "kill-node"))) {
        json_decref(detect);
        detect = drill_detect(timeline, node, start, from, to);
    } else if (*node && (!strcmp(verb, "start-service") || !strcmp(verb, "revive-node") ||
                         !strcmp(verb, "scale-up"))) {
        json_decref(recover);
        recover = drill_recover(timeline, node, start, from, to);
    }
    json_object_set_new(phase, "detect_s", detect);
    json_object_set_new(phase, "recover_s", recover);
    return phase;
}

json_t *load_drill_phases(const json_t *report)
{
    const json_t *mk = json_object_get(report, "meshkit");
    const json_t *timeline = json_object_get(mk, "timeline");
    const json_t *events = json_object_get(mk, "events");
    const json_t *accepted = json_object_get(mk, "accepted_codes");
    json_t *phases = json_array(), *ev;
    double end = 0, start = 0;
    const char *name = json_array_size(events) ? "before the first event" : "whole run";
    size_t i;

    json_array_foreach(timeline, i, ev)
    {
        end = fmax(end, drill_num(json_object_get(ev, "t"), (double)i) + 1);
    }
    json_array_foreach(events, i, ev)
    {
        double t = drill_num(json_object_get(ev, "t_ms"), 0) / 1000;
        json_array_append_new(phases, drill_phase(timeline, accepted, name, start, fmax(t, start)));
        start = fmax(t, start);
        name = json_string_value(json_object_get(ev, "name"));
        if (!name)
            name = "event";
    }
    json_array_append_new(phases, drill_phase(timeline, accepted, name, start, fmax(end, start)));
    return phases;
}

static void drill_seconds(char *out, size_t n, const json_t *v)
{
    if (json_is_number(v))
        snprintf(out, n, "%.1fs", json_number_value(v));
    else
        snprintf(out, n, "-");
}

void load_drill_print(FILE *f, const json_t *phases)
{
    size_t i;
    json_t *p, *v;
    const char *key;

    fprintf(f, "%-26s %8s %9s %9s %8s %7s %8s  %s\n", "phase", "from", "requests", "failures",
            "p99 ms", "detect", "recover", "failures by kind");
    json_array_foreach(phases, i, p)
    {
        char from[32], p99[32], detect[32], recover[32];
        struct buf kinds = BUF_INIT;

        snprintf(from, sizeof(from), "%.1fs", drill_num(json_object_get(p, "start_s"), 0));
        if (json_is_number(json_object_get(p, "p99_ms")))
            snprintf(p99, sizeof(p99), "%.1f", drill_num(json_object_get(p, "p99_ms"), 0));
        else
            snprintf(p99, sizeof(p99), "-");
        drill_seconds(detect, sizeof(detect), json_object_get(p, "detect_s"));
        drill_seconds(recover, sizeof(recover), json_object_get(p, "recover_s"));
        json_object_foreach(json_object_get(p, "by_kind"), key, v)
        {
            buf_printf(&kinds, "%s%s: %lld", kinds.len ? ", " : "", key,
                       (long long)json_integer_value(v));
        }
        json_object_foreach(json_object_get(p, "accepted"), key, v)
        {
            buf_printf(&kinds, "%s%s: %lld accepted", kinds.len ? ", " : "", key,
                       (long long)json_integer_value(v));
        }
        fprintf(f, "%-26.26s %8s %9lld %9lld %8s %7s %8s%s%s\n",
                json_string_value(json_object_get(p, "name")), from,
                (long long)json_integer_value(json_object_get(p, "requests")),
                (long long)json_integer_value(json_object_get(p, "failures")), p99, detect, recover,
                kinds.len ? "  " : "", kinds.len ? kinds.data : "");
        buf_free(&kinds);
    }
}
