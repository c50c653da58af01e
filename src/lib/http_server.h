/*
 * HTTP/1.1 server on a libuv loop: keep-alive, pipelining-safe (one request at a time per
 * connection, answered in order), head and body limits, timeouts, "Expect: 100-continue".
 *
 * A request is handed to the handler whole (head and body). The handler answers at once with
 * http_respond(), or later: a blocking query parks the request and answers when data changes.
 * While a request is parked the connection keeps reading, so a client that goes away is noticed
 * and reported through req->on_abort, after which the request is freed.
 *
 * Malformed input is answered by the server itself, text/plain, and the connection closed:
 * 400 malformed head or body framing, an HTTP/1.1 request without Host (see host_optional) or a
 * request-target neither origin-form, absolute-form nor "*" (CONNECT's excepted), 431 head over
 * the limits, 413 body over max_body_bytes, 408 head not received within head_timeout_ms.
 *
 * Idle connections cannot lock users out: a new connection must send a complete head within
 * head_timeout_ms (it is closed otherwise, silently when it sent nothing); one client address
 * may hold at most max_conns_per_client connections (the next is answered 429 and closed, as
 * Consul's limits.http_max_conns_per_client does); and at max_conns a newcomer takes the place
 * of the connection idle the longest (no request in progress), as nginx reuses idle
 * keep-alive connections, instead of being turned away.
 *
 * A client that does not read cannot make the server hold answers without bound. An answer the
 * socket does not take at once is copied and queued; while it is, the connection takes up no
 * further (pipelined) request. Across the connections of one client address, once
 * max_unsent_per_client bytes are queued, its next requests wait unread until bytes leave; a
 * connection counts for at most a quarter of that, so one that never reads (127.0.0.1 is every
 * local client) does not hold the others back alone.
 * And a connection whose queued answer makes no progress for write_timeout_ms is closed, which
 * frees what it held. (Go's net/http, and so Consul, blocks the handler on a full socket
 * instead, without a write timeout: each such client holds a goroutine and its answer.)
 */
#ifndef MESH_LIB_HTTP_SERVER_H
#define MESH_LIB_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/http_parse.h"
#include "lib/list.h"
#include "lib/smap.h"
#include "lib/str.h"

#define HTTP_DEFAULT_MAX_UNSENT ((size_t)64 << 20)
/* The smallest body Consul's HTTP API compresses (its gzip handler's default minimum). */
#define HTTP_GZIP_MIN_SIZE 1400

struct http_request;
struct tls_ctx;
struct z_stream_s;
struct http_conn;

/* Called once per complete request. The handler must eventually call http_respond(). */
typedef void (*http_handler_cb)(struct http_request *req, void *data);
/* The connection died before the response: forget req, it is freed when this returns. */
typedef void (*http_abort_cb)(struct http_request *req);

struct http_server_config {
    size_t max_head_bytes;       /* default 64 KiB, over it: 431 */
    size_t max_headers;          /* default 100, over it: 431 */
    size_t max_body_bytes;       /* default 1 MiB, over it: 413 */
    uint64_t head_timeout_ms;    /* default 10 s for a new connection's head, and from the first
                                    byte of a later head to its end: 408 */
    uint64_t idle_timeout_ms;    /* default 120 s between requests on a keep-alive connection */
    size_t max_conns;            /* default 10000; at it the longest-idle connection gives way */
    size_t max_conns_per_client; /* per client IP address; 0 = no limit; over it: 429 */
    /* Answer bytes queued for one client address's connections beyond which its requests
     * wait: default HTTP_DEFAULT_MAX_UNSENT; SIZE_MAX = no limit. */
    size_t max_unsent_per_client;
    uint64_t write_timeout_ms; /* default 60 s without the peer taking a byte of an answer */
    /*
     * An HTTP/1.1 request without a Host field is answered 400 "missing required Host header"
     * (CONNECT excepted), as Go's net/http (Consul's server) answers it; true serves it, as
     * HAProxy does (the lb's stats page). HTTP/1.0 needs no Host either way.
     */
    bool host_optional;
    /*
     * A server context (lib/tls.h; borrowed, must outlive the server): every connection speaks
     * TLS and the handler sees plaintext as usual. NULL = plain HTTP. The handshake runs under
     * idle_timeout_ms; a failed handshake just closes the connection (logged at debug).
     * Plain HTTP on it (the first bytes read "GET /", "POST ", ...) is answered as Go's
     * net/http does, "HTTP/1.0 400 Bad Request" with "Client sent an HTTP request to an
     * HTTPS server.\n", and closed; the handler never sees it.
     */
    struct tls_ctx *tls;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    struct http_server_config cfg;
    http_handler_cb handler;
    void *handler_data;
    size_t num_conns;
    struct list_node conns; /* private: the live connections, newest first */
    /* private: connections waiting for a request, longest idle first: the ones that give way
     * at max_conns. */
    struct list_node idle;
    struct smap per_client; /* private: client IP -> struct http_client */
    /* Bytes the head parser searched or parsed, over all connections: stays O(bytes read)
     * however a head is split across reads (see http_scan_request). */
    uint64_t head_bytes_examined;
    bool listening;
    bool closing;
    void (*on_closed)(struct http_server *srv);
    char *tls_scratch;       /* private: ciphertext read, before decryption; freed once closed */
    struct buf head_scratch; /* private: the response head being sent (kept for the next) */
    struct z_stream_s *gzip; /* private: zlib's deflate state, kept for the next answer */
};

