#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "load/script.h"
#include "load/template.h"

static const char good[] = "config:\n"
                           "  target: \"http://127.0.0.1:8080\"\n"
                           "  phases:\n"
                           "    - duration: 60\n"
                           "      arrivalRate: 5\n"
                           "      name: warm up\n"
                           "    - {duration: \"2m\", arrivalRate: 5, rampTo: 50}\n"
                           "    - {duration: 10, arrivalCount: 100, maxVusers: 20}\n"
                           "    - pause: 30s\n"
                           "  variables:\n"
                           "    color: [red, green]\n"
                           "    n: 3\n"
                           "  http: {timeout: 2.5}\n"
                           "  environments:\n"
                           "    quick:\n"
                           "      target: \"http://127.0.0.1:9090\"\n"
                           "      phases: [{duration: 1, arrivalRate: 1}]\n"
                           "  plugins:\n"
                           "    expect: {outputFormat: silent}\n"
                           "    ensure: {}\n"
                           "  ensure:\n"
                           "    thresholds:\n"
                           "      - \"http.response_time.p99\": 100\n"
                           "    conditions:\n"
                           "      - expression: \"http.codes.200 > 1\"\n"
                           "    maxErrorRate: 1\n"
                           "    p95: 50\n"
                           "scenarios:\n"
                           "  - name: browse\n"
                           "    weight: 3\n"
                           "    flow:\n"
                           "      - get:\n"
                           "          url: \"/items?page={{ n }}\"\n"
                           "          headers: {X-Id: \"1\"}\n"
                           "          capture: [{json: \"$.items[0].id\", as: itemId}]\n"
                           "          expect: [{statusCode: 200}, {contentType: json}]\n"
                           "      - post: {url: /items, json: {color: \"{{ color }}\"}}\n"
                           "      - think: 2\n"
                           "      - loop:\n"
                           "          - get: {url: /ping}\n"
                           "        count: 5\n"
                           "      - log: \"done {{ itemId }}\"\n"
                           "  - flow:\n"
                           "      - head: {url: /}\n";

static int parse(const char *text, const char *env, const char *target, struct load_script *s,
                 struct buf *msgs)
{
    struct err e = {""};

    return load_script_parse("t.yml", text, strlen(text), env, target, s, msgs, &e);
}

static void test_good_script(void **state)
{
    struct load_script s;
    struct buf msgs = BUF_INIT;

    (void)state;
    assert_int_equal(parse(good, NULL, NULL, &s, &msgs), 0);
    assert_string_equal(s.target, "http://127.0.0.1:8080");
    assert_int_equal(s.n_phases, 4);
    assert_string_equal(s.phases[0].name, "warm up");
    assert_int_equal(s.phases[0].duration_ms, 60000);
    assert_int_equal(s.phases[1].duration_ms, 120000);
    assert_true(s.phases[1].ramp_to == 50);
    assert_int_equal(s.phases[2].arrival_count, 100);
    assert_int_equal(s.phases[2].max_vusers, 20);
    assert_true(s.phases[3].pause);
    assert_int_equal(s.phases[3].duration_ms, 30000);
    assert_int_equal(load_script_duration_ms(&s), 220000);
    assert_int_equal(s.timeout_ms, 2500);
    assert_int_equal(s.n_thresholds, 2); /* p99 and the legacy p95 */
    assert_string_equal(s.thresholds[1].metric, "http.response_time.p95");
    assert_int_equal(s.n_conditions, 1);
    assert_true(s.max_error_rate == 1);
    assert_int_equal(s.n_scenarios, 2);
    assert_string_equal(s.scenarios[1].name, "1"); /* unnamed: its index, as Artillery */
    assert_true(s.total_weight == 4);
    assert_int_equal(s.scenarios[0].n_steps, 5);
    assert_int_equal(s.scenarios[0].steps[0].kind, LOAD_STEP_REQUEST);
    assert_string_equal(s.scenarios[0].steps[0].req.method, "GET");
    assert_int_equal(s.scenarios[0].steps[0].req.n_captures, 1);
    assert_true(s.scenarios[0].steps[0].req.needs_body);
    assert_int_equal(s.scenarios[0].steps[0].req.n_expects, 2);
    assert_int_equal(s.scenarios[0].steps[2].think_ms, 2000);
    assert_int_equal(s.scenarios[0].steps[3].kind, LOAD_STEP_LOOP);
    assert_int_equal(s.scenarios[0].steps[3].count, 5);
    assert_int_equal(s.scenarios[0].steps[3].n_steps, 1);
    assert_int_equal(s.scenarios[0].steps[4].kind, LOAD_STEP_LOG);
    assert_int_equal(s.scenarios[0].steps[4].line, 42); /* three lines of plugins above */
    assert_int_equal(msgs.len, 0);
    load_script_free(&s);
    buf_free(&msgs);
}

