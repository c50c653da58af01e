#include "registry/agent_config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/flags.h"
#include "lib/json.h"
#include "lib/log.h"

static const char usage[] =
    "mesh agent [options]\n\n"
    "  Runs a registry agent that speaks Consul's HTTP API. With -dev: an in-memory server on\n"
    "  127.0.0.1:8500. With -data-dir: every acknowledged write survives a crash and restart.";

/* Values given on the command line, applied over the files'. */
struct agent_flags {
    bool server, bootstrap, dev, ui, enable_script_checks;
    int bootstrap_expect, http_port;
    char *node, *datacenter, *bind, *client, *data_dir, *pid_file, *log_level;
    struct flag_list config_files, config_dirs;
};

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = xstrdup(v);
}

/* ---- config files ------------------------------------------------------------------------ */

static const char *const known_keys[] = {"server",
                                         "bootstrap",
                                         "bootstrap_expect",
                                         "node_name",
                                         "datacenter",
                                         "data_dir",
                                         "bind_addr",
                                         "client_addr",
                                         "ports",
                                         "services",
                                         "service",
                                         "enable_script_checks",
                                         "enable_local_script_checks",
                                         "ui",
                                         "ui_config",
                                         "log_level",
                                         "pid_file"};

static bool is_known(const char *k)
{
    for (size_t i = 0; i < ARRAY_LEN(known_keys); i++)
        if (strcmp(k, known_keys[i]) == 0)
            return true;
    return false;
}

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

