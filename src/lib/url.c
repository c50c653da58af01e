/*
 * URL pieces with Go's net/url semantics where Consul's behaviour depends on them: query
 * strings split on '&' only, '+' is a space in queries, and a malformed escape is an error.
 */
#include "lib/url.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"

int url_decode(struct str s, bool plus_is_space, struct buf *out)
{
    size_t i = 0, start = out->len;

    buf_reserve(out, s.n);
    out->data[out->len] = '\0'; /* buf_reserve leaves a fresh buffer unterminated */
    while (i < s.n) {
        size_t run = i;
        /* Copy runs of plain bytes in one go. */
        while (run < s.n && s.p[run] != '%' && !(plus_is_space && s.p[run] == '+'))
            run++;
        buf_append(out, s.p + i, run - i);
        i = run;
        if (i == s.n)
            break;
        if (s.p[i] == '+') {
            buf_append(out, " ", 1);
            i++;
            continue;
        }
        if (s.n - i < 3)
            return -EINVAL;
        int hi = str_hex_digit(s.p[i + 1]);
        int lo = str_hex_digit(s.p[i + 2]);
        if (hi < 0 || lo < 0)
            return -EINVAL;
        char c = (char)(hi << 4 | lo);
        buf_append(out, &c, 1);
        i += 3;
    }
    return str_is_text((struct str){out->data + start, out->len - start}) ? 0 : -EILSEQ;
}

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

void url_encode(struct buf *out, struct str s, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";

    buf_reserve(out, s.n);
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            buf_append(out, &s.p[i], 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            buf_append(out, esc, sizeof(esc));
        }
    }
}

/* Decodes one query component into a fresh heap string. */
static int decode_component(struct str s, char **out)
{
    struct buf b = BUF_INIT;
    int rc = url_decode(s, true, &b);

    if (rc < 0) {
        buf_free(&b);
        return rc;
    }
    *out = buf_steal(&b);
    return 0;
}

static void query_push(struct url_query *q, size_t *cap, struct url_param p)
{
    if (q->n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        q->params = xrealloc(q->params, *cap * sizeof(*q->params));
    }
    q->params[q->n++] = p;
}

int url_query_parse(struct str query, struct url_query *q)
{
    size_t cap = 0;
    int rc = 0;

    q->params = NULL;
    q->n = 0;
    while (query.n) {
        const char *amp = memchr(query.p, '&', query.n);
        struct str pair = {query.p, amp ? (size_t)(amp - query.p) : query.n};
        query = str_skip(query, amp ? pair.n + 1 : pair.n);
        if (pair.n == 0)
            continue; /* "a&&b", trailing '&' */

        const char *eq = memchr(pair.p, '=', pair.n);
        struct str name = {pair.p, eq ? (size_t)(eq - pair.p) : pair.n};
        struct str value = eq ? str_skip(pair, name.n + 1) : STR_LIT("");
        struct url_param p = {NULL, NULL, eq != NULL};
        rc = decode_component(name, &p.name);
        if (rc < 0)
            goto err;
        rc = decode_component(value, &p.value);
        if (rc < 0) {
            free(p.name);
            goto err;
        }
        query_push(q, &cap, p);
    }
    return 0;

err:
    url_query_free(q);
    return rc;
}

void url_query_free(struct url_query *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->params[i].name);
        free(q->params[i].value);
    }
    FREE_NULL(q->params);
    q->n = 0;
}

const char *url_query_get(const struct url_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->params[i].name, name) == 0)
            return q->params[i].value;
    }
    return NULL;
}

bool url_query_has(const struct url_query *q, const char *name)
{
    return url_query_get(q, name) != NULL;
}

size_t url_query_get_all(const struct url_query *q, const char *name, const char **out, size_t max)
{
    size_t found = 0;

    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->params[i].name, name) != 0)
            continue;
        if (found < max)
            out[found] = q->params[i].value;
        found++;
    }
    return found;
}

char *url_redacted(const char *url)
{
    const char *auth = strstr(url, "://");

    if (!auth)
        return xstrdup(url);
    auth += 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = memrchr(auth, '@', auth_len);
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (!colon)
        return xstrdup(url);
    return xasprintf("%.*sxxxxx%s", (int)(colon + 1 - url), url, at);
}

/* Parses a decimal port 1..65535. */
static int parse_port(struct str s, int *port)
{
    unsigned long long v;

    if (s.n == 0 || s.n > 5 || !str_to_u64(s, &v) || v == 0 || v > 65535)
        return -EINVAL;
    *port = (int)v;
    return 0;
}

/* Splits "host", "host:port", "[v6]" or "[v6]:port" into out->host / out->port. */
static int split_authority(struct str a, struct url_parts *out)
{
    struct str host;
    struct str port = STR_NULL;
    bool has_port = false;

    if (a.n && a.p[0] == '[') {
        const char *close = memchr(a.p, ']', a.n);
        if (!close)
            return -EINVAL;
        host = (struct str){a.p + 1, (size_t)(close - a.p) - 1};
        struct str rest = str_skip(a, host.n + 2);
        if (rest.n) {
            if (rest.p[0] != ':')
                return -EINVAL;
            port = str_skip(rest, 1);
            has_port = true;
        }
    } else {
        const char *colon = memchr(a.p, ':', a.n);
        host = (struct str){a.p, colon ? (size_t)(colon - a.p) : a.n};
        if (colon) {
            /* A second colon means an unbracketed IPv6 address: refuse, as Go does. */
            port = str_skip(a, host.n + 1);
            if (memchr(port.p, ':', port.n))
                return -EINVAL;
            has_port = true;
        }
    }
    if (host.n == 0 || host.n >= sizeof(out->host))
        return -EINVAL;
    for (size_t i = 0; i < host.n; i++) {
        unsigned char c = (unsigned char)host.p[i];
        if (c <= ' ' || c == '/' || c == '?' || c == '#' || c == '@' || c == 0x7f)
            return -EINVAL;
    }
    if (has_port && parse_port(port, &out->port) < 0)
        return -EINVAL;
    memcpy(out->host, host.p, host.n);
    out->host[host.n] = '\0';
    return 0;
}

int url_split(const char *url, struct url_parts *out)
{
    struct str s = str_from(url);
    int rc;

    out->https = false;
    out->host[0] = '\0';
    out->path = NULL;
    if (str_has_prefix(s, STR_LIT("https://"))) {
        out->https = true;
        s = str_skip(s, 8);
    } else if (str_has_prefix(s, STR_LIT("http://"))) {
        s = str_skip(s, 7);
    } else if (memmem(s.p, s.n, "://", 3)) {
        return -EINVAL; /* another scheme */
    }
    out->port = out->https ? 443 : 80;

    size_t end = 0;
    while (end < s.n && s.p[end] != '/' && s.p[end] != '?')
        end++;
    rc = split_authority((struct str){s.p, end}, out);
    if (rc < 0)
        return rc;
    struct str rest = str_skip(s, end);
    if (rest.n == 0)
        out->path = xstrdup("/");
    else if (rest.p[0] == '?')
        out->path = xasprintf("/%.*s", STR_FMT(rest));
    else
        out->path = xstrndup(rest.p, rest.n);
    return 0;
}

void url_parts_free(struct url_parts *p)
{
    FREE_NULL(p->path);
}
