/*
 * `mesh agent` configuration: Consul's command-line flags and JSON config files, with Consul's
 * key names where they overlap. Files load first (in the order given; a directory's *.json in
 * lexical order), flags override them. Keys meshkit does not implement are collected and named
 * in one warning at start, so an existing Consul config still starts the agent.
 */
#ifndef MESH_REGISTRY_AGENT_CONFIG_H
#define MESH_REGISTRY_AGENT_CONFIG_H

#include <jansson.h>
#include <stdbool.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/err.h"

/* A service definition from a config file, with where it came from for error messages. */
struct config_service {
    json_t *def; /* owned */
    const struct config_doc *doc;
    char path[64]; /* key path in doc, e.g. "services[1]" */
};

struct agent_config {
    bool server;
    bool bootstrap;
    int bootstrap_expect;
    bool dev;
    bool ui;
    char *node_name;
    char *datacenter;
    char *bind_addr;
    char *client_addr;
    int http_port;
    char *data_dir;
    char *pid_file;
    char *log_level;
    bool enable_script_checks;
    bool enable_local_script_checks;
    struct config_service *services;
    size_t nservices;
    struct buf unknown_keys; /* "telemetry, acl.tokens, ..." */
    struct config_doc **docs;
    size_t ndocs;
};

/*
 * Fills cfg from argv (the arguments after "agent"). Returns 0, FLAGS_HELP after printing
 * usage to stdout, or -EINVAL with e = "flag ..." or "file:line: message".
 */
int agent_config_load(struct agent_config *cfg, int argc, char **argv, struct err *e);
void agent_config_free(struct agent_config *cfg);

#endif
