#include "registry/agent_config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "lib/log.h"

static const char usage[] =
    "mesh agent [options]\n\n"
    "  Runs a registry agent that speaks Consul's HTTP API. With -server it holds the catalog\n"
    "  and KV; without it, it is a client agent that owns its node's services and checks and\n"
    "  syncs them to the servers it joins (-join / -retry-join). With -dev: an in-memory server\n"
    "  on 127.0.0.1:8500. With -data-dir: every acknowledged write survives a crash and restart.";

enum opt_type {
    OPT_BOOL = 0,
    OPT_STRING,
    OPT_INT,
    OPT_PORT,
    OPT_DURATION,
    OPT_STRING_LIST,
};

/*
 * Every setting once: its key in config files (a dotted path into nested objects; NULL for
 * flag-only settings), its command-line flag (NULL for file-only settings), its type and where
 * it lives in struct agent_config. Loading, flag parsing, -help and the unknown-key warning all
 * come from this table. Several keys may share a field (Consul's older spellings).
 */
struct agent_option {
    const char *key;
    const char *flag;
    enum opt_type type;
    size_t offset;
    const char *help;
};

#define OFF(f) offsetof(struct agent_config, f)

static const struct agent_option options[] = {
    {"server", "server", OPT_BOOL, OFF(server), "Run in server mode (holds the catalog and KV)."},
    {"bootstrap", "bootstrap", OPT_BOOL, OFF(bootstrap), "Elect this server leader on its own."},
    {"bootstrap_expect", "bootstrap-expect", OPT_INT, OFF(bootstrap_expect),
     "Servers expected (1 for now)."},
    {NULL, "dev", OPT_BOOL, OFF(dev), "Development mode: in-memory server on 127.0.0.1:8500."},
    {"node_name", "node", OPT_STRING, OFF(node_name), "Node name (default: the hostname)."},
    {"datacenter", "datacenter", OPT_STRING, OFF(datacenter), "Datacenter name (default dc1)."},
    {"bind_addr", "bind", OPT_STRING, OFF(bind_addr),
     "Address advertised for this node (default 0.0.0.0: 127.0.0.1 is advertised)."},
    {"client_addr", "client", OPT_STRING, OFF(client_addr),
     "Address the HTTP API listens on (default 127.0.0.1)."},
    {"ports.http", "http-port", OPT_PORT, OFF(http_port), "HTTP API port (default 8500)."},
    {"ports.https", "https-port", OPT_PORT, OFF(https_port),
     "HTTPS API port (default off; needs tls cert_file and key_file)."},
    {"data_dir", "data-dir", OPT_STRING, OFF(data_dir), "Directory for durable state."},
    {NULL, "config-file", OPT_STRING_LIST, OFF(config_files), "JSON config file (repeatable)."},
    {NULL, "config-dir", OPT_STRING_LIST, OFF(config_dirs), "Directory of *.json config files."},
    {"pid_file", "pid-file", OPT_STRING, OFF(pid_file), "Write the agent's PID to this file."},
    {"ui", "ui", OPT_BOOL, OFF(ui), "Serve the web UI on /ui/."},
    {"ui_config.enabled", NULL, OPT_BOOL, OFF(ui), NULL},
    {"log_level", "log-level", OPT_STRING, OFF(log_level), "trace, debug, info, warn or error."},
    {"enable_script_checks", "enable-script-checks", OPT_BOOL, OFF(enable_script_checks),
     "Allow script checks (run without a shell)."},
    {"enable_local_script_checks", "enable-local-script-checks", OPT_BOOL,
     OFF(enable_local_script_checks), "Allow script checks from config files only."},
    {"start_join", "join", OPT_STRING_LIST, OFF(start_join),
     "Server address to join at start (repeatable)."},
    {"retry_join", "retry-join", OPT_STRING_LIST, OFF(retry_join),
     "Server address to join, retried until it answers (repeatable)."},
    {"retry_interval", "retry-interval", OPT_DURATION, OFF(retry_interval_ns),
     "Time between join attempts (default 30s)."},
    {"failure_timeout", "failure-timeout", OPT_DURATION, OFF(failure_timeout_ns),
     "A node that does not heartbeat for this long is failed (default 5s)."},
    {"acl.enabled", NULL, OPT_BOOL, OFF(acl_enabled), NULL},
    {"acl.default_policy", NULL, OPT_STRING, OFF(acl_default_policy), NULL},
    {"acl.tokens.initial_management", NULL, OPT_STRING, OFF(acl_initial_management), NULL},
    {"acl.tokens.master", NULL, OPT_STRING, OFF(acl_initial_management), NULL},
    {"acl.tokens.agent", NULL, OPT_STRING, OFF(acl_agent_token), NULL},
    {"acl.tokens.default", NULL, OPT_STRING, OFF(acl_default_token), NULL},
    {"tls.defaults.ca_file", NULL, OPT_STRING, OFF(tls_ca_file), NULL},
    {"tls.defaults.cert_file", NULL, OPT_STRING, OFF(tls_cert_file), NULL},
    {"tls.defaults.key_file", NULL, OPT_STRING, OFF(tls_key_file), NULL},
    {"tls.defaults.verify_incoming", NULL, OPT_BOOL, OFF(tls_verify_incoming), NULL},
    {"tls.defaults.verify_outgoing", NULL, OPT_BOOL, OFF(tls_verify_outgoing), NULL},
    {"ca_file", NULL, OPT_STRING, OFF(tls_ca_file), NULL},
    {"cert_file", NULL, OPT_STRING, OFF(tls_cert_file), NULL},
    {"key_file", NULL, OPT_STRING, OFF(tls_key_file), NULL},
    {"verify_incoming", NULL, OPT_BOOL, OFF(tls_verify_incoming), NULL},
    {"verify_outgoing", NULL, OPT_BOOL, OFF(tls_verify_outgoing), NULL},
};

