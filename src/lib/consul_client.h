/*
 * A client of Consul's HTTP API (mesh agent or HashiCorp's), on top of lib/http_client: where
 * the agent is and how to reach it (address, token, TLS with client certificates), the token
 * header, the Go API client's error texts, and the blocking-query watcher with Consul's index
 * rules. mesh lb, mesh template, the CLI, the webapp and the registry's own client side all
 * talk to an agent through this one piece, so they read the same environment the same way.
 *
 * The endpoint, in one precedence for every setting: the caller's flag, else the environment
 * (MESH_x, else CONSUL_x, empty values skipped), else the default:
 *
 *   address      CONSUL_HTTP_ADDR         127.0.0.1:8500; "host[:port]", "http://host[:port]" or
 *                                         "https://host[:port]"; no port: 8500 (https 8501)
 *   token        CONSUL_HTTP_TOKEN, then CONSUL_HTTP_TOKEN_FILE (its content, trimmed)
 *   https        CONSUL_HTTP_SSL          a bare host:port is https when true; a scheme wins
 *   CA bundle    CONSUL_CACERT            the system store
 *   client cert  CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY (for agents with verify_incoming)
 *   server name  CONSUL_TLS_SERVER_NAME   the host
 *   verify       CONSUL_HTTP_SSL_VERIFY   true (false: accept any certificate)
 *
 * "localhost" is dialled at 127.0.0.1 (agents listen there, and ::1 may come first from the
 * resolver) while its certificate is checked for "localhost".
 */
#ifndef MESH_LIB_CONSUL_CLIENT_H
#define MESH_LIB_CONSUL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/err.h"
#include "lib/http_client.h"

#define CONSUL_DEFAULT_ADDR "127.0.0.1:8500"
/* The largest answer any client here reads from an agent (a whole catalog, a KV tree). */
#define CONSUL_MAX_BODY (64u << 20)

/* What the caller's flags say; NULL or "" = not given, so the environment decides. */
struct consul_flags {
    const char *addr;
    const char *token;
    const char *token_file;
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    bool tls; /* https even for a bare host:port */
};

/* A resolved endpoint. Owns its strings (heap or NULL); free with consul_endpoint_free. */
struct consul_endpoint {
    char *addr; /* as given or defaulted, for messages */
    char host[256];
    int port;
    char *token; /* NULL when none */
    bool tls;
    bool tls_skip_verify;
    char *tls_ca_file;
    char *tls_cert_file;
    char *tls_key_file;
    char *tls_server_name;
};

/*
 * Resolves flags (may be NULL) and the environment into ep. Returns 0, or -EINVAL with e set
 * (an address that does not parse, a token file that cannot be read, a token holding a line
 * break) and ep zeroed.
 */
int consul_endpoint_resolve(struct consul_endpoint *ep, const struct consul_flags *flags,
                            struct err *e);
void consul_endpoint_free(struct consul_endpoint *ep);
/* A deep copy of src into dst. */
void consul_endpoint_copy(struct consul_endpoint *dst, const struct consul_endpoint *src);
/* True when a and b reach the same agent the same way (same token and TLS settings). */
bool consul_endpoint_equal(const struct consul_endpoint *a, const struct consul_endpoint *b);

/* Writes token's X-Consul-Token field (borrowing token) to *out: 1, or 0 when token is NULL or
 * "" and there is nothing to send. */
size_t consul_token_field(const char *token, struct http_header *out);

/*
 * A request to ep: host, port and the TLS fields from ep (borrowed), the response limit
 * CONSUL_MAX_BODY, and the header fields: fields holds the caller's n and room for one more,
 * the token's, and the request points at it. The caller sets method, target, body and timeout.
 */
void consul_request_init(struct http_client_request *r, const struct consul_endpoint *ep,
                         struct http_header *fields, size_t n);

/*
 * The Go API client's text for a transport failure (status a negative UV error, detail from
 * http_client_error or NULL), as the consul CLI prints it:
 *   Get "http://127.0.0.1:8500/v1/kv/a": dial tcp 127.0.0.1:8500: connect: connection refused
 */
void consul_transport_error(const struct consul_endpoint *ep, const char *method,
                            const char *target, int status, const char *detail, struct err *e);
/* "Unexpected response code: 403 (Permission denied)": the body trimmed, its first line. */
void consul_status_error(int status, const char *body, size_t len, struct err *e);

/* ---- blocking queries -------------------------------------------------------------------- */

/*
 * A loop of blocking queries GET <target>[?&]index=N&wait=5m, as Consul's docs ask watchers to
 * run them:
 *   - the first query carries index 0 and answers at once;
 *   - an answer's X-Consul-Index below 1 counts as 1 (0 would make every query return at once);
 *   - an index lower than the last one means the agent's history restarted (a restore, a new
 *     agent): the next query starts over from 0;
 *   - queries start at least CONSUL_WATCH_MIN_GAP_MS apart, however fast the answers come;
 *   - a failure (unreachable, an answer the consumer refuses) is retried after a backoff from
 *     250 ms doubling to 30 s, and from index 0, since a restarted agent may have a lower index
 *     on which a blocking query would wait out its whole time.
 * With once, the target is fetched without index or wait and the watch stops after the first
 * accepted answer (for endpoints that do not block, such as /v1/agent/self).
 */
#define CONSUL_WATCH_MIN_GAP_MS  100
#define CONSUL_WATCH_BACKOFF_MIN 250
#define CONSUL_WATCH_BACKOFF_MAX 30000
#define CONSUL_WATCH_WAIT        "5m" /* Consul's default */
#define CONSUL_WATCH_WAIT_MS     (5 * 60 * 1000)

struct consul_watch;

struct consul_watch_ops {
    /*
     * An answer, any HTTP status (a KV read's 404 is an answer). Return 0 to accept it, or
     * -EINVAL with e set to count it as a failure (consul_status_error for a status).
     */
    int (*answer)(void *data, const struct http_client_response *res, struct err *e);
    /* Optional: the first failure of an outage (why set), and the first accepted answer after
     * it (why NULL), so each outage is logged once. */
    void (*outage)(void *data, const char *why);
};

/*
 * Starts watching target (copied; path and query, already encoded) at ep on client's loop.
 * ep, client, ops and data are borrowed until consul_watch_free.
 */
struct consul_watch *consul_watch_start(struct http_client *client, uv_loop_t *loop,
                                        const struct consul_endpoint *ep, const char *target,
                                        bool once, const struct consul_watch_ops *ops, void *data);
/* The index the next query carries (tests and logs). */
uint64_t consul_watch_index(const struct consul_watch *w);
/* Cancels the query in flight (no callback runs after this) and frees w once its timer closed. */
void consul_watch_free(struct consul_watch *w);

/* The index rules above, as a pure function: the index to send next after an answer. */
uint64_t consul_watch_next_index(uint64_t last, uint64_t answered);

#endif