struct http_request {
    struct http_server *server;
    struct http_conn *conn; /* NULL once the connection is gone */
    struct str method;
    /* origin-form: path plus optional "?query"; of an absolute-form target ("http://h/p?q",
     * whose authority takes the Host field's place, as in Go) the path and query, "/" when
     * it has no path */
    struct str target;
    struct str path;  /* target before '?', still percent-encoded */
    struct str query; /* after '?', still encoded; empty when none */
    const struct http_header *headers;
    size_t num_headers;
    const char *body; /* NUL-terminated copy, body_len bytes */
    size_t body_len;
    char peer[64]; /* client address "ip:port" */

    /* Owned by the handler: context and the abort hook for a parked request. */
    void *data;
    http_abort_cb on_abort;

    /* private */
    struct http_framing _framing;
    char *_raw;          /* copy of the head bytes the slices point into */
    char *_target;       /* target when it is not a slice of _raw ("/" before a query) */
    struct buf _body;    /* the body */
    struct buf _headers; /* response headers added so far */
    bool _keep_alive;
    bool _bad_header; /* a header was refused: the answer is a 500 */
    /* headers[], sized to the head: a parked request keeps only the fields it has */
    struct http_header _fields[];
};

/*
 * Sets up a server on loop. cfg may be NULL (defaults); zero fields take defaults.
 * The handler and its data are borrowed for the server's life.
 */
void http_server_init(struct http_server *srv, uv_loop_t *loop,
                      const struct http_server_config *cfg, http_handler_cb handler, void *data);

/* Binds and listens on host:port (numeric IPv4/IPv6). Returns 0 or a negative UV error. */
int http_server_listen(struct http_server *srv, const char *host, int port, struct err *e);

/*
 * Serves on fd, a listening TCP socket (net_listen_shared, for a port shared with SO_REUSEPORT).
 * The server takes fd over, also when this fails: it is closed with the server. Returns 0 or a
 * negative UV error.
 */
int http_server_listen_fd(struct http_server *srv, int fd, struct err *e);

/*
 * Stops listening and closes every connection (parked requests get on_abort). on_closed, if
 * not NULL, runs once every handle is closed; srv may be freed then.
 */
void http_server_close(struct http_server *srv, void (*on_closed)(struct http_server *srv));

/*
 * For a process about to exec or exit: answers every request a handler still holds (parked
 * blocking queries, calls waiting on another server) with status and text and Connection:
 * close, telling each owner through on_abort first, so that no client sees its connection
 * close unanswered. The loop must not run handlers again afterwards: a handler on the stack
 * loses its request too.
 */
void http_server_answer_held(struct http_server *srv, int status, const char *text);

/* Lookup of a request header (case-insensitive); NULL when absent. */
const struct http_header *http_request_header(const struct http_request *req, const char *name);

