#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/http_parse.h"

static struct http_request_head req;
static struct http_response_head res;

static int parse_req(const char *s)
{
    return http_parse_request(s, strlen(s), NULL, &req);
}

static int parse_res(const char *s)
{
    return http_parse_response(s, strlen(s), NULL, &res);
}

static void assert_str(struct str s, const char *want)
{
    assert_int_equal(s.n, strlen(want));
    assert_memory_equal(s.p, want, s.n);
}

/* ---- requests ---- */

static void test_simple_get(void **state)
{
    const char *s = "GET /v1/kv/a%2Fb?recurse HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n";

    assert_int_equal(parse_req(s), (int)strlen(s));
    assert_str(req.method, "GET");
    assert_str(req.target, "/v1/kv/a%2Fb?recurse");
    assert_int_equal(req.minor_version, 1);
    assert_int_equal(req.num_headers, 2);
    assert_str(req.headers[0].name, "Host");
    assert_str(req.headers[0].value, "example");
    assert_str(req.headers[1].name, "Accept");
    assert_str(req.headers[1].value, "*/*");
    assert_int_equal(req.framing.content_length, -1);
    assert_false(req.framing.chunked);
    assert_true(req.framing.keep_alive);
    assert_false(req.framing.expect_continue);
    assert_false(req.framing.upgrade);
    /* Slices point into the input. */
    assert_ptr_equal(req.method.p, s);
}

static void test_headers_trimmed(void **state)
{
    const char *s = "POST /x HTTP/1.1\r\nA:   spaced \t \r\nB:\tx y\t\r\nEmpty:\r\n"
                    "Ws: \t \r\ncontent-LENGTH:  12 \r\n\r\n";

    assert_int_equal(parse_req(s), (int)strlen(s));
    assert_int_equal(req.num_headers, 5);
    assert_str(req.headers[0].value, "spaced");
    assert_str(req.headers[1].value, "x y");
    assert_str(req.headers[2].value, "");
    assert_str(req.headers[3].value, "");
    assert_int_equal(req.framing.content_length, 12);

    const struct http_header *h = http_find_header(req.headers, req.num_headers, "b");
    assert_non_null(h);
    assert_str(h->value, "x y");
    assert_null(http_find_header(req.headers, req.num_headers, "missing"));
    h = http_find_header(req.headers, req.num_headers, "Content-Length");
    assert_ptr_equal(h, &req.headers[4]);
}

static void test_pipelined(void **state)
{
    const char *first = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
    const char *s = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    int n = parse_req(s);

    assert_int_equal(n, (int)strlen(first));
    assert_str(req.target, "/a");
    assert_int_equal(http_parse_request(s + n, strlen(s) - n, NULL, &req), (int)strlen(first));
    assert_str(req.target, "/b");
}

static void test_leading_empty_lines(void **state)
{
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";

    assert_int_equal(parse_req(s), (int)strlen(s));
    assert_str(req.method, "GET");
    assert_int_equal(parse_req("\n\nGET / HTTP/1.1\r\n\r\n"), HTTP_PARSE_BAD);
}

static void check_every_prefix_incomplete(const char *s, bool request)
{
    size_t len = strlen(s);

    for (size_t i = 0; i < len; i++) {
        /* A private copy of exactly i bytes lets ASan catch any read past the end. */
        char *copy = malloc(i ? i : 1);
        memcpy(copy, s, i);
        int rc = request ? http_parse_request(copy, i, NULL, &req)
                         : http_parse_response(copy, i, NULL, &res);
        if (rc != HTTP_PARSE_INCOMPLETE)
            fail_msg("prefix of %zu bytes returned %d", i, rc);
        free(copy);
    }
    int rc =
        request ? http_parse_request(s, len, NULL, &req) : http_parse_response(s, len, NULL, &res);
    assert_int_equal(rc, (int)len);
}

static void test_incomplete_every_prefix(void **state)
{
    check_every_prefix_incomplete("\r\nPUT /v1/kv/key?cas=5 HTTP/1.1\r\nHost: localhost:8500\r\n"
                                  "Content-Length: 5\r\nX-Empty:\r\nX-Tab: a\tb\r\n\r\n",
                                  true);
    check_every_prefix_incomplete("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n",
                                  false);
    check_every_prefix_incomplete("HTTP/1.0 204\r\n\r\n", false);
}

static void test_request_target_forms(void **state)
{
    static const struct {
        const char *target;
        enum http_target_form form;
        const char *authority, *origin;
    } cases[] = {
        {"/v1/kv/x?recurse", HTTP_TARGET_ORIGIN, "", "/v1/kv/x?recurse"},
        {"*", HTTP_TARGET_ASTERISK, "", ""},
        {"http://example/v1/kv/x", HTTP_TARGET_ABSOLUTE, "example", "/v1/kv/x"},
        {"https://user:pw@Example:8500/a?b", HTTP_TARGET_ABSOLUTE, "Example:8500", "/a?b"},
        {"http://example?x=1", HTTP_TARGET_ABSOLUTE, "example", "?x=1"},
        {"http://example", HTTP_TARGET_ABSOLUTE, "example", ""},
        {"http://[::1]:80/", HTTP_TARGET_ABSOLUTE, "[::1]:80", "/"},
        {"http:/path", HTTP_TARGET_ABSOLUTE, "", "/path"},
        {"x-1.y+z://h/p", HTTP_TARGET_ABSOLUTE, "h", "/p"},
        /* HAProxy reads a target without a scheme as an authority, up to its path */
        {"example.com:443", HTTP_TARGET_OTHER, "example.com:443", ""},
        {"foo/bar", HTTP_TARGET_OTHER, "foo", ""},
        {"u@foo", HTTP_TARGET_OTHER, "foo", ""},
        {"mailto:x", HTTP_TARGET_OTHER, "mailto:x", ""},
        {"1http://a/", HTTP_TARGET_OTHER, "1http:", ""},
        {"**", HTTP_TARGET_OTHER, "**", ""},
    };
    struct http_target t;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_target_parse(str_from(cases[i].target), &t);
        if (t.form != cases[i].form || !str_eq_cstr(t.authority, cases[i].authority) ||
            !str_eq_cstr(t.origin, cases[i].origin))
            fail_msg("%s: form %d authority \"%.*s\" origin \"%.*s\"", cases[i].target, t.form,
                     STR_FMT(t.authority), STR_FMT(t.origin));
    }
}

