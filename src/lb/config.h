/*
 * `mesh lb` configuration: flags and a JSON config file (`-config FILE`), flags winning, as
 * the agent's (one table of options; file:line errors). Reloaded on SIGHUP into a new struct
 * that replaces the old one only when it is valid.
 */
#ifndef MESH_LB_CONFIG_H
#define MESH_LB_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/flags.h"
#include "lb/lb.h"
#include "lib/pollsock.h"

struct lb_config {
    /* frontend */
    char *bind_addr;          /* default 0.0.0.0 */
    int port;                 /* default 8080 */
    int workers;              /* worker threads, default: number of CPUs */
    int maxconn;              /* frontend connections per worker, default 10000 */
    char *io_name;            /* as given: auto (default), epoll or uring */
    enum pollsock_backend io; /* parsed from io_name */
    /* forwarded headers */
    bool x_forwarded_for; /* default on */
    bool forwarded;       /* RFC 7239 Forwarded header, default off */
    bool via;             /* Via: 1.1 mesh-lb, default on */

    /* backend */
    char *backend_name;      /* default: the service name, or "web" */
    enum lb_balance balance; /* parsed from balance_name */
    char *balance_name;      /* as given: roundrobin, leastconn or random */
    /* servers from the registry ... */
    char *service;     /* watch /v1/health/service/<service>?passing; NULL: static only */
    char *service_tag; /* optional ?tag= */
    /* The registry agent: NULL (or false) leaves a setting to the environment and defaults of
     * lib/consul_client.h (CONSUL_HTTP_ADDR, ...; 127.0.0.1:8500). */
    char *registry_addr;
    char *registry_token;
    bool registry_tls;
    char *registry_ca_file;
    char *registry_cert_file; /* client certificate, for an agent with verify_incoming */
    char *registry_key_file;
    /* ... or a static list "host:port[,weight]" */
    struct flag_list servers;
    int server_maxconn; /* per server; 0 = unlimited */
    int queue_max;      /* requests waiting for a slot, per backend; default 1000 */

    /* active health checks (HAProxy defaults) */
    bool check;               /* default on */
    char *check_path;         /* default /health */
    int64_t check_inter_ns;   /* default 5s */
    int check_rise;           /* default 2 */
    int check_fall;           /* default 3 */
    int64_t check_timeout_ns; /* default 2s */
    /* passive ejection */
    int eject_after_errors; /* consecutive connect failures or 5xx; default 5; 0 = off */
    int64_t eject_for_ns;   /* default 10s */

    /* retries */
    int retries;     /* default 3 */
    bool redispatch; /* retry on another server; default on */

    /* timeouts */
    int64_t timeout_connect_ns;      /* default 2s */
    int64_t timeout_client_ns;       /* default 30s (client inactivity) */
    int64_t timeout_server_ns;       /* default 30s (server inactivity) */
    int64_t timeout_queue_ns;        /* default 5s */
    int64_t timeout_keepalive_ns;    /* default 30s (idle client connection) */
    int64_t timeout_http_request_ns; /* default 10s (request headers) */
    int64_t timeout_tunnel_ns;       /* default 1h (both directions of a tunnel, after a 101) */

    /* 503 page when no server is usable: a file, or the built-in page */
    char *errorfile_503;

    /* stats and admin */
    char *stats_addr;     /* default 0.0.0.0 */
    int stats_port;       /* default 8404 */
    char *stats_path;     /* default /stats */
    char *stats_user;     /* default admin */
    char *stats_password; /* default admin */
    int stats_refresh_s;  /* HTML auto-refresh, default 5 */

    char *pid_file;
    char *log_level;
    char *config_file;
};

/* Fills cfg from argv (after "lb"). 0, FLAGS_HELP (usage printed), or -EINVAL with e set. */
int lb_config_load(struct lb_config *cfg, int argc, char **argv, struct err *e);
/* Re-reads cfg->config_file into out (with the original flags kept). 0 or -EINVAL. */
int lb_config_reload(const struct lb_config *cur, int argc, char **argv, struct lb_config *out,
                     struct err *e);
void lb_config_free(struct lb_config *cfg);

#endif
