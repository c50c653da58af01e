/*
 * An Artillery 2 test script, checked and compiled from its YAML: the config (target, phases,
 * variables, environments, http.timeout, ensure, processor) and the scenarios with their flows.
 * Keys we do not implement (other engines, http.pool, ...) are reported by name with their line,
 * never ignored. A scenario's beforeScenario and afterScenario hooks become function steps at
 * the start and end of its flow, as Artillery runs them.
 */
#ifndef MESH_LOAD_SCRIPT_H
#define MESH_LOAD_SCRIPT_H

#include <jansson.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "load/payload.h"

struct load_phase {
    char *name;            /* NULL when unnamed */
    int64_t duration_ms;   /* of the phase, pauses included */
    double arrival_rate;   /* per second at the start */
    double ramp_to;        /* per second at the end; < 0 when absent */
    int64_t arrival_count; /* < 0 when absent */
    bool pause;            /* no arrivals */
    int64_t max_vusers;    /* < 0 when absent */
};

/* A name and a value template (headers, query parameters, form fields, cookies). */
struct load_kv {
    char *name;
    char *value;
    char *type; /* formData: the part's Content-Type, or NULL */
    /* formData's fromFile: the part's file name (its last component), value then holding the
     * file's bytes as they are (no template), value_len of them; else NULL */
    char *file;
    size_t value_len;
};

enum load_capture_kind {
    LOAD_CAPTURE_JSON,
    LOAD_CAPTURE_HEADER,
    LOAD_CAPTURE_REGEXP,
    LOAD_CAPTURE_SELECTOR
};

/* A selector capture's `index`: which of the elements it matches. */
enum load_capture_index { LOAD_INDEX_FIRST, LOAD_INDEX_LAST, LOAD_INDEX_RANDOM, LOAD_INDEX_AT };

struct load_sel;

struct load_capture {
    enum load_capture_kind kind;
    /* a JSONPath such as "$.items[0].id", a header name, a pattern or a CSS selector (which
     * may hold templates) */
    char *expr;
    char *as;      /* the variable it sets; NULL for a match */
    json_t *value; /* a match (Artillery 1's): the value it must find, a template; else NULL */
    bool strict;   /* finding nothing (a match: another value) fails the user */
    regex_t *re;   /* LOAD_CAPTURE_REGEXP: compiled (capture.h) */
    int group;     /* its submatch to take; 0 for the whole match */
    bool named;    /* the group was given by name */
    /* expr holds templates: rendered from the user's variables for each response (and a
     * regexp then compiled from flags and group), as Artillery renders it */
    bool templated;
    char *flags;          /* a templated regexp's flags, or NULL */
    json_t *group_spec;   /* a templated regexp's group as written, or NULL */
    struct load_sel *sel; /* LOAD_CAPTURE_SELECTOR without templates: compiled (selector.h) */
    char *attr;           /* selector: the attribute to take; NULL for them all */
    enum load_capture_index index_kind;
    double index; /* LOAD_INDEX_AT: as JavaScript's Number() reads it (NaN finds nothing) */
};

enum load_expect_kind {
    LOAD_EXPECT_STATUS,
    LOAD_EXPECT_NOT_STATUS,
    LOAD_EXPECT_CONTENT_TYPE,
    LOAD_EXPECT_HAS_HEADER,
    LOAD_EXPECT_CDN_HIT,
    LOAD_EXPECT_HEADER_EQUALS, /* counted under "header NAME values equals", as the plugin */
    LOAD_EXPECT_HAS_PROPERTY,  /* from here on, checks on the body (LOAD_EXPECT_FIRST_BODY) */
    LOAD_EXPECT_NOT_HAS_PROPERTY,
    LOAD_EXPECT_EQUALS,
    LOAD_EXPECT_MATCHES_REGEXP,
    LOAD_EXPECT_JMESPATH, /* a JMESPath expression whose value is truthy (jmespath.h) */
    LOAD_EXPECT_JPATH,    /* the same, under the plugin's other name */
    LOAD_EXPECT_KINDS
};

#define LOAD_EXPECT_FIRST_BODY LOAD_EXPECT_HAS_PROPERTY

/* The check's name in Artillery's counters (plugins.expect.ok.statusCode). */
extern const char *const load_expect_names[LOAD_EXPECT_KINDS];

/* plugins.expect.outputFormat: what is printed per request. */
enum load_expect_format {
    LOAD_EXPECT_PRETTY,       /* every checked request (Artillery's default) */
    LOAD_EXPECT_PRETTY_ERROR, /* the requests with a failed check */
    LOAD_EXPECT_JSON,         /* every checked request, one JSON line */
    LOAD_EXPECT_SILENT
};

