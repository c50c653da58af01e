#include "registry/agent/agent_config.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/options.h"

static const char usage[] =
    "mesh agent [options]\n\n"
    "  Runs a registry agent that speaks Consul's HTTP API. With -server it holds the catalog\n"
    "  and KV; without it, it is a client agent that owns its node's services and checks and\n"
    "  syncs them to the servers it joins (-join / -retry-join). With -dev: an in-memory server\n"
    "  on 127.0.0.1:8500. With -data-dir: every acknowledged write survives a crash and restart.";

/*
 * Every setting once: its key in config files (a dotted path into nested objects; NULL for
 * flag-only settings), its command-line flag (NULL for file-only settings), its type and where
 * it lives in struct reg_settings. Loading, flag parsing, -help and the unknown-key warning all
 * come from this table (lib/options.h). Several keys may share a field (Consul's older
 * spellings).
 */
#define OFF(f) offsetof(struct reg_settings, f)

#define HTTP_PORT_UNSET (-2) /* neither ports.http nor -http-port: resolve_http_port decides */

static const struct option_def options[] = {
    {"server", "server", OPTION_BOOL, OFF(server),
     "Run in server mode (holds the catalog and KV)."},
    {"bootstrap", "bootstrap", OPTION_BOOL, OFF(bootstrap), "Elect this server leader on its own."},
    {"bootstrap_expect", "bootstrap-expect", OPTION_INT, OFF(bootstrap_expect),
     "Servers expected: with more than 1, a replicated cluster forms once that many see each "
     "other (-retry-join); needs -data-dir."},
    {"raft_snapshot_threshold", "raft-snapshot-threshold", OPTION_INT, OFF(raft_snapshot_threshold),
     "Log entries a replicated server appends between snapshots of its state."},
    {NULL, "dev", OPTION_BOOL, OFF(dev), "Development mode: in-memory server on 127.0.0.1:8500."},
    {"node_name", "node", OPTION_STRING, OFF(node_name), "Node name (default: the hostname)."},
    {"datacenter", "datacenter", OPTION_STRING, OFF(datacenter), "Datacenter name (default dc1)."},
    {"bind_addr", "bind", OPTION_STRING, OFF(bind_addr),
     "Address advertised for this node (default 0.0.0.0: 127.0.0.1 is advertised)."},
    {"client_addr", "client", OPTION_STRING, OFF(client_addr),
     "Address the HTTP API listens on (default 127.0.0.1)."},
    {"ports.http", "http-port", OPTION_PORT_OFF, OFF(http_port),
     "HTTP API port (default 8500; -1: off, the default with verify_incoming and an HTTPS "
     "port)."},
    {"ports.server", "server-port", OPTION_PORT, OFF(server_port),
     "Replication port between servers (default 8300; numeric IPv4 -bind only)."},
    {"ports.https", "https-port", OPTION_PORT, OFF(https_port),
     "HTTPS API port (default off; needs tls cert_file and key_file)."},
    {"ports.dns", "dns-port", OPTION_PORT_OFF, OFF(dns_port), "DNS port, UDP and TCP (-1: off)."},
    {"limits.http_max_conns_per_client", NULL, OPTION_INT, OFF(http_max_conns_per_client), NULL},
    {"limits.http_max_conns", NULL, OPTION_INT, OFF(http_max_conns), NULL},
    {"limits.http_max_unsent_mb", "http-max-unsent-mb", OPTION_INT, OFF(http_max_unsent_mb),
     "MiB of answers not yet taken by one client address's connections beyond which its "
     "requests wait (0: no limit)."},
    {"limits.http_write_timeout", "http-write-timeout", OPTION_DURATION, OFF(http_write_timeout_ns),
     "Close a connection whose client takes no byte of its answer for this long."},
    {"domain", "domain", OPTION_STRING, OFF(domain), "DNS domain."},
    {"dns_config.only_passing", NULL, OPTION_BOOL, OFF(dns_only_passing), NULL},
    {"dns_config.a_record_limit", NULL, OPTION_INT, OFF(dns_a_record_limit), NULL},
    {"dns_config.udp_answer_limit", NULL, OPTION_INT, OFF(dns_udp_answer_limit), NULL},
    {"dns_config.enable_truncate", NULL, OPTION_BOOL, OFF(dns_enable_truncate), NULL},
    {"dns_config.enable_additional_node_meta_txt", NULL, OPTION_BOOL, OFF(dns_node_meta_txt), NULL},
    {"dns_config.node_ttl", NULL, OPTION_DURATION, OFF(dns_node_ttl_ns), NULL},
    {"dns_config.service_ttl.*", NULL, OPTION_DURATION, OFF(dns_service_ttl_ns), NULL},
    {"data_dir", "data-dir", OPTION_STRING, OFF(data_dir), "Directory for durable state."},
    {NULL, "config-file", OPTION_STRING_LIST, OFF(config_files), "JSON config file (repeatable)."},
    {NULL, "config-dir", OPTION_STRING_LIST, OFF(config_dirs), "Directory of *.json config files."},
    {"pid_file", "pid-file", OPTION_STRING, OFF(pid_file), "Write the agent's PID to this file."},
    {"ui", "ui", OPTION_BOOL, OFF(ui), "Serve the web UI on /ui/."},
    {"ui_config.enabled", NULL, OPTION_BOOL, OFF(ui), NULL},
    {"log_level", "log-level", OPTION_STRING, OFF(log_level), "trace, debug, info, warn or error."},
    {"enable_script_checks", "enable-script-checks", OPTION_BOOL, OFF(enable_script_checks),
     "Allow script checks (run without a shell)."},
    {"enable_local_script_checks", "enable-local-script-checks", OPTION_BOOL,
     OFF(enable_local_script_checks), "Allow script checks from config files only."},
    {"start_join", "join", OPTION_STRING_LIST, OFF(start_join),
     "Server address to join at start (repeatable)."},
    {"retry_join", "retry-join", OPTION_STRING_LIST, OFF(retry_join),
     "Server address to join, retried until it answers (repeatable)."},
    {"retry_interval", "retry-interval", OPTION_DURATION, OFF(retry_interval_ns),
     "Time between join attempts (default 30s)."},
    {"failure_timeout", "failure-timeout", OPTION_DURATION, OFF(failure_timeout_ns),
     "A node that does not heartbeat for this long is failed (default 5s)."},
    {"acl.enabled", NULL, OPTION_BOOL, OFF(acl_enabled), NULL},
    {"acl.default_policy", NULL, OPTION_STRING, OFF(acl_default_policy), NULL},
    {"acl.tokens.initial_management", NULL, OPTION_STRING, OFF(acl_initial_management), NULL},
    {"acl.tokens.master", NULL, OPTION_STRING, OFF(acl_initial_management), NULL},
    {"acl.tokens.agent", NULL, OPTION_STRING, OFF(acl_agent_token), NULL},
    {"acl.tokens.default", NULL, OPTION_STRING, OFF(acl_default_token), NULL},
    {"tls.defaults.ca_file", NULL, OPTION_STRING, OFF(tls_ca_file), NULL},
    {"tls.defaults.cert_file", NULL, OPTION_STRING, OFF(tls_cert_file), NULL},
    {"tls.defaults.key_file", NULL, OPTION_STRING, OFF(tls_key_file), NULL},
    {"tls.defaults.verify_incoming", NULL, OPTION_BOOL, OFF(tls_verify_incoming), NULL},
    {"tls.defaults.verify_outgoing", NULL, OPTION_BOOL, OFF(tls_verify_outgoing), NULL},
    {"ca_file", NULL, OPTION_STRING, OFF(tls_ca_file), NULL},
    {"cert_file", NULL, OPTION_STRING, OFF(tls_cert_file), NULL},
    {"key_file", NULL, OPTION_STRING, OFF(tls_key_file), NULL},
    {"verify_incoming", NULL, OPTION_BOOL, OFF(tls_verify_incoming), NULL},
    {"verify_outgoing", NULL, OPTION_BOOL, OFF(tls_verify_outgoing), NULL},
};

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

