/*
 * `mesh agent` configuration: Consul's command-line flags and JSON config files, with Consul's
 * key names where they overlap, loaded into the settings (registry/settings/settings.h). Files
 * load first (in the order given; a directory's *.json in lexical order), flags override them. Keys
 * meshkit does not implement are collected and named in one warning at start, so an existing Consul
 * config still starts the agent.
 */
#ifndef MESH_REGISTRY_AGENT_CONFIG_H
#define MESH_REGISTRY_AGENT_CONFIG_H

#include "lib/err.h"
#include "registry/settings/settings.h"

/*
 * Fills cfg from argv (the arguments after "agent"). Returns 0, FLAGS_HELP after printing
 * usage to stdout, or -EINVAL with e = "flag ..." or "file:line: message".
 */
int reg_agent_config_load(struct reg_settings *cfg, int argc, char **argv, struct err *e);
void reg_agent_config_free(struct reg_settings *cfg);

#endif
