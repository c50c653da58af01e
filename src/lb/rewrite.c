/* Forwarded heads: kept field lines copied in runs, the changes written anew. */
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lb/rewrite.h"

#define MAX_CONN_TOKENS 16
#define LINE_MAX_ADDED  256 /* room reserved for the start line and the proxy's own fields */

#define FIELD(id) (1u << HTTP_FIELD_##id)

/* The hop-by-hop fields every proxy drops, whatever Connection says (RFC 9110 7.6.1). */
#define FIXED_HOP                                                                                  \
    (FIELD(CONNECTION) | FIELD(KEEP_ALIVE) | FIELD(TE) | FIELD(TRAILER) | FIELD(UPGRADE) |         \
     FIELD(PROXY_CONNECTION))

static bool is_fixed_hop(enum http_field id)
{
    return (FIXED_HOP >> id) & 1;
}

/*
 * The header names listed in Connection fields (they are hop-by-hop too), less those dropped
 * by id anyway ("Connection: keep-alive" leaves no token to compare every field with).
 */
static size_t connection_tokens(const struct http_header *h, size_t n, struct str *out, size_t max)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (h[i].id != HTTP_FIELD_CONNECTION)
            continue;
        struct str list = h[i].value, tok;
        while (k < max && http_list_next(&list, &tok)) {
            enum http_field id = http_field_of(tok);
            /* never let Connection strip the framing or Host: that would desynchronise us */
            bool framing = id == HTTP_FIELD_CONTENT_LENGTH || id == HTTP_FIELD_TRANSFER_ENCODING ||
                           id == HTTP_FIELD_HOST;
            if (!framing && !is_fixed_hop(id))
                out[k++] = tok;
        }
    }
    return k;
}

/*
 * Appends the field lines of h[0..n) but those whose id is in drop, whose name Connection
 * lists (the head's framing tells whether it lists any) and the Host lines after the first. Field
 * lines are contiguous in a parsed head, a line ending where the next one's name starts and the
 * last at fields_end, so the lines kept between two dropped ones go in one copy, and a head that
 * has nothing to drop (what the parser's bit per field id tells at once) in one copy altogether.
 */
static void copy_fields(struct buf *out, const struct http_header *h, size_t n,
                        const struct http_framing *f, const char *fields_end, uint32_t drop)
{
    struct str tokens[MAX_CONN_TOKENS];
    size_t ntok = 0;
    const char *run = n ? h[0].name.p : NULL; /* the start of the kept lines not copied yet */

    if (f->connection_names)
        ntok = connection_tokens(h, n, tokens, MAX_CONN_TOKENS);
    bool host_seen = false;
    for (size_t i = 0; i < n && ((f->fields & drop) || ntok > 0 || f->host_repeated); i++) {
        /* a Host line repeating the first (http_limits.same_hosts) goes no further, as in
         * HAProxy: a server that refuses two (Go's) gets one */
        bool dropped = ((drop >> h[i].id) & 1) || (h[i].id == HTTP_FIELD_HOST && host_seen);
        host_seen |= h[i].id == HTTP_FIELD_HOST;
        for (size_t k = 0; k < ntok && !dropped; k++)
            dropped = str_ieq(h[i].name, tokens[k]);
        if (!dropped) {
            if (!run)
                run = h[i].name.p;
            continue;
        }
        if (run)
            buf_append(out, run, (size_t)(h[i].name.p - run));
        run = NULL;
    }
    if (run)
        buf_append(out, run, (size_t)(fields_end - run));
}

/* Appends "Name: old1, old2, extra\r\n", joining the values of the fields called name. */
static void append_joined(struct buf *b, struct str name, enum http_field id,
                          const struct http_header *h, size_t n, bool present, const char *extra)
{
    buf_append_str(b, name);
    buf_append(b, ": ", 2);
    for (size_t i = 0; present && i < n; i++) {
        if (h[i].value.n == 0 || h[i].id != id)
            continue;
        buf_append_str(b, h[i].value);
        buf_append(b, ", ", 2);
    }
    buf_append_cstr(b, extra);
    buf_append(b, "\r\n", 2);
}

/* The fields of a request that the proxy adds itself, as cfg enables them. */
static uint32_t own_fields(const struct lb_config *cfg)
{
    uint32_t own = 0;

    if (cfg->x_forwarded_for)
        own |= FIELD(X_FORWARDED_FOR) | FIELD(X_FORWARDED_PROTO);
    if (cfg->via)
        own |= FIELD(VIA);
    if (cfg->forwarded)
        own |= FIELD(FORWARDED);
    return own;
}