/* HAProxy 2.6's http_parse_authority: the part that must equal Host ends only at '/'. */
static void test_proxy_authority(void **state)
{
    static const struct {
        const char *target, *authority;
    } cases[] = {
        {"http://a.example?x", "a.example?x"},
        {"http://a.example/p?x", "a.example"},
        {"https://user:pw@Example:8500/a?b", "Example:8500"},
        {"http://u@a?x@y/p", "y"},
        {"http://[::1]:80/", "[::1]:80"},
        {"http://", ""},
        {"http:/path", "http:"},
        {"http:", "http:"},
        {"1http://a/", "1http:"},
        {"example.com:443", "example.com:443"},
        {"/v1/kv/x?recurse", ""},
        {"*", ""},
        {"**", ""},
        {"", ""},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct str a = http_target_proxy_authority(str_from(cases[i].target));
        if (!str_eq_cstr(a, cases[i].authority))
            fail_msg("%s: authority \"%.*s\", want \"%s\"", cases[i].target, STR_FMT(a),
                     cases[i].authority);
    }
}

static void test_bad_requests(void **state)
{
    static const char *const bad[] = {
        /* bare LF */
        "GET / HTTP/1.1\n\n",
        "GET / HTTP/1.1\r\nHost: a\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n\n",
        "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        /* obs-fold */
        "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n",
        "GET / HTTP/1.1\r\n Host: a\r\n\r\n",
        /* whitespace before the colon, non-token names */
        "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n",
        "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n",
        "GET / HTTP/1.1\r\n: a\r\n\r\n",
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        "GET / HTTP/1.1\r\nX\x80: a\r\n\r\n",
        /* control bytes in values */
        "GET / HTTP/1.1\r\nX: a\x01z\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\x7fz\r\n\r\n",
        /* request line */
        "G@T / HTTP/1.1\r\n\r\n",
        "GET/ HTTP/1.1\r\n\r\n",
        " GET / HTTP/1.1\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1 \r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET /a\tb HTTP/1.1\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.2\r\n\r\n",
        "GET / HTTP/1.10\r\n\r\n",
        "GET / http/1.1\r\n\r\n",
        "GET / HTTP/1\r\n\r\n",
        /* two Host lines, the same value or not */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\nhost: a\r\n\r\n",
        /* Content-Length */
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: ,\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        /* Transfer-Encoding */
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked-false\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked;q=1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked ,\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_req(bad[i]);
        if (rc != HTTP_PARSE_BAD)
            fail_msg("case %zu (%s) returned %d", i, bad[i], rc);
    }
}

static void test_content_length_collapse(void **state)
{
    assert_true(parse_req("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n") > 0);
    assert_int_equal(req.framing.content_length, 5);
    assert_true(parse_req("POST / HTTP/1.1\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n") > 0);
    assert_int_equal(req.framing.content_length, 7);
    assert_true(parse_req("POST / HTTP/1.1\r\nContent-Length: 9223372036854775807\r\n\r\n") > 0);
    assert_int_equal(req.framing.content_length, INT64_MAX);
    assert_true(parse_req("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n") > 0);
    assert_int_equal(req.framing.content_length, 0);
}