static int read_bool(const struct config_doc *doc, const char *key, bool *out, struct err *e)
{
    json_t *v = json_object_get(doc->root, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return config_error(doc, key, e, "%s: expected a boolean, got %s", key, json_type_name(v));
    *out = json_is_true(v);
    return 0;
}

static int read_string(const struct config_doc *doc, const char *key, char **out, struct err *e)
{
    json_t *v = json_object_get(doc->root, key);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return config_error(doc, key, e, "%s: expected a string, got %s", key, json_type_name(v));
    set_str(out, json_string_value(v));
    return 0;
}

static int read_port(const struct config_doc *doc, const json_t *obj, const char *key,
                     const char *path, int *out, struct err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < -1 || json_integer_value(v) > 65535)
        return config_error(doc, path, e, "%s: expected a port number (0-65535), got %s", path,
                            json_is_string(v) ? json_string_value(v) : json_type_name(v));
    *out = (int)json_integer_value(v);
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

static int apply_doc(struct agent_config *cfg, const struct config_doc *doc, struct err *e)
{
    const char *key;
    json_t *v;
    int rc = 0;

    json_object_foreach(doc->root, key, v)
    {
        if (!is_known(key))
            note_unknown(cfg, key);
    }
    rc = read_bool(doc, "server", &cfg->server, e);
    if (!rc)
        rc = read_bool(doc, "bootstrap", &cfg->bootstrap, e);
    if (!rc)
        rc = read_string(doc, "node_name", &cfg->node_name, e);
    if (!rc)
        rc = read_string(doc, "datacenter", &cfg->datacenter, e);
    if (!rc)
        rc = read_string(doc, "data_dir", &cfg->data_dir, e);
    if (!rc)
        rc = read_string(doc, "bind_addr", &cfg->bind_addr, e);
    if (!rc)
        rc = read_string(doc, "client_addr", &cfg->client_addr, e);
    if (!rc)
        rc = read_string(doc, "log_level", &cfg->log_level, e);
    if (!rc)
        rc = read_string(doc, "pid_file", &cfg->pid_file, e);
    if (!rc)
        rc = read_bool(doc, "enable_script_checks", &cfg->enable_script_checks, e);
    if (!rc)
        rc = read_bool(doc, "enable_local_script_checks", &cfg->enable_local_script_checks, e);
    if (!rc)
        rc = read_bool(doc, "ui", &cfg->ui, e);
    if (!rc && (v = json_object_get(doc->root, "bootstrap_expect"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            rc = config_error(doc, "bootstrap_expect", e,
                              "bootstrap_expect: expected a non-negative integer");
        else
            cfg->bootstrap_expect = (int)json_integer_value(v);
    }
    if (!rc && (v = json_object_get(doc->root, "ports"))) {
        if (!json_is_object(v))
            return config_error(doc, "ports", e, "ports: expected an object, got %s",
                                json_type_name(v));
        json_t *port;
        json_object_foreach(v, key, port)
        {
            if (strcmp(key, "http") != 0) {
                char k[64];
                snprintf(k, sizeof(k), "ports.%s", key);
                note_unknown(cfg, k);
            }
        }
        rc = read_port(doc, json_object_get(doc->root, "ports"), "http", "ports.http",
                       &cfg->http_port, e);
    }
    if (!rc && (v = json_object_get(doc->root, "ui_config"))) {
        json_t *en = json_object_get(v, "enabled");
        if (json_is_boolean(en))
            cfg->ui = json_is_true(en);
    }
    if (!rc)
        rc = read_services(cfg, doc, e);
    return rc;
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
    return apply_doc(cfg, doc, e);
}

/* ---- flags ------------------------------------------------------------------------------- */

static void apply_flags(struct agent_config *cfg, struct agent_flags *f, struct flag *flags,
                        size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct flag *fl = &flags[i];
        if (!fl->seen)
            continue;
        if (fl->ptr == &f->server)
            cfg->server = f->server;
        else if (fl->ptr == &f->bootstrap)
            cfg->bootstrap = f->bootstrap;
        else if (fl->ptr == &f->dev)
            cfg->dev = f->dev;
        else if (fl->ptr == &f->ui)
            cfg->ui = f->ui;
        else if (fl->ptr == &f->enable_script_checks)
            cfg->enable_script_checks = f->enable_script_checks;
        else if (fl->ptr == &f->bootstrap_expect)
            cfg->bootstrap_expect = f->bootstrap_expect;
        else if (fl->ptr == &f->http_port)
            cfg->http_port = f->http_port;
        else if (fl->ptr == &f->node)
            set_str(&cfg->node_name, f->node);
        else if (fl->ptr == &f->datacenter)
            set_str(&cfg->datacenter, f->datacenter);
        else if (fl->ptr == &f->bind)
            set_str(&cfg->bind_addr, f->bind);
        else if (fl->ptr == &f->client)
            set_str(&cfg->client_addr, f->client);
        else if (fl->ptr == &f->data_dir)
            set_str(&cfg->data_dir, f->data_dir);
        else if (fl->ptr == &f->pid_file)
            set_str(&cfg->pid_file, f->pid_file);
        else if (fl->ptr == &f->log_level)
            set_str(&cfg->log_level, f->log_level);
    }
}

static void free_flags(struct agent_flags *f)
{
    free(f->node);
    free(f->datacenter);
    free(f->bind);
    free(f->client);
    free(f->data_dir);
    free(f->pid_file);
    free(f->log_level);
    flag_list_free(&f->config_files);
    flag_list_free(&f->config_dirs);
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
}

static int load_config_sources(struct agent_config *cfg, struct agent_flags *f, struct err *e)
{
    int rc = 0;

    for (size_t i = 0; i < f->config_files.n && rc == 0; i++)
        rc = load_file(cfg, f->config_files.items[i], e);
    for (size_t i = 0; i < f->config_dirs.n && rc == 0; i++) {
        char **paths;
        rc = config_dir_list(f->config_dirs.items[i], &paths, e);
        for (size_t j = 0; rc == 0 && paths[j]; j++)
            rc = load_file(cfg, paths[j], e);
        if (paths && rc >= 0)
            config_dir_list_free(paths);
    }
    return rc;
}

int agent_config_load(struct agent_config *cfg, int argc, char **argv, struct err *e)
{
    struct agent_flags f = {0};
    struct flag flags[] = {
        {"server", FLAG_BOOL, &f.server, "Run in server mode (holds the catalog and KV).", false},
        {"bootstrap", FLAG_BOOL, &f.bootstrap, "Elect this server leader on its own.", false},
        {"bootstrap-expect", FLAG_INT, &f.bootstrap_expect, "Servers expected (1 for now).", false},
        {"dev", FLAG_BOOL, &f.dev, "Development mode: in-memory server on 127.0.0.1:8500.", false},
        {"node", FLAG_STRING, &f.node, "Node name (default: the hostname).", false},
        {"datacenter", FLAG_STRING, &f.datacenter, "Datacenter name (default dc1).", false},
        {"bind", FLAG_STRING, &f.bind, "Address advertised for this node (default 0.0.0.0).",
         false},
        {"client", FLAG_STRING, &f.client, "Address the HTTP API listens on (default 127.0.0.1).",
         false},
        {"http-port", FLAG_INT, &f.http_port, "HTTP API port (default 8500).", false},
        {"data-dir", FLAG_STRING, &f.data_dir, "Directory for durable state.", false},
        {"config-file", FLAG_STRING_LIST, &f.config_files, "JSON config file (repeatable).", false},
        {"config-dir", FLAG_STRING_LIST, &f.config_dirs, "Directory of *.json config files.",
         false},
        {"pid-file", FLAG_STRING, &f.pid_file, "Write the agent's PID to this file.", false},
        {"ui", FLAG_BOOL, &f.ui, "Serve the web UI on /ui/.", false},
        {"log-level", FLAG_STRING, &f.log_level, "trace, debug, info, warn or error.", false},
        {"enable-script-checks", FLAG_BOOL, &f.enable_script_checks,
         "Allow script checks (run without a shell).", false},
    };
    int first;

    defaults(cfg);
    int rc = flags_parse(flags, ARRAY_LEN(flags), argc, argv, &first, e);
    if (rc == FLAGS_HELP) {
        flags_usage(stdout, usage, flags, ARRAY_LEN(flags));
        free_flags(&f);
        return FLAGS_HELP;
    }
    if (rc == 0 && first < argc)
        rc = err_set(e, "unexpected argument: %s", argv[first]);
    if (rc == 0)
        rc = load_config_sources(cfg, &f, e);
    if (rc == 0) {
        apply_flags(cfg, &f, flags, ARRAY_LEN(flags));
        if (cfg->dev) {
            cfg->server = true;
            cfg->bootstrap = true;
            if (!f.bind && cfg->ndocs == 0)
                set_str(&cfg->bind_addr, "127.0.0.1");
        }
    }
    if (rc == 0 && cfg->http_port <= 0)
        rc = err_set(e, "invalid HTTP port %d", cfg->http_port);
    if (rc == 0) {
        enum log_level lvl;
        if (!log_level_parse(cfg->log_level, &lvl))
            rc = err_set(e, "invalid log level \"%s\"", cfg->log_level);
    }
    free_flags(&f);
    return rc;
}

void agent_config_free(struct agent_config *cfg)
{
    free(cfg->node_name);
    free(cfg->datacenter);
    free(cfg->bind_addr);
    free(cfg->client_addr);
    free(cfg->data_dir);
    free(cfg->pid_file);
    free(cfg->log_level);
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
