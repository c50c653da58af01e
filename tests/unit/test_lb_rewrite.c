/*
 * The heads the proxy forwards (lb/rewrite.c): kept field lines go out exactly as they came,
 * hop-by-hop fields (also those Connection names) are dropped, and the proxy's own fields join
 * the client's values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/http_parse.h"
#include "lb/rewrite.h"

static struct http_request_head req;
static struct http_response_head res;

static const char *rewrite_request(struct buf *out, const char *head, const struct lb_config *cfg,
                                   bool upgrade)
{
    static const struct http_limits lb_limits = {.same_hosts = true}; /* as the proxy reads */
    int n = http_parse_request(head, strlen(head), &lb_limits, &req);
    struct lb_rewrite_client client = {"10.0.0.7", false, upgrade, {NULL, 0}};

    assert_true(n > 0);
    lb_rewrite_request(out, &req, head + n - 2, cfg, &client);
    return out->data;
}

static const char *rewrite_response(struct buf *out, const char *head, bool dechunk,
                                    enum lb_rewrite_conn conn)
{
    int n = http_parse_response(head, strlen(head), NULL, &res);

    assert_true(n > 0);
    lb_rewrite_response(out, &res, head + n - 2, dechunk, conn);
    return out->data;
}

static void test_request_fields_copied_as_they_came(void **state)
{
    (void)state;
    struct lb_config cfg = {.x_forwarded_for = true, .via = true};
    struct buf out = BUF_INIT;

    assert_string_equal(
        rewrite_request(&out,
                        "GET /a?b=1 HTTP/1.0\r\nHost:x  \r\nConnection: keep-alive, X-Secret\r\n"
                        "X-Secret: s\r\nAccept:  */*\r\nX-Forwarded-For: 1.2.3.4\r\n"
                        "Keep-Alive: timeout=5\r\nX-Forwarded-Proto: https\r\nVia: 1.0 edge\r\n"
                        "User-Agent: t\r\n\r\n",
                        &cfg, false),
        "GET /a?b=1 HTTP/1.1\r\nHost:x  \r\nAccept:  */*\r\nUser-Agent: t\r\n"
        "X-Forwarded-For: 1.2.3.4, 10.0.0.7\r\nX-Forwarded-Proto: http\r\n"
        "Via: 1.0 edge, 1.1 mesh-lb\r\n\r\n");

    /* nothing to drop: the fields in one copy; nothing to join */
    assert_string_equal(
        rewrite_request(&out, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n", &cfg, false),
        "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nX-Forwarded-For: 10.0.0.7\r\n"
        "X-Forwarded-Proto: http\r\nVia: 1.1 mesh-lb\r\n\r\n");
    buf_free(&out);
}

/* The head goes on as HTTP/1.1, which needs Host: an HTTP/1.0 request without one gets an
 * empty one; HTTP/1.1 without Host goes on as it came, as HAProxy passes it. */
static void test_request_host_for_http10(void **state)
{
    (void)state;
    struct lb_config cfg = {0};
    struct buf out = BUF_INIT;

    assert_string_equal(
        rewrite_request(&out, "GET /a HTTP/1.0\r\nAccept: */*\r\n\r\n", &cfg, false),
        "GET /a HTTP/1.1\r\nAccept: */*\r\nHost: \r\n\r\n");
    assert_string_equal(rewrite_request(&out, "GET http://h/a HTTP/1.0\r\n\r\n", &cfg, false),
                        "GET http://h/a HTTP/1.1\r\nHost: \r\n\r\n");
    assert_string_equal(
        rewrite_request(&out, "GET /a HTTP/1.1\r\nAccept: */*\r\n\r\n", &cfg, false),
        "GET /a HTTP/1.1\r\nAccept: */*\r\n\r\n");
    assert_string_equal(rewrite_request(&out, "GET /a HTTP/1.0\r\nhost: x\r\n\r\n", &cfg, false),
                        "GET /a HTTP/1.1\r\nhost: x\r\n\r\n");
    /* a Host line repeating the first goes no further, as HAProxy drops it */
    assert_string_equal(rewrite_request(&out,
                                        "GET /a HTTP/1.1\r\nHost: x\r\nA: 1\r\nHOST: X\r\nB: 2\r\n"
                                        "Host: x\r\n\r\n",
                                        &cfg, false),
                        "GET /a HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n");
    buf_free(&out);
}

static void test_request_options(void **state)
{
    (void)state;
    struct lb_config none = {0}, fwd = {.forwarded = true};
    struct buf out = BUF_INIT;

    /* the proxy's fields off: the client's pass unchanged */
    assert_string_equal(rewrite_request(&out,
                                        "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nVia: v\r\n"
                                        "Forwarded: for=a\r\n\r\n",
                                        &none, false),
                        "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nVia: v\r\n"
                        "Forwarded: for=a\r\n\r\n");
    assert_string_equal(
        rewrite_request(&out, "GET / HTTP/1.1\r\nForwarded: for=a\r\nB: 2\r\n\r\n", &fwd, false),
        "GET / HTTP/1.1\r\nB: 2\r\nForwarded: for=a, for=10.0.0.7;proto=http\r\n\r\n");
    /* switching protocols: Upgrade goes on, with a Connection of ours */
    assert_string_equal(rewrite_request(&out,
                                        "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\n"
                                        "Upgrade: websocket\r\nHost: h\r\n\r\n",
                                        &none, true),
                        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nHost: h\r\n"
                        "Connection: Upgrade\r\n\r\n");
    buf_free(&out);
}

/* The proxy's fields formatted once per connection give every request what formatting them
 * anew gives, whether the request carries some of them (joined) or none (copied). */
static void test_request_fields_added_once_per_connection(void **state)
{
    (void)state;
    static const char *const heads[] = {
        "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nA: b\r\n\r\n",
        "GET / HTTP/1.1\r\nVia: 1.0 edge\r\n\r\n",
        "GET / HTTP/1.1\r\nForwarded: for=a\r\nX-Forwarded-Proto: https\r\n\r\n",
    };
    struct lb_config all = {.x_forwarded_for = true, .via = true, .forwarded = true};
    struct lb_config some = {.via = true}, none = {0};
    const struct lb_config *cfgs[] = {&all, &some, &none};
    struct lb_rewrite_client clients[] = {{"10.0.0.7", false, false, {NULL, 0}},
                                          {"fe80::1", true, false, {NULL, 0}},
                                          {"10.0.0.8", false, true, {NULL, 0}}};
    struct buf added = BUF_INIT, once = BUF_INIT, anew = BUF_INIT;

    for (size_t c = 0; c < ARRAY_LEN(cfgs); c++) {
        for (size_t k = 0; k < ARRAY_LEN(clients); k++) {
            struct lb_rewrite_client client = clients[k];
            lb_rewrite_added(&added, cfgs[c], &client);
            for (size_t i = 0; i < ARRAY_LEN(heads); i++) {
                int n = http_parse_request(heads[i], strlen(heads[i]), NULL, &req);
                assert_true(n > 0);
                client.added = (struct str){NULL, 0};
                lb_rewrite_request(&anew, &req, heads[i] + n - 2, cfgs[c], &client);
                client.added = buf_str(&added);
                lb_rewrite_request(&once, &req, heads[i] + n - 2, cfgs[c], &client);
                assert_string_equal(once.data, anew.data);
            }
        }
    }
    lb_rewrite_added(&added, &all, &clients[1]);
    assert_string_equal(added.data,
                        "X-Forwarded-For: fe80::1\r\nX-Forwarded-Proto: http\r\n"
                        "Via: 1.1 mesh-lb\r\nForwarded: for=\"[fe80::1]\";proto=http\r\n");
    buf_free(&added);
    buf_free(&once);
    buf_free(&anew);
}

static void test_response(void **state)
{
    (void)state;
    struct buf out = BUF_INIT;
    static const char nginx[] = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\n"
                                "Connection: keep-alive\r\nX-Served-By: 1\r\n\r\n";

    assert_string_equal(rewrite_response(&out, nginx, false, LB_CONN_NONE),
                        "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\n"
                        "X-Served-By: 1\r\n\r\n");
    assert_string_equal(rewrite_response(&out, nginx, false, LB_CONN_CLOSE),
                        "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\n"
                        "X-Served-By: 1\r\nConnection: close\r\n\r\n");
    /* an HTTP/1.0 server, no reason phrase: HTTP/1.1 with the standard one */
    assert_string_equal(
        rewrite_response(&out, "HTTP/1.0 404 \r\nA:b\r\n\r\n", false, LB_CONN_KEEP_ALIVE),
        "HTTP/1.1 404 Not Found\r\nA:b\r\nConnection: keep-alive\r\n\r\n");
    /* decoded for an HTTP/1.0 client: Transfer-Encoding goes */
    assert_string_equal(rewrite_response(&out,
                                         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                         "Trailer: X\r\n\r\n",
                                         true, LB_CONN_CLOSE),
                        "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    /* a server's Connection naming fields: they go, the framing and Host never do */
    assert_string_equal(rewrite_response(&out,
                                         "HTTP/1.1 200 OK\r\nX-Hop: 1\r\nA: b\r\nContent-Length: 0"
                                         "\r\nConnection: keep-alive, x-hop, Content-Length\r\n"
                                         "x-HOP: 2\r\n\r\n",
                                         false, LB_CONN_NONE),
                        "HTTP/1.1 200 OK\r\nA: b\r\nContent-Length: 0\r\n\r\n");
    assert_string_equal(rewrite_response(&out,
                                         "HTTP/1.1 101 Switching Protocols\r\n"
                                         "Upgrade: websocket\r\nConnection: upgrade\r\n\r\n",
                                         false, LB_CONN_UPGRADE),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\n\r\n");
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_fields_copied_as_they_came),
        cmocka_unit_test(test_request_host_for_http10),
        cmocka_unit_test(test_request_options),
        cmocka_unit_test(test_request_fields_added_once_per_connection),
        cmocka_unit_test(test_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
