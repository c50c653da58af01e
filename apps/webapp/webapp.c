/*
 * webapp's entry point: flags and environment, listen, register in the background, and on
 * SIGTERM/SIGINT deregister, drain and exit 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/err.h"
#include "lib/flags.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/url.h"
#include "webapp.h"

#define USAGE "webapp [options]"

double webapp_uptime_s(const struct webapp *app)
{
    return (double)(uv_hrtime() - app->start_ns) / 1e9;
}

static char *env_dup(const char *name, const char *fallback)
{
    const char *v = getenv(name);

    return xstrdup(v && v[0] ? v : fallback);
}

static char *default_node(void)
{
    char host[256];
    size_t n = sizeof(host);
    const char *v = getenv("NODE_NAME");

    if (v && v[0])
        return xstrdup(v);
    if (uv_os_gethostname(host, &n) != 0)
        return xstrdup("localhost");
    return xstrdup(host);
}

static int default_port(void)
{
    const char *v = getenv("PORT");
    unsigned long long p;

    if (v && v[0] && str_to_u64(str_from(v), &p) && p >= 1 && p <= 65535)
        return (int)p;
    return 3000;
}

/* TAGS="a,b,c" when no -tag was given; empty items are skipped. */
static void tags_from_env(struct flag_list *l)
{
    const char *v = getenv("TAGS");

    if (l->n || !v)
        return;
    while (*v) {
        size_t len = strcspn(v, ",");
        if (len) {
            l->items = realloc(l->items, (l->n + 1) * sizeof(*l->items));
            if (!l->items)
                abort();
            char *item = xmemdup(v, len + 1);
            item[len] = '\0';
            l->items[l->n++] = item;
        }
        v += len + (v[len] == ',');
    }
}

/* Checks the parsed configuration and derives the service ID and agent endpoint. */
static int config_finish(struct webapp *app, struct err *e)
{
    const struct consul_flags agent = {.addr = app->agent};

    if (app->port < 1 || app->port > 65535)
        return err_set(e, "invalid port %d: want 1..65535", app->port);
    for (size_t i = 0; i < app->meta.n; i++) {
        const char *eq = strchr(app->meta.items[i], '=');
        if (!eq || eq == app->meta.items[i])
            return err_set(e, "invalid -meta \"%s\": want key=value", app->meta.items[i]);
    }
    if (app->check_interval_ns <= 0)
        return err_set(e, "invalid -check-interval: must be positive");
    if (!app->service[0] || !app->node[0])
        return err_set(e, "-service and -node must not be empty");
    if (consul_endpoint_resolve(&app->agent_ep, &agent, e) < 0) {
        err_prefix(e, "invalid agent address");
        return -EINVAL;
    }
    app->service_id = xasprintf("%s-%s-%d", app->service, app->node, app->port);
    tags_from_env(&app->tags);
    return 0;
}

/* Returns 0 to run, FLAGS_HELP, or -EINVAL with the message printed. */
static int parse_args(struct webapp *app, int argc, char **argv)
{
    struct err e = {{0}};
    int first = 0;
    app->port = default_port();
    app->address = xstrdup("127.0.0.1");
    app->node = default_node();
    app->instance = env_dup("INSTANCE_ID", "0");
    app->service = env_dup("SERVICE_NAME", "web");
    app->check_interval_ns = 10 * DURATION_SEC;
    struct flag flags[] = {
        {"port", FLAG_INT, &app->port, "Port to listen on (env PORT).", false},
        {"address", FLAG_STRING, &app->address, "Address to listen on and register.", false},
        {"node", FLAG_STRING, &app->node, "Node name (env NODE_NAME, default the hostname).",
         false},
        {"instance", FLAG_STRING, &app->instance, "Instance ID (env INSTANCE_ID).", false},
        {"service", FLAG_STRING, &app->service, "Service name (env SERVICE_NAME).", false},
        {"tag", FLAG_STRING_LIST, &app->tags, "Service tag; repeatable (env TAGS, a,b,c).", false},
        {"meta", FLAG_STRING_LIST, &app->meta, "Service meta key=value; repeatable.", false},
        {"agent", FLAG_STRING, &app->agent,
         "Agent HTTP address (env MESH_HTTP_ADDR or CONSUL_HTTP_ADDR, default\n" CONSUL_DEFAULT_ADDR
         "; token and HTTPS from the environment as mesh's CLI).",
         false},
        {"no-register", FLAG_BOOL, &app->no_register, "Do not register with the agent.", false},
        {"check-interval", FLAG_DURATION, &app->check_interval_ns,
         "Interval of the HTTP check on /health.", false},
    };
    size_t n = sizeof(flags) / sizeof(flags[0]);
    int rc = flags_parse(flags, n, argc - 1, argv + 1, &first, &e);
    if (rc == FLAGS_HELP) {
        flags_usage(stdout, USAGE, flags, n);
        return FLAGS_HELP;
    }
    if (rc == 0 && first < argc - 1)
        rc = err_set(&e, "unexpected argument: %s", argv[first + 1]);
    if (rc == 0)
        rc = config_finish(app, &e);
    if (rc != 0) {
        fprintf(stderr, "%s\n", e.msg);
        flags_usage(stderr, USAGE, flags, n);
    }
    return rc;
}

