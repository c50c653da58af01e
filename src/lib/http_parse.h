/*
 * HTTP/1.1 message head parser and chunked-body decoder, shaped like picohttpparser: it
 * allocates nothing, every result is a slice into the caller's buffer, and it returns
 *   > 0   bytes consumed (the whole head, through the blank line),
 *   HTTP_PARSE_INCOMPLETE (-2)  need more bytes,
 *   HTTP_PARSE_BAD (-1)         malformed: answer 400 and close,
 *   HTTP_PARSE_TOO_LARGE (-3)   head over the byte or header-count limit: answer 431 and close.
 *
 * It is strict where leniency causes request smuggling (RFC 9112): a bare LF anywhere in the
 * head, obsolete line folding, whitespace between a field name and its colon, a field name that
 * is not a token, conflicting or malformed Content-Length, Content-Length together with
 * Transfer-Encoding, and a Transfer-Encoding whose last coding is not "chunked" (requests) are
 * all HTTP_PARSE_BAD. So are: a request line with anything but single SPs between its parts,
 * a method or field name that is not a token, a request-target that is empty or holds SP or
 * control bytes, a version other than HTTP/1.0 or HTTP/1.1, control bytes other than HTAB in
 * a field value or reason phrase, "chunked" applied twice, and Transfer-Encoding in an
 * HTTP/1.0 request. Empty lines (CRLF) before a request line are skipped and counted in the
 * consumed bytes. Identical Content-Length values ("5, 5" or repeated fields) are collapsed.
 *
 * The parser keeps no state: readers call it through http_scan_request / _response (below),
 * which re-run it only when a head may be complete. Any prefix of a valid head returns
 * HTTP_PARSE_INCOMPLETE; a malformed head is reported as soon as the first
 * offending byte is present. Only the first max_head_bytes of buf are looked at: a head that
 * has not ended within them is HTTP_PARSE_TOO_LARGE even though more input is pending. On any
 * negative return the output struct holds garbage.
 */
#ifndef MESH_LIB_HTTP_PARSE_H
#define MESH_LIB_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/str.h"

#define HTTP_PARSE_BAD        (-1)
#define HTTP_PARSE_INCOMPLETE (-2)
#define HTTP_PARSE_TOO_LARGE  (-3)

/* Hard cap on header fields per message; callers may set a lower limit. */
#define HTTP_MAX_HEADERS 100
/* Head size limit when the caller sets none. */
#define HTTP_DEFAULT_MAX_HEAD (64 * 1024)

/*
 * The fields the parser recognises by name as it reads them (by length and first byte before
 * any comparison): those that frame a message and those a proxy rewrites. Every other field
 * is HTTP_FIELD_OTHER and costs nothing beyond its syntax check.
 */
enum http_field {
    HTTP_FIELD_OTHER = 0,
    HTTP_FIELD_CONNECTION,
    HTTP_FIELD_CONTENT_LENGTH,
    HTTP_FIELD_EXPECT,
    HTTP_FIELD_FORWARDED,
    HTTP_FIELD_HOST,
    HTTP_FIELD_KEEP_ALIVE,
    HTTP_FIELD_PROXY_CONNECTION,
    HTTP_FIELD_TE,
    HTTP_FIELD_TRAILER,
    HTTP_FIELD_TRANSFER_ENCODING,
    HTTP_FIELD_UPGRADE,
    HTTP_FIELD_VIA,
    HTTP_FIELD_X_FORWARDED_FOR,
    HTTP_FIELD_X_FORWARDED_PROTO,
    HTTP_FIELD_COUNT,
};
_Static_assert(HTTP_FIELD_COUNT <= 32, "struct http_framing's fields has a bit per id");

struct http_header {
    struct str name;
    struct str value;   /* leading and trailing whitespace removed */
    enum http_field id; /* set by the parsers; HTTP_FIELD_OTHER in fields built by hand */
};

/* Message framing derived from the headers, shared by requests and responses. */
struct http_framing {
    int64_t content_length; /* -1 when absent */
    bool chunked;           /* Transfer-Encoding ends in chunked */
    /*
     * HTTP/1.1 unless Connection lists "close"; 1.0 only when it lists "keep-alive". False
     * for a response whose Transfer-Encoding is not chunked (its body runs until the close).
     * A response with neither Content-Length nor chunked but with a body (see
     * http_response_has_body) is also read until the close: the caller must not reuse it.
     */
    bool keep_alive;
    bool expect_continue; /* "Expect: 100-continue" (requests) */
    bool upgrade;         /* Connection lists "upgrade" */
    /* Connection lists something besides close, keep-alive and upgrade: names of fields */
    bool connection_names;
    bool host_repeated; /* requests: more than one Host line (see http_limits.same_hosts) */
    /*
     * Bit (1u << id) for each id of enum http_field among the head's fields (bit 0: a field
     * the parser does not recognise), so a proxy learns what a head holds without a second
     * pass over it.
     */
    uint32_t fields;
};