static void test_transfer_encoding(void **state)
{
    assert_true(parse_req("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n") > 0);
    assert_true(req.framing.chunked);
    assert_int_equal(req.framing.content_length, -1);
    assert_true(
        parse_req(
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n") >
        0);
    assert_true(req.framing.chunked);
}

static void test_expect_upgrade(void **state)
{
    assert_true(parse_req("PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n") >
                0);
    assert_true(req.framing.expect_continue);
    assert_true(parse_req("GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n"
                          "Upgrade: websocket\r\n\r\n") > 0);
    assert_true(req.framing.upgrade);
    assert_true(req.framing.keep_alive);
    assert_false(req.framing.connection_names);
}

/* What a head holds, for a proxy: a bit per recognised field, and whether Connection names any. */
static void test_fields_present(void **state)
{
    (void)state;
    assert_true(parse_req("GET / HTTP/1.1\r\nHost: h\r\n\r\n") > 0);
    assert_int_equal(req.framing.fields, 1u << HTTP_FIELD_HOST);
    assert_false(req.framing.connection_names);
    assert_true(parse_req("GET / HTTP/1.1\r\nhost: h\r\nX-Other: 1\r\nVIA: v\r\nTE: x\r\n"
                          "Connection: close, TE\r\n\r\n") > 0);
    assert_int_equal(req.framing.fields, 1u << HTTP_FIELD_OTHER | 1u << HTTP_FIELD_HOST |
                                             1u << HTTP_FIELD_VIA | 1u << HTTP_FIELD_TE |
                                             1u << HTTP_FIELD_CONNECTION);
    assert_true(req.framing.connection_names);
    assert_true(parse_res("HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\n\r\n") > 0);
    assert_int_equal(res.framing.fields, 1u << HTTP_FIELD_CONNECTION);
    assert_false(res.framing.connection_names);
}

static void test_keep_alive_rules(void **state)
{
    static const struct {
        const char *req;
        bool keep_alive;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: upgrade,  close \r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: foo\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_true(parse_req(cases[i].req) > 0);
        if (req.framing.keep_alive != cases[i].keep_alive)
            fail_msg("case %zu: keep_alive %d", i, req.framing.keep_alive);
    }
}

/* Go refuses a second Host line; HAProxy (same_hosts) one that repeats the first only. */
static void test_repeated_host(void **state)
{
    static const char same[] =
        "GET / HTTP/1.1\r\nHost: a.example\r\nX: 1\r\nhost: A.Example\r\n\r\n";
    static const char other[] = "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\nHost: b\r\n\r\n";
    struct http_limits haproxy = {.same_hosts = true};

    (void)state;
    assert_int_equal(http_parse_request(same, strlen(same), NULL, &req), HTTP_PARSE_BAD);
    assert_int_equal(http_parse_request(same, strlen(same), &haproxy, &req), (int)strlen(same));
    assert_true(req.framing.host_repeated);
    assert_int_equal(http_parse_request(other, strlen(other), &haproxy, &req), HTTP_PARSE_BAD);
    assert_int_equal(http_parse_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, &haproxy, &req),
                     27);
    assert_false(req.framing.host_repeated);
}

static void test_limits(void **state)
{
    const char *s = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    size_t len = strlen(s);
    struct http_limits lim = {.max_headers = 3};

    assert_int_equal(http_parse_request(s, len, &lim, &req), (int)len);
    lim.max_headers = 2;
    assert_int_equal(http_parse_request(s, len, &lim, &req), HTTP_PARSE_TOO_LARGE);
    /* The head fits in exactly max_head_bytes. */
    lim = (struct http_limits){.max_head_bytes = len};
    assert_int_equal(http_parse_request(s, len, &lim, &req), (int)len);
    lim.max_head_bytes = len - 1;
    assert_int_equal(http_parse_request(s, len, &lim, &req), HTTP_PARSE_TOO_LARGE);
    /* Incomplete and already over the limit: too large, not incomplete. */
    lim.max_head_bytes = 10;
    assert_int_equal(http_parse_request(s, 11, &lim, &req), HTTP_PARSE_TOO_LARGE);
    assert_int_equal(http_parse_request(s, 9, &lim, &req), HTTP_PARSE_INCOMPLETE);
    /* Malformed bytes inside the window are still reported as BAD. */
    assert_int_equal(http_parse_request("GET /\x01 HTTP/1.1\r\n", 18, &lim, &req), HTTP_PARSE_BAD);

    /* The default header cap is HTTP_MAX_HEADERS, even if a caller asks for more. */
    char big[4096];
    size_t n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)snprintf(big + n, sizeof(big) - n, "H%d: v\r\n", i);
    size_t with_all = n;
    n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
    assert_int_equal(http_parse_request(big, n, NULL, &req), (int)n);
    assert_int_equal(req.num_headers, HTTP_MAX_HEADERS);
    n = with_all + (size_t)snprintf(big + with_all, sizeof(big) - with_all, "X: y\r\n\r\n");
    lim = (struct http_limits){.max_headers = 1000};
    assert_int_equal(http_parse_request(big, n, &lim, &req), HTTP_PARSE_TOO_LARGE);
    assert_int_equal(http_parse_request(big, n, NULL, &req), HTTP_PARSE_TOO_LARGE);

    /* Default byte limit: 64 KiB. */
    size_t huge_len = 70 * 1024;
    char *huge = malloc(huge_len);
    memset(huge, 'a', huge_len);
    memcpy(huge, "GET /", 5);
    assert_int_equal(http_parse_request(huge, huge_len, NULL, &req), HTTP_PARSE_TOO_LARGE);
    assert_int_equal(http_parse_request(huge, 60 * 1024, NULL, &req), HTTP_PARSE_INCOMPLETE);
    free(huge);
}

/* ---- responses ---- */

static void test_response(void **state)
{
    const char *s =
        "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nX-Consul-Index: 42\r\n\r\nnot found";

    assert_int_equal(parse_res(s), (int)strlen(s) - 9);
    assert_int_equal(res.minor_version, 1);
    assert_int_equal(res.status, 404);
    assert_str(res.reason, "Not Found");
    assert_int_equal(res.num_headers, 2);
    assert_int_equal(res.framing.content_length, 9);
    assert_true(res.framing.keep_alive);
    assert_true(http_response_has_body(&res, false));
    assert_false(http_response_has_body(&res, true));

    assert_true(parse_res("HTTP/1.1 200 \r\n\r\n") > 0);
    assert_str(res.reason, "");
    assert_true(parse_res("HTTP/1.0 200\r\n\r\n") > 0);
    assert_str(res.reason, "");
    assert_false(res.framing.keep_alive);
    assert_true(parse_res("HTTP/1.1 200 OK \t odd\r\n\r\n") > 0);
    assert_str(res.reason, "OK \t odd");
    assert_true(parse_res("HTTP/1.1 999 X\r\n\r\n") > 0);
    assert_int_equal(res.status, 999);
}

