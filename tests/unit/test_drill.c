/* mesh drill's per-phase summary, from synthetic per-second timelines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "load/drill.h"

/*
 * 20 s at 10 requests a second. web1 serves until 4.2 s (stopped), web2 until 8.0 s (stopped):
 * seconds 8..12 get 503 (plus two refused connections at 8), web1 is back from second 13
 * (started at 12.3), web2 from second 17 (started at 16.0).
 */
static json_t *failover_report(void)
{
    json_t *timeline = json_array();

    for (int t = 0; t < 20; t++) {
        bool w1 = t <= 4 || t >= 13, w2 = t <= 7 || t >= 17;
        json_t *served = json_object(), *codes = json_object(), *errors = json_object();
        int ok = w1 || w2 ? 10 : 0;
        if (w1 && w2) {
            json_object_set_new(served, "web1/0", json_integer(5));
            json_object_set_new(served, "web2/0", json_integer(5));
        } else if (w1 || w2) {
            json_object_set_new(served, w1 ? "web1/0" : "web2/0", json_integer(10));
        }
        if (ok)
            json_object_set_new(codes, "200", json_integer(ok));
        else
            json_object_set_new(codes, "503", json_integer(t == 8 ? 8 : 10));
        json_object_set_new(errors, "ECONNREFUSED", json_integer(t == 8 ? 2 : 0));
        json_array_append_new(timeline, json_pack("{s:i, s:i, s:o, s:o, s:f, s:o}", "t", t,
                                                  "requests", 10, "codes", codes, "errors", errors,
                                                  "p99", 1.0 + t, "served_by", served));
    }
    return json_pack("{s:{s:I}, s:{s:o, s:[{s:i, s:s}, {s:i, s:s}, {s:i, s:s}, {s:i, s:s}]}}",
                     "aggregate", "firstCounterAt", (json_int_t)1700000000000, "meshkit",
                     "timeline", timeline, "events", "t_ms", 4200, "name", "stop-service web1",
                     "t_ms", 8000, "name", "stop-service web2", "t_ms", 12300, "name",
                     "start-service web1", "t_ms", 16000, "name", "start-service web2");
}

static void assert_phase(const json_t *p, const char *name, int requests, int failures,
                         const char *by_kind)
{
    json_t *want = json_loads(by_kind, 0, NULL);

    assert_string_equal(json_string_value(json_object_get(p, "name")), name);
    assert_int_equal(json_integer_value(json_object_get(p, "requests")), requests);
    assert_int_equal(json_integer_value(json_object_get(p, "failures")), failures);
    assert_true(json_equal(json_object_get(p, "by_kind"), want));
    json_decref(want);
}

static void assert_seconds(const json_t *v, double want)
{
    assert_true(json_is_number(v));
    assert_true(json_number_value(v) > want - 1e-9 && json_number_value(v) < want + 1e-9);
}

static void test_failover_phases(void **state)
{
    json_t *report = failover_report();
    json_t *phases = load_drill_phases(report);

    assert_int_equal(json_array_size(phases), 5);
    /* Seconds 0..3 (second 4 ends after the event at 4.2: it is the next phase's). */
    assert_phase(json_array_get(phases, 0), "before the first event", 40, 0, "{}");
    assert_true(json_is_null(json_object_get(json_array_get(phases, 0), "detect_s")));
    /* 4..7: web1's last request was in second 4, so the lb stopped within 0.8 s. */
    assert_phase(json_array_get(phases, 1), "stop-service web1", 40, 0, "{}");
    assert_seconds(json_object_get(json_array_get(phases, 1), "detect_s"), 0.8);
    assert_seconds(json_object_get(json_array_get(phases, 1), "p99_ms"), 8.0);
    /* 8..11: both down. */
    assert_phase(json_array_get(phases, 2), "stop-service web2", 40, 40,
                 "{\"503\": 38, \"ECONNREFUSED\": 2}");
    assert_seconds(json_object_get(json_array_get(phases, 2), "detect_s"), 0.0);
    /* 12..15: 503 in second 12, web1 serves again from second 13: 0.7 s after 12.3. */
    assert_phase(json_array_get(phases, 3), "start-service web1", 40, 10, "{\"503\": 10}");
    assert_seconds(json_object_get(json_array_get(phases, 3), "recover_s"), 0.7);
    assert_true(json_is_null(json_object_get(json_array_get(phases, 3), "detect_s")));
    /* 16..19: web2 back in second 17. */
    assert_phase(json_array_get(phases, 4), "start-service web2", 40, 0, "{}");
    assert_seconds(json_object_get(json_array_get(phases, 4), "recover_s"), 1.0);

    json_decref(phases);
    json_decref(report);
}

