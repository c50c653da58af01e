/*
 * A virtual user's cookie jar, as Artillery keeps one per user (tough-cookie): Set-Cookie
 * headers of the responses (RFC 6265: Domain, Path, Expires, Max-Age, Secure) and the script's
 * `cookie` values go in; each request gets the cookies whose domain, path and scheme match and
 * that have not expired, longest path first. What a server sends is bounded: at most
 * LOAD_JAR_MAX cookies per user (the oldest goes), each name and value at most
 * LOAD_JAR_MAX_COOKIE bytes (longer ones are ignored). Public suffixes are not checked.
 */
#ifndef MESH_LOAD_COOKIES_H
#define MESH_LOAD_COOKIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define LOAD_JAR_MAX        64
#define LOAD_JAR_MAX_COOKIE 4096

struct load_cookie {
    char *name, *value;
    char *domain; /* lower case, without a leading dot */
    char *path;
    int64_t expires_ms; /* < 0: for the session */
    bool host_only;     /* no Domain attribute: this host only */
    bool secure;
    uint64_t order; /* creation order, for ties */
};

struct load_jar {
    struct load_cookie *c;
    size_t n;
    uint64_t next_order;
};

/* Where a request goes, as the jar matches it. */
struct load_jar_url {
    const char *host; /* without the port */
    const char *path; /* the request's path, query string allowed */
    bool https;
};

/*
 * Stores the cookie of one Set-Cookie header value (line[len]) received for url at now_ms
 * (wall clock). Returns 0, or -1 when the header is malformed or refused (a Domain the host is
 * not in, too long); a cookie that has expired deletes its namesake.
 */
int load_jar_set(struct load_jar *j, const char *line, size_t len, const struct load_jar_url *url,
                 int64_t now_ms);

/* Appends the Cookie header's value for url ("a=1; b=2") to out; nothing when none match. */
void load_jar_header(struct load_jar *j, const struct load_jar_url *url, int64_t now_ms,
                     struct buf *out);

/* An RFC 6265 cookie date ("Wed, 21 Oct 2015 07:28:00 GMT" and its variants) in ms since the
 * epoch; -1 when it is not one. */
int64_t load_cookie_date(const char *s, size_t len);

void load_jar_free(struct load_jar *j);

#endif