static void test_response_has_body(void **state)
{
    static const struct {
        int status;
        bool body;
    } cases[] = {{100, false}, {101, false}, {199, false}, {200, true}, {204, false},
                 {205, true},  {304, false}, {404, true},  {500, true}};

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        res.status = cases[i].status;
        assert_int_equal(http_response_has_body(&res, false), cases[i].body);
        assert_false(http_response_has_body(&res, true));
    }
}

static void test_response_framing(void **state)
{
    assert_true(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    assert_true(res.framing.chunked);
    assert_true(res.framing.keep_alive);
    /* Not ending in chunked: the body runs until the close. */
    assert_true(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n") > 0);
    assert_false(res.framing.chunked);
    assert_int_equal(res.framing.content_length, -1);
    assert_false(res.framing.keep_alive);
    assert_true(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") > 0);
    assert_false(res.framing.chunked);
    assert_false(res.framing.keep_alive);
    assert_true(parse_res("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n") > 0);
    assert_false(res.framing.chunked);
    assert_true(parse_res("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n") > 0);
    assert_false(res.framing.chunked);
    assert_false(res.framing.keep_alive);
    assert_true(parse_res("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n") > 0);
    assert_true(res.framing.upgrade);
    /* Expect is a request header only. */
    assert_true(parse_res("HTTP/1.1 200 OK\r\nExpect: 100-continue\r\n\r\n") > 0);
    assert_false(res.framing.expect_continue);
}

static void test_bad_responses(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\n\r\n",
        "HTTP/1.1 200 O\x01K\r\n\r\n",
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: ,\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: g(zip\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse_res(bad[i]);
        if (rc != HTTP_PARSE_BAD)
            fail_msg("case %zu (%s) returned %d", i, bad[i], rc);
    }
}

static void test_status_reason(void **state)
{
    assert_string_equal(http_status_reason(100), "Continue");
    assert_string_equal(http_status_reason(200), "OK");
    assert_string_equal(http_status_reason(404), "Not Found");
    assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_reason(503), "Service Unavailable");
    assert_string_equal(http_status_reason(511), "Network Authentication Required");
    assert_string_equal(http_status_reason(299), "");
    assert_string_equal(http_status_reason(0), "");
    assert_string_equal(http_status_reason(600), "");
}

/* ---- chunked ---- */

/* Decodes s in one call; returns the decoder's result and the decoded text in out. */
static ssize_t decode_all(const char *s, size_t len, char *out, size_t *out_len)
{
    struct http_chunked_decoder dec = HTTP_CHUNKED_DECODER_INIT;
    char *buf = malloc(len ? len : 1);
    size_t n = len;

    memcpy(buf, s, len);
    ssize_t rc = http_decode_chunked(&dec, buf, &n);
    memcpy(out, buf, n + (rc > 0 ? (size_t)rc : 0));
    *out_len = n;
    free(buf);
    return rc;
}

static void test_chunked_single_call(void **state)
{
    const char *s = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    char out[64];
    size_t n;

    assert_int_equal(decode_all(s, strlen(s), out, &n), 0);
    assert_int_equal(n, 11);
    assert_memory_equal(out, "hello world", 11);

    s = "A\r\n0123456789\r\na\r\nabcdefghij\r\n0000\r\n\r\n";
    assert_int_equal(decode_all(s, strlen(s), out, &n), 0);
    assert_int_equal(n, 20);
    assert_memory_equal(out, "0123456789abcdefghij", 20);

    s = "0\r\n\r\n";
    assert_int_equal(decode_all(s, strlen(s), out, &n), 0);
    assert_int_equal(n, 0);
}

static void test_chunked_byte_by_byte(void **state)
{
    const char *s = "3;name=val\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\nNEXT";
    struct http_chunked_decoder dec;
    char out[64];
    size_t total = 0, len = strlen(s);
    ssize_t rc = HTTP_PARSE_INCOMPLETE;

    memset(&dec, 0, sizeof(dec));
    for (size_t i = 0; i < len; i++) {
        char b = s[i];
        size_t n = 1;
        rc = http_decode_chunked(&dec, &b, &n);
        assert_true(n <= 1);
        if (n)
            out[total++] = b;
        if (rc != HTTP_PARSE_INCOMPLETE) {
            /* Completes on the final LF; "NEXT" must not have been fed yet. */
            assert_int_equal(i, len - 5);
            assert_int_equal(rc, 0);
            break;
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(total, 19);
    assert_memory_equal(out, "abc0123456789abcdef", 19);
}

/* Splits the input at every position into two calls, as reads would. */
static void test_chunked_split_everywhere(void **state)
{
    const char *s = "4 ; a=\"b\"\r\nwiki\r\n5\r\npedia\r\n0;x\r\nA: b\r\nC: d\r\n\r\nGET";
    size_t len = strlen(s);

    for (size_t cut = 0; cut <= len; cut++) {
        struct http_chunked_decoder dec = HTTP_CHUNKED_DECODER_INIT;
        char buf[128], out[128];
        size_t n = cut, total = 0;

        memcpy(buf, s, len);
        ssize_t rc = http_decode_chunked(&dec, buf, &n);
        memcpy(out, buf, n);
        total = n;
        if (rc >= 0) {
            /* Complete within the first part: what followed is left after the data. */
            assert_int_equal((size_t)rc, cut - (len - 3));
            assert_memory_equal(buf + n, "GET", (size_t)rc);
            continue;
        }
        assert_int_equal(rc, HTTP_PARSE_INCOMPLETE);
        memmove(buf, s + cut, len - cut);
        n = len - cut;
        rc = http_decode_chunked(&dec, buf, &n);
        assert_int_equal(rc, 3);
        memcpy(out + total, buf, n);
        total += n;
        assert_memory_equal(buf + n, "GET", 3);
        assert_int_equal(total, 9);
        assert_memory_equal(out, "wikipedia", 9);
    }
}

static void test_chunked_trailers_and_pipelined(void **state)
{
    const char *s = "2\r\nok\r\n0\r\nExpires: never\r\nX-Sum:\tabc\r\n\r\nGET / HTTP/1.1\r\n\r\n";
    char out[128];
    size_t n;

    assert_int_equal(decode_all(s, strlen(s), out, &n), 18);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "okGET / HTTP/1.1\r\n\r\n", 20);

    /* Calls after completion decode nothing and hand back their input. */
    struct http_chunked_decoder dec = HTTP_CHUNKED_DECODER_INIT;
    char buf[16] = "0\r\n\r\nab";
    size_t len = 7;
    assert_int_equal(http_decode_chunked(&dec, buf, &len), 2);
    assert_int_equal(len, 0);
    assert_memory_equal(buf, "ab", 2);
    len = 2;
    assert_int_equal(http_decode_chunked(&dec, buf, &len), 2);
    assert_int_equal(len, 0);
}

static void test_chunked_incomplete(void **state)
{
    const char *s = "5\r\nhel";
    char out[64];
    size_t n;

    assert_int_equal(decode_all(s, strlen(s), out, &n), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "hel", 3);
    assert_int_equal(decode_all("", 0, out, &n), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(n, 0);
    s = "0\r\nTrailer: x\r\n";
    assert_int_equal(decode_all(s, strlen(s), out, &n), HTTP_PARSE_INCOMPLETE);
    /* Sixteen hex digits are allowed (and the data is then incomplete). */
    s = "000000000000000A\r\n";
    assert_int_equal(decode_all(s, strlen(s), out, &n), HTTP_PARSE_INCOMPLETE);
    s = "FFFFFFFFFFFFFFFF\r\nabc";
    assert_int_equal(decode_all(s, strlen(s), out, &n), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(n, 3);
}

static void test_chunked_bad(void **state)
{
    static const char *const bad[] = {
        "\r\nabc\r\n",               /* empty size */
        "g\r\n",                     /* not hex */
        "-1\r\n",                    /* not hex */
        "0x5\r\nhello\r\n0\r\n\r\n", /* prefix */
        "+5\r\n",                    /* sign */
        "00000000000000001\r\n",     /* 17 digits */
        "5\nhello\r\n0\r\n\r\n",     /* bare LF after size */
        "5\r\rhello",                /* CR not followed by LF */
        "5\r\nhelloX\r\n0\r\n\r\n",  /* missing CRLF after data */
        "5\r\nhello\n0\r\n\r\n",     /* bare LF after data */
        "5\r\nhello\r0\r\n\r\n",     /* CR without LF after data */
        "5 \r\nhello\r\n0\r\n\r\n",  /* trailing whitespace without ';' */
        "5 x\r\nhello\r\n0\r\n\r\n", /* junk after the size */
        "5;a\x01\r\nhello\r\n",      /* control byte in an extension */
        "5;a\nhello\r\n",            /* bare LF in an extension */
        "0\r\nX: y\n\r\n",           /* bare LF in a trailer */
        "0\r\n y\r\n\r\n",           /* obs-fold trailer */
        "0\r\nX: \x7f\r\n\r\n",      /* control byte in a trailer */
        "0\r\n\n",                   /* bare LF ending the trailers */
        "0\r\n\rx",                  /* CR not followed by LF at the end */
    };
    char out[64];
    size_t n;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ssize_t rc = decode_all(bad[i], strlen(bad[i]), out, &n);
        if (rc != HTTP_PARSE_BAD)
            fail_msg("case %zu returned %zd", i, rc);
    }
}

static void test_chunked_limits(void **state)
{
    /* Extensions are bounded per chunk, trailers in total. */
    size_t len = 8192;
    char *buf = malloc(len);
    struct http_chunked_decoder dec = HTTP_CHUNKED_DECODER_INIT;
    size_t n = len;

    memset(buf, 'e', len);
    memcpy(buf, "1;", 2);
    assert_int_equal(http_decode_chunked(&dec, buf, &n), HTTP_PARSE_BAD);
    free(buf);

    dec = HTTP_CHUNKED_DECODER_INIT;
    char head[] = "0\r\n";
    n = 3;
    assert_int_equal(http_decode_chunked(&dec, head, &n), HTTP_PARSE_INCOMPLETE);
    ssize_t rc = HTTP_PARSE_INCOMPLETE;
    for (int i = 0; i < 10000 && rc == HTTP_PARSE_INCOMPLETE; i++) {
        char line[] = "X-Pad: 0123456789\r\n";
        n = sizeof(line) - 1;
        rc = http_decode_chunked(&dec, line, &n);
    }
    assert_int_equal(rc, HTTP_PARSE_BAD);
}

/* ---- incremental head reading ---- */

/* A head of about 63 KB: a request line and 63 fields of ~1 KB each. Heap; free it. */
static char *big_head(size_t *len)
{
    char *s = malloc(64 * 1024);
    size_t n = (size_t)sprintf(s, "GET /big HTTP/1.1\r\nHost: a\r\n");

    for (int i = 0; i < 63; i++) {
        n += (size_t)sprintf(s + n, "X-Pad-%02d: ", i);
        memset(s + n, 'p', 1024);
        n += 1024;
        n += (size_t)sprintf(s + n, "\r\n");
    }
    n += (size_t)sprintf(s + n, "\r\n");
    *len = n;
    return s;
}

/* Issue 12: a 63 KB head fed one byte per read must cost O(n) bytes looked at, not O(n^2)
 * (re-parsing from byte 0 on every read looked at ~2 GB). */
static void test_scan_one_byte_per_read_is_linear(void **state)
{
    size_t n;
    char *head = big_head(&n);
    struct http_head_scan scan = HTTP_HEAD_SCAN_INIT;
    int rc = HTTP_PARSE_INCOMPLETE;

    assert_true(n > 63 * 1024 && n < HTTP_DEFAULT_MAX_HEAD);
    for (size_t len = 1; len <= n; len++) {
        rc = http_scan_request(&scan, head, len, NULL, &req);
        if (len < n)
            assert_int_equal(rc, HTTP_PARSE_INCOMPLETE);
    }
    assert_int_equal(rc, (int)n);
    assert_int_equal(req.num_headers, 64);
    assert_str(req.target, "/big");
    /* Every byte searched once, the whole head parsed once, plus the first byte's parse. */
    assert_true(scan.examined <= 2 * n + 1);
    free(head);
}

/*
 * The scan answers what the parser answers, fed in every split of a set of heads. A malformed
 * byte after the first read may wait for the end of the head, a bare LF or the window (the
 * last two cases below); nothing else differs.
 */
static void test_scan_agrees_with_parse(void **state)
{
    static const struct {
        const char *head;
        bool may_wait;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false},
        {"\r\n\r\nGET / HTTP/1.1\r\n\r\n", false},  /* empty lines before the request line */
        {"GET / HTTP/1.1\nHost: a\r\n\r\n", false}, /* bare LF */
        {"GET / HTTP/1.1\r\nHost: a\n\n", false},
        {"\n", false},
        {"GET / HTTP/1.1\r\nBad Name: a\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nX: a\x01\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: a\r\n", false},               /* incomplete */
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", true}, /* TLS on a plain port */
        {"\r\r\n", true},
    };
    struct http_request_head want;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *head = cases[i].head;
        size_t n = strlen(head);
        int expected = http_parse_request(head, n, NULL, &want);
        for (size_t step = 1; step <= n; step++) {
            struct http_head_scan scan = HTTP_HEAD_SCAN_INIT;
            int rc = HTTP_PARSE_INCOMPLETE;
            for (size_t len = step; rc == HTTP_PARSE_INCOMPLETE; len += step) {
                rc = http_scan_request(&scan, head, len < n ? len : n, NULL, &req);
                if (len >= n)
                    break;
            }
            bool waited = cases[i].may_wait && expected == HTTP_PARSE_BAD && step < n &&
                          rc == HTTP_PARSE_INCOMPLETE;
            if (rc != expected && !waited)
                fail_msg("head %zu in steps of %zu: %d, want %d", i, step, rc, expected);
        }
    }
}

/* Garbage in the first read is refused at once; a head over the window is too large. */
static void test_scan_first_read_and_window(void **state)
{
    struct http_head_scan scan = HTTP_HEAD_SCAN_INIT;
    struct http_limits lim = {.max_head_bytes = 64};
    char big[100];

    assert_int_equal(http_scan_request(&scan, "\x16\x03\x01", 3, NULL, &req), HTTP_PARSE_BAD);
    memset(big, 'a', sizeof(big));
    memcpy(big, "GET /", 5);
    scan = HTTP_HEAD_SCAN_INIT;
    assert_int_equal(http_scan_request(&scan, big, 10, &lim, &req), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(http_scan_request(&scan, big, 63, &lim, &req), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(http_scan_request(&scan, big, 64, &lim, &req), HTTP_PARSE_TOO_LARGE);

    struct http_head_scan rs = HTTP_HEAD_SCAN_INIT;
    static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    for (size_t len = 1; len < sizeof(r) - 1; len++)
        assert_int_equal(http_scan_response(&rs, r, len, NULL, &res), HTTP_PARSE_INCOMPLETE);
    assert_int_equal(http_scan_response(&rs, r, sizeof(r) - 1, NULL, &res), (int)sizeof(r) - 1);
    assert_int_equal(res.status, 200);
}

/* A head that comes whole in the first read is parsed once, not searched first: its bytes
 * are looked at once. */
static void test_scan_whole_head_looked_at_once(void **state)
{
    static const char r[] = "GET /a HTTP/1.1\r\nHost: x\r\nUser-Agent: wrk\r\n\r\n";
    struct http_head_scan scan = HTTP_HEAD_SCAN_INIT;

    assert_int_equal(http_scan_request(&scan, r, sizeof(r) - 1, NULL, &req), (int)sizeof(r) - 1);
    assert_int_equal(scan.examined, sizeof(r) - 1);

    static const char rsp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    scan = HTTP_HEAD_SCAN_INIT;
    assert_int_equal(http_scan_response(&scan, rsp, sizeof(rsp) - 1, NULL, &res),
                     (int)sizeof(rsp) - 1);
    assert_int_equal(scan.examined, sizeof(rsp) - 1);
}

/* Field names are made of RFC 9110's tchar, exactly. */
static void test_token_bytes_are_tchar(void **state)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~0123456789"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    for (int b = 0; b < 256; b++) {
        char one = (char)b;
        bool want = b != 0 && memchr(tchar, b, sizeof(tchar) - 1) != NULL;
        if (http_valid_token((struct str){&one, 1}) != want)
            fail_msg("byte 0x%02x: tchar %d, want %d", b, !want, want);
    }
}

/* Recognised fields get their id in any case; look-alikes of the same length do not. */
static void test_field_ids(void **state)
{
    const char *s = "GET / HTTP/1.1\r\nHOST: h\r\nconnection: keep-alive\r\nConnectiom: x\r\n"
                    "Content-Length: 0\r\nX-Forwarded-FOR: 1.2.3.4\r\nX-Forwarded-Fox: y\r\n"
                    "te: trailers\r\nUpgrade: ws\r\nVia: 1.0 a\r\nDate: today\r\n\r\n";
    static const enum http_field want[] = {
        HTTP_FIELD_HOST,
        HTTP_FIELD_CONNECTION,
        HTTP_FIELD_OTHER,
        HTTP_FIELD_CONTENT_LENGTH,
        HTTP_FIELD_X_FORWARDED_FOR,
        HTTP_FIELD_OTHER,
        HTTP_FIELD_TE,
        HTTP_FIELD_UPGRADE,
        HTTP_FIELD_VIA,
        HTTP_FIELD_OTHER,
    };

    assert_int_equal(parse_req(s), (int)strlen(s));
    assert_int_equal(req.num_headers, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < req.num_headers; i++)
        assert_int_equal(req.headers[i].id, want[i]);

    for (int id = HTTP_FIELD_OTHER + 1; id < HTTP_FIELD_COUNT; id++) {
        char upper[32];
        const char *name = http_field_name(id);
        size_t n = strlen(name);
        for (size_t i = 0; i <= n; i++)
            upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
        assert_int_equal(http_field_of(str_from(name)), id);
        assert_int_equal(http_field_of(str_from(upper)), id);
        /* one byte off anywhere, or one byte short, is another field */
        for (size_t i = 0; i < n; i++) {
            upper[i] ^= 1;
            assert_int_equal(http_field_of((struct str){upper, n}), HTTP_FIELD_OTHER);
            upper[i] ^= 1;
        }
        assert_int_equal(http_field_of((struct str){upper, n - 1}), HTTP_FIELD_OTHER);
    }
    /* CR | 0x20 is '-': only letters fold */
    assert_int_equal(http_field_of(str_from("keep\ralive")), HTTP_FIELD_OTHER);
    assert_int_equal(http_field_of(str_from("")), HTTP_FIELD_OTHER);
    assert_string_equal(http_field_name(HTTP_FIELD_OTHER), "");
}

/*
 * Field values and targets are checked eight bytes at a time: a bad byte is refused, and an
 * allowed one accepted, at every offset of a value or target of every length up to 40.
 */
static void test_bytes_checked_at_every_offset(void **state)
{
    static const unsigned char bad[] = {0x00, 0x01, 0x08, 0x0a, 0x0b, 0x1f, 0x7f};
    static const unsigned char good[] = {'\t', ' ', '!', '~', 0x80, 0xfe, 0xff};
    char head[160];

    for (size_t len = 1; len <= 40; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t k = 0; k < sizeof(bad) + sizeof(good); k++) {
                bool ok = k >= sizeof(bad);
                unsigned char b = ok ? good[k - sizeof(bad)] : bad[k];
                size_t n = 0;
                int r;

                /* "GET /x HTTP/1.1\r\nA: x<value>x\r\n\r\n" (the value may hold a NUL) */
                n = (size_t)snprintf(head, sizeof(head), "GET /x HTTP/1.1\r\nA: x");
                memset(head + n, 'v', len);
                head[n + at] = (char)b;
                n += len;
                memcpy(head + n, "x\r\n\r\n", 5);
                n += 5;
                r = http_parse_request(head, n, NULL, &req);
                if (ok ? r != (int)n : r != HTTP_PARSE_BAD)
                    fail_msg("value byte 0x%02x at %zu of %zu: %d", b, at, len, r);
                if (at == 0 || b == '\t' || b == ' ')
                    continue; /* the target's first byte is '/'; SP ends it, HTAB is bad */
                /* "GET /<target> HTTP/1.1\r\n\r\n" */
                memcpy(head, "GET /", 5);
                memset(head + 5, 't', len - 1);
                head[4 + at] = (char)b;
                n = 4 + len;
                memcpy(head + n, " HTTP/1.1\r\n\r\n", 13);
                n += 13;
                r = http_parse_request(head, n, NULL, &req);
                if (ok ? r != (int)n : r != HTTP_PARSE_BAD)
                    fail_msg("target byte 0x%02x at %zu of %zu: %d", b, at, len, r);
            }
        }
    }
}

