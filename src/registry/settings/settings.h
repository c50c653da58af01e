/*
 * The agent's settings, as every part of the registry reads them: what `mesh agent` was started
 * with (flags and config files, loaded by agent/agent_config.c) and what a reload or
 * PUT /v1/agent/token changed since. The agent owns the one instance and hands it to the parts
 * it starts (api/, dns/, cluster/ read it through their contexts), so they depend on these
 * plain values, not on the agent.
 */
#ifndef MESH_REGISTRY_SETTINGS_H
#define MESH_REGISTRY_SETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/flags.h"
#include "registry/state/acl.h"

/* A service definition from a config file, with where it came from for error messages. */
struct reg_config_service {
    json_t *def; /* owned */
    const struct config_doc *doc;
    char path[64]; /* key path in doc, e.g. "services[1]" */
};

struct reg_settings {
    bool server;
    bool bootstrap;
    int bootstrap_expect;
    int raft_snapshot_threshold; /* log entries between snapshots of a replicated server */
    bool dev;
    bool ui;
    char *node_name;
    char *datacenter;
    char *bind_addr;
    char *client_addr;
    int http_port;   /* -1: no plain HTTP listener (see reg_agent_config_load) */
    int server_port; /* replication between servers (Consul's ports.server), default 8300 */
    int https_port;  /* 0: no HTTPS listener */

    /* DNS interface (dns.h): Consul's ports.dns, domain and dns_config keys. */
    int dns_port;                  /* default 8600; -1: no DNS */
    int http_max_conns_per_client; /* limits.http_max_conns_per_client, default 200; 0: none */
    int http_max_conns;            /* limits.http_max_conns, default 10,000, at least 1 */
    int http_max_unsent_mb;        /* limits.http_max_unsent_mb per client, default 64; 0: none */
    int64_t http_write_timeout_ns; /* limits.http_write_timeout, default 60 s, at least 1 s */
    char *domain;                  /* default "consul." */
    bool dns_only_passing;
    int dns_a_record_limit;   /* 0: no limit */
    int dns_udp_answer_limit; /* default 3, as Consul */
    bool dns_enable_truncate;
    bool dns_node_meta_txt; /* enable_additional_node_meta_txt, default true */
    int64_t dns_node_ttl_ns;
    int64_t dns_service_ttl_ns; /* dns_config.service_ttl["*"] */
    char *data_dir;
    char *pid_file;
    char *log_level;
    bool enable_script_checks;
    bool enable_local_script_checks;

    /* Cluster membership: servers to join at start, and to retry until one answers. */
    struct flag_list start_join;
    struct flag_list retry_join;
    int64_t retry_interval_ns;  /* default 30 s */
    int64_t failure_timeout_ns; /* a node silent this long is failed; default 5 s */

    /* ACLs (Consul's acl block). */
    bool acl_enabled;
    char *acl_default_policy; /* "allow" (default) or "deny" */
    char *acl_initial_management;
    char *acl_agent_token;
    char *acl_default_token;

    /* TLS (Consul's tls.defaults block, or its older top-level keys). */
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;
    bool tls_verify_incoming;
    bool tls_verify_outgoing;

    struct reg_config_service *services;
    size_t nservices;
    struct buf unknown_keys; /* "telemetry, ports.dns, ..." */
    struct config_doc **docs;
    size_t ndocs;
    struct flag_list config_files; /* -config-file, in order */
    struct flag_list config_dirs;  /* -config-dir, in order */
};

/* The ACL settings of s, for reg_acl_resolve (strings borrowed from s). */
void reg_settings_acl(const struct reg_settings *s, struct reg_acl_settings *out);

#endif