/*
 * Whether req's Accept-Encoding takes gzip: "gzip" named (any case) with a weight above 0, or
 * no weight, its last mention deciding; "*" alone is not gzip, as Consul's gzip handler reads
 * the field. The weight is read as RFC 9110 section 12.5.3 has it: the q (or Q) parameter
 * wherever it stands among the coding's parameters ("gzip;foo=1;q=0" is not gzip), a malformed
 * one counting as 0. Not for HEAD requests, whose answers carry no body to compress.
 */
bool http_request_accepts_gzip(const struct http_request *req);

/*
 * Adds a response header for the coming http_respond(). Returns 0, or -EINVAL when name is not
 * a token or the value holds CR, LF, NUL or another control byte but HTAB: nothing is added,
 * and the response becomes a 500 (a handler never sends a line it did not mean to).
 */
int http_response_header(struct http_request *req, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Sends the response and releases req (do not touch it afterwards). Adds Content-Length,
 * Content-Type when given, and Date. For HEAD requests the body is not sent. body is borrowed
 * for the call: head and body go out in one send when the socket takes them, and only what it
 * does not take is copied (so one rendering can answer many requests without a copy each).
 * A content_type that is not a valid field value, or a header refused by
 * http_response_header(), turns the answer into a 500 "invalid response header".
 */
void http_respond(struct http_request *req, int status, const char *content_type, const void *body,
                  size_t len);

/*
 * http_respond() as Consul's API answers: with "Vary: Accept-Encoding", and with the body
 * compressed (Content-Encoding: gzip) when it has at least min_size bytes and the request
 * accepts gzip.
 */
void http_respond_gzip(struct http_request *req, int status, const char *content_type,
                       const void *body, size_t len, size_t min_size);

/* http_respond with a text/plain body (a trailing newline is not added). */
void http_respond_text(struct http_request *req, int status, const char *text);

/*
 * One answer for many requests: its status, the header fields each of them gets (Content-Type,
 * Content-Length and the ones added with http_shared_response_header) formatted once, and the
 * body. Meant for a rendering that answers many waiting requests (the registry's blocking
 * queries): each answer then costs copying a ready head and one send, no formatting. Reference-
 * counted, so that an answer held back until something else happens keeps the one rendering
 * alive instead of a copy of it. Read-only once built; one loop's thread only.
 */
struct http_shared_response {
    unsigned refs;
    int status;
    bool bad_header;   /* a refused field: every answer becomes a 500 */
    size_t status_len; /* head starts with the status line, this long: Date goes after it */
    struct buf head;   /* the status line, then the shared fields, each ending in CRLF */
    struct buf body;
    /* private: http_shared_response_gzip's minimum (0: never compressed), where the
     * Content-Length field sits in head, and the compressed form once made */
    size_t gzip_min;
    size_t length_at, length_len;
    struct http_shared_response *gz;
};

/*
 * A response with status, content_type (NULL: none) and body (taken over, left empty), holding
 * one reference. Content-Length is added unless status is 304. A content_type that is not a
 * valid field value makes it answer 500, as http_respond.
 */
struct http_shared_response *http_shared_response_new(int status, const char *content_type,
                                                      struct buf *body);
/* Adds a header field every answer carries: http_response_header's rules, before any use. */
int http_shared_response_header(struct http_shared_response *r, const char *name, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));
/*
 * Makes r answer as http_respond_gzip: every answer carries "Vary: Accept-Encoding", and one to
 * a request that accepts gzip gets the body compressed when it has at least min_size bytes.
 * Before any use. The compressed form is made once, at the first request that takes it, and
 * serves every such request after (the watchers of one blocking query share it as they share r).
 */
void http_shared_response_gzip(struct http_shared_response *r, size_t min_size);
/* Takes another reference to r; returns r. */
struct http_shared_response *http_shared_response_ref(struct http_shared_response *r);
/* Drops a reference; the last one frees r. */
void http_shared_response_unref(struct http_shared_response *r);

/*
 * http_respond() with r (borrowed for the call): its status line and fields, then Date, the
 * request's own fields (http_response_header) and Connection: close when the connection ends.
 * May make r's compressed form (http_shared_response_gzip).
 */
void http_respond_shared(struct http_request *req, struct http_shared_response *r);

#endif