/* A number in headers, qs or form is sent as Artillery writes it: 0.1, not 17 digits. */
static void test_numbers_as_javascript_writes_them(void **state)
{
    static const char text[] = "config: {target: \"http://127.0.0.1:1\", phases: [{duration: 1, "
                               "arrivalRate: 1}]}\n"
                               "scenarios:\n"
                               "  - flow:\n"
                               "      - get: {url: /, qs: {ratio: 0.1, big: 1.5e300}, "
                               "headers: {X-Share: 0.3}}\n";
    struct load_script s;
    struct buf msgs = BUF_INIT;

    (void)state;
    assert_int_equal(parse(text, NULL, NULL, &s, &msgs), 0);
    const struct load_request *r = &s.scenarios[0].steps[0].req;
    assert_int_equal(r->n_qs, 2);
    assert_string_equal(r->qs[0].value, "0.1");
    assert_string_equal(r->qs[1].value, "1.5e+300");
    assert_string_equal(r->headers[0].value, "0.3");
    load_script_free(&s);
    buf_free(&msgs);
}

/* defaults.think.jitter: Artillery's spread, ms or a percentage either side, never below 0;
 * http.defaults.think is taken whole over defaults.think. */
static void test_think_jitter(void **state)
{
    struct load_script s;
    struct buf msgs = BUF_INIT;

    (void)state;
    assert_int_equal(parse("config:\n  target: http://h\n  defaults: {think: {jitter: \"20%\"}}\n"
                           "scenarios: [{flow: [{think: 1}]}]\n",
                           NULL, NULL, &s, &msgs),
                     0);
    assert_int_equal(load_think_jitter(&s, 1000, 0), 800);
    assert_int_equal(load_think_jitter(&s, 1000, 0.5), 1000);
    assert_int_equal(load_think_jitter(&s, 1000, 0.999), 1200);
    load_script_free(&s);
    assert_int_equal(parse("config:\n  target: http://h\n  defaults: {think: {jitter: 1500.7}}\n"
                           "scenarios: [{flow: [{think: 1}]}]\n",
                           NULL, NULL, &s, &msgs),
                     0);
    assert_int_equal(load_think_jitter(&s, 1000, 0), 0);
    assert_int_equal(load_think_jitter(&s, 1000, 0.75), 1750);
    load_script_free(&s);
    assert_int_equal(parse("config:\n  target: http://h\n  defaults: {think: {jitter: 500}}\n"
                           "  http: {defaults: {think: {}}}\n"
                           "scenarios: [{flow: [{think: 1}]}]\n",
                           NULL, NULL, &s, &msgs),
                     0);
    assert_int_equal(load_think_jitter(&s, 1000, 0), 1000);
    load_script_free(&s);
    buf_free(&msgs);
}