/*
 * Field names and methods: every byte value at every offset of names of every length up to 24
 * is judged as the token rule says (':' ends a name early; a method ends at SP).
 */
static void test_name_bytes_at_every_offset(void **state)
{
    char head[96];

    for (size_t len = 1; len <= 24; len++) {
        for (size_t at = 0; at < len; at++) {
            for (int b = 0; b < 256; b++) {
                char byte = (char)b;
                bool tchar = http_valid_token((struct str){&byte, 1});
                size_t n = (size_t)snprintf(head, sizeof(head), "GET / HTTP/1.1\r\n");
                int r;

                memset(head + n, at % 2 ? 'N' : '7', len);
                memset(head + n, 'n', len / 2);
                head[n + at] = byte;
                n += len;
                memcpy(head + n, ": v\r\n\r\n", 7);
                n += 7;
                r = http_parse_request(head, n, NULL, &req);
                if (tchar                ? r != (int)n || req.headers[0].name.n != len
                    : b == ':' && at > 0 ? r != (int)n || req.headers[0].name.n != at
                                         : r != HTTP_PARSE_BAD)
                    fail_msg("name byte 0x%02x at %zu of %zu: %d", b, at, len, r);

                /* "<method> / HTTP/1.1\r\n\r\n" */
                memset(head, 'M', len);
                head[at] = byte;
                memcpy(head + len, " / HTTP/1.1\r\n\r\n", 15);
                r = http_parse_request(head, len + 15, NULL, &req);
                if (tchar ? r != (int)(len + 15) || req.method.n != len : r != HTTP_PARSE_BAD)
                    fail_msg("method byte 0x%02x at %zu of %zu: %d", b, at, len, r);
            }
        }
    }
}

