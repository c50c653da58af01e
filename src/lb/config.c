/*
 * `mesh lb` configuration: one table of options serves the flags, the JSON config file keys
 * (the flag name with '-' replaced by '_') and -help, as the agent's configuration does.
 */
#include "lb/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/config.h"
#include "lib/duration.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/options.h"

static const char usage[] =
    "mesh lb [options]\n\n"
    "  Runs the HTTP load balancer: traffic on -port is spread over the passing instances of\n"
    "  -service in the registry (followed live with blocking queries), or over the -server\n"
    "  list. Stats and the admin API listen on -stats-port. Flags win over -config FILE, a\n"
    "  JSON object whose keys are the flag names with '_' for '-' (\"servers\" for -server).\n"
    "  SIGTERM drains and exits; SIGHUP re-reads the configuration.";

/*
 * Every setting once (lib/options.h): its config file key (NULL for flag-only), its flag, its
 * type, where it lives, its help. Flags, the file reader and -help all come from this table.
 */
#define OFF(f) offsetof(struct lb_config, f)

static const struct option_def options[] = {
    {NULL, "config", OPTION_STRING, OFF(config_file), "JSON config file (re-read on SIGHUP)."},
    {"bind", "bind", OPTION_STRING, OFF(bind_addr), "Frontend address."},
    {"port", "port", OPTION_PORT, OFF(port), "Frontend port."},
    {"workers", "workers", OPTION_INT, OFF(workers),
     "Worker threads (default 0: one per CPU, at most 64); with 1 the main thread proxies."},
    {"maxconn", "maxconn", OPTION_INT, OFF(maxconn), "Client connections per worker."},
    {"io", "io", OPTION_STRING, OFF(io_name),
     "Socket I/O: auto (io_uring where the kernel allows it, else epoll), epoll or uring."},
    {"backend", "backend", OPTION_STRING, OFF(backend_name),
     "Backend name in stats (default: the service name, or web)."},
    {"balance", "balance", OPTION_STRING, OFF(balance_name),
     "roundrobin (weighted), leastconn or random (two choices)."},
    {"service", "service", OPTION_STRING, OFF(service),
     "Registry service to balance over (its passing instances)."},
    {"tag", "tag", OPTION_STRING, OFF(service_tag), "Only instances with this tag."},
    {"registry_addr", "registry-addr", OPTION_STRING, OFF(registry_addr),
     "Registry agent [http[s]://]HOST[:PORT] (default $CONSUL_HTTP_ADDR, else 127.0.0.1:8500)."},
    {"registry_token", "registry-token", OPTION_STRING, OFF(registry_token),
     "ACL token for the registry (default $CONSUL_HTTP_TOKEN)."},
    {"registry_tls", "registry-tls", OPTION_BOOL, OFF(registry_tls),
     "Speak HTTPS to the registry (also $CONSUL_HTTP_SSL)."},
    {"registry_ca_file", "registry-ca-file", OPTION_STRING, OFF(registry_ca_file),
     "PEM CA bundle for the registry's certificate (default $CONSUL_CACERT, else the\n"
     "system store)."},
    {"registry_cert_file", "registry-cert-file", OPTION_STRING, OFF(registry_cert_file),
     "PEM client certificate for a registry with verify_incoming ($CONSUL_CLIENT_CERT)."},
    {"registry_key_file", "registry-key-file", OPTION_STRING, OFF(registry_key_file),
     "PEM key of -registry-cert-file ($CONSUL_CLIENT_KEY)."},
    {"servers", "server", OPTION_STRING_LIST, OFF(servers),
     "Static server HOST:PORT[,WEIGHT] (repeatable), instead of or besides -service."},
    {"server", NULL, OPTION_STRING_LIST, OFF(servers), NULL},
    {"server_maxconn", "server-maxconn", OPTION_INT, OFF(server_maxconn),
     "Concurrent requests per server, more wait in the queue (default 0: unlimited)."},
    {"queue_max", "queue-max", OPTION_INT, OFF(queue_max),
     "Requests waiting for a server slot, per backend."},
    {"check", "check", OPTION_BOOL, OFF(check), "Active health checks."},
    {"check_path", "check-path", OPTION_STRING, OFF(check_path), "Path of the health check GET."},
    {"check_inter", "check-inter", OPTION_DURATION, OFF(check_inter_ns),
     "Time between checks of a server."},
    {"check_rise", "check-rise", OPTION_INT, OFF(check_rise),
     "Consecutive passing checks to bring a server UP."},
    {"check_fall", "check-fall", OPTION_INT, OFF(check_fall),
     "Consecutive failed checks to mark a server DOWN."},
    {"check_timeout", "check-timeout", OPTION_DURATION, OFF(check_timeout_ns),
     "Timeout of one check."},
    {"eject_after_errors", "eject-after-errors", OPTION_INT, OFF(eject_after_errors),
     "Consecutive connect failures or 5xx that eject a server (0 = off)."},
    {"eject_for", "eject-for", OPTION_DURATION, OFF(eject_for_ns),
     "How long an ejected server stays out without active checks."},
    {"retries", "retries", OPTION_INT, OFF(retries), "Extra attempts after a connect failure."},
    {"redispatch", "redispatch", OPTION_BOOL, OFF(redispatch), "Retry on another server."},
    {"timeout_connect", "timeout-connect", OPTION_DURATION, OFF(timeout_connect_ns),
     "Connect to a server."},
    {"timeout_client", "timeout-client", OPTION_DURATION, OFF(timeout_client_ns),
     "Client inactivity."},
    {"timeout_server", "timeout-server", OPTION_DURATION, OFF(timeout_server_ns),
     "Server inactivity."},
    {"timeout_queue", "timeout-queue", OPTION_DURATION, OFF(timeout_queue_ns),
     "Time a request may wait for a server slot."},
    {"timeout_keepalive", "timeout-keepalive", OPTION_DURATION, OFF(timeout_keepalive_ns),
     "Idle keep-alive client connection."},
    {"timeout_http_request", "timeout-http-request", OPTION_DURATION, OFF(timeout_http_request_ns),
     "Time to receive a request's headers."},
    {"timeout_tunnel", "timeout-tunnel", OPTION_DURATION, OFF(timeout_tunnel_ns),
     "Inactivity of a tunnel (WebSocket after 101), both directions."},
    {"x_forwarded_for", "x-forwarded-for", OPTION_BOOL, OFF(x_forwarded_for),
     "Add X-Forwarded-For and X-Forwarded-Proto."},
    {"forwarded", "forwarded", OPTION_BOOL, OFF(forwarded), "Add an RFC 7239 Forwarded header."},
    {"via", "via", OPTION_BOOL, OFF(via), "Add Via: 1.1 mesh-lb."},
    {"errorfile_503", "errorfile-503", OPTION_STRING, OFF(errorfile_503),
     "HTML file served when no server is usable (default: a built-in page)."},
    {"stats_addr", "stats-addr", OPTION_STRING, OFF(stats_addr), "Stats and admin address."},
    {"stats_port", "stats-port", OPTION_PORT, OFF(stats_port), "Stats and admin port (0 = off)."},
    {"stats_path", "stats-path", OPTION_STRING, OFF(stats_path), "Stats page path."},
    {"stats_user", "stats-user", OPTION_STRING, OFF(stats_user), "Stats user."},
    {"stats_password", "stats-password", OPTION_STRING, OFF(stats_password), "Stats password."},
    {"stats_refresh", "stats-refresh", OPTION_INT, OFF(stats_refresh_s),
     "Stats page auto-refresh in seconds (0 = off)."},
    {"pid_file", "pid-file", OPTION_STRING, OFF(pid_file), "Write the PID to this file."},
    {"log_level", "log-level", OPTION_STRING, OFF(log_level), "debug, info, warn or error."},
};

