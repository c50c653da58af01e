/*
 * Strict HTTP/1.1 head parser and chunked decoder. See http_parse.h for the contract.
 *
 * The head parser is a single forward pass over buf[0..len) with a cursor. Every step returns
 * 0 (ok, cursor advanced), HTTP_PARSE_INCOMPLETE (ran off the end of the input before the
 * construct could be judged) or HTTP_PARSE_BAD (a byte that can never become valid). Because
 * a byte is only judged once it is present, any prefix of a valid head yields INCOMPLETE and a
 * malformed head is rejected as soon as the offending byte arrives.
 */
#include "lib/http_parse.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>

/* Bounds on bytes the chunked decoder skips without handing them to the caller. */
#define CHUNK_MAX_EXT_BYTES     4096
#define CHUNK_MAX_TRAILER_BYTES (64 * 1024)
#define CHUNK_MAX_HEX_DIGITS    16

/* b in each byte of a word, for tests eight bytes at a time */
#define BYTES(b) (UINT64_C(0x0101010101010101) * (b))

struct cursor {
    const char *p;
    const char *end;
};

/* RFC 9110 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~ (one load per byte of every field name). */
static const bool tchar_tab[256] = {
    ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true, ['!'] = true,  ['#'] = true,
    ['$'] = true,         ['%'] = true,         ['&'] = true,         ['\''] = true, ['*'] = true,
    ['+'] = true,         ['-'] = true,         ['.'] = true,         ['^'] = true,  ['_'] = true,
    ['`'] = true,         ['|'] = true,         ['~'] = true,
};

static bool is_tchar(unsigned char c)
{
    return tchar_tab[c];
}

