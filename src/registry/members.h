/* Gossip-member objects (/v1/agent/members, agent/self "Member"). */
#ifndef MESH_REGISTRY_MEMBERS_H
#define MESH_REGISTRY_MEMBERS_H

#include <jansson.h>

struct reg_agent;

/* The local agent as a member object (consul-api.md 1.10). New reference. */
json_t *members_local(const struct reg_agent *a);

#endif