/* What the serialisers may send is exactly what this parser accepts, byte by byte: a byte the
 * validators pass can never end a line or smuggle a field into a message we write. */
static void test_valid_for_sending_matches_parser(void **state)
{
    for (int b = 0; b < 256; b++) {
        char one = (char)b, msg[64];
        struct str s = {&one, 1};

        int n = snprintf(msg, sizeof(msg), "GET / HTTP/1.1\r\nX: a%cb\r\n\r\n", b ? b : '?');
        msg[n - 6] = one; /* the byte between 'a' and 'b', NUL included */
        bool parsed = http_parse_request(msg, (size_t)n, NULL, &req) == n;
        assert_int_equal(http_valid_field_value(s), parsed);

        n = snprintf(msg, sizeof(msg), "GET /a%cb HTTP/1.1\r\n\r\n", b ? b : '?');
        msg[6] = one;
        parsed = http_parse_request(msg, (size_t)n, NULL, &req) == n;
        assert_int_equal(http_valid_target(s), parsed);

        n = snprintf(msg, sizeof(msg), "GET / HTTP/1.1\r\nX%c: v\r\n\r\n", b ? b : '?');
        msg[17] = one;
        parsed = http_parse_request(msg, (size_t)n, NULL, &req) == n;
        assert_int_equal(http_valid_token(s) || b == ':', parsed);
    }
    assert_false(http_valid_token(STR_LIT("")));
    assert_false(http_valid_target(STR_LIT("")));
    assert_true(http_valid_field_value(STR_LIT("")));
    assert_false(http_valid_field_value(STR_LIT("abc\r\nX-Injected: yes")));
    assert_true(http_valid_field_value(STR_LIT("Bearer a\tb")));
}

