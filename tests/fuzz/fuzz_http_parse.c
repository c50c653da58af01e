/*
 * Fuzz target for the HTTP/1.1 parser: feeds the input to the request parser, the response
 * parser (with default and tight limits), the incremental head scan (in pieces whose sizes the
 * input's first byte picks) and the chunked decoder (in one call and split in two), and checks
 * the invariants every caller relies on.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_parse.h"
#include "fuzz_check.h"

static void check_slice(struct str s, const char *buf, size_t consumed)
{
    CHECK(s.n == 0 || (s.p >= buf && s.p + s.n <= buf + consumed));
}

static void check_headers(const struct http_header *h, size_t n, const char *buf, size_t consumed)
{
    CHECK(n <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < n; i++) {
        CHECK(h[i].name.n > 0);
        check_slice(h[i].name, buf, consumed);
        check_slice(h[i].value, buf, consumed);
        /* Values are trimmed. */
        if (h[i].value.n) {
            CHECK(h[i].value.p[0] != ' ' && h[i].value.p[0] != '\t');
            CHECK(h[i].value.p[h[i].value.n - 1] != ' ');
            CHECK(h[i].value.p[h[i].value.n - 1] != '\t');
        }
        CHECK(memchr(h[i].value.p ? h[i].value.p : "", '\n', h[i].value.n) == NULL);
        /* The id names the field exactly (case aside), or no recognised one does. */
        for (int id = HTTP_FIELD_OTHER + 1; id < HTTP_FIELD_COUNT; id++)
            CHECK(str_ieq_cstr(h[i].name, http_field_name(id)) == (h[i].id == (enum http_field)id));
    }
}

static void check_framing(const struct http_framing *f, const struct http_header *h, size_t n)
{
    uint32_t fields = 0;

    CHECK(f->content_length >= -1);
    CHECK(!(f->chunked && f->content_length >= 0));
    /* a bit for each field's id, and no other (a proxy trusts it to skip its own pass) */
    for (size_t i = 0; i < n; i++)
        fields |= 1u << h[i].id;
    CHECK(f->fields == fields);
}

static void fuzz_request(const char *buf, size_t size, const struct http_limits *lim)
{
    struct http_request_head req;
    int rc = http_parse_request(buf, size, lim, &req);

    CHECK(rc >= HTTP_PARSE_TOO_LARGE && rc != 0);
    if (rc < 0)
        return;
    CHECK((size_t)rc <= size);
    if (lim && lim->max_head_bytes)
        CHECK((size_t)rc <= lim->max_head_bytes);
    CHECK(rc >= 4 && buf[rc - 1] == '\n' && buf[rc - 2] == '\r');
    CHECK(req.method.n > 0 && req.target.n > 0);
    check_slice(req.method, buf, (size_t)rc);
    check_slice(req.target, buf, (size_t)rc);
    CHECK(req.minor_version == 0 || req.minor_version == 1);
    if (lim && lim->max_headers)
        CHECK(req.num_headers <= lim->max_headers);
    check_headers(req.headers, req.num_headers, buf, (size_t)rc);
    check_framing(&req.framing, req.headers, req.num_headers);
    /* A valid head stays valid, with the same length, whatever follows it. */
    struct http_request_head again;
    for (size_t cut = (size_t)rc; cut < size && cut < (size_t)rc + 4; cut++)
        CHECK(http_parse_request(buf, cut, lim, &again) == rc);
    /* And every proper prefix is incomplete. */
    CHECK(http_parse_request(buf, (size_t)rc - 1, lim, &again) == HTTP_PARSE_INCOMPLETE);
}

static void fuzz_response(const char *buf, size_t size, const struct http_limits *lim)
{
    struct http_response_head res;
    int rc = http_parse_response(buf, size, lim, &res);

    CHECK(rc >= HTTP_PARSE_TOO_LARGE && rc != 0);
    if (rc < 0)
        return;
    CHECK((size_t)rc <= size);
    CHECK(res.status >= 100 && res.status <= 999);
    CHECK(res.minor_version == 0 || res.minor_version == 1);
    check_slice(res.reason, buf, (size_t)rc);
    check_headers(res.headers, res.num_headers, buf, (size_t)rc);
    check_framing(&res.framing, res.headers, res.num_headers);
    (void)http_response_has_body(&res, false);
    CHECK(http_status_reason(res.status) != NULL);
    struct http_response_head again;
    CHECK(http_parse_response(buf, (size_t)rc - 1, lim, &again) == HTTP_PARSE_INCOMPLETE);
}