static void test_environment_and_target(void **state)
{
    struct load_script s;
    struct buf msgs = BUF_INIT;

    (void)state;
    assert_int_equal(parse(good, "quick", NULL, &s, &msgs), 0);
    assert_string_equal(s.target, "http://127.0.0.1:9090");
    /* quick's one phase replaces the keys of config's first; the other three stay */
    assert_int_equal(s.n_phases, 4);
    assert_int_equal(s.phases[0].duration_ms, 1000);
    assert_true(s.phases[0].arrival_rate == 1);
    assert_string_equal(s.phases[0].name, "warm up");
    assert_int_equal(s.phases[1].duration_ms, 120000);
    assert_string_equal(s.environment, "quick");
    load_script_free(&s);
    assert_int_equal(parse(good, "quick", "http://127.0.0.1:1/", &s, &msgs), 0);
    assert_string_equal(s.target, "http://127.0.0.1:1");
    load_script_free(&s);
    /* an environment's phases are laid over config's by index, key by key (lodash merge) */
    assert_int_equal(parse("config:\n  target: http://h\n  phases:\n"
                           "    - {duration: 60, arrivalRate: 2, name: a}\n"
                           "    - {duration: 60, arrivalRate: 3, name: b}\n"
                           "  environments:\n    q:\n      phases:\n        - {duration: 2}\n"
                           "        - {rampTo: x}\n"
                           "scenarios: [{flow: [{get: {url: /}}]}]\n",
                           "q", NULL, &s, &msgs),
                     -EINVAL);
    assert_non_null(strstr(msgs.data, "t.yml:10: config.phases[1].rampTo: want a number"));
    buf_reset(&msgs);
    assert_int_equal(parse("config:\n  target: http://h\n  phases:\n"
                           "    - {duration: 60, arrivalRate: 2, name: a}\n"
                           "    - {duration: 60, arrivalRate: 3, name: b}\n"
                           "  environments: {q: {phases: [{duration: 2}]}}\n"
                           "scenarios: [{flow: [{get: {url: /}}]}]\n",
                           "q", NULL, &s, &msgs),
                     0);
    assert_int_equal(s.n_phases, 2);
    assert_int_equal(s.phases[0].duration_ms, 2000);
    assert_true(s.phases[0].arrival_rate == 2);
    assert_string_equal(s.phases[0].name, "a");
    assert_int_equal(s.phases[1].duration_ms, 60000);
    load_script_free(&s);
    /* as Artillery, an environment the script does not define is warned about, not refused */
    assert_int_equal(parse(good, "nope", NULL, &s, &msgs), 0);
    assert_string_equal(s.environment, "nope");
    assert_int_equal(s.phases[0].duration_ms, 60000);
    load_script_free(&s);
    buf_free(&msgs);
}

/* Every unsupported key is named with its line; nothing is ignored silently. */
static void test_unsupported_keys_listed(void **state)
{
    static const char text[] = "config:\n"
                               "  target: http://127.0.0.1:1\n"
                               "  http: {pool: 1.5}\n"
                               "  phases: [{duration: 1, arrivalRate: 1}]\n"
                               "  plugins:\n"
                               "    apdex: {}\n"
                               "  colour: red\n"
                               "scenarios:\n"
                               "  - onError: setup\n"
                               "    flow:\n"
                               "      - emit: []\n"
                               "      - get: {url: /, gzip: true, heders: {}}\n"
                               "      - loop: [{get: {url: /}}]\n"
                               "        times: 3\n";
    struct load_script s;
    struct buf msgs = BUF_INIT;

    (void)state;
    assert_int_equal(parse(text, NULL, NULL, &s, &msgs), -EINVAL);
    assert_non_null(
        strstr(msgs.data, "t.yml:3: config.http.pool: want a whole number of connections\n"));
    assert_non_null(
        strstr(msgs.data, "t.yml:6: config.plugins.apdex: not supported (the plugins "));
    assert_non_null(strstr(msgs.data, "t.yml:7: config.colour: unknown key\n"));
    assert_non_null(
        strstr(msgs.data, "t.yml:12: get.heders: unknown key `heders`, did you mean `headers`?\n"));
    assert_non_null(strstr(msgs.data, "t.yml:9: scenarios[0].onError: not supported\n"));
    assert_non_null(strstr(msgs.data, "t.yml:11: flow.emit: not supported\n"));
    assert_non_null(strstr(msgs.data, "t.yml:12: get.gzip: not supported\n"));
    assert_non_null(strstr(msgs.data, "t.yml:14: loop.times: unknown key\n"));
    buf_free(&msgs);
}

/* Processor hooks: scenario hooks become function steps around the flow; a request's hooks are
 * the scenario's, then its own; the module's path is relative to the script's directory. */