static void *field(struct agent_config *cfg, const struct agent_option *o)
{
    return (char *)cfg + o->offset;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

/* ---- config files ------------------------------------------------------------------------ */

/* True when the ", "-separated list holds exactly key. */
static bool list_has(const struct buf *list, const char *key)
{
    size_t n = strlen(key);
    for (const char *p = list->len ? list->data : NULL; p; p = strstr(p, ", ")) {
        if (p != list->data)
            p += 2;
        if (strncmp(p, key, n) == 0 && (p[n] == '\0' || p[n] == ','))
            return true;
    }
    return false;
}

static void note_unknown(struct agent_config *cfg, const char *key)
{
    if (list_has(&cfg->unknown_keys, key))
        return;
    if (cfg->unknown_keys.len)
        buf_append_cstr(&cfg->unknown_keys, ", ");
    buf_append_cstr(&cfg->unknown_keys, key);
}

static const struct agent_option *option_for_key(const char *path)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (options[i].key && strcmp(options[i].key, path) == 0)
            return &options[i];
    return NULL;
}

/* True when some option lives below path ("acl" for "acl.tokens.agent"). */
static bool is_section(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < ARRAY_LEN(options); i++)
        if (options[i].key && strncmp(options[i].key, path, n) == 0 && options[i].key[n] == '.')
            return true;
    return false;
}

static int read_option(struct agent_config *cfg, const struct config_doc *doc,
                       const struct agent_option *o, const char *path, const json_t *v,
                       struct err *e)
{
    void *dst = field(cfg, o);

    switch (o->type) {
    case OPT_BOOL:
        if (!json_is_boolean(v))
            return config_error(doc, path, e, "%s: expected a boolean, got %s", path,
                                json_type_name(v));
        *(bool *)dst = json_is_true(v);
        return 0;
    case OPT_STRING:
        if (!json_is_string(v))
            return config_error(doc, path, e, "%s: expected a string, got %s", path,
                                json_type_name(v));
        set_str(dst, json_string_value(v));
        return 0;
    case OPT_INT:
    case OPT_PORT:
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            (o->type == OPT_PORT && json_integer_value(v) > 65535))
            return config_error(doc, path, e, "%s: expected %s, got %s", path,
                                o->type == OPT_PORT ? "a port number (0-65535)"
                                                    : "a non-negative integer",
                                json_is_string(v) ? json_string_value(v) : json_type_name(v));
        *(int *)dst = (int)json_integer_value(v);
        return 0;
    case OPT_DURATION: {
        int64_t ns;
        if (!json_is_string(v) || duration_parse(str_from(json_string_value(v)), &ns) < 0)
            return config_error(doc, path, e, "%s: expected a duration such as \"10s\", got %s",
                                path, json_is_string(v) ? json_string_value(v) : json_type_name(v));
        *(int64_t *)dst = ns;
        return 0;
    }
    case OPT_STRING_LIST: {
        struct flag_list *l = dst;
        size_t i;
        json_t *s;
        if (!json_is_array(v))
            return config_error(doc, path, e, "%s: expected a list of strings, got %s", path,
                                json_type_name(v));
        json_array_foreach(v, i, s)
        {
            if (!json_is_string(s))
                return config_error(doc, path, e, "%s: expected a list of strings", path);
            l->items = xrealloc(l->items, (l->n + 1) * sizeof(char *));
            l->items[l->n++] = xstrdup(json_string_value(s));
        }
        return 0;
    }
    }
    return 0;
}

