/* Forwarded heads: kept field lines copied in runs, the changes written anew. */
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lb/rewrite.h"

#define MAX_CONN_TOKENS 16
#define LINE_MAX_ADDED  256 /* room reserved for the start line and the proxy's own fields */

/* The hop-by-hop fields every proxy drops, whatever Connection says (RFC 9110 7.6.1). */
static bool is_fixed_hop(enum http_field id)
{
    switch (id) {
    case HTTP_FIELD_CONNECTION:
    case HTTP_FIELD_KEEP_ALIVE:
    case HTTP_FIELD_TE:
    case HTTP_FIELD_TRAILER:
    case HTTP_FIELD_UPGRADE:
    case HTTP_FIELD_PROXY_CONNECTION:
        return true;
    default:
        return false;
    }
}

/* The fixed ones by the parser's id, those Connection names (tokens) by name. */
static bool is_hop_by_hop(const struct http_header *h, const struct str *tokens, size_t ntokens)
{
    if (is_fixed_hop(h->id))
        return true;
    for (size_t i = 0; i < ntokens; i++)
        if (str_ieq(h->name, tokens[i]))
            return true;
    return false;
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
        const char *p = h[i].value.p, *end = p + h[i].value.n;
        while (p < end && k < max) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            struct str tok = str_trim((struct str){p, (size_t)(e - p)});
            enum http_field id = http_field_of(tok);
            /* never let Connection strip the framing or Host: that would desynchronise us */
            bool framing = id == HTTP_FIELD_CONTENT_LENGTH || id == HTTP_FIELD_TRANSFER_ENCODING ||
                           id == HTTP_FIELD_HOST;
            if (tok.n && !framing && !is_fixed_hop(id))
                out[k++] = tok;
            p = comma ? comma + 1 : end;
        }
    }
    return k;
}

/*
 * A run of kept field lines, copied when a dropped line (or the end) closes it. Field lines
 * are contiguous in a parsed head, so a line ends where the next one's name starts.
 */
struct run {
    struct buf *out;
    const char *start; /* NULL: no run open */
};

static void run_keep(struct run *r, const struct http_header *h)
{
    if (!r->start)
        r->start = h->name.p;
}

static void run_drop(struct run *r, const struct http_header *h)
{
    if (r->start)
        buf_append(r->out, r->start, (size_t)(h->name.p - r->start));
    r->start = NULL;
}

static void run_end(struct run *r, const char *fields_end)
{
    if (r->start)
        buf_append(r->out, r->start, (size_t)(fields_end - r->start));
    r->start = NULL;
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

void lb_rewrite_request(struct buf *out, const struct http_request_head *req,
                        const char *fields_end, const struct lb_config *cfg,
                        const struct lb_rewrite_client *client)
{
    struct str tokens[MAX_CONN_TOKENS];
    size_t ntok = connection_tokens(req->headers, req->num_headers, tokens, MAX_CONN_TOKENS);
    const char *fields = req->num_headers ? req->headers[0].name.p : fields_end;
    bool has_xff = false, has_via = false, has_fwd = false;
    struct run run = {out, NULL};

    buf_reset(out);
    buf_reserve(out, (size_t)(fields_end - fields) + req->target.n + LINE_MAX_ADDED);
    buf_append_str(out, req->method);
    buf_append(out, " ", 1);
    buf_append_str(out, req->target);
    buf_append(out, " HTTP/1.1\r\n", 11);
    for (size_t i = 0; i < req->num_headers; i++) {
        const struct http_header *h = &req->headers[i];
        bool drop = false;
        if (cfg->x_forwarded_for && h->id == HTTP_FIELD_X_FORWARDED_FOR)
            drop = has_xff = true;
        else if (cfg->x_forwarded_for && h->id == HTTP_FIELD_X_FORWARDED_PROTO)
            drop = true;
        else if (cfg->via && h->id == HTTP_FIELD_VIA)
            drop = has_via = true;
        else if (cfg->forwarded && h->id == HTTP_FIELD_FORWARDED)
            drop = has_fwd = true;
        else if (is_hop_by_hop(h, tokens, ntok))
            drop = !(client->upgrade && h->id == HTTP_FIELD_UPGRADE);
        if (drop)
            run_drop(&run, h);
        else
            run_keep(&run, h);
    }
    run_end(&run, fields_end);
    if (cfg->x_forwarded_for) {
        append_joined(out, STR_LIT("X-Forwarded-For"), HTTP_FIELD_X_FORWARDED_FOR, req->headers,
                      req->num_headers, has_xff, client->ip);
        buf_append_cstr(out, "X-Forwarded-Proto: http\r\n");
    }
    if (cfg->via)
        append_joined(out, STR_LIT("Via"), HTTP_FIELD_VIA, req->headers, req->num_headers, has_via,
                      "1.1 mesh-lb");
    if (cfg->forwarded) {
        char fwd[128];
        snprintf(fwd, sizeof(fwd), client->ipv6 ? "for=\"[%s]\";proto=http" : "for=%s;proto=http",
                 client->ip);
        append_joined(out, STR_LIT("Forwarded"), HTTP_FIELD_FORWARDED, req->headers,
                      req->num_headers, has_fwd, fwd);
    }
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
    struct str tokens[MAX_CONN_TOKENS];
    size_t ntok = connection_tokens(res->headers, res->num_headers, tokens, MAX_CONN_TOKENS);
    struct str reason = res->reason.n ? res->reason : str_from(http_status_reason(res->status));
    const char *fields = res->num_headers ? res->headers[0].name.p : fields_end;
    char status[4] = {(char)('0' + res->status / 100 % 10), (char)('0' + res->status / 10 % 10),
                      (char)('0' + res->status % 10), ' '};
    struct run run = {out, NULL};

    buf_reset(out);
    buf_reserve(out, (size_t)(fields_end - fields) + reason.n + LINE_MAX_ADDED);
    buf_append(out, "HTTP/1.1 ", 9);
    buf_append(out, status, sizeof(status)); /* the parser took three digits */
    buf_append_str(out, reason);
    buf_append(out, "\r\n", 2);
    for (size_t i = 0; i < res->num_headers; i++) {
        const struct http_header *h = &res->headers[i];
        bool drop = false;
        if (is_hop_by_hop(h, tokens, ntok))
            drop = !(conn == LB_CONN_UPGRADE && h->id == HTTP_FIELD_UPGRADE);
        else if (dechunk && h->id == HTTP_FIELD_TRANSFER_ENCODING)
            drop = true;
        if (drop)
            run_drop(&run, h);
        else
            run_keep(&run, h);
    }
    run_end(&run, fields_end);
    buf_append_cstr(out, conn_field[conn]);
    buf_append(out, "\r\n", 2);
}