static void note_unknown(struct reg_settings *cfg, const char *key)
{
    if (list_has(&cfg->unknown_keys, key))
        return;
    if (cfg->unknown_keys.len)
        buf_append_cstr(&cfg->unknown_keys, ", ");
    buf_append_cstr(&cfg->unknown_keys, key);
}

static int read_services(struct reg_settings *cfg, const struct config_doc *doc, struct err *e)
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
        struct reg_config_service *s = &cfg->services[cfg->nservices];
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
static int read_object(struct reg_settings *cfg, const struct config_doc *doc, const json_t *obj,
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
        /* null leaves a key unset, as Consul's decoder does: generated configs write
         * `"agent": null` for a token they do not have. */
        if (json_is_null(v))
            continue;
        const struct option_def *o = options_find(options, ARRAY_LEN(options), path);
        bool section = options_is_section(options, ARRAY_LEN(options), path);
        int rc = 0;
        if (o)
            rc = options_read(o, cfg, doc, path, v, e);
        else if (section && json_is_object(v))
            rc = read_object(cfg, doc, v, path, e);
        else if (section)
            rc = config_error(doc, path, e, "%s: expected an object, got %s", path,
                              json_type_name(v));
        else
            note_unknown(cfg, path);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int load_file(struct reg_settings *cfg, const char *path, struct err *e)
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

static int load_config_sources(struct reg_settings *cfg, const struct flag_list *files,
                               const struct flag_list *dirs, struct err *e)
{
    int rc = 0;

    for (size_t i = 0; i < files->n && rc == 0; i++)
        rc = load_file(cfg, files->items[i], e);
    for (size_t i = 0; i < dirs->n && rc == 0; i++) {
        char **paths;
        rc = config_dir_list(dirs->items[i], &paths, e);
        if (rc < 0)
            break;
        for (size_t j = 0; rc == 0 && paths[j]; j++)
            rc = load_file(cfg, paths[j], e);
        config_dir_list_free(paths); /* a file that failed to load does not keep the list */
    }
    return rc;
}

/* ---- flags ------------------------------------------------------------------------------- */

static void defaults(struct reg_settings *cfg)
{
    char host[256] = "node";

    memset(cfg, 0, sizeof(*cfg));
    gethostname(host, sizeof(host) - 1);
    cfg->node_name = xstrdup(host);
    cfg->datacenter = xstrdup("dc1");
    cfg->bind_addr = xstrdup("0.0.0.0");
    cfg->client_addr = xstrdup("127.0.0.1");
    cfg->http_port = HTTP_PORT_UNSET;
    cfg->server_port = 8300;
    cfg->raft_snapshot_threshold = 16384; /* Consul's default; docs/replication.md */
    cfg->dns_port = 8600;
    cfg->http_max_conns_per_client = 200;
    cfg->http_max_conns = 10000;
    cfg->http_max_unsent_mb = 64;
    cfg->http_write_timeout_ns = 60 * DURATION_SEC;
    cfg->domain = xstrdup("consul.");
    cfg->dns_udp_answer_limit = 3;
    cfg->dns_node_meta_txt = true;
    cfg->log_level = xstrdup("info");
    cfg->retry_interval_ns = 30 * DURATION_SEC;
    cfg->failure_timeout_ns = 5 * DURATION_SEC;
    cfg->acl_default_policy = xstrdup("allow");
}

/*
 * Plain HTTP serves anyone who can connect, certificate or not: with verify_incoming and an
 * HTTPS port, it stays closed unless ports.http (or -http-port) asks for it, so requiring client
 * certificates is not undone by the default port 8500.
 */
static void resolve_http_port(struct reg_settings *cfg)
{
    if (cfg->http_port == HTTP_PORT_UNSET)
        cfg->http_port = cfg->https_port && cfg->tls_verify_incoming ? -1 : 8500;
}

static int validate(struct reg_settings *cfg, struct err *e)
{
    enum log_level lvl;

    if (cfg->http_port == 0 || cfg->http_port < -1 || cfg->http_port > 65535)
        return err_set(e, "invalid HTTP port %d", cfg->http_port);
    if (cfg->http_port == -1 && !cfg->https_port)
        return err_set(e, "no API listener: ports.http is -1 and no ports.https is set");
    if (cfg->dns_port < -1 || cfg->dns_port > 65535)
        return err_set(e, "invalid DNS port %d", cfg->dns_port);
    if (!cfg->domain[0] || cfg->domain[0] == '.' || strstr(cfg->domain, "..") ||
        strlen(cfg->domain) > 200)
        return err_set(e, "invalid DNS domain \"%s\"", cfg->domain);
    if (!log_level_parse(cfg->log_level, &lvl))
        return err_set(e, "invalid log level \"%s\"", cfg->log_level);
    if (strcmp(cfg->acl_default_policy, "allow") != 0 &&
        strcmp(cfg->acl_default_policy, "deny") != 0)
        return err_set(e, "acl.default_policy must be \"allow\" or \"deny\", not \"%s\"",
                       cfg->acl_default_policy);
    if (cfg->http_max_conns < 1)
        return err_set(e, "limits.http_max_conns must be at least 1, not %d", cfg->http_max_conns);
    if (cfg->http_max_unsent_mb > 1 << 20)
        return err_set(e, "limits.http_max_unsent_mb must be at most 1048576, not %d",
                       cfg->http_max_unsent_mb);
    if (cfg->http_write_timeout_ns < DURATION_SEC)
        return err_set(e, "limits.http_write_timeout must be at least 1s");
    if (cfg->failure_timeout_ns < DURATION_SEC / 2)
        return err_set(e, "failure_timeout must be at least 500ms");
    if (cfg->bootstrap_expect < 0 || cfg->bootstrap_expect > 16)
        return err_set(e, "invalid -bootstrap-expect %d (1 to 16)", cfg->bootstrap_expect);
    if (cfg->raft_snapshot_threshold < 2 || cfg->raft_snapshot_threshold > 1000000)
        return err_set(e, "invalid raft_snapshot_threshold %d (2 to 1000000)",
                       cfg->raft_snapshot_threshold);
    if (cfg->bootstrap && cfg->bootstrap_expect > 1)
        return err_set(e, "-bootstrap and -bootstrap-expect %d are mutually exclusive",
                       cfg->bootstrap_expect);
    if (cfg->https_port && (!cfg->tls_cert_file || !cfg->tls_key_file))
        return err_set(e, "an HTTPS port needs tls.defaults.cert_file and key_file");
    return 0;
}

/* The config files and directories the flags name (-config-file, -config-dir), into cfg. */
static int read_files(void *cfg, const void *named, void *data, struct err *e)
{
    const struct reg_settings *n = named;

    return load_config_sources(cfg, &n->config_files, &n->config_dirs, e);
}

static void defaults_cb(void *cfg)
{
    defaults(cfg);
}

static void free_cb(void *cfg)
{
    reg_agent_config_free(cfg);
}

static const struct options_loader loader = {
    options, ARRAY_LEN(options), usage, defaults_cb, free_cb, read_files,
};

int reg_agent_config_load(struct reg_settings *cfg, int argc, char **argv, struct err *e)
{
    struct flag flags[ARRAY_LEN(options)];
    struct reg_settings scratch;
    size_t nflags;
    int rc = options_load(&loader, cfg, &scratch, flags, &nflags, argc, argv, NULL, e);

    if (rc == 0 && cfg->dev) {
        cfg->server = true;
        cfg->bootstrap = true;
        bool bind_given = false;
        for (size_t i = 0; i < nflags; i++)
            bind_given |= flags[i].seen && strcmp(flags[i].name, "bind") == 0;
        if (!bind_given && cfg->ndocs == 0)
            set_str(&cfg->bind_addr, "127.0.0.1");
    }
    if (rc == 0)
        resolve_http_port(cfg);
    return rc == 0 ? validate(cfg, e) : rc;
}

void reg_agent_config_free(struct reg_settings *cfg)
{
    options_free(options, ARRAY_LEN(options), cfg);
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
