/* Shared between script.c (config) and script_flow.c (scenarios). */
#ifndef MESH_LOAD_SCRIPT_INTERNAL_H
#define MESH_LOAD_SCRIPT_INTERNAL_H

#include <stdbool.h>

#include "load/script.h"
#include "load/yaml.h"

struct script_ctx {
    struct load_yaml *y;
    struct buf *msgs;
    struct err *e;
    int n_errors;
    const json_t *config;
    const json_t *env; /* the selected environment, or NULL */
    const json_t *cfg_parent_phases;
    json_t *keep; /* values built while checking (merged phases), freed at the end */
    bool has_processor;
    const json_t *default_headers; /* config.http.defaults.headers or config.defaults.headers */
    const json_t *default_cookie;  /* config.http.defaults.cookie or config.defaults.cookie */
    bool http_think;               /* config.http.defaults.think was read: it wins */
    /* metrics-by-endpoint: see script_endpoint_name */
    bool ep_only_names, ep_strip_query, ep_ignore_unnamed;
    const char *ep_prefix;
    const char *target;
    bool expect_default_200; /* plugins.expect.expectDefault200 */
    bool strict_capture;     /* captures are strict unless http.defaults.strictCapture: false */
    bool warned_expect;      /* expect without plugins.expect, said once */
    const json_t *scenario;  /* the one being read: its beforeRequest, afterResponse hooks */
    json_t *config_vars;     /* what config templates see: $environment, $dirname, ... */
    uint64_t rng;            /* for config templates that call $randomNumber() */
    const char *config_path; /* --config FILE, or NULL */
};

/* Records "path:line: message" for parent's key (or element index; parent may be NULL). */
void script_diag(struct script_ctx *c, const json_t *parent, const char *key, size_t index,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Reports every key of obj not in allowed: "not supported" when in unsupported, else unknown. */
void script_check_keys(struct script_ctx *c, const json_t *obj, const char *where,
                       const char *const *allowed, const char *const *unsupported);
bool script_template_ok(struct script_ctx *c, const json_t *parent, const char *key, size_t index,
                        const char *where, const char *s);
/*
 * A config value's text as Artillery reads it: its templates rendered when the script is read,
 * from the process environment ($env.NAME, $processEnvironment.NAME), $environment (the -e
 * name), $dirname (the script's directory) and $scenarioFile. s itself when it has no
 * template, else tmp's text (tmp reset first).
 */
const char *script_config_text(struct script_ctx *c, const char *s, struct buf *tmp);
int script_read_duration(struct script_ctx *c, const json_t *parent, const char *key,
                         const char *where, int64_t *ms);
/* metrics-by-endpoint's name for a request: its url as written (templates and all), the query
 * left out with stripQueryString, the name added; NULL when ignoreUnnamedRequests drops it. */
char *script_endpoint_name(const struct script_ctx *c, const char *url, const char *name);
/* file as Artillery resolves it: relative to the script's directory unless absolute. Caller
 * frees. */
char *script_path_near(const char *script, const char *file);
/* A file the script names (a payload, a formData part), read whole into out when it holds at
 * most max bytes (blocking: startup only). 0, or -errno with e saying why. */
int script_read_file(const char *path, size_t max, struct buf *out, struct err *e);
/* config.payload (payload.c): one file or a list of them, each read and parsed now. */
void script_parse_payloads(struct script_ctx *c, const json_t *v, struct load_script *s);
void script_parse_scenarios(struct script_ctx *c, const json_t *list, struct load_script *s);
/* The script's before or after (key): a scenario Artillery runs once, before the phases or
 * after them; NULL when the script has none (or it is not a mapping: reported). */
struct load_scenario *script_parse_hook_flow(struct script_ctx *c, const char *key);
void script_free_scenario(struct load_scenario *sc);

#endif
