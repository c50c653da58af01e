/*
 * URLs and query strings: percent-decoding for the router, query parameter lookup for handlers,
 * percent-encoding and "http://host:port/path" splitting for clients.
 */
#ifndef MESH_LIB_URL_H
#define MESH_LIB_URL_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/str.h"

/*
 * Appends the percent-decoded form of s to out. With plus_is_space (query strings), '+' decodes
 * to ' '. Returns 0; -EINVAL on a malformed escape ("%", "%4", "%zz"); -EILSEQ when the decoded
 * bytes are not text (str_is_text: a NUL, as from "%00", or invalid UTF-8), so that no key,
 * name or ID taken from a URL is cut short by a C string or stored as bytes no client can
 * print. out is undefined after an error.
 */
int url_decode(struct str s, bool plus_is_space, struct buf *out);

/* Appends s percent-encoded (RFC 3986 unreserved kept; '/' kept when keep_slash). */
void url_encode(struct buf *out, struct str s, bool keep_slash);

struct url_param {
    char *name;     /* decoded, NUL-terminated */
    char *value;    /* decoded; "" when given without '=' */
    bool has_value; /* "a=" and "a=x" true, bare "a" false */
};

/* A parsed query string. Owns its strings. */
struct url_query {
    struct url_param *params;
    size_t n;
};

/*
 * Parses the part after '?' (without the '?'). Separators: '&' only; ';' is kept as an
 * ordinary byte (Go >= 1.17 no longer splits on it). Empty pairs ("a&&b") are skipped; the first
 * '=' splits name from value. Returns 0, or url_decode's error for a bad escape (-EINVAL) or
 * a component that is not text (-EILSEQ); on error q is left empty
 * (params NULL, n 0). Unlike Go's URL.Query(), which silently drops a bad pair, the caller
 * decides what a bad escape means.
 */
int url_query_parse(struct str query, struct url_query *q);
void url_query_free(struct url_query *q);
/* First value for name: NULL when absent, "" when present without a value. */
const char *url_query_get(const struct url_query *q, const char *name);
bool url_query_has(const struct url_query *q, const char *name);
/*
 * Number of params called name (all of them, even past max); the first max values are written to
 * out in query order. Names compare case-sensitively, as Go's url.Values.
 */
size_t url_query_get_all(const struct url_query *q, const char *name, const char **out, size_t max);

/*
 * A copy of url (caller frees) with the password of a "scheme://user:password@host" replaced by
 * "xxxxx", as Go's URL.Redacted() prints it: for showing a URL to someone who may not know the
 * password (check output, check definitions). Anything else is copied unchanged.
 */
char *url_redacted(const char *url);

/* Pieces of "http[s]://host[:port][/path?query]". host is unbracketed for IPv6. */
struct url_parts {
    bool https;
    char host[256];
    int port;   /* 80/443 by default */
    char *path; /* heap, at least "/" including any query; free with url_parts_free */
};

/*
 * Also accepts "host", "host:port" and "host:port/path" (scheme defaults to http, as
 * CONSUL_HTTP_ADDR does); IPv6 hosts must be bracketed. Returns 0, or -EINVAL for another
 * scheme, an empty or over-long host, userinfo, or a port outside 1..65535; out->path is then
 * NULL. "h?q" gives path "/?q".
 */
int url_split(const char *url, struct url_parts *out);
void url_parts_free(struct url_parts *p);

#endif