static void test_processor_hooks(void **state)
{
    static const char text[] = "config:\n"
                               "  target: http://127.0.0.1:1\n"
                               "  processor: ./p.js\n"
                               "  phases: [{duration: 1, arrivalRate: 1}]\n"
                               "scenarios:\n"
                               "  - beforeScenario: setup\n"
                               "    afterScenario: [down1, down2]\n"
                               "    beforeRequest: all\n"
                               "    afterResponse: seen\n"
                               "    flow:\n"
                               "      - function: myFn\n"
                               "      - get: {url: /, beforeRequest: [sign, more]}\n"
                               "      - loop: [{get: {url: /x}}]\n"
                               "        count: 2\n";
    struct load_script s;
    struct buf msgs = BUF_INIT;
    struct err e = {""};
    const struct load_step *st;

    (void)state;
    assert_int_equal(load_script_parse("dir/t.yml", text, strlen(text), NULL, NULL, &s, &msgs, &e),
                     0);
    assert_string_equal(s.processor, "dir/./p.js");
    assert_int_equal(s.scenarios[0].n_steps, 6);
    st = s.scenarios[0].steps;
    assert_int_equal(st[0].kind, LOAD_STEP_FUNCTION);
    assert_string_equal(st[0].fn, "setup");
    assert_string_equal(st[1].fn, "myFn");
    assert_int_equal(st[2].req.before.n, 3);
    assert_string_equal(st[2].req.before.names[0], "all");
    assert_string_equal(st[2].req.before.names[2], "more");
    assert_int_equal(st[2].req.after.n, 1);
    assert_true(st[2].req.needs_body && st[2].req.params != NULL);
    assert_string_equal(st[3].steps[0].req.before.names[0], "all");
    assert_string_equal(st[4].fn, "down1");
    assert_string_equal(st[5].fn, "down2");
    load_script_free(&s);
    /* without a processor, every hook says what it needs */
    assert_int_equal(parse("config:\n  target: http://127.0.0.1:1\n"
                           "  phases: [{duration: 1, arrivalRate: 1}]\n"
                           "scenarios:\n  - afterResponse: seen\n    flow:\n"
                           "      - function: myFn\n",
                           NULL, NULL, &s, &msgs),
                     -EINVAL);
    assert_non_null(strstr(msgs.data, "t.yml:5: afterResponse: needs config.processor"));
    assert_non_null(strstr(msgs.data, "t.yml:7: function: needs config.processor"));
    buf_free(&msgs);
}

static void test_bad_values(void **state)
{
    struct load_script s;
    struct buf msgs = BUF_INIT;

    (void)state;
    assert_int_equal(parse("config:\n  target: x\n  phases:\n    - {duration: soon, "
                           "arrivalRate: 1}\nscenarios: []\n",
                           NULL, NULL, &s, &msgs),
                     -EINVAL);
    assert_non_null(strstr(msgs.data, "t.yml:2: config.target: want an http:// or https:// URL"));
    assert_non_null(strstr(msgs.data, "t.yml:4: config.phases[0].duration: want seconds"));
    assert_non_null(strstr(msgs.data, "scenarios: want a list of scenarios"));
    buf_reset(&msgs);
    /* a YAML syntax error carries its line */
    assert_int_equal(parse("config:\n  target: [1,\n  phases: {\n", NULL, NULL, &s, &msgs),
                     -EINVAL);
    assert_non_null(strstr(msgs.data, "t.yml:"));
    buf_reset(&msgs);
    assert_int_equal(parse("- a\n- b\n", NULL, NULL, &s, &msgs), -EINVAL);
    assert_non_null(strstr(msgs.data, "t.yml:1: a scenario file must be a mapping"));
    buf_reset(&msgs);
    assert_int_equal(parse("config:\n  target: http://h\n  phases: [{duration: 1, arrivalRate: "
                           "1}]\nscenarios:\n  - flow:\n      - get: {url: \"/{{ a\"}\n",
                           NULL, NULL, &s, &msgs),
                     -EINVAL);
    assert_non_null(strstr(msgs.data, "t.yml:6: url: \"{{\" without \"}}\""));
    buf_free(&msgs);
}

static void test_yaml_types_and_anchors(void **state)
{
    static const char text[] = "config:\n"
                               "  target: http://127.0.0.1:1\n"
                               "  phases: &p [{duration: 1, arrivalRate: 1}]\n"
                               "  variables: {a: 012, b: '7', c: 1.5, d: true, e: ~, f: 0x10}\n"
                               "  environments: {x: {phases: *p}}\n"
                               "scenarios: [{flow: [{get: {url: /}}]}]\n";
    struct load_script s;
    struct buf msgs = BUF_INIT;
    json_t *v;

    (void)state;
    assert_int_equal(parse(text, "x", NULL, &s, &msgs), 0);
    v = s.variables;
    assert_int_equal(json_integer_value(json_object_get(v, "a")), 12);
    assert_true(json_is_string(json_object_get(v, "b")));
    assert_true(json_real_value(json_object_get(v, "c")) == 1.5);
    assert_true(json_is_true(json_object_get(v, "d")));
    assert_true(json_is_null(json_object_get(v, "e")));
    assert_int_equal(json_integer_value(json_object_get(v, "f")), 16);
    assert_int_equal(s.n_phases, 1);
    load_script_free(&s);
    buf_free(&msgs);
}