struct load_expect {
    enum load_expect_kind kind;
    int status[8]; /* statusCode, notStatusCode: any of these */
    size_t n_status;
    /* contentType, hasHeader, hasProperty, notHasProperty, matchesRegexp: the value (a
     * template); statusCode and notStatusCode written as a template ("{{ code }}"): that */
    char *text;
    char **values; /* equals: the templates that must render alike; headerEquals: name, value */
    size_t n_values;
    bool hit;               /* cdnHit: a hit is expected (else a miss) */
    regex_t *re;            /* matchesRegexp without templates: compiled once (capture.h) */
    struct load_jmes *jmes; /* jmespath, jpath: the expression (text), compiled */
    char *description;      /* jmespath, jpath: what the lines say was expected, else NULL */
};

/* Processor functions a hook runs, in order (Artillery's `beforeRequest: NAME` or a list). */
struct load_hooks {
    char **names;
    size_t n;
};

#define LOAD_MAX_EXPECTS 32 /* checks per request */

struct load_request {
    char *method; /* "GET" ... */
    char *name;   /* name: as written, or NULL */
    char *url;    /* template: a path or an absolute http:// URL */
    struct load_kv *headers;
    size_t n_headers;
    struct load_kv *qs;
    size_t n_qs;
    json_t *json;         /* body as JSON (strings are templates), or NULL */
    char *body;           /* raw body template, or NULL */
    struct load_kv *form; /* form: url-encoded fields; formData: multipart parts */
    size_t n_form;
    bool multipart;
    struct load_kv *cookies; /* cookie (after config.defaults.cookie): into the jar first */
    size_t n_cookies;
    char *auth_user, *auth_pass; /* auth: Basic credentials (templates), or NULL */
    bool follow_redirect;        /* followRedirect (default true) */
    struct load_expect *expects;
    size_t n_expects;
    struct load_capture *captures;
    size_t n_captures;
    bool needs_body; /* body captures or afterResponse hooks: keep the response body */
    /* ifTrue: a filtrex expression over the user's variables, or a processor function (the
     * engine sets if_true_fn at start when the processor exports one of that name) */
    char *if_true;
    bool if_true_fn;
    /* beforeRequest and afterResponse: the scenario's, then the request's own */
    struct load_hooks before, after;
    json_t *params; /* the request's mapping as written, for hooks; NULL without hooks */
    /* metrics-by-endpoint: "PREFIX.ENDPOINT." (counters) and "PREFIX.response_time.ENDPOINT";
     * NULL when the plugin leaves the request out */
    char *endpoint_counters, *endpoint_rt;
    /* The request's bytes when nothing in it is templated and the URL is relative, built by
     * load_script_prepare; NULL otherwise. */
    char *wire;
    size_t wire_len;
};

enum load_step_kind {
    LOAD_STEP_REQUEST,
    LOAD_STEP_THINK,
    LOAD_STEP_LOOP,
    LOAD_STEP_LOG,
    LOAD_STEP_FUNCTION,
    LOAD_STEP_PARALLEL
};

struct load_step {
    enum load_step_kind kind;
    int line;
    struct load_request req; /* LOAD_STEP_REQUEST */
    int64_t think_ms;        /* LOAD_STEP_THINK */
    char *think_tmpl;        /* LOAD_STEP_THINK given as a template: rendered when it runs */
    struct load_step *steps; /* LOAD_STEP_LOOP's, LOAD_STEP_PARALLEL's */
    size_t n_steps;
    int64_t count, count_from;       /* iterations count_from..count-1; count < 0: no bound */
    char *count_tmpl;                /* count as a template ("{{ n }}" or "1-{{ n }}"), or NULL */
    json_t *over;                    /* over: a list, iterated as $loopElement */
    char *over_var;                  /* over: the variable holding the list */
    char *while_fn;                  /* whileTrue: a processor function, asked after each pass */
    char *loop_value, *loop_element; /* "$loopCount", "$loopElement" unless renamed */
    char *log;                       /* LOAD_STEP_LOG: template */
    char *fn; /* LOAD_STEP_FUNCTION: a processor function (beforeScenario, afterScenario too) */
    bool fn_missing; /* the processor has no such function (set by the engine at start) */
};

struct load_scenario {
    char *name; /* its index ("0") when unnamed, as Artillery names it in its metrics */
    double weight;
    struct load_step *steps;
    size_t n_steps;
};

struct load_threshold {
    char *metric; /* "http.response_time.p99" */
    double max;
    bool legacy; /* Artillery 1's form, ensure.p99: printed "p99 < MAX" */
};

struct load_condition {
    char *expression; /* "http.response_time.p95 < 200 and http.request_rate > 10" */
    bool strict;
};

