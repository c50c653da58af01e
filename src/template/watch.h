/*
 * One watch per distinct dependency: a loop of blocking queries
 *   GET <target>[?&]index=<N>&wait=60s
 * against the registry (any Consul agent; X-Consul-Token; HTTPS when tls), as consul-template's
 * views do. The first query carries index 0 and answers at once. Each answer is decoded
 * (tmpl_dep_decode); when the value differs from the previous one the callback gets it.
 *
 * Index rules follow docs/api.md (Watching): a lower index resets to 0, queries are at least
 * 100 ms apart. A failure (unreachable, a non-200 answer, a body that does not decode) is
 * logged once per outage and retried with backoff from 250 ms doubling to 1 min; nothing is
 * reported to the callback, so the last data (and the files rendered from it) stay.
 * agent/self (which does not block) is fetched once.
 */
#ifndef MESH_TEMPLATE_WATCH_H
#define MESH_TEMPLATE_WATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "lib/http_client.h"
#include "template/tmpl.h"

/* Where the registry is. Strings borrowed for the watches' life. */
struct tmpl_conn {
    const char *addr; /* as given, for messages */
    char host[256];
    int port;
    bool tls;
    const char *token;                /* NULL = none */
    const char *ca_file;              /* NULL = system store */
    const char *cert_file, *key_file; /* client certificate, or NULL */
    const char *server_name;          /* the name the certificate must match; NULL = host */
    bool skip_verify;
};

struct tmpl_watch;

/* New data for dep (value borrowed for the call). */
typedef void (*tmpl_watch_cb)(void *data, const struct tmpl_dep *dep, json_t *value);

/*
 * Starts watching dep (copied) on loop through client and conn (borrowed). cb and data are
 * borrowed until tmpl_watch_free.
 */
struct tmpl_watch *tmpl_watch_start(uv_loop_t *loop, struct http_client *client,
                                    const struct tmpl_conn *conn, const struct tmpl_dep *dep,
                                    tmpl_watch_cb cb, void *data);

/* Cancels the query in flight and frees w once the loop has closed its timer. */
void tmpl_watch_free(struct tmpl_watch *w);

#endif