/* Bytes allowed in a field value or reason phrase: HTAB, SP, VCHAR, obs-text. */
static bool is_field_byte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Bytes allowed in a request-target: anything but SP and control bytes. */
static bool is_target_byte(unsigned char c)
{
    return c > 0x20 && c != 0x7f;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int expect_crlf(struct cursor *c)
{
    if (c->p == c->end)
        return HTTP_PARSE_INCOMPLETE;
    if (*c->p != '\r')
        return HTTP_PARSE_BAD;
    c->p++;
    if (c->p == c->end)
        return HTTP_PARSE_INCOMPLETE;
    if (*c->p != '\n')
        return HTTP_PARSE_BAD;
    c->p++;
    return 0;
}

static int expect_byte(struct cursor *c, char want)
{
    if (c->p == c->end)
        return HTTP_PARSE_INCOMPLETE;
    if (*c->p != want)
        return HTTP_PARSE_BAD;
    c->p++;
    return 0;
}

/* "HTTP/1.0" or "HTTP/1.1"; any other version is BAD (we speak nothing else). */
static int parse_version(struct cursor *c, int *minor)
{
    static const char prefix[] = "HTTP/1.";

    /* the whole version at once when it is there; byte by byte to judge a part */
    if (c->end - c->p >= 8 && memcmp(c->p, prefix, sizeof(prefix) - 1) == 0 &&
        (c->p[7] == '0' || c->p[7] == '1')) {
        *minor = c->p[7] - '0';
        c->p += 8;
        return 0;
    }
    for (size_t i = 0; i < sizeof(prefix) - 1; i++) {
        int rc = expect_byte(c, prefix[i]);
        if (rc)
            return rc;
    }
    if (c->p == c->end)
        return HTTP_PARSE_INCOMPLETE;
    if (*c->p != '0' && *c->p != '1')
        return HTTP_PARSE_BAD;
    *minor = *c->p - '0';
    c->p++;
    return 0;
}

static int parse_token(struct cursor *c, struct str *out)
{
    const char *start = c->p;

    while (c->p < c->end && is_tchar((unsigned char)*c->p))
        c->p++;
    if (c->p == c->end)
        return HTTP_PARSE_INCOMPLETE;
    if (c->p == start)
        return HTTP_PARSE_BAD;
    *out = (struct str){start, (size_t)(c->p - start)};
    return 0;
}

/* ---- field names the parser recognises ---- */

static const char *const field_names[HTTP_FIELD_COUNT] = {
    [HTTP_FIELD_OTHER] = "",
    [HTTP_FIELD_CONNECTION] = "connection",
    [HTTP_FIELD_CONTENT_LENGTH] = "content-length",
    [HTTP_FIELD_EXPECT] = "expect",
    [HTTP_FIELD_FORWARDED] = "forwarded",
    [HTTP_FIELD_HOST] = "host",
    [HTTP_FIELD_KEEP_ALIVE] = "keep-alive",
    [HTTP_FIELD_PROXY_CONNECTION] = "proxy-connection",
    [HTTP_FIELD_TE] = "te",
    [HTTP_FIELD_TRAILER] = "trailer",
    [HTTP_FIELD_TRANSFER_ENCODING] = "transfer-encoding",
    [HTTP_FIELD_UPGRADE] = "upgrade",
    [HTTP_FIELD_VIA] = "via",
    [HTTP_FIELD_X_FORWARDED_FOR] = "x-forwarded-for",
    [HTTP_FIELD_X_FORWARDED_PROTO] = "x-forwarded-proto",
};

/*
 * The recognised fields by name length, at most two of each length: a name is compared only
 * with those of its length whose first byte it shares, so a field the parser does not know
 * (Date, Server, Content-Type, ...) usually costs one table lookup and no comparison.
 */
#define FIELD_MAX_LEN 17
static const uint8_t fields_by_len[FIELD_MAX_LEN + 1][2] = {
    [2] = {HTTP_FIELD_TE},
    [3] = {HTTP_FIELD_VIA},
    [4] = {HTTP_FIELD_HOST},
    [6] = {HTTP_FIELD_EXPECT},
    [7] = {HTTP_FIELD_TRAILER, HTTP_FIELD_UPGRADE},
    [9] = {HTTP_FIELD_FORWARDED},
    [10] = {HTTP_FIELD_CONNECTION, HTTP_FIELD_KEEP_ALIVE},
    [14] = {HTTP_FIELD_CONTENT_LENGTH},
    [15] = {HTTP_FIELD_X_FORWARDED_FOR},
    [16] = {HTTP_FIELD_PROXY_CONNECTION},
    [17] = {HTTP_FIELD_TRANSFER_ENCODING, HTTP_FIELD_X_FORWARDED_PROTO},
};

/*
 * The field a token names. Only letters and '-' make up the recognised names, and for a token
 * byte c, c | 0x20 is one of them exactly when c is that letter in either case or '-' (the one
 * other byte that folds to '-', CR, is no token byte): so eight bytes fold and compare at once.
 */
static enum http_field field_of_token(struct str name)
{
    if (name.n > FIELD_MAX_LEN)
        return HTTP_FIELD_OTHER;
    for (size_t k = 0; k < 2 && fields_by_len[name.n][k] != HTTP_FIELD_OTHER; k++) {
        enum http_field id = fields_by_len[name.n][k];
        const char *want = field_names[id];
        size_t i = 0;

        /* the first byte rules out nearly every field the table does not know */
        if (((unsigned char)name.p[0] | 0x20) != (unsigned char)want[0])
            continue;
        for (; i + 8 <= name.n; i += 8) {
            uint64_t a, b;
            memcpy(&a, name.p + i, 8);
            memcpy(&b, want + i, 8);
            if ((a | BYTES(0x20)) != b)
                break;
        }
        while (i < name.n && ((unsigned char)name.p[i] | 0x20) == (unsigned char)want[i])
            i++;
        if (i == name.n)
            return id;
    }
    return HTTP_FIELD_OTHER;
}

enum http_field http_field_of(struct str name)
{
    return http_valid_token(name) ? field_of_token(name) : HTTP_FIELD_OTHER;
}

const char *http_field_name(enum http_field id)
{
    return id > HTTP_FIELD_OTHER && id < HTTP_FIELD_COUNT ? field_names[id] : "";
}

/* ---- field lines ---- */

/*
 * Skips the bytes at p that are at least min and not DEL, eight at a time: the plain bytes of
 * a field value (min 0x20: a CR, an HTAB or a bad byte stops it) or of a request-target (min
 * 0x21). Returns the first other byte, or a point fewer than eight bytes before end from which
 * the caller judges byte by byte.
 *
 * In (x - BYTES(min)) & ~x the high bit of the lowest byte below min is set (min <= 0x80);
 * bytes above it may be flagged too by the borrow, which does not matter as only the lowest
 * flag is used. The same test with min 1 on x ^ BYTES(0x7f) finds a DEL.
 */
static const char *skip_plain(const char *p, const char *end, unsigned char min)
{
    while (end - p >= 8) {
        uint64_t x, del, stop;

        memcpy(&x, p, sizeof(x));
        del = x ^ BYTES(0x7f);
        stop = (((x - BYTES(min)) & ~x) | ((del - BYTES(1)) & ~del)) & BYTES(0x80);
        if (stop) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            p += __builtin_ctzll(stop) / 8; /* the first byte in memory is the lowest */
#endif
            break;
        }
        p += 8;
    }
    return p;
}