struct http_limits {
    size_t max_head_bytes; /* request line + headers + blank line; 0 = 64 KiB */
    size_t max_headers;    /* 0 = HTTP_MAX_HEADERS; never above it */
    /*
     * Requests: Host lines after the first that repeat its value (without case) are let
     * through, as HAProxy lets them (and drops them: http_framing.host_repeated says so); two
     * Host values are a 400 either way. false: any second Host line is, as in Go's net/http.
     */
    bool same_hosts;
};

struct http_request_head {
    struct str method;
    struct str target; /* request-target as sent, e.g. "/v1/kv/a%2Fb?recurse" */
    int minor_version; /* 0 or 1 */
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t num_headers;
    struct http_framing framing;
};

struct http_response_head {
    int minor_version;
    int status; /* 100..999 */
    struct str reason;
    struct http_header headers[HTTP_MAX_HEADERS];
    size_t num_headers;
    struct http_framing framing;
};

/*
 * Parses a request head from buf[0..len) (borrowed) into *req (caller-owned; its slices point
 * into buf and live as long as buf does). limits may be NULL (defaults). Returns the head's
 * length in bytes, or HTTP_PARSE_INCOMPLETE / _BAD / _TOO_LARGE. A request without
 * Content-Length or chunked coding has no body.
 */
int http_parse_request(const char *buf, size_t len, const struct http_limits *limits,
                       struct http_request_head *req);

/*
 * Parses a response head, as http_parse_request does. Status is three digits, 100..999; the
 * reason may be empty (and the SP before an empty reason may be missing). Whether the response
 * has a body also depends on the request method (HEAD) and status (1xx, 204, 304): see
 * http_response_has_body().
 */
int http_parse_response(const char *buf, size_t len, const struct http_limits *limits,
                        struct http_response_head *res);

/*
 * Reading a head as its bytes arrive. Re-parsing from byte 0 on every read costs O(n^2) for a
 * head sent in small pieces (a 63 KB head one byte per read: ~2 GB of bytes looked at). The
 * scan keeps where it stopped, as picohttpparser's last_len does: each call searches only the
 * new bytes for the blank line ending the head, and runs the full parse only
 *   - on the first call (so garbage in the first read is refused at once),
 *   - when the end of the head is there,
 *   - at a bare LF (always malformed, so the parse refuses it), and
 *   - when max_head_bytes are there without an end (too large, or malformed).
 * Between those it returns HTTP_PARSE_INCOMPLETE; otherwise it returns what
 * http_parse_request / http_parse_response return for the same bytes. A malformed byte, or a
 * field over max_headers, after the first read is thus refused when the head ends or fills
 * the window (or the reader's head timeout fires), not at once.
 *
 * buf[0..len) must start where the head does and keep its earlier bytes from call to call (it
 * may be reallocated: offsets are kept, not pointers). Start each head with a zeroed scan
 * (HTTP_HEAD_SCAN_INIT), e.g. after consuming the previous message.
 */
struct http_head_scan {
    size_t scanned;    /* bytes of buf already searched */
    size_t start;      /* requests: offset of the first byte after leading empty lines */
    bool started;      /* requests: start is known */
    uint64_t examined; /* bytes searched plus bytes parsed: the cost, for tests and stats */
};

#define HTTP_HEAD_SCAN_INIT ((struct http_head_scan){0, 0, false, 0})

int http_scan_request(struct http_head_scan *scan, const char *buf, size_t len,
                      const struct http_limits *limits, struct http_request_head *req);
int http_scan_response(struct http_head_scan *scan, const char *buf, size_t len,
                       const struct http_limits *limits, struct http_response_head *res);

/* False for a response to HEAD and for 1xx, 204 and 304; true otherwise. */
bool http_response_has_body(const struct http_response_head *res, bool request_was_head);

/* The field called name (any case), HTTP_FIELD_OTHER when it is none of enum http_field. */
enum http_field http_field_of(struct str name);

/* The lower-case name of a recognised field ("content-length"); "" for HTTP_FIELD_OTHER. */
const char *http_field_name(enum http_field id);

/*
 * Splits the next element off a comma-separated field value ("gzip, br;q=0.5") into *elem,
 * without the whitespace around it, and moves *list past it. Empty elements are skipped (RFC
 * 9110 section 5.6.1). False when the list is exhausted. Quoted strings are not looked into: a
 * comma inside one splits as any other.
 */
bool http_list_next(struct str *list, struct str *elem);

/* Case-insensitive lookup of the first header called `name`; NULL when absent. */
const struct http_header *http_find_header(const struct http_header *headers, size_t n,
                                           const char *name);