static int read_services(struct agent_config *cfg, const struct config_doc *doc, struct err *e)
{
    json_t *one = json_object_get(doc->root, "service");
    json_t *many = json_object_get(doc->root, "services");

    if (one && !json_is_object(one))
        return config_error(doc, "service", e, "service: expected an object, got %s",
                            json_type_name(one));
    if (many && !json_is_array(many))
        return config_error(doc, "services", e, "services: expected an array, got %s",
                            json_type_name(many));
    size_t n = (one ? 1 : 0) + json_array_size(many);
    cfg->services = xrealloc(cfg->services, (cfg->nservices + n) * sizeof(*cfg->services));
    for (size_t i = 0; i < n; i++) {
        struct config_service *s = &cfg->services[cfg->nservices];
        json_t *def = one ? (i == 0 ? one : json_array_get(many, i - 1)) : json_array_get(many, i);
        if (one && i == 0)
            snprintf(s->path, sizeof(s->path), "service");
        else
            snprintf(s->path, sizeof(s->path), "services[%zu]", one ? i - 1 : i);
        if (!json_is_object(def))
            return config_error(doc, s->path, e, "%s: expected an object, got %s", s->path,
                                json_type_name(def));
        s->def = json_incref(def);
        s->doc = doc;
        cfg->nservices++;
    }
    return 0;
}

/* Reads every key of obj (at path prefix) that the table knows; notes the others. */
static int read_object(struct agent_config *cfg, const struct config_doc *doc, const json_t *obj,
                       const char *prefix, struct err *e)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        char path[256];
        snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", key);
        if (!prefix[0] && (strcmp(key, "service") == 0 || strcmp(key, "services") == 0))
            continue;
        const struct agent_option *o = option_for_key(path);
        int rc = 0;
        if (o)
            rc = read_option(cfg, doc, o, path, v, e);
        else if (is_section(path) && json_is_object(v))
            rc = read_object(cfg, doc, v, path, e);
        else if (is_section(path))
            rc = config_error(doc, path, e, "%s: expected an object, got %s", path,
                              json_type_name(v));
        else
            note_unknown(cfg, path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int load_file(struct agent_config *cfg, const char *path, struct err *e)
{
    struct config_doc *doc = xcalloc(1, sizeof(*doc));
    int rc = config_doc_load(path, doc, e);
    if (rc < 0) {
        free(doc);
        return rc;
    }
    /* Documents stay put (services point at them for error positions): an array of pointers. */
    cfg->docs = xrealloc(cfg->docs, (cfg->ndocs + 1) * sizeof(*cfg->docs));
    cfg->docs[cfg->ndocs++] = doc;
    rc = read_object(cfg, doc, doc->root, "", e);
    return rc < 0 ? rc : read_services(cfg, doc, e);
}

static int load_config_sources(struct agent_config *cfg, const struct flag_list *files,
                               const struct flag_list *dirs, struct err *e)
{
    int rc = 0;

    for (size_t i = 0; i < files->n && rc == 0; i++)
        rc = load_file(cfg, files->items[i], e);
    for (size_t i = 0; i < dirs->n && rc == 0; i++) {
        char **paths;
        rc = config_dir_list(dirs->items[i], &paths, e);
        for (size_t j = 0; rc == 0 && paths[j]; j++)
            rc = load_file(cfg, paths[j], e);
        if (paths && rc >= 0)
            config_dir_list_free(paths);
    }
    return rc;
}

/* ---- flags ------------------------------------------------------------------------------- */

/* The flag table bound to cfg's fields. Returns the number of flags written to out. */
static size_t bind_flags(struct agent_config *cfg, struct flag *out)
{
    static const enum flag_type types[] = {
        [OPT_BOOL] = FLAG_BOOL,         [OPT_STRING] = FLAG_STRING,
        [OPT_INT] = FLAG_INT,           [OPT_PORT] = FLAG_INT,
        [OPT_DURATION] = FLAG_DURATION, [OPT_STRING_LIST] = FLAG_STRING_LIST,
    };
    size_t n = 0;

    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        const struct agent_option *o = &options[i];
        if (o->flag)
            out[n++] = (struct flag){o->flag, types[o->type], field(cfg, o), o->help, false};
    }
    return n;
}

