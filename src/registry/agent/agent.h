/* `mesh agent`: the registry agent (server mode), speaking Consul's HTTP API. */
#ifndef MESH_REGISTRY_AGENT_H
#define MESH_REGISTRY_AGENT_H

/* Entry point of `mesh agent`; returns the exit status. */
int reg_agent_main(int argc, char **argv);

#endif