/*
 * An event late in its second: the second it falls in belongs to the phase it starts, so the
 * 503s that follow stopping web2 are not blamed on the phase where only web1 was stopped.
 */
static void test_event_late_in_its_second(void **state)
{
    json_t *report = failover_report();
    json_t *events = json_object_get(json_object_get(report, "meshkit"), "events");
    json_t *phases;

    json_object_set_new(json_array_get(events, 1), "t_ms", json_integer(8700));
    phases = load_drill_phases(report);
    assert_phase(json_array_get(phases, 1), "stop-service web1", 40, 0, "{}");
    assert_phase(json_array_get(phases, 2), "stop-service web2", 40, 40,
                 "{\"503\": 38, \"ECONNREFUSED\": 2}");
    json_decref(phases);
    json_decref(report);
}

/* A node still served when the phase ended: no detection time, rather than a wrong one. */
static void test_not_detected(void **state)
{
    json_t *report = failover_report();
    json_t *events = json_object_get(json_object_get(report, "meshkit"), "events");
    json_t *phases;

    /* Claim web2 was killed at 2.0 s: it went on serving until 7, past the next event at 4.2. */
    json_array_insert_new(events, 0,
                          json_pack("{s:i, s:s}", "t_ms", 2000, "name", "kill-node web2"));
    phases = load_drill_phases(report);
    assert_string_equal(json_string_value(json_object_get(json_array_get(phases, 1), "name")),
                        "kill-node web2");
    assert_true(json_is_null(json_object_get(json_array_get(phases, 1), "detect_s")));
    json_decref(phases);
    json_decref(report);
}

/* scale-up: recovery is the first request served by an instance that was not serving before. */
static void test_scale_up(void **state)
{
    json_t *timeline = json_array();
    json_t *report, *phases;

    for (int t = 0; t < 10; t++) {
        json_t *served = json_pack("{s:i}", "web1/0", 5);
        if (t >= 6)
            json_object_set_new(served, "web1/1", json_integer(5));
        json_array_append_new(timeline, json_pack("{s:i, s:i, s:{s:i}, s:o}", "t", t, "requests",
                                                  10, "codes", "200", 10, "served_by", served));
    }
    report = json_pack("{s:{s:o, s:[{s:i, s:s}]}}", "meshkit", "timeline", timeline, "events",
                       "t_ms", 3000, "name", "scale-up web1");
    phases = load_drill_phases(report);
    assert_int_equal(json_array_size(phases), 2);
    assert_phase(json_array_get(phases, 1), "scale-up web1", 70, 0, "{}");
    assert_seconds(json_object_get(json_array_get(phases, 1), "recover_s"), 3.0);
    /* No p99 in the buckets: null, not 0. */
    assert_true(json_is_null(json_object_get(json_array_get(phases, 1), "p99_ms")));
    json_decref(phases);
    json_decref(report);
}

static void test_no_events_and_print(void **state)
{
    json_t *report = failover_report();
    json_t *phases;
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    json_object_del(json_object_get(report, "meshkit"), "events");
    phases = load_drill_phases(report);
    assert_int_equal(json_array_size(phases), 1);
    assert_phase(json_array_get(phases, 0), "whole run", 200, 50,
                 "{\"503\": 48, \"ECONNREFUSED\": 2}");

    f = open_memstream(&text, &len);
    assert_non_null(f);
    load_drill_print(f, phases);
    fclose(f);
    assert_non_null(strstr(text, "phase "));
    assert_non_null(strstr(text, "whole run"));
    assert_non_null(strstr(text, "503: 48, ECONNREFUSED: 2"));
    free(text);
    json_decref(phases);
    json_decref(report);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failover_phases),     cmocka_unit_test(test_event_late_in_its_second),
        cmocka_unit_test(test_not_detected),        cmocka_unit_test(test_scale_up),
        cmocka_unit_test(test_no_events_and_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