/*
 * Chunked transfer-coding decoder (RFC 9112 section 7.1), in place, picohttpparser style.
 *
 * Feed it the body bytes that have NOT been passed to it before: on each call buf[0..*len)
 * holds only new, undecoded input (the first call starts right after the head). The decoder
 * consumes all of it (keeping its position inside a chunk, size line or trailer in *dec),
 * moves the chunk data it found to the front of buf and sets *len to the number of decoded
 * data bytes now in buf[0..*len). The caller takes those bytes out before the next call and
 * then passes the next undecoded bytes. Chunk extensions are skipped (at most 4 KiB per
 * chunk), trailer fields are checked for shape and discarded (at most 64 KiB in all).
 * Returns
 *   >= 0  the body is complete (last chunk, trailers and final CRLF read); the value is the
 *         number of input bytes that followed it (the start of a pipelined message), which the
 *         decoder moves to buf[*len .. *len + ret). A call after completion decodes nothing
 *         and returns all of its input that way.
 *   HTTP_PARSE_INCOMPLETE  all input consumed, more needed (decoded bytes in buf[0..*len)),
 *   HTTP_PARSE_BAD         malformed: a chunk size that is empty, not hex or over 16 hex
 *                          digits, whitespace after the size not followed by ';', a missing
 *                          CRLF after the size line or the data, a bare LF, a control byte
 *                          in an extension or trailer, an obs-folded trailer, or extensions or
 *                          trailers over their limits. *len is then the bytes decoded before
 *                          the error; answer 400 and close.
 * The decoder does not bound the body size: the caller counts decoded bytes against its limit.
 * Initialise with memset 0 (or HTTP_CHUNKED_DECODER_INIT) before the first call.
 */
struct http_chunked_decoder {
    uint64_t bytes_left_in_chunk; /* data bytes still to come in the current chunk */
    int state;                    /* private */
    int hex_count;                /* private: digits, then extension or trailer bytes */
};

#define HTTP_CHUNKED_DECODER_INIT ((struct http_chunked_decoder){0, 0, 0})

ssize_t http_decode_chunked(struct http_chunked_decoder *dec, char *buf, size_t *len);

/*
 * What may be sent, checked by every serialiser (the client's request line and fields, the
 * server's response fields) so that no caller can inject a line break: a token (RFC 9110
 * 5.6.2) for a method or field name; a field value of HTAB, SP, VCHAR and obs-text only (no
 * CR, LF, NUL or other control byte); a request-target that is not empty and holds no SP or
 * control byte. Each accepts exactly what this parser accepts in that place.
 */
bool http_valid_token(struct str s);
bool http_valid_field_value(struct str s);
bool http_valid_target(struct str s);

/*
 * The forms of a request-target (RFC 9112 section 3.2), told apart by http_target_parse. The
 * parser checks only a target's bytes; what a form means is the server's or the proxy's call.
 */
enum http_target_form {
    HTTP_TARGET_ORIGIN,   /* "/path?query" */
    HTTP_TARGET_ABSOLUTE, /* "scheme://authority/path?query", or "scheme:/path" */
    HTTP_TARGET_ASTERISK, /* "*" */
    HTTP_TARGET_OTHER,    /* anything else: CONNECT's "host:port", a scheme-less name, junk */
};

struct http_target {
    enum http_target_form form;
    /*
     * ABSOLUTE: what "//" opens, up to the path or the query, its "user@" left out, as Go's
     * url.ParseRequestURI takes Host from it (empty when the URI has none). OTHER: everything
     * up to the first '/', "user@" left out, as HAProxy reads an authority-only target.
     * ORIGIN and ASTERISK: empty.
     */
    struct str authority;
    /*
     * ORIGIN: the target. ABSOLUTE: its path and query, which start with '/' or '?' or are empty
     * (the URI has neither). Empty for the other forms.
     */
    struct str origin;
};

/* Splits target (borrowed; out's slices point into it) into its form and parts. */
void http_target_parse(struct str target, struct http_target *out);

/*
 * The authority a proxy holds against Host, read as HAProxy 2.6 reads it (http.c
 * http_parse_authority): after a leading "scheme://" (from the target's start without one), up
 * to the first '/' alone, "user@" left out. A '?' does not end it ("http://a?x" gives "a?x",
 * where http_target's authority, Go's, is "a"), and a scheme without "//" is part of it
 * ("http:/p" gives "http:"). Empty for a target that is empty or starts with '/' or '*'. The
 * result points into target (borrowed).
 */
struct str http_target_proxy_authority(struct str target);

/* Standard reason phrase for a status code ("OK", "Not Found", ...; "" when unknown). Static. */
const char *http_status_reason(int status);

#endif