static void config_free(struct webapp *app)
{
    free(app->address);
    free(app->node);
    free(app->instance);
    free(app->service);
    free(app->service_id);
    free(app->agent);
    consul_endpoint_free(&app->agent_ep);
    flag_list_free(&app->tags);
    flag_list_free(&app->meta);
}

static void on_handle_closed(uv_handle_t *h)
{
}

static void on_server_closed(struct http_server *srv)
{
    struct webapp *app = srv->handler_data;

    http_client_free(app->client);
    app->client = NULL;
    uv_close((uv_handle_t *)&app->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&app->sig_int, on_handle_closed);
    uv_close((uv_handle_t *)&app->reg_timer, on_handle_closed);
}

/* Runs from a timer, so no client or server callback frame is live. */
static void shutdown_cb(uv_timer_t *t)
{
    struct webapp *app = t->data;

    log_info("drained: exiting");
    http_server_close(&app->srv, on_server_closed);
}

void webapp_drain_check(struct webapp *app)
{
    if (!app->draining || app->shutting_down || app->deregistering || app->handover_grace ||
        app->in_flight)
        return;
    app->shutting_down = true;
    app->reg_timer.data = app;
    uv_timer_start(&app->reg_timer, shutdown_cb, 0, 0);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct webapp *app = s->data;
    const char *signame = signum == SIGTERM ? "SIGTERM" : "SIGINT";

    if (app->draining)
        return;
    app->draining = true;
    if (net_listen_has_peer(app->listen_fd)) {
        log_info("caught %s: another process listens on port %d: handing the port and the "
                 "registration over to it, then draining %zu job(s)",
                 signame, app->port, app->in_flight);
        webapp_hand_over(app);
        return;
    }
    log_info("caught %s: deregistering, then draining %zu job(s)", signame, app->in_flight);
    webapp_deregister(app);
}

/* Listens on the port with SO_REUSEPORT, so that a successor can share it during a reload. */
static int listen_shared(struct webapp *app, struct err *e)
{
    struct sockaddr_storage ss;
    int rc = net_parse_addr(app->address, app->port, &ss);

    if (rc < 0)
        return err_set(e, "invalid listen address %s", app->address), rc;
    rc = net_listen_shared(&ss, e);
    if (rc < 0)
        return rc;
    app->listen_fd = rc;
    return http_server_listen_fd(&app->srv, app->listen_fd, e);
}

static int run(struct webapp *app)
{
    struct err e = {{0}};
    uv_loop_t *loop = uv_default_loop();

    app->loop = loop;
    app->start_ns = uv_hrtime();
    app->client = http_client_new(loop);
    uv_timer_init(loop, &app->reg_timer);
    uv_signal_init(loop, &app->sig_term);
    uv_signal_init(loop, &app->sig_int);
    app->sig_term.data = app;
    app->sig_int.data = app;
    http_server_init(&app->srv, loop, NULL, webapp_handle, app);
    int rc = listen_shared(app, &e);
    if (rc != 0) {
        log_error("%s", e.msg);
        app->draining = true;
        app->shutting_down = true;
        http_server_close(&app->srv, on_server_closed);
    } else {
        log_info("webapp %s/%s listening on %s:%d", app->node, app->instance, app->address,
                 app->port);
        uv_signal_start(&app->sig_term, on_signal, SIGTERM);
        uv_signal_start(&app->sig_int, on_signal, SIGINT);
        if (app->no_register)
            log_info("not registering (-no-register)");
        else
            webapp_register_start(app);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct webapp app;

    memset(&app, 0, sizeof(app));
    signal(SIGPIPE, SIG_IGN);
    log_set_component("webapp");
    /* As an Express app under PM2: notices in the output log, failures in the error log. */
    log_set_split(true);
    int rc = parse_args(&app, argc, argv);
    int status = rc == FLAGS_HELP ? 0 : rc == 0 ? 0 : 1;

    /* run's failure must not be read as parse_args' FLAGS_HELP (both are 1). */
    if (rc == 0)
        status = run(&app);
    config_free(&app);
    return status;
}