struct load_script {
    char *path;
    char *processor;   /* config.processor, relative to the script's directory; or NULL */
    char *environment; /* NULL when none */
    char *target;      /* "http://host:port" or https */
    struct load_phase *phases;
    size_t n_phases;
    json_t *variables;    /* object: name -> value or array of values */
    json_t *builtin_vars; /* what Artillery gives every user under them: target, $environment,
                           * $dirname, $scenarioFile (object; shared by threads: copy it) */
    struct load_payload *payloads; /* config.payload: CSV rows as variables */
    size_t n_payloads;
    int64_t timeout_ms;
    bool timeout_set;      /* http.timeout given: else Artillery's 8 s socket floor applies too */
    bool tls_insecure;     /* config.tls.rejectUnauthorized: false */
    bool extended_metrics; /* http.extendedMetrics: http.dns, http.tcp, http.tls, http.total */
    int http_pool; /* http.pool: connections shared by each worker's users; 0 no bound, -1 none */
    /* defaults.think.jitter: ms, or a percentage of the think time; < 0 none */
    double think_jitter;
    bool think_jitter_pct;
    struct load_threshold *thresholds;
    size_t n_thresholds;
    struct load_condition *conditions;
    size_t n_conditions;
    double max_error_rate; /* percent; < 0 when absent */
    /* config.plugins.expect: without it, expect checks do nothing (as in Artillery) */
    bool expect_plugin;
    enum load_expect_format expect_format;
    bool expect_as_errors; /* reportFailuresAsErrors: a failed check fails the user */
    /* metrics-by-endpoint (always on, as in Artillery 2): also on the console? */
    bool endpoint_print;
    char *endpoint_prefix; /* its metricsNamespace */
    struct load_scenario *scenarios;
    size_t n_scenarios;
    double total_weight;
    /* before and after: flows run once, by one user, before the phases start and after they
     * end; NULL when absent */
    struct load_scenario *before, *after;
};

/* What the command line lays over a script, as Artillery's run takes it. All may be NULL. */
struct load_script_opts {
    const char *env;       /* -e NAME: config.environments.NAME over config */
    const char *target;    /* -t URL: over config.target */
    const char *config;    /* --config FILE: laid over the script (lodash's merge) */
    const char *overrides; /* --overrides JSON: laid over all that, a list replacing a list */
    /* --variables JSON: what config templates see besides the environment, as Artillery
     * renders its config with them (load_script_add_variables sets them for the users; a
     * malformed one is left to it to report) */
    const char *variables;
    const char *test_id; /* $testId: the run's id (NULL: none) */
};

/*
 * Reads path (blocking: startup only), lays o's over it and checks everything. Returns 0; or
 * -EINVAL with the problems in msgs, one "file:line: message" per line (every unsupported or
 * unknown key, every bad value), and e set to the first; or -errno when a file cannot be read.
 * On error s holds nothing to free.
 */
int load_script_load(const char *path, const struct load_script_opts *o, struct load_script *s,
                     struct buf *msgs, struct err *e);
/* The same from text already in memory, with env and target only (tests). */
int load_script_parse(const char *path, const char *text, size_t len, const char *env,
                      const char *target, struct load_script *s, struct buf *msgs, struct err *e);
void load_script_free(struct load_script *s);

/* The status codes the script's statusCode checks accept, sorted: a new JSON array. */
json_t *load_script_accepted_codes(const struct load_script *s);

/*
 * Sets the variables of json_text, a JSON object (`--variables '{"user": "ann"}'`), over s's
 * config.variables, as Artillery's --variables does: a value, or a list one element of which
 * each virtual user picks. Returns 0, or -EINVAL with e saying why (s unchanged).
 */
int load_script_add_variables(struct load_script *s, const char *json_text, struct err *e);

/*
 * Replaces s's phases with Artillery's single user: one arrival in a phase of one second. What a
 * script without config.phases runs, and what `--solo` makes of any script.
 */
void load_script_solo(struct load_script *s);

/* The i-th flow the script holds: its scenarios, then before and after when present; NULL
 * past the last. For what walks every step (prepare, processor checks). */
struct load_scenario *load_script_flow_at(struct load_script *s, size_t i);

/* Total length of all phases in ms. */
int64_t load_script_duration_ms(const struct load_script *s);

/*
 * A duration as Artillery reads phase durations and think times: seconds ("1.5"), the ms
 * package's words ("500ms", "2 hours") or Go's ("1m30s"). Returns 0 with *ms, or -EINVAL.
 */
int load_duration_ms(const char *s, int64_t *ms);

/* A think time of ms spread by s's config.defaults.think.jitter, as Artillery's jitter() does:
 * uniformly within the jitter either side (u in [0, 1) says where), never below 0. */
int64_t load_think_jitter(const struct load_script *s, int64_t ms, double u);

#endif