/* One field line after its first byte has been checked not to be CR. */
static int parse_header_line(struct cursor *c, struct http_header *h)
{
    const char *value, *end;
    int rc;

    /* obs-fold: a continuation line is never accepted (RFC 9112 section 5.2). */
    if (is_ows(*c->p))
        return HTTP_PARSE_BAD;
    rc = parse_token(c, &h->name);
    if (rc)
        return rc;
    /* Anything but ':' right after the name, whitespace included, is BAD. */
    rc = expect_byte(c, ':');
    if (rc)
        return rc;
    h->id = field_of_token(h->name);
    while (c->p < c->end && is_ows(*c->p))
        c->p++;
    value = c->p;
    for (;;) {
        c->p = skip_plain(c->p, c->end, 0x20);
        if (c->p == c->end)
            return HTTP_PARSE_INCOMPLETE;
        if (*c->p == '\r')
            break;
        if (!is_field_byte((unsigned char)*c->p))
            return HTTP_PARSE_BAD;
        c->p++;
    }
    for (end = c->p; end > value && is_ows(end[-1]); end--)
        ;
    h->value = (struct str){value, (size_t)(end - value)};
    return expect_crlf(c);
}

static int parse_headers(struct cursor *c, struct http_header *headers, size_t *num, size_t max)
{
    *num = 0;
    for (;;) {
        if (c->p == c->end)
            return HTTP_PARSE_INCOMPLETE;
        if (*c->p == '\r')
            return expect_crlf(c);
        if (*num == max)
            return HTTP_PARSE_TOO_LARGE;
        int rc = parse_header_line(c, &headers[*num]);
        if (rc)
            return rc;
        (*num)++;
    }
}

bool http_list_next(struct str *list, struct str *elem)
{
    while (list->n) {
        const char *comma = memchr(list->p, ',', list->n);
        size_t n = comma ? (size_t)(comma - list->p) : list->n;

        *elem = str_trim((struct str){list->p, n});
        *list = str_skip(*list, comma ? n + 1 : n);
        /* RFC 9110 section 5.6.1: empty list elements are ignored. */
        if (elem->n)
            return true;
    }
    return false;
}