/* The proxy's own fields, each joining the values of req's (NULL: a request without them). */
static void append_own(struct buf *out, const struct http_request_head *req,
                       const struct lb_config *cfg, const struct lb_rewrite_client *client)
{
    const struct http_header *h = req ? req->headers : NULL;
    size_t n = req ? req->num_headers : 0;
    uint32_t present = req ? req->framing.fields : 0;

    if (cfg->x_forwarded_for) {
        append_joined(out, STR_LIT("X-Forwarded-For"), HTTP_FIELD_X_FORWARDED_FOR, h, n,
                      present & FIELD(X_FORWARDED_FOR), client->ip);
        buf_append_cstr(out, "X-Forwarded-Proto: http\r\n");
    }
    if (cfg->via)
        append_joined(out, STR_LIT("Via"), HTTP_FIELD_VIA, h, n, present & FIELD(VIA),
                      "1.1 mesh-lb");
    if (cfg->forwarded) {
        char fwd[128];
        snprintf(fwd, sizeof(fwd), client->ipv6 ? "for=\"[%s]\";proto=http" : "for=%s;proto=http",
                 client->ip);
        append_joined(out, STR_LIT("Forwarded"), HTTP_FIELD_FORWARDED, h, n,
                      present & FIELD(FORWARDED), fwd);
    }
}

void lb_rewrite_added(struct buf *out, const struct lb_config *cfg,
                      const struct lb_rewrite_client *client)
{
    buf_reset(out);
    append_own(out, NULL, cfg, client);
}

void lb_rewrite_request(struct buf *out, const struct http_request_head *req,
                        const char *fields_end, const struct lb_config *cfg,
                        const struct lb_rewrite_client *client)
{
    const char *fields = req->num_headers ? req->headers[0].name.p : fields_end;
    uint32_t own = own_fields(cfg);

    buf_reset(out);
    buf_reserve(out, (size_t)(fields_end - fields) + req->target.n + LINE_MAX_ADDED);
    buf_append_str(out, req->method);
    buf_append(out, " ", 1);
    buf_append_str(out, req->target);
    buf_append(out, " HTTP/1.1\r\n", 11);
    /* the client's values of the proxy's own fields are joined with its own, at the end */
    copy_fields(out, req->headers, req->num_headers, &req->framing, fields_end,
                (FIXED_HOP & ~(client->upgrade ? FIELD(UPGRADE) : 0)) | own);
    /* HTTP/1.0 needs no Host, the HTTP/1.1 sent on does (a Go server refuses it without):
     * empty, as RFC 9112 section 3.2 has it for a target without authority (an absolute-form
     * target's own authority is the one Go and HAProxy read) */
    if (req->minor_version == 0 && !(req->framing.fields & FIELD(HOST)))
        buf_append_cstr(out, "Host: \r\n");
    if (client->added.n && !(req->framing.fields & own))
        buf_append_str(out, client->added);
    else
        append_own(out, req, cfg, client);
    if (client->upgrade)
        buf_append_cstr(out, "Connection: Upgrade\r\n");
    buf_append(out, "\r\n", 2);
}

void lb_rewrite_response(struct buf *out, const struct http_response_head *res,
                         const char *fields_end, bool dechunk, enum lb_rewrite_conn conn)
{
    static const char *const conn_field[] = {
        [LB_CONN_NONE] = "",
        [LB_CONN_CLOSE] = "Connection: close\r\n",
        [LB_CONN_KEEP_ALIVE] = "Connection: keep-alive\r\n",
        [LB_CONN_UPGRADE] = "Connection: Upgrade\r\n",
    };
    struct str reason = res->reason.n ? res->reason : str_from(http_status_reason(res->status));
    const char *fields = res->num_headers ? res->headers[0].name.p : fields_end;
    char status[4] = {(char)('0' + res->status / 100 % 10), (char)('0' + res->status / 10 % 10),
                      (char)('0' + res->status % 10), ' '};
    uint32_t drop = FIXED_HOP & ~(conn == LB_CONN_UPGRADE ? FIELD(UPGRADE) : 0);

    if (dechunk)
        drop |= FIELD(TRANSFER_ENCODING);
    buf_reset(out);
    buf_reserve(out, (size_t)(fields_end - fields) + reason.n + LINE_MAX_ADDED);
    buf_append(out, "HTTP/1.1 ", 9);
    buf_append(out, status, sizeof(status)); /* the parser took three digits */
    buf_append_str(out, reason);
    buf_append(out, "\r\n", 2);
    copy_fields(out, res->headers, res->num_headers, &res->framing, fields_end, drop);
    buf_append_cstr(out, conn_field[conn]);
    buf_append(out, "\r\n", 2);
}