/*
 * Feeds buf to the incremental scan `step` bytes more per call, as reads would. It must give
 * the one-shot parse's answer, except that a head refused (malformed, or over max_headers) may
 * still be waiting (incomplete) when it has neither ended nor filled the window; and the bytes
 * it examined stay linear.
 */
static void fuzz_scan(const char *buf, size_t size, size_t step, const struct http_limits *lim)
{
    struct http_request_head req, want_req;
    struct http_response_head res, want_res;
    struct http_head_scan rq = HTTP_HEAD_SCAN_INIT, rs = HTTP_HEAD_SCAN_INIT;
    int want_q = http_parse_request(buf, size, lim, &want_req);
    int want_s = http_parse_response(buf, size, lim, &want_res);
    int q = HTTP_PARSE_INCOMPLETE, r = HTTP_PARSE_INCOMPLETE;

    for (size_t len = step < size ? step : size; len <= size; len += step) {
        if (q == HTTP_PARSE_INCOMPLETE)
            q = http_scan_request(&rq, buf, len, lim, &req);
        if (r == HTTP_PARSE_INCOMPLETE)
            r = http_scan_response(&rs, buf, len, lim, &res);
        if (len == size)
            break;
        if (len + step > size)
            len = size - step; /* the last call sees the whole input */
    }
    /* A head found early is the same head the whole input holds. */
    bool q_refused = want_q == HTTP_PARSE_BAD || want_q == HTTP_PARSE_TOO_LARGE;
    bool r_refused = want_s == HTTP_PARSE_BAD || want_s == HTTP_PARSE_TOO_LARGE;
    CHECK(q == want_q || (q_refused && q == HTTP_PARSE_INCOMPLETE));
    CHECK(r == want_s || (r_refused && r == HTTP_PARSE_INCOMPLETE));
    CHECK(rq.examined <= 2 * (uint64_t)size + step);
    CHECK(rs.examined <= 2 * (uint64_t)size + step);
}

/*
 * Decodes data[0..size) split at `cut` into two calls. Returns the decoded byte count; *status
 * gets the final result, with the completed case folded to 0.
 */
static size_t fuzz_chunked(const uint8_t *data, size_t size, size_t cut, char *out, int *status)
{
    struct http_chunked_decoder dec = HTTP_CHUNKED_DECODER_INIT;
    char *buf = malloc(size ? size : 1);
    size_t total = 0, n = cut;
    ssize_t rc;

    memcpy(buf, data, size);
    rc = http_decode_chunked(&dec, buf, &n);
    CHECK(n <= cut);
    memcpy(out, buf, n);
    total = n;
    if (rc == HTTP_PARSE_INCOMPLETE && cut < size) {
        /* The decoder consumed the whole first part; hand it only the rest. */
        memcpy(buf, data + cut, size - cut);
        n = size - cut;
        rc = http_decode_chunked(&dec, buf, &n);
        CHECK(n <= size - cut);
        memcpy(out + total, buf, n);
        total += n;
        if (rc >= 0)
            CHECK(n + (size_t)rc <= size - cut);
    } else if (rc >= 0) {
        CHECK(n + (size_t)rc <= cut);
    }
    CHECK(rc >= HTTP_PARSE_INCOMPLETE);
    CHECK(total <= size);
    *status = rc >= 0 ? 0 : (int)rc;
    free(buf);
    return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes lets ASan see any read past the end. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);

    fuzz_request(buf, size, NULL);
    fuzz_response(buf, size, NULL);
    const struct http_limits tight = {.max_head_bytes = 64, .max_headers = 3};
    fuzz_request(buf, size, &tight);
    fuzz_response(buf, size, &tight);
    if (size > 0) {
        size_t step = (size_t)(unsigned char)buf[0] % 7 + 1;
        fuzz_scan(buf, size, step, NULL);
        fuzz_scan(buf, size, 1, &tight);
    }

    char *one = malloc(size ? size : 1);
    char *two = malloc(size ? size : 1);
    int st1, st2;
    size_t n1 = fuzz_chunked(data, size, size, one, &st1);
    size_t n2 = fuzz_chunked(data, size, size / 2, two, &st2);
    /* The decoder is a byte-wise state machine: where reads split the input cannot matter. */
    CHECK(st1 == st2);
    CHECK(n1 == n2);
    CHECK(n1 == 0 || memcmp(one, two, n1) == 0);
    free(two);
    free(one);
    free(buf);
    return 0;
}