/* Elements trimmed, empty ones skipped, the list consumed to its end. */
static void test_list_next(void **state)
{
    (void)state;
    struct str list = STR_LIT(" gzip ;q=0.5,, \t,br,\tdeflate\t, "), elem;
    const char *want[] = {"gzip ;q=0.5", "br", "deflate"};

    for (size_t i = 0; i < 3; i++) {
        assert_true(http_list_next(&list, &elem));
        assert_true(str_eq_cstr(elem, want[i]));
    }
    assert_false(http_list_next(&list, &elem));
    assert_int_equal(list.n, 0);
    list = STR_LIT(" , ,");
    assert_false(http_list_next(&list, &elem));
    list = STR_NULL;
    assert_false(http_list_next(&list, &elem));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_fields_present),
        cmocka_unit_test(test_name_bytes_at_every_offset),
        cmocka_unit_test(test_headers_trimmed),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_leading_empty_lines),
        cmocka_unit_test(test_incomplete_every_prefix),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_request_target_forms),
        cmocka_unit_test(test_proxy_authority),
        cmocka_unit_test(test_repeated_host),
        cmocka_unit_test(test_content_length_collapse),
        cmocka_unit_test(test_transfer_encoding),
        cmocka_unit_test(test_expect_upgrade),
        cmocka_unit_test(test_keep_alive_rules),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_response_has_body),
        cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_bad_responses),
        cmocka_unit_test(test_status_reason),
        cmocka_unit_test(test_chunked_single_call),
        cmocka_unit_test(test_chunked_byte_by_byte),
        cmocka_unit_test(test_chunked_split_everywhere),
        cmocka_unit_test(test_chunked_trailers_and_pipelined),
        cmocka_unit_test(test_chunked_incomplete),
        cmocka_unit_test(test_chunked_bad),
        cmocka_unit_test(test_chunked_limits),
        cmocka_unit_test(test_valid_for_sending_matches_parser),
        cmocka_unit_test(test_scan_one_byte_per_read_is_linear),
        cmocka_unit_test(test_scan_agrees_with_parse),
        cmocka_unit_test(test_scan_first_read_and_window),
        cmocka_unit_test(test_scan_whole_head_looked_at_once),
        cmocka_unit_test(test_token_bytes_are_tchar),
        cmocka_unit_test(test_field_ids),
        cmocka_unit_test(test_bytes_checked_at_every_offset),
        cmocka_unit_test(test_list_next),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