static void *field(struct lb_config *s, const struct option_def *o)
{
    return (char *)s + o->offset;
}

/* ---- config file ------------------------------------------------------------------------- */

static int read_file(struct lb_config *src, const struct config_doc *doc, struct err *e)
{
    const char *key;
    json_t *v;

    json_object_foreach(doc->root, key, v)
    {
        const struct option_def *o = NULL;
        for (size_t i = 0; i < ARRAY_LEN(options) && !o; i++)
            if (options[i].key && strcmp(options[i].key, key) == 0)
                o = &options[i];
        if (!o) /* a typo must not silently fall back to a default */
            return config_error(doc, key, e, "unknown key \"%s\"", key);
        int rc = options_read(o, src, doc, key, v, e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* ---- flags, defaults, validation --------------------------------------------------------- */

static void defaults(struct lb_config *c)
{
    memset(c, 0, sizeof(*c));
    c->bind_addr = xstrdup("0.0.0.0");
    c->port = 8080;
    c->workers = 0; /* one per CPU, counted in finish(): -help shows the rule, not a count */
    c->maxconn = 10000;
    c->x_forwarded_for = true;
    c->via = true;
    c->balance_name = xstrdup("roundrobin");
    c->io_name = xstrdup("auto");
    c->queue_max = 1000;
    c->check = true;
    c->check_path = xstrdup("/health");
    c->check_inter_ns = 5 * DURATION_SEC;
    c->check_rise = 2;
    c->check_fall = 3;
    c->check_timeout_ns = 2 * DURATION_SEC;
    c->eject_after_errors = 5;
    c->eject_for_ns = 10 * DURATION_SEC;
    c->retries = 3;
    c->redispatch = true;
    c->timeout_connect_ns = 2 * DURATION_SEC;
    c->timeout_client_ns = 30 * DURATION_SEC;
    c->timeout_server_ns = 30 * DURATION_SEC;
    c->timeout_queue_ns = 5 * DURATION_SEC;
    c->timeout_keepalive_ns = 30 * DURATION_SEC;
    c->timeout_http_request_ns = 10 * DURATION_SEC;
    c->timeout_tunnel_ns = 3600 * DURATION_SEC;
    c->stats_addr = xstrdup("0.0.0.0");
    c->stats_port = 8404;
    c->stats_path = xstrdup("/stats");
    c->stats_user = xstrdup("admin");
    c->stats_password = xstrdup("admin");
    c->stats_refresh_s = 5;
    c->log_level = xstrdup("info");
}

/* Checks "host:port[,weight]" of a static server; 0 or -EINVAL with msg set. */
static int check_server(const char *s, char *msg, size_t n)
{
    char host[256];
    int port, weight = 1;
    const char *comma = strchr(s, ',');
    char *addr = comma ? xstrndup(s, (size_t)(comma - s)) : xstrdup(s);
    struct sockaddr_storage sa;
    int rc = 0;

    if (net_split_host_port(addr, host, sizeof(host), &port, 0) < 0 || port <= 0 || port > 65535)
        rc = -EINVAL, snprintf(msg, n, "server \"%s\": expected HOST:PORT[,WEIGHT]", s);
    else if (strcmp(host, "localhost") != 0 && net_parse_addr(host, port, &sa) < 0)
        rc = -EINVAL, snprintf(msg, n, "server \"%s\": the host must be an IP address", s);
    else if (comma && (sscanf(comma + 1, "%d", &weight) != 1 || weight < 0 || weight > 256))
        rc = -EINVAL, snprintf(msg, n, "server \"%s\": weight must be 0..256", s);
    free(addr);
    return rc;
}

/* What is wrong with the option's value, or NULL. msg is scratch space. */
static const char *bad_value(const struct lb_config *c, const char *key, char *msg, size_t n)
{
    enum log_level lvl;

    if (strcmp(key, "balance") == 0 && strcmp(c->balance_name, "roundrobin") != 0 &&
        strcmp(c->balance_name, "leastconn") != 0 && strcmp(c->balance_name, "random") != 0)
        return snprintf(msg, n, "balance must be roundrobin, leastconn or random, not \"%s\"",
                        c->balance_name),
               msg;
    if (strcmp(key, "io") == 0 && strcmp(c->io_name, "auto") != 0 &&
        strcmp(c->io_name, "epoll") != 0 && strcmp(c->io_name, "uring") != 0)
        return snprintf(msg, n, "io must be auto, epoll or uring, not \"%s\"", c->io_name), msg;
    if (strcmp(key, "port") == 0 && c->port <= 0)
        return "port must be 1-65535";
    if (strcmp(key, "workers") == 0 && (c->workers < 0 || c->workers > 256))
        return "workers must be 0 (one per CPU) to 256";
    if (strcmp(key, "maxconn") == 0 && c->maxconn < 1)
        return "maxconn must be at least 1";
    if (strcmp(key, "log_level") == 0 && !log_level_parse(c->log_level, &lvl))
        return snprintf(msg, n, "invalid log level \"%s\"", c->log_level), msg;
    if (strcmp(key, "check_path") == 0 && c->check_path[0] != '/')
        return "check_path must start with '/'";
    if (strcmp(key, "stats_path") == 0 && c->stats_path[0] != '/')
        return "stats_path must start with '/'";
    if ((strcmp(key, "check_rise") == 0 && c->check_rise < 1) ||
        (strcmp(key, "check_fall") == 0 && c->check_fall < 1))
        return "check_rise and check_fall must be at least 1";
    if (strcmp(key, "check_inter") == 0 && c->check_inter_ns < 10 * DURATION_MS)
        return "check_inter must be at least 10ms";
    if (strcmp(key, "check_timeout") == 0 && c->check_timeout_ns < DURATION_MS)
        return "check_timeout must be at least 1ms";
    if (strcmp(key, "timeout_connect") == 0 && c->timeout_connect_ns < DURATION_MS)
        return "timeout_connect must be at least 1ms";
    if (strcmp(key, "servers") == 0)
        for (size_t i = 0; i < c->servers.n; i++)
            if (check_server(c->servers.items[i], msg, n) < 0)
                return msg;
    if (strcmp(key, "service") == 0 && c->service && !c->service[0])
        return "service must not be empty";
    return NULL;
}

/* Validates every option; a value that came from the file is reported at its file:line. */
static int validate(struct lb_config *src, const struct config_doc *doc, const struct flag *flags,
                    size_t nflags, struct err *e)
{
    char msg[300];

    for (size_t i = 0; i < ARRAY_LEN(options); i++) {
        const struct option_def *o = &options[i];
        if (!o->key)
            continue;
        const char *bad = bad_value(src, o->key, msg, sizeof(msg));
        if (!bad)
            continue;
        bool from_flag = false;
        for (size_t j = 0; j < nflags; j++)
            from_flag |= flags[j].seen && flags[j].ptr == field(src, o);
        json_t *in_file = doc ? json_object_get(doc->root, o->key) : NULL;
        if (!from_flag && in_file) {
            char path[64];
            snprintf(path, sizeof(path), "%s", o->key);
            /* a bad server: the line of its own entry */
            for (size_t k = 0; o->type == OPTION_STRING_LIST && k < json_array_size(in_file); k++)
                if (check_server(json_string_value(json_array_get(in_file, k)), path,
                                 sizeof(path)) < 0) {
                    snprintf(path, sizeof(path), "%s[%zu]", o->key, k);
                    break;
                }
            return config_error(doc, path, e, "%s", bad);
        }
        return err_set(e, "%s", bad);
    }
    if (!src->service && src->servers.n == 0)
        return err_set(e, "no servers: give -service NAME (registry) or -server HOST:PORT");
    return 0;
}

static void finish(struct lb_config *c)
{
    if (c->workers == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = cpus > 0 ? (int)(cpus > 64 ? 64 : cpus) : 1;
    }
    c->balance = strcmp(c->balance_name, "leastconn") == 0 ? LB_BALANCE_LEASTCONN
                 : strcmp(c->balance_name, "random") == 0  ? LB_BALANCE_RANDOM
                                                           : LB_BALANCE_ROUNDROBIN;
    c->io = strcmp(c->io_name, "epoll") == 0   ? POLLSOCK_EPOLL
            : strcmp(c->io_name, "uring") == 0 ? POLLSOCK_URING
                                               : POLLSOCK_AUTO;
    if (c->service && !c->service[0])
        FREE_NULL(c->service);
    if (!c->backend_name)
        c->backend_name = xstrdup(c->service ? c->service : "web");
}

/* The -config file the flags name, into c; doc (struct config_doc *) keeps it for validate. */
static int read_files(void *c, const void *named, void *doc, struct err *e)
{
    const char *file = ((const struct lb_config *)named)->config_file;
    int rc;

    if (!file)
        return 0;
    rc = config_doc_load(file, doc, e);
    return rc < 0 ? rc : read_file(c, doc, e);
}

static void defaults_cb(void *c)
{
    defaults(c);
}

static void free_cb(void *c)
{
    lb_config_free(c);
}

static const struct options_loader loader = {
    options, ARRAY_LEN(options), usage, defaults_cb, free_cb, read_files,
};

int lb_config_load(struct lb_config *cfg, int argc, char **argv, struct err *e)
{
    struct flag flags[ARRAY_LEN(options)];
    struct lb_config src, scratch;
    struct config_doc doc = {0};
    size_t nflags;
    int rc = options_load(&loader, &src, &scratch, flags, &nflags, argc, argv, &doc, e);

    if (rc == 0)
        rc = validate(&src, doc.root ? &doc : NULL, flags, nflags, e);
    if (doc.root)
        config_doc_free(&doc);
    if (rc == 0) {
        finish(&src);
        *cfg = src;
        return 0;
    }
    lb_config_free(&src);
    memset(cfg, 0, sizeof(*cfg));
    return rc;
}

int lb_config_reload(const struct lb_config *cur, int argc, char **argv, struct lb_config *out,
                     struct err *e)
{
    (void)cur; /* the flags name the same file: loading again re-reads it */
    int rc = lb_config_load(out, argc, argv, e);
    return rc == FLAGS_HELP ? -EINVAL : rc;
}

void lb_config_free(struct lb_config *cfg)
{
    options_free(options, ARRAY_LEN(options), cfg);
}