/* A "billion laughs" script: nine levels of nine aliases would render 387 million strings
 * from its variables (it grew past 2 GB before it was refused); a script that uses an
 * anchor a few times is fine. */
static void test_excessive_aliasing_refused(void **state)
{
    struct load_script s;
    struct buf text = BUF_INIT, msgs = BUF_INIT;

    (void)state;
    buf_append_cstr(&text, "config:\n  target: http://127.0.0.1:1\n"
                           "  phases: [{duration: 1, arrivalCount: 1}]\n  variables:\n"
                           "    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (char c = 'b'; c <= 'i'; c++)
        buf_printf(&text, "    %c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c,
                   c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    buf_append_cstr(&text, "scenarios: [{flow: [{get: {url: \"/{{ i }}\"}}]}]\n");
    assert_int_equal(parse(text.data, NULL, NULL, &s, &msgs), -EINVAL);
    assert_non_null(strstr(msgs.data, "document contains excessive aliasing"));
    buf_free(&text);
    buf_free(&msgs);
}

static void test_templates(void **state)
{
    json_t *vars = json_pack("{s:s,s:i,s:{s:[i,i]}}", "color", "red", "n", 3, "user", "ids", 7, 9);
    json_t *tmpl =
        json_pack("{s:s,s:s,s:[s]}", "n", "{{ n }}", "s", "c={{color}}!", "l", "{{ user.ids.1 }}");
    struct buf b = BUF_INIT;
    uint64_t rng = 1;
    json_t *out;

    (void)state;
    load_tmpl_render(&b, "/x/{{ color }}/{{n}}/{{ missing }}/{{ user.ids.0 }}", vars, &rng);
    assert_string_equal(b.data, "/x/red/3//7");
    buf_reset(&b);
    /* lodash's paths: brackets, quoted keys, and a whole name that is a key */
    json_object_set_new(vars, "a.b", json_string("whole"));
    json_object_set_new(json_object_get(vars, "user"), "full name", json_string("Ann"));
    load_tmpl_render(&b,
                     "{{ user.ids[1] }} {{ user['full name'] }} {{ user[\"ids\"][0] }} "
                     "{{ a.b }} {{ user.ids[2] }}{{ user.ids[x] }}{{ user['ids }}",
                     vars, &rng);
    assert_string_equal(b.data, "9 Ann 7 whole ");
    buf_reset(&b);
    load_tmpl_render(&b, "{{ $randomNumber(5, 5) }}-{{ $randomString(4) }}", vars, &rng);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "5-", 2);
    buf_reset(&b);
    /* the widest range: no signed overflow, no modulo by zero */
    load_tmpl_render(&b, "{{ $randomNumber(-9223372036854775808, 9223372036854775807) }}", vars,
                     &rng);
    assert_true(b.len > 0);
    buf_reset(&b);
    load_tmpl_render(&b, "{{ $randomNumber(-5, 9223372036854775807) }}", vars, &rng);
    assert_true(b.len > 0 && strtoll(b.data, NULL, 10) >= -5);
    buf_reset(&b);
    setenv("MESH_TEST_TMPL", "yes", 1);
    load_tmpl_render(&b, "{{ $env.MESH_TEST_TMPL }}{{ $processEnvironment.MESH_TEST_TMPL }}", vars,
                     &rng);
    assert_string_equal(b.data, "yesyes");
    out = load_tmpl_json(tmpl, vars, &rng);
    assert_int_equal(json_integer_value(json_object_get(out, "n")), 3); /* type kept */
    assert_string_equal(json_string_value(json_object_get(out, "s")), "c=red!");
    assert_int_equal(json_integer_value(json_array_get(json_object_get(out, "l"), 0)), 9);
    assert_false(load_tmpl_json_is_static(tmpl));
    json_decref(out);
    json_decref(tmpl);
    json_decref(vars);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_script),
        cmocka_unit_test(test_numbers_as_javascript_writes_them),
        cmocka_unit_test(test_environment_and_target),
        cmocka_unit_test(test_think_jitter),
        cmocka_unit_test(test_unsupported_keys_listed),
        cmocka_unit_test(test_processor_hooks),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_yaml_types_and_anchors),
        cmocka_unit_test(test_excessive_aliasing_refused),
        cmocka_unit_test(test_templates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
