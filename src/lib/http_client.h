/*
 * HTTP/1.1 client on a libuv loop, with a pool of idle keep-alive connections per host:port.
 * Responses are read whole (bounded by max_body); it serves health checks, the CLI and
 * registry watches (blocking queries), not the load balancer's streaming data path.
 *
 * A request on a pooled connection that fails before any response byte arrives (the server
 * closed the idle connection meanwhile) is retried once on a fresh connection.
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
 * UV_ECONNREFUSED, UV_EPROTO for a malformed response, UV_E2BIG when over max_body,
 * UV_ECANCELED after http_call_cancel) and res is NULL. res is valid during the callback only.
 */
typedef void (*http_client_cb)(int status, const struct http_client_response *res, void *data);

struct http_client_request {
    const char *method; /* default "GET" */
    const char *host;   /* numeric address or name (resolved with getaddrinfo off the loop) */
    int port;
    const char *target;      /* "/path?query"; default "/" */
    const char *headers;     /* extra raw header lines, each ending in "\r\n"; may be NULL;
                                a "Host:" line replaces the default Host */
    const void *body;        /* copied */
    size_t body_len;
    uint64_t timeout_ms;     /* whole exchange; 0 = 30 s */
    size_t max_body;         /* 0 = 16 MiB */
    bool no_keep_alive;      /* send "Connection: close" and do not pool */
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

/* Case-insensitive header lookup in a response; NULL when absent. */
const char *http_client_header(const struct http_client_response *res, const char *name,
                               size_t *len);

#endif
