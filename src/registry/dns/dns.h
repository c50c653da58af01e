/*
 * The agent's DNS interface (Consul's port 8600): service, node, prepared-query and address
 * lookups under the agent's domain ("consul." by default), over UDP and TCP, answered from the
 * agent's own state on the loop thread.
 */
#ifndef MESH_REGISTRY_DNS_H
#define MESH_REGISTRY_DNS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/dns_wire.h"
#include "lib/err.h"
#include "lib/http_client.h"

enum reg_dns_lookup_kind {
    REG_DNS_LOOKUP_OUTSIDE = 0, /* not under the domain: Consul without recursors refuses */
    REG_DNS_LOOKUP_INVALID,     /* under the domain but no name Consul knows: NXDOMAIN */
    REG_DNS_LOOKUP_APEX,        /* the domain itself: SOA and NS */
    REG_DNS_LOOKUP_SERVICE,     /* NAME.service, TAG.NAME.service, _NAME._TAG.service */
    REG_DNS_LOOKUP_NODE,        /* NODE.node */
    REG_DNS_LOOKUP_QUERY,       /* NAME.query (prepared queries) */
    REG_DNS_LOOKUP_ADDR,        /* HEX.addr: an IP address spelled in hex */
};

struct reg_dns_lookup {
    enum reg_dns_lookup_kind kind;
    char name[DNS_NAME_TEXT_MAX]; /* service, node or query name */
    char tag[DNS_NAME_TEXT_MAX];  /* "" for none */
    char dc[DNS_NAME_TEXT_MAX];   /* "" when the name gives none */
    uint8_t addr[16];             /* REG_DNS_LOOKUP_ADDR */
    int addr_len;                 /* 4 or 16 */
};

/*
 * Classifies qname (dotted, with or without the trailing dot; compared case-insensitively)
 * against domain (e.g. "consul." or "consul"), as Consul reads its DNS names. qtype matters to
 * one form: an SRV question may leave out the "service" label (_NAME._TAG[.DC].DOMAIN).
 */
void reg_dns_lookup_parse(const char *qname, uint16_t qtype, const char *domain,
                          struct reg_dns_lookup *out);

struct reg_agent;
struct reg_settings;
struct reg_dns_listeners;
struct reg_state;

/* What only the running agent can do for DNS; the agent fills the table (agent/agent_dns.c).
 * Every op gets the context's agent, which DNS never looks into. */
struct reg_dns_ops {
    /*
     * A client agent reads target (a path of the HTTP API) from its current server, with the
     * agent's default token and its TLS settings; a server that cannot be reached makes the
     * agent move on to the next one it knows. Returns 0 and calls done exactly once, later (with
     * UV_ECANCELED when the agent stops first); or -ENOTCONN when no server is known or the
     * agent is stopping, and done is not called.
     */
    int (*server_get)(struct reg_agent *a, const char *target, uint64_t timeout_ms,
                      http_client_cb done, void *data);
};

/*
 * The narrow context DNS works in, instead of the agent: the loop, the state it answers from,
 * the settings (domain, datacenter, dns_config, ACLs, read at each query: a reload changes
 * them), and ops for the rest. The agent owns it and fills the first five fields before
 * reg_dns_start; the last two are DNS's own and start zeroed.
 */
struct reg_dns {
    uv_loop_t *loop;
    const struct reg_state *state;
    const struct reg_settings *cfg;
    const struct reg_dns_ops *ops;
    struct reg_agent *agent; /* opaque here: handed back to ops */

    struct reg_dns_listeners *listeners; /* dns_server.c; NULL when off or closed */
    int remote_inflight;                 /* client agents: lookups waiting for a server */
};

/* Opens the UDP and TCP listeners on cfg->client_addr:cfg->dns_port (nothing when the port is
 * -1). Returns 0 or -errno with e set. */
int reg_dns_start(struct reg_dns *d, struct err *e);
/* Closes the listeners and open TCP connections; frees them once their handles close. */
void reg_dns_close(struct reg_dns *d);

/* Receives a query's answer (borrowed for the call; len 0: no answer is due). */
typedef void (*reg_dns_done_cb)(const uint8_t *answer, size_t len, void *data);

/*
 * Answers one query message (msg, len bytes; borrowed for the call). Over UDP (tcp false) the
 * answer is trimmed as Consul trims it; TCP answers are whole. done runs exactly once: inside
 * this call on a server, or later when a client agent asks its server (dns_remote.c).
 */
void reg_dns_query(struct reg_dns *d, const uint8_t *msg, size_t len, bool tcp,
                   reg_dns_done_cb done, void *data);

/* ---- shared by dns.c and dns_remote.c ---- */

/* The answer to q (classified as l) read from st into out (cap bytes); its length. With
 * check_acl, services and nodes the agent's default token may not read are left out. */
size_t reg_dns_answer_from(const struct reg_dns *d, const struct reg_state *st, bool check_acl,
                           const struct dns_query *q, const struct reg_dns_lookup *l, bool tcp,
                           uint8_t *out, size_t cap);
/* A bare answer with rcode (the question echoed when q has one). Its length. */
size_t reg_dns_answer_rcode(const struct dns_query *q, enum dns_rcode rcode, uint8_t *out,
                            size_t cap);
/* The configured domain with its trailing dot. */
void reg_dns_domain(const struct reg_dns *d, char out[DNS_NAME_TEXT_MAX]);
/* A client agent's lookup through its server's HTTP API; calls done later. */
void reg_dns_remote_lookup(struct reg_dns *d, const uint8_t *msg, size_t len, bool tcp,
                           reg_dns_done_cb done, void *data);

#endif
