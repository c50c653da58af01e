/*
 * TLS for the agent (Consul's tls.defaults block): the HTTPS API listener, and the settings
 * the agent's own outgoing requests to servers use.
 *
 * HTTPS: with -https-port (ports.https), cert_file and key_file, the agent serves the same API
 * on client_addr:https_port as on the plain port. With verify_incoming (and ca_file) a client
 * must present a certificate signed by the CA or the handshake fails. Both listeners run when
 * both ports are set.
 */
#ifndef MESH_REGISTRY_AGENT_TLS_H
#define MESH_REGISTRY_AGENT_TLS_H

#include "lib/err.h"

struct reg_agent;
struct reg_settings;
struct http_client_request;

/*
 * Starts the HTTPS listener when a->cfg.https_port is set (otherwise does nothing): builds the
 * server context from the configured files (read now, synchronously: call at startup) and
 * listens with reg_api_handle. Returns 0, or a negative errno/UV error with e saying which file or
 * address failed.
 */
int reg_agent_tls_start(struct reg_agent *a, struct err *e);

/*
 * Stops the HTTPS listener and closes its connections; the server context is freed once the
 * last of them is closed. Safe to call when reg_agent_tls_start was not called or failed.
 */
void reg_agent_tls_close(struct reg_agent *a);

/*
 * TLS settings for a request the agent sends to a server (client agent sync, forwarding).
 * Call after filling host/port; set r->tls yourself first when the server address is https://.
 * When cfg->tls_verify_outgoing is set, or r->tls already is, this sets r->tls and:
 *   - tls_ca_file = cfg->tls_ca_file (NULL: the system store), verification on;
 *   - with a CA file, tls_server_name = "server.<datacenter>.consul", the name Consul's
 *     verify_server_hostname checks and every `mesh tls cert create -server` certificate
 *     carries, so servers may be dialled by any address;
 *   - tls_cert_file / tls_key_file = the agent's certificate, for servers with verify_incoming.
 * Otherwise r is left as it is (plain HTTP). The strings set point into cfg, or into storage of
 * this module that stays valid until the next call on the same thread; http_client_send copies
 * them, so call it before the next reg_agent_tls_client_options.
 */
void reg_agent_tls_client_options(const struct reg_settings *cfg, struct http_client_request *r);

#endif