static void defaults(struct agent_config *cfg)
{
    char host[256] = "node";

    memset(cfg, 0, sizeof(*cfg));
    gethostname(host, sizeof(host) - 1);
    cfg->node_name = xstrdup(host);
    cfg->datacenter = xstrdup("dc1");
    cfg->bind_addr = xstrdup("0.0.0.0");
    cfg->client_addr = xstrdup("127.0.0.1");
    cfg->http_port = 8500;
    cfg->log_level = xstrdup("info");
    cfg->retry_interval_ns = 30 * DURATION_SEC;
    cfg->failure_timeout_ns = 5 * DURATION_SEC;
    cfg->acl_default_policy = xstrdup("allow");
}

static int validate(struct agent_config *cfg, struct err *e)
{
    enum log_level lvl;

    if (cfg->http_port <= 0)
        return err_set(e, "invalid HTTP port %d", cfg->http_port);
    if (!log_level_parse(cfg->log_level, &lvl))
        return err_set(e, "invalid log level \"%s\"", cfg->log_level);
    if (strcmp(cfg->acl_default_policy, "allow") != 0 &&
        strcmp(cfg->acl_default_policy, "deny") != 0)
        return err_set(e, "acl.default_policy must be \"allow\" or \"deny\", not \"%s\"",
                       cfg->acl_default_policy);
    if (cfg->failure_timeout_ns < DURATION_SEC / 2)
        return err_set(e, "failure_timeout must be at least 500ms");
    if (cfg->https_port && (!cfg->tls_cert_file || !cfg->tls_key_file))
        return err_set(e, "an HTTPS port needs tls.defaults.cert_file and key_file");
    return 0;
}

int agent_config_load(struct agent_config *cfg, int argc, char **argv, struct err *e)
{
    struct flag flags[ARRAY_LEN(options)];
    struct agent_config scratch;
    int first;

    /* Flags win over files, but name the files: read them once to learn the files, load the
     * files, then apply the flags again on top. */
    defaults(&scratch);
    size_t nflags = bind_flags(&scratch, flags);
    int rc = flags_parse(flags, nflags, argc, argv, &first, e);
    if (rc == FLAGS_HELP)
        flags_usage(stdout, usage, flags, nflags);
    defaults(cfg);
    if (rc == 0 && first < argc)
        rc = err_set(e, "unexpected argument: %s", argv[first]);
    if (rc == 0)
        rc = load_config_sources(cfg, &scratch.config_files, &scratch.config_dirs, e);
    agent_config_free(&scratch);
    if (rc != 0)
        return rc;
    nflags = bind_flags(cfg, flags);
    rc = flags_parse(flags, nflags, argc, argv, &first, e);
    if (rc == 0 && cfg->dev) {
        cfg->server = true;
        cfg->bootstrap = true;
        bool bind_given = false;
        for (size_t i = 0; i < nflags; i++)
            bind_given |= flags[i].seen && strcmp(flags[i].name, "bind") == 0;
        if (!bind_given && cfg->ndocs == 0)
            set_str(&cfg->bind_addr, "127.0.0.1");
    }
    return rc == 0 ? validate(cfg, e) : rc;
}

void agent_config_free(struct agent_config *cfg)
{
    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        const struct agent_option *o = &options[i];
        if (o->type == OPT_STRING)
            FREE_NULL(*(char **)field(cfg, o));
        else if (o->type == OPT_STRING_LIST)
            flag_list_free(field(cfg, o));
    }
    for (size_t i = 0; i < cfg->nservices; i++)
        json_decref(cfg->services[i].def);
    free(cfg->services);
    buf_free(&cfg->unknown_keys);
    for (size_t i = 0; i < cfg->ndocs; i++) {
        config_doc_free(cfg->docs[i]);
        free(cfg->docs[i]);
    }
    free(cfg->docs);
    memset(cfg, 0, sizeof(*cfg));
}
