/*
 * The heads the proxy forwards: the client's request head as a server gets it, and a server's
 * response head as the client gets it. Field lines the proxy keeps are copied as they came, a
 * run of consecutive kept lines in one copy; only what changes is written anew: the start line
 * (always HTTP/1.1, so an HTTP/1.0 request without Host gets an empty one), the hop-by-hop
 * fields dropped (Connection, Keep-Alive, TE, Trailer, Upgrade, Proxy-Connection and the
 * fields Connection names), and the proxy's own fields.
 *
 * Both take a parsed head (lib/http_parse.h) whose field names and values still point into the
 * bytes it was parsed from, and fields_end: where its last field line ends (the head's end
 * minus the blank line's CRLF).
 */
#ifndef MESH_LB_REWRITE_H
#define MESH_LB_REWRITE_H

#include <stdbool.h>

#include "lib/buf.h"
#include "lib/http_parse.h"
#include "lb/config.h"

/* What the request head passes on of the client. */
struct lb_rewrite_client {
    const char *ip; /* numeric address */
    bool ipv6;
    bool upgrade; /* switching protocols: Upgrade is passed on, with Connection: Upgrade */
    /*
     * lb_rewrite_added's fields for this client (borrowed), or empty: a request with none of
     * the proxy's own fields gets them in one copy instead of formatted again.
     */
    struct str added;
};

/*
 * Writes into out (reset first) the request head for a server: its fields less the hop-by-hop
 * ones, then X-Forwarded-For and X-Forwarded-Proto, Via and Forwarded as cfg enables them
 * (each joining the client's values of the same field, which are dropped where they were).
 */
void lb_rewrite_request(struct buf *out, const struct http_request_head *req,
                        const char *fields_end, const struct lb_config *cfg,
                        const struct lb_rewrite_client *client);

/*
 * Writes into out (reset first) the fields the proxy adds (as cfg enables them) to a request
 * of client that has none of them: lb_rewrite_request's X-Forwarded-For, X-Forwarded-Proto,
 * Via and Forwarded lines, formatted once per connection to serve as client->added.
 */
void lb_rewrite_added(struct buf *out, const struct lb_config *cfg,
                      const struct lb_rewrite_client *client);

/* The Connection field a response head ends with. */
enum lb_rewrite_conn {
    LB_CONN_NONE,       /* HTTP/1.1 keep-alive, or an interim response */
    LB_CONN_CLOSE,      /* the proxy closes the client's connection after it */
    LB_CONN_KEEP_ALIVE, /* to an HTTP/1.0 client kept open */
    LB_CONN_UPGRADE,    /* 101: the tunnel */
};

/*
 * Writes into out (reset first) the response head for the client: its status and reason, its
 * fields less the hop-by-hop ones (Upgrade passed on with LB_CONN_UPGRADE) and, when dechunk,
 * less Transfer-Encoding; then conn.
 */
void lb_rewrite_response(struct buf *out, const struct http_response_head *res,
                         const char *fields_end, bool dechunk, enum lb_rewrite_conn conn);

#endif