static bool parse_decimal(struct str s, int64_t *out)
{
    int64_t v = 0;

    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        int d = s.p[i] - '0';
        if (d < 0 || d > 9 || v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Content-Length: every element of every instance must be the same decimal number. */
static int framing_content_length(struct str value, struct http_framing *f)
{
    struct str elem;
    int64_t v;
    bool any = false;

    /* the usual value is one number (values come trimmed): no list to split */
    if (parse_decimal(value, &v) && (f->content_length < 0 || f->content_length == v)) {
        f->content_length = v;
        return 0;
    }
    while (http_list_next(&value, &elem)) {
        if (!parse_decimal(elem, &v))
            return HTTP_PARSE_BAD;
        if (f->content_length >= 0 && f->content_length != v)
            return HTTP_PARSE_BAD;
        f->content_length = v;
        any = true;
    }
    return any ? 0 : HTTP_PARSE_BAD;
}

/*
 * Transfer-Encoding: records whether the last coding seen so far is chunked and how often
 * chunked appeared. Only a list ending in a single "chunked" frames the body (RFC 9112
 * section 6.1); "chunked;param" is not chunked.
 */
static int framing_transfer_encoding(struct str value, bool *chunked_last, int *chunked_count)
{
    struct str elem;
    bool any = false;

    while (http_list_next(&value, &elem)) {
        size_t n = 0;
        while (n < elem.n && is_tchar((unsigned char)elem.p[n]))
            n++;
        if (n == 0 || (n < elem.n && elem.p[n] != ';' && !is_ows(elem.p[n])))
            return HTTP_PARSE_BAD;
        *chunked_last = n == elem.n && str_ieq_cstr(elem, "chunked");
        if (*chunked_last)
            (*chunked_count)++;
        any = true;
    }
    return any ? 0 : HTTP_PARSE_BAD;
}

static void framing_connection(struct str value, bool *close, bool *keep_alive,
                               struct http_framing *f)
{
    struct str elem;

    /* the usual value is one token (values come trimmed): no list to split */
    if (str_ieq_cstr(value, "keep-alive")) {
        *keep_alive = true;
        return;
    }
    while (http_list_next(&value, &elem)) {
        if (str_ieq_cstr(elem, "close"))
            *close = true;
        else if (str_ieq_cstr(elem, "keep-alive"))
            *keep_alive = true;
        else if (str_ieq_cstr(elem, "upgrade"))
            f->upgrade = true;
        else
            f->connection_names = true;
    }
}

/*
 * Framing from a head's fields. same_hosts: for a request, whether Host lines repeating the
 * first one's value are let through (http_limits.same_hosts); NULL for a response.
 */
static int compute_framing(const struct http_header *headers, size_t n, int minor,
                           const bool *same_hosts, struct http_framing *f)
{
    bool close = false, keep_alive = false, has_te = false, chunked = false;
    bool is_request = same_hosts != NULL, other_host = false;
    const struct http_header *host = NULL;
    int rc, chunked_count = 0, host_count = 0;

    *f = (struct http_framing){.content_length = -1};
    for (size_t i = 0; i < n; i++) {
        const struct http_header *h = &headers[i];

        f->fields |= 1u << h->id;
        switch (h->id) {
        case HTTP_FIELD_CONTENT_LENGTH:
            rc = framing_content_length(h->value, f);
            if (rc)
                return rc;
            break;
        case HTTP_FIELD_TRANSFER_ENCODING:
            has_te = true;
            rc = framing_transfer_encoding(h->value, &chunked, &chunked_count);
            if (rc)
                return rc;
            break;
        case HTTP_FIELD_CONNECTION:
            framing_connection(h->value, &close, &keep_alive, f);
            break;
        case HTTP_FIELD_EXPECT:
            if (is_request)
                f->expect_continue = str_ieq_cstr(h->value, "100-continue");
            break;
        case HTTP_FIELD_HOST:
            other_host |= host && !str_ieq(h->value, host->value);
            host = host ? host : h;
            host_count++;
            break;
        default:
            break;
        }
    }
    /* Two Host values name two targets: a proxy and its backend may each pick another one
     * (RFC 9112 section 3.2 asks for a 400, as Consul's Go server and HAProxy answer). Go
     * refuses a second Host line in any case ("too many Host headers"); HAProxy drops one
     * that repeats the first (h1.c, h1_headers_to_hdr_list). */
    if (is_request && host_count > 1 && (!*same_hosts || other_host))
        return HTTP_PARSE_BAD;
    f->host_repeated = host_count > 1;
    if (has_te) {
        /* Both present is the classic smuggling vector: refuse rather than pick one. */
        if (f->content_length >= 0)
            return HTTP_PARSE_BAD;
        /* Chunked twice is never valid (RFC 9112 section 6.1). */
        if (chunked_count > 1)
            return HTTP_PARSE_BAD;
        /* HTTP/1.0 has no chunked coding; a request body we cannot delimit is BAD. */
        if (is_request && (!chunked || minor == 0))
            return HTTP_PARSE_BAD;
        /* Responses: a body not ending in chunked (or on 1.0) runs until the close. */
        f->chunked = chunked && minor == 1;
        if (!f->chunked)
            close = true;
    }
    f->keep_alive = !close && (minor == 1 || keep_alive);
    return 0;
}

static void resolve_limits(const struct http_limits *limits, size_t *max_bytes, size_t *max_headers)
{
    *max_bytes = HTTP_DEFAULT_MAX_HEAD;
    *max_headers = HTTP_MAX_HEADERS;
    if (limits && limits->max_head_bytes)
        *max_bytes = limits->max_head_bytes;
    if (limits && limits->max_headers && limits->max_headers < HTTP_MAX_HEADERS)
        *max_headers = limits->max_headers;
    /* The consumed count is returned as an int. */
    if (*max_bytes > INT_MAX)
        *max_bytes = INT_MAX;
}

static int parse_request_line(struct cursor *c, struct http_request_head *req)
{
    const char *target;
    int rc;

    /* RFC 9112 section 2.2: ignore empty lines before the request-line (CRLF only). */
    while (c->p < c->end && *c->p == '\r') {
        rc = expect_crlf(c);
        if (rc)
            return rc;
    }
    rc = parse_token(c, &req->method);
    if (rc)
        return rc;
    rc = expect_byte(c, ' ');
    if (rc)
        return rc;
    target = c->p;
    for (;;) {
        c->p = skip_plain(c->p, c->end, 0x21);
        if (c->p == c->end || *c->p == ' ')
            break;
        if (!is_target_byte((unsigned char)*c->p))
            return HTTP_PARSE_BAD;
        c->p++;
    }
    if (c->p == c->end)
        return HTTP_PARSE_INCOMPLETE;
    if (c->p == target)
        return HTTP_PARSE_BAD;
    req->target = (struct str){target, (size_t)(c->p - target)};
    c->p++;
    rc = parse_version(c, &req->minor_version);
    if (rc)
        return rc;
    return expect_crlf(c);
}

static int parse_request_in(const char *buf, size_t len, size_t max_headers, bool same_hosts,
                            struct http_request_head *req)
{
    struct cursor c = {buf, buf + len};
    int rc;

    rc = parse_request_line(&c, req);
    if (rc)
        return rc;
    rc = parse_headers(&c, req->headers, &req->num_headers, max_headers);
    if (rc)
        return rc;
    rc = compute_framing(req->headers, req->num_headers, req->minor_version, &same_hosts,
                         &req->framing);
    if (rc)
        return rc;
    return (int)(c.p - buf);
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *limits,
                       struct http_request_head *req)
{
    size_t max_bytes, max_headers;
    int rc;

    resolve_limits(limits, &max_bytes, &max_headers);
    /* Parse only the allowed window: a head not ended inside it is too large, not incomplete. */
    rc = parse_request_in(buf, len < max_bytes ? len : max_bytes, max_headers,
                          limits && limits->same_hosts, req);
    if (rc == HTTP_PARSE_INCOMPLETE && len >= max_bytes)
        return HTTP_PARSE_TOO_LARGE;
    return rc;
}

static int parse_status_line(struct cursor *c, struct http_response_head *res)
{
    const char *reason;
    int rc;

    rc = parse_version(c, &res->minor_version);
    if (rc)
        return rc;
    rc = expect_byte(c, ' ');
    if (rc)
        return rc;
    res->status = 0;
    for (int i = 0; i < 3; i++) {
        if (c->p == c->end)
            return HTTP_PARSE_INCOMPLETE;
        if (*c->p < '0' || *c->p > '9' || (i == 0 && *c->p == '0'))
            return HTTP_PARSE_BAD;
        res->status = res->status * 10 + (*c->p - '0');
        c->p++;
    }
    if (c->p == c->end)
        return HTTP_PARSE_INCOMPLETE;
    /* The SP before an empty reason is sometimes omitted; "200\r\n" is accepted. */
    if (*c->p == ' ')
        c->p++;
    else if (*c->p != '\r')
        return HTTP_PARSE_BAD;
    reason = c->p;
    while (c->p < c->end && *c->p != '\r') {
        if (!is_field_byte((unsigned char)*c->p))
            return HTTP_PARSE_BAD;
        c->p++;
    }
    res->reason = (struct str){reason, (size_t)(c->p - reason)};
    return expect_crlf(c);
}

static int parse_response_in(const char *buf, size_t len, size_t max_headers,
                             struct http_response_head *res)
{
    struct cursor c = {buf, buf + len};
    int rc;

    rc = parse_status_line(&c, res);
    if (rc)
        return rc;
    rc = parse_headers(&c, res->headers, &res->num_headers, max_headers);
    if (rc)
        return rc;
    rc = compute_framing(res->headers, res->num_headers, res->minor_version, NULL, &res->framing);
    if (rc)
        return rc;
    return (int)(c.p - buf);
}

int http_parse_response(const char *buf, size_t len, const struct http_limits *limits,
                        struct http_response_head *res)
{
    size_t max_bytes, max_headers;
    int rc;

    resolve_limits(limits, &max_bytes, &max_headers);
    rc = parse_response_in(buf, len < max_bytes ? len : max_bytes, max_headers, res);
    if (rc == HTTP_PARSE_INCOMPLETE && len >= max_bytes)
        return HTTP_PARSE_TOO_LARGE;
    return rc;
}

/* ---- incremental head reading ---- */

/*
 * Searches the bytes not searched before for a reason to run the full parse (http_parse.h).
 * Request heads may follow empty lines, so their end is a CRLF CRLF after the first byte that
 * is neither CR nor LF; a response's starts at byte 0.
 */
static bool scan_says_parse(struct http_head_scan *s, const char *buf, size_t len, size_t window,
                            bool request)
{
    size_t end = len < window ? len : window;
    size_t i = s->scanned;
    bool parse = false;

    if (!request)
        s->started = true;
    /* leading empty lines (requests): CR and LF until the first other byte */
    for (; i < end && !s->started && !parse; i++) {
        if (buf[i] != '\r' && buf[i] != '\n') {
            s->start = i;
            s->started = true;
            break;
        }
        if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r'))
            parse = true; /* a bare LF: malformed wherever it is */
    }
    /* then only the line ends matter: jump from one LF to the next */
    while (i < end && !parse) {
        const char *lf = memchr(buf + i, '\n', end - i);
        if (!lf) {
            i = end;
            break;
        }
        i = (size_t)(lf - buf);
        if (i == 0 || buf[i - 1] != '\r')
            parse = true; /* a bare LF */
        else if (i >= s->start + 4 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            parse = true; /* CRLF CRLF: the end of the head */
        i++;
    }
    s->examined += i - s->scanned;
    s->scanned = i;
    return parse || len >= window;
}

/*
 * Whether the full parse runs now; if so, counts the bytes it will look at. The first call
 * parses without searching (a head usually comes whole in one read); first_incomplete then
 * tells the search to catch up with what that parse saw.
 */
static bool scan_ready(struct http_head_scan *s, const char *buf, size_t len,
                       const struct http_limits *limits, bool request, bool first_incomplete)
{
    size_t max_bytes, max_headers;

    resolve_limits(limits, &max_bytes, &max_headers);
    if (first_incomplete) {
        scan_says_parse(s, buf, len, max_bytes, request);
        return false;
    }
    if (s->scanned != 0 && !scan_says_parse(s, buf, len, max_bytes, request))
        return false;
    s->examined += len < max_bytes ? len : max_bytes;
    return true;
}

int http_scan_request(struct http_head_scan *scan, const char *buf, size_t len,
                      const struct http_limits *limits, struct http_request_head *req)
{
    bool first = scan->scanned == 0;

    if (!scan_ready(scan, buf, len, limits, true, false))
        return HTTP_PARSE_INCOMPLETE;
    int r = http_parse_request(buf, len, limits, req);
    if (first && r == HTTP_PARSE_INCOMPLETE)
        scan_ready(scan, buf, len, limits, true, true);
    return r;
}

int http_scan_response(struct http_head_scan *scan, const char *buf, size_t len,
                       const struct http_limits *limits, struct http_response_head *res)
{
    bool first = scan->scanned == 0;

    if (!scan_ready(scan, buf, len, limits, false, false))
        return HTTP_PARSE_INCOMPLETE;
    int r = http_parse_response(buf, len, limits, res);
    if (first && r == HTTP_PARSE_INCOMPLETE)
        scan_ready(scan, buf, len, limits, false, true);
    return r;
}

bool http_response_has_body(const struct http_response_head *res, bool request_was_head)
{
    if (request_was_head)
        return false;
    return !(res->status < 200 || res->status == 204 || res->status == 304);
}

bool http_valid_token(struct str s)
{
    for (size_t i = 0; i < s.n; i++) {
        if (!is_tchar((unsigned char)s.p[i]))
            return false;
    }
    return s.n > 0;
}

bool http_valid_field_value(struct str s)
{
    for (size_t i = 0; i < s.n; i++) {
        if (!is_field_byte((unsigned char)s.p[i]))
            return false;
    }
    return true;
}

bool http_valid_target(struct str s)
{
    for (size_t i = 0; i < s.n; i++) {
        if (!is_target_byte((unsigned char)s.p[i]))
            return false;
    }
    return s.n > 0;
}

/* A URI scheme's length at the start of s (RFC 3986 section 3.1: ALPHA *( ALPHA / DIGIT / "+" /
 * "-" / "." ) before ':'), 0 when s does not start with one. */
static size_t scheme_len(struct str s)
{
    size_t i = 0;

    if (s.n == 0 || !isalpha((unsigned char)s.p[0]))
        return 0;
    while (i < s.n &&
           (isalnum((unsigned char)s.p[i]) || s.p[i] == '+' || s.p[i] == '-' || s.p[i] == '.'))
        i++;
    return i < s.n && s.p[i] == ':' ? i : 0;
}

/* p[0..end) less a "userinfo@" prefix: what follows its last '@'. */
static struct str without_userinfo(const char *p, size_t end)
{
    const char *at = NULL;

    for (size_t i = 0; i < end; i++)
        if (p[i] == '@')
            at = p + i;
    return at ? (struct str){at + 1, (size_t)(p + end - at - 1)} : (struct str){p, end};
}

void http_target_parse(struct str target, struct http_target *out)
{
    size_t k = scheme_len(target);
    struct str rest;
    size_t end = 0;

    *out = (struct http_target){HTTP_TARGET_OTHER, {target.p, 0}, {target.p, 0}};
    if (target.n && target.p[0] == '/') {
        out->form = HTTP_TARGET_ORIGIN;
        out->origin = target;
        return;
    }
    if (target.n == 1 && target.p[0] == '*') {
        out->form = HTTP_TARGET_ASTERISK;
        return;
    }
    rest = k ? (struct str){target.p + k + 1, target.n - k - 1} : target;
    if (k && rest.n >= 2 && rest.p[0] == '/' && rest.p[1] == '/') {
        rest = (struct str){rest.p + 2, rest.n - 2};
        while (end < rest.n && rest.p[end] != '/' && rest.p[end] != '?')
            end++;
        out->authority = without_userinfo(rest.p, end);
        rest = (struct str){rest.p + end, rest.n - end};
    }
    /* A scheme without a path or query that starts so ("mailto:x") is opaque: not a target. */
    if (k && (rest.n == 0 || rest.p[0] == '/' || rest.p[0] == '?')) {
        out->form = HTTP_TARGET_ABSOLUTE;
        out->origin = rest;
        return;
    }
    while (end < target.n && target.p[end] != '/')
        end++;
    out->authority = without_userinfo(target.p, end);
}

struct str http_target_proxy_authority(struct str target)
{
    size_t k = scheme_len(target);
    size_t end = 0;

    if (target.n == 0 || target.p[0] == '/' || target.p[0] == '*')
        return (struct str){target.p, 0};
    if (k && target.n - k >= 3 && memcmp(target.p + k, "://", 3) == 0)
        target = str_skip(target, k + 3);
    while (end < target.n && target.p[end] != '/')
        end++;
    return without_userinfo(target.p, end);
}

const struct http_header *http_find_header(const struct http_header *headers, size_t n,
                                           const char *name)
{
    struct str want = str_from(name);

    for (size_t i = 0; i < n; i++) {
        if (str_ieq(headers[i].name, want))
            return &headers[i];
    }
    return NULL;
}

/* ---- chunked transfer coding ---- */

enum chunk_state {
    CH_SIZE = 0, /* hex digits of chunk-size */
    CH_EXT_BWS,  /* whitespace after the size: only more BWS or ';' may follow */
    CH_EXT,      /* chunk extensions, skipped up to CR */
    CH_SIZE_LF,  /* LF ending the chunk-size line */
    CH_DATA,     /* bytes_left_in_chunk data bytes */
    CH_DATA_CR,  /* CRLF after chunk data */
    CH_DATA_LF,
    CH_TRAILER_START, /* start of a trailer line, or the final CRLF */
    CH_TRAILER,       /* inside a trailer field line */
    CH_TRAILER_LF,    /* LF ending a trailer field line */
    CH_END_LF,        /* LF of the final CRLF */
    CH_DONE,
};

/* After the size line: a zero size starts the trailer section. */
static int chunk_after_size_line(struct http_chunked_decoder *dec)
{
    if (dec->bytes_left_in_chunk == 0) {
        dec->state = CH_TRAILER_START;
        dec->hex_count = 0; /* counts trailer bytes from here on */
        return CH_TRAILER_START;
    }
    return CH_DATA;
}

/* Consumes one byte of the chunk-size line (states CH_SIZE..CH_SIZE_LF). */
static int chunk_size_byte(struct http_chunked_decoder *dec, char ch)
{
    int v;

    switch (dec->state) {
    case CH_SIZE:
        v = str_hex_digit(ch);
        if (v >= 0) {
            if (++dec->hex_count > CHUNK_MAX_HEX_DIGITS)
                return HTTP_PARSE_BAD;
            dec->bytes_left_in_chunk = dec->bytes_left_in_chunk * 16 + (uint64_t)v;
            return CH_SIZE;
        }
        if (dec->hex_count == 0)
            return HTTP_PARSE_BAD;
        dec->hex_count = 0; /* counts extension bytes from here on */
        if (ch == '\r')
            return CH_SIZE_LF;
        if (ch == ';')
            return CH_EXT;
        return is_ows(ch) ? CH_EXT_BWS : HTTP_PARSE_BAD;
    case CH_EXT_BWS:
        if (++dec->hex_count > CHUNK_MAX_EXT_BYTES)
            return HTTP_PARSE_BAD;
        if (ch == ';')
            return CH_EXT;
        return is_ows(ch) ? CH_EXT_BWS : HTTP_PARSE_BAD;
    case CH_EXT:
        if (++dec->hex_count > CHUNK_MAX_EXT_BYTES)
            return HTTP_PARSE_BAD;
        if (ch == '\r')
            return CH_SIZE_LF;
        return is_field_byte((unsigned char)ch) ? CH_EXT : HTTP_PARSE_BAD;
    default: /* CH_SIZE_LF */
        if (ch != '\n')
            return HTTP_PARSE_BAD;
        return chunk_after_size_line(dec);
    }
}

/* Consumes one byte of the trailer section and the final CRLF. */
static int chunk_trailer_byte(struct http_chunked_decoder *dec, char ch)
{
    if (++dec->hex_count > CHUNK_MAX_TRAILER_BYTES)
        return HTTP_PARSE_BAD;
    switch (dec->state) {
    case CH_TRAILER_START:
        if (ch == '\r')
            return CH_END_LF;
        /* A trailer line is a field line: no obs-fold, and it needs a name. */
        return is_tchar((unsigned char)ch) ? CH_TRAILER : HTTP_PARSE_BAD;
    case CH_TRAILER:
        if (ch == '\r')
            return CH_TRAILER_LF;
        return is_field_byte((unsigned char)ch) ? CH_TRAILER : HTTP_PARSE_BAD;
    case CH_TRAILER_LF:
        return ch == '\n' ? CH_TRAILER_START : HTTP_PARSE_BAD;
    default: /* CH_END_LF */
        return ch == '\n' ? CH_DONE : HTTP_PARSE_BAD;
    }
}

ssize_t http_decode_chunked(struct http_chunked_decoder *dec, char *buf, size_t *len)
{
    size_t src = 0, dst = 0, n = *len;
    int next;

    while (src < n && dec->state != CH_DONE) {
        if (dec->state == CH_DATA) {
            size_t avail = n - src;
            size_t take =
                dec->bytes_left_in_chunk < avail ? (size_t)dec->bytes_left_in_chunk : avail;
            memmove(buf + dst, buf + src, take);
            dst += take;
            src += take;
            dec->bytes_left_in_chunk -= take;
            if (dec->bytes_left_in_chunk == 0)
                dec->state = CH_DATA_CR;
            continue;
        }
        char ch = buf[src++];
        if (dec->state <= CH_SIZE_LF)
            next = chunk_size_byte(dec, ch);
        else if (dec->state == CH_DATA_CR)
            next = ch == '\r' ? CH_DATA_LF : HTTP_PARSE_BAD;
        else if (dec->state == CH_DATA_LF)
            next = ch == '\n' ? CH_SIZE : HTTP_PARSE_BAD;
        else
            next = chunk_trailer_byte(dec, ch);
        if (next < 0) {
            *len = dst;
            return HTTP_PARSE_BAD;
        }
        if (dec->state == CH_DATA_LF && next == CH_SIZE)
            dec->hex_count = 0;
        dec->state = next;
    }
    *len = dst;
    if (dec->state != CH_DONE)
        return HTTP_PARSE_INCOMPLETE;
    /* Leave what followed the body right after the decoded data. */
    memmove(buf + dst, buf + src, n - src);
    return (ssize_t)(n - src);
}

static const struct {
    int status;
    const char *reason;
} status_reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {102, "Processing"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {207, "Multi-Status"},
    {208, "Already Reported"},
    {226, "IM Used"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {305, "Use Proxy"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {418, "I'm a teapot"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {423, "Locked"},
    {424, "Failed Dependency"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
    {506, "Variant Also Negotiates"},
    {507, "Insufficient Storage"},
    {508, "Loop Detected"},
    {510, "Not Extended"},
    {511, "Network Authentication Required"},
};

const char *http_status_reason(int status)
{
    /* The table is sorted; a binary search keeps this cheap on every response. */
    size_t lo = 0, hi = sizeof(status_reasons) / sizeof(status_reasons[0]);

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (status_reasons[mid].status == status)
            return status_reasons[mid].reason;
        if (status_reasons[mid].status < status)
            lo = mid + 1;
        else
            hi = mid;
    }
    return "";
}
