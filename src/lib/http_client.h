/*
 * HTTP/1.1 client on a libuv loop, with a pool of idle keep-alive connections per host:port.
 * Responses are read whole (bounded by max_body); it serves health checks, the CLI and
 * registry watches (blocking queries), not the load balancer's streaming data path.
 *
 * A request on a pooled connection that fails before any response byte arrives (the server
 * closed the idle connection meanwhile) is retried once on a fresh connection.
 *
 * https: a request with tls set runs over TLS (lib/tls.h). Connections are pooled per host,
 * port and TLS settings, so a connection verified one way never carries a request that asked
 * for another. The client keeps one TLS context per distinct (skip verify, CA, certificate)
 * set for its life; the first request with a given set reads those files on the loop.
 */
#ifndef MESH_LIB_HTTP_CLIENT_H
#define MESH_LIB_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/http_parse.h"

struct http_client;
struct http_call;

struct http_client_response {
    int status;
    struct str reason;
    const struct http_header *headers;
    size_t num_headers;
    const char *body; /* NUL-terminated */
    size_t body_len;
};

/*
 * Completion: status is 0 and res is set, or status is a negative UV error (UV_ETIMEDOUT,
 * UV_ECONNREFUSED, UV_EPROTO for a malformed response or a failed TLS handshake or record,
 * UV_E2BIG when over max_body, UV_EINVAL for a bad request or unusable TLS files,
 * UV_ECANCELED after http_call_cancel) and res is NULL. res is valid during the callback only.
 * During a failure's callback, http_client_error() may hold the detail.
 */
typedef void (*http_client_cb)(int status, const struct http_client_response *res, void *data);

struct http_client_request {
    const char *method; /* default "GET" */
    const char *host;   /* numeric address or name (resolved with getaddrinfo off the loop) */
    int port;
    const char *target; /* "/path?query"; default "/" */
    /*
     * Extra header fields, num_headers of them (borrowed for the call to http_client_send());
     * a "Host" field replaces the default Host. The serialiser refuses (UV_EINVAL, with the
     * field named by http_client_error) a method or field name that is not a token, a target
     * with SP or a control byte, and a value with CR, LF, NUL or another control byte but HTAB,
     * so no caller can inject a header or a second request whatever it copies into them.
     */
    const struct http_header *headers;
    size_t num_headers;
    const void *body; /* copied */
    size_t body_len;
    uint64_t timeout_ms; /* whole exchange; 0 = 30 s */
    size_t max_body;     /* 0 = 16 MiB */
    bool no_keep_alive;  /* send "Connection: close" and do not pool */

    /* https. Strings are borrowed for the call to http_client_send(). */
    bool tls;
    /* The name the server's certificate must match, and the SNI when it is a DNS name (Go's
     * TLSServerName); NULL or "" = host. */
    const char *tls_server_name;
    bool tls_skip_verify;      /* accept any certificate (Consul's TLSSkipVerify) */
    const char *tls_ca_file;   /* PEM CAs to trust; NULL = the system store */
    const char *tls_cert_file; /* client certificate and key, for servers that ask; optional */
    const char *tls_key_file;
};

/* A client owns its pool. */
struct http_client *http_client_new(uv_loop_t *loop);
/* Cancels calls in flight (their callbacks run with UV_ECANCELED) and closes the pool. */
void http_client_free(struct http_client *c);

/*
 * Starts a request. The callback always runs later, never from inside this call. Returns the
 * call handle (valid until the callback starts) for http_call_cancel.
 */
struct http_call *http_client_send(struct http_client *c, const struct http_client_request *req,
                                   http_client_cb cb, void *data);
/* Runs the callback with UV_ECANCELED before returning; the call is then gone. */
void http_call_cancel(struct http_call *call);

/*
 * Inside a callback reporting a failure: readable detail that the status code cannot carry, in
 * Go's words where Go has them, e.g. "tls: failed to verify certificate: x509: certificate
 * signed by unknown authority", "EOF" (the server closed during the TLS handshake),
 * "http: server gave HTTP response to HTTPS client", or why a TLS file could not be used.
 * NULL when the failure has none or the call succeeded. Read it only inside the callback.
 */
const char *http_client_error(const struct http_client *c);

/* Case-insensitive header lookup in a response; NULL when absent. */
const char *http_client_header(const struct http_client_response *res, const char *name,
                               size_t *len);

/* A registry answer's X-Consul-Index (the index of blocking queries); 0 when absent or not a
 * decimal uint64. */
uint64_t http_client_index(const struct http_client_response *res);

#endif
