/*
 * CLI pieces: Go-compatible table layout, the renderers behind members / catalog / kv, address
 * and token resolution from flags and environment, and the blocking HTTP helper against a
 * one-shot server thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/cli_internal.h"
#include "lib/alloc.h"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    assert_non_null(v);
    return v;
}

static void test_columnize(void **state)
{
    struct cli_lines l = {0};
    struct buf out = BUF_INIT;

    cli_lines_add(&l, "Node|ID|Address");
    cli_lines_add(&l, " web1 |abc|10.0.0.1");
    cli_lines_add(&l, "loadbalancer|d|");
    cli_columnize(&out, &l, '|', "  ");
    assert_string_equal(out.data, "Node          ID   Address\n"
                                  "web1          abc  10.0.0.1\n"
                                  "loadbalancer  d    \n");
    buf_free(&out);
    cli_lines_free(&l);
    assert_null(l.v);
}

static void test_tabwrite(void **state)
{
    struct cli_lines l = {0};
    struct buf out = BUF_INIT;

    cli_lines_add(&l, "web\tprimary,v1");
    cli_lines_add(&l, "consul\t");
    cli_tabwrite(&out, &l, true);
    /* Padding 6 past the widest first cell; the final trailing blanks are trimmed. */
    assert_string_equal(out.data, "web         primary,v1\nconsul\n");
    buf_reset(&out);
    cli_tabwrite(&out, &l, false);
    assert_string_equal(out.data, "web         primary,v1\nconsul      \n");
    buf_free(&out);
    cli_lines_free(&l);
}

static const char *members_json =
    "[{\"Name\":\"web1\",\"Addr\":\"127.0.0.1\",\"Port\":8302,\"Status\":1,"
    "\"Tags\":{\"role\":\"node\",\"dc\":\"dc1\",\"build\":\"0.1.0:abc\",\"vsn\":\"2\"}},"
    " {\"Name\":\"loadbalancer\",\"Addr\":\"127.0.0.1\",\"Port\":8301,\"Status\":1,"
    "\"Tags\":{\"role\":\"consul\",\"dc\":\"dc1\",\"build\":\"0.1.0\",\"vsn\":\"2\"}},"
    " {\"Name\":\"web2\",\"Addr\":\"::1\",\"Port\":8303,\"Status\":4,"
    "\"Tags\":{\"role\":\"node\",\"dc\":\"dc1\",\"vsn\":\"2\",\"segment\":\"s1\"}}]";

static void test_members_standard(void **state)
{
    json_t *m = parse(members_json);
    struct buf out = BUF_INIT;

    assert_int_equal(cli_members_render(m, false, NULL, &out), 3);
    assert_string_equal(
        out.data,
        "Node          Address         Status  Type    Build  Protocol  DC   Partition  Segment\n"
        "loadbalancer  127.0.0.1:8301  alive   server  0.1.0  2         dc1  default    <all>\n"
        "web1          127.0.0.1:8302  alive   client  0.1.0  2         dc1  default    "
        "<default>\n"
        "web2          [::1]:8303      failed  client  < 0.3  2         dc1  default    s1\n");
    buf_free(&out);
    json_decref(m);
}

static void test_members_filter_detailed(void **state)
{
    json_t *m = parse(members_json);
    struct buf out = BUF_INIT;
    regex_t re;

    assert_int_equal(regcomp(&re, "fail", REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(cli_members_render(m, true, &re, &out), 1);
    assert_string_equal(out.data, "Node  Address     Status  Tags\n"
                                  "web2  [::1]:8303  failed  dc=dc1,role=node,segment=s1,vsn=2\n");
    buf_reset(&out);
    regfree(&re);
    assert_int_equal(regcomp(&re, "^left$", REG_EXTENDED | REG_NOSUB), 0);
    assert_int_equal(cli_members_render(m, false, &re, &out), 0);
    assert_int_equal(out.len, 0);
    regfree(&re);
    buf_free(&out);
    json_decref(m);

    assert_string_equal(cli_member_status(0), "none");
    assert_string_equal(cli_member_status(2), "leaving");
    assert_string_equal(cli_member_status(3), "left");
    assert_string_equal(cli_member_status(9), "unknown");
}

static void test_kv_render(void **state)
{
    json_t *e = parse("{\"LockIndex\":0,\"Key\":\"service/web/maxconn\",\"Flags\":42,"
                      "\"Value\":\"MTAw\",\"CreateIndex\":100,\"ModifyIndex\":200}");
    struct buf out = BUF_INIT;

    cli_kv_append_value(&out, e, false);
    assert_string_equal(out.data, "100");
    buf_reset(&out);
    cli_kv_append_value(&out, e, true);
    assert_string_equal(out.data, "MTAw");
    buf_reset(&out);
    cli_kv_render_detailed(&out, e, false);
    assert_string_equal(out.data, "CreateIndex      100\n"
                                  "Flags            42\n"
                                  "Key              service/web/maxconn\n"
                                  "LockIndex        0\n"
                                  "ModifyIndex      200\n"
                                  "Session          -\n"
                                  "Value            100\n");
    buf_free(&out);
    json_decref(e);

    /* A null value prints as empty; NUL bytes survive. */
    e = parse("{\"Key\":\"k\",\"Value\":null}");
    cli_kv_append_value(&out, e, false);
    assert_int_equal(out.len, 0);
    json_decref(e);
    e = parse("{\"Key\":\"k\",\"Value\":\"YQBi\"}");
    cli_kv_append_value(&out, e, false);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "a\0b", 3);
    buf_free(&out);
    json_decref(e);
}

static void test_catalog_render(void **state)
{
    json_t *nodes = parse("[{\"ID\":\"0123456789abcdef\",\"Node\":\"loadbalancer\","
                          "\"Address\":\"127.0.0.1\",\"Datacenter\":\"dc1\","
                          "\"TaggedAddresses\":{\"wan\":\"1.2.3.4\",\"lan\":\"127.0.0.1\"},"
                          "\"Meta\":{\"a\":\"b\"}},"
                          "{\"ID\":\"\",\"Node\":\"web1\",\"Address\":\"10.0.0.2\","
                          "\"Datacenter\":\"dc1\"}]");
    json_t *services = parse("{\"web\":[\"v1\",\"primary\",\"v1\"],\"consul\":[]}");
    json_t *inst =
        parse("[{\"Node\":\"web1\",\"Address\":\"10.0.0.2\",\"ServiceID\":\"web-1\","
              "\"ServiceAddress\":\"\",\"ServicePort\":3000,\"ServiceTags\":[\"b\",\"a\"]},"
              "{\"Node\":\"web2\",\"Address\":\"10.0.0.3\",\"ServiceID\":\"web-2\","
              "\"ServiceAddress\":\"10.9.9.9\",\"ServicePort\":3001,\"ServiceTags\":[]}]");
    struct buf out = BUF_INIT;

    cli_catalog_render_nodes(&out, nodes, false);
    assert_string_equal(out.data, "Node          ID        Address    DC\n"
                                  "loadbalancer  01234567  127.0.0.1  dc1\n"
                                  "web1                    10.0.0.2   dc1\n");
    buf_reset(&out);
    cli_catalog_render_nodes(&out, nodes, true);
    /* TaggedAddresses is 26 wide ("lan=127.0.0.1, wan=1.2.3.4"); empty cells still pad. */
    assert_string_equal(out.data, "Node          ID                Address    DC   TaggedAddresses"
                                  "             Meta\n"
                                  "loadbalancer  0123456789abcdef  127.0.0.1  dc1  lan=127.0.0.1, "
                                  "wan=1.2.3.4  a=b\n"
                                  "web1                            10.0.0.2   dc1  "
                                  "                            \n");
    buf_reset(&out);
    assert_int_equal(cli_catalog_render_services(&out, services, false), 2);
    assert_string_equal(out.data, "consul\nweb\n");
    buf_reset(&out);
    assert_int_equal(cli_catalog_render_services(&out, services, true), 2);
    assert_string_equal(out.data, "consul      \nweb         primary,v1\n");
    buf_reset(&out);
    cli_catalog_render_instances(&out, inst);
    assert_string_equal(out.data, "Node  ServiceID  Address        Tags\n"
                                  "web1  web-1      10.0.0.2:3000  a,b\n"
                                  "web2  web-2      10.9.9.9:3001  \n");
    buf_free(&out);
    json_decref(nodes);
    json_decref(services);
    json_decref(inst);
}

static void clear_env(void)
{
    unsetenv("MESH_HTTP_ADDR");
    unsetenv("CONSUL_HTTP_ADDR");
    unsetenv("MESH_HTTP_TOKEN");
    unsetenv("CONSUL_HTTP_TOKEN");
    unsetenv("MESH_HTTP_TOKEN_FILE");
    unsetenv("CONSUL_HTTP_TOKEN_FILE");
    unsetenv("CONSUL_HTTP_SSL");
    unsetenv("CONSUL_HTTP_SSL_VERIFY");
    unsetenv("CONSUL_CACERT");
    unsetenv("MESH_CLIENT_CERT");
    unsetenv("CONSUL_CLIENT_KEY");
}

static void test_query_add(void **state)
{
    struct buf t = BUF_INIT;

    buf_append_cstr(&t, "/v1/kv/a");
    cli_query_add(&t, "keys", NULL);
    cli_query_add(&t, "separator", "/");
    cli_query_add(&t, "dc", "d c&1");
    assert_string_equal(t.data, "/v1/kv/a?keys&separator=%2F&dc=d%20c%261");
    buf_free(&t);
}

/* ---- the HTTP helper against a one-shot server thread ------------------------------------- */

struct one_shot {
    int fd;
    int port;
    const char *reply;
    char request[4096];
};

static void *serve_one(void *arg)
{
    struct one_shot *s = arg;
    int c = accept(s->fd, NULL, NULL);
    size_t got = 0;

    if (c < 0)
        return NULL;
    /* Read the head (and a short body, which these tests send in the same segment). */
    while (got < sizeof(s->request) - 1) {
        ssize_t n = read(c, s->request + got, sizeof(s->request) - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        s->request[got] = '\0';
        char *end = strstr(s->request, "\r\n\r\n");
        const char *cl = strstr(s->request, "Content-Length: ");
        if (end && (!cl || got >= (size_t)(end + 4 - s->request) + (size_t)atoi(cl + 16)))
            break;
    }
    assert_true(write(c, s->reply, strlen(s->reply)) == (ssize_t)strlen(s->reply));
    close(c);
    return NULL;
}

static void one_shot_start(struct one_shot *s, pthread_t *th, const char *reply)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);

    memset(s, 0, sizeof(*s));
    s->reply = reply;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s->fd, 1), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sa, &len), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(th, NULL, serve_one, s), 0);
}

static void open_client(struct cli_http *h, int port, const char *token, const char *dc)
{
    struct cli_http_opts o = {0};
    struct err e;

    clear_env();
    o.http_addr = xasprintf("http://127.0.0.1:%d", port);
    o.token = token ? xstrdup(token) : NULL;
    o.datacenter = dc ? xstrdup(dc) : NULL;
    o.stale = true;
    assert_int_equal(cli_http_open(h, &o, &e), 0);
    cli_http_opts_free(&o);
}

static void test_http_ok(void **state)
{
    struct one_shot s;
    pthread_t th;
    struct cli_http h;
    struct cli_response res = {0};
    struct err e;

    one_shot_start(&s, &th,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "Content-Length: 4\r\nConnection: close\r\n\r\ntrue");
    open_client(&h, s.port, "tok", "dc2");
    assert_int_equal(cli_http_call(&h, "PUT", "/v1/kv/a%20b?cas=5", "hello", 5, CLI_READ, &res, &e),
                     0);
    pthread_join(th, NULL);
    close(s.fd);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.body.data, "true");
    assert_non_null(strstr(s.request, "PUT /v1/kv/a%20b?cas=5&dc=dc2&stale HTTP/1.1\r\n"));
    assert_non_null(strstr(s.request, "\r\nX-Consul-Token: tok\r\n"));
    assert_non_null(strstr(s.request, "\r\nContent-Length: 5\r\n"));
    assert_non_null(strstr(s.request, "\r\n\r\nhello"));
    json_t *v = cli_json(&res, &e);
    assert_true(json_is_true(v));
    json_decref(v);
    cli_response_free(&res);
    cli_http_close(&h);
}

static void test_http_errors(void **state)
{
    struct one_shot s;
    pthread_t th;
    struct cli_http h;
    struct cli_response res = {0};
    struct err e;

    /* Non-200: the Go client's text with the body trimmed. */
    one_shot_start(&s, &th,
                   "HTTP/1.1 400 Bad Request\r\nContent-Length: 23\r\n"
                   "Connection: close\r\n\r\nMissing service name\r\n\r\n");
    open_client(&h, s.port, NULL, NULL);
    assert_int_equal(cli_http_call(&h, "GET", "/v1/x", NULL, 0, 0, &res, &e), -EIO);
    pthread_join(th, NULL);
    close(s.fd);
    assert_string_equal(e.msg, "Unexpected response code: 400 (Missing service name)");
    assert_null(strstr(s.request, "X-Consul-Token"));
    assert_null(strstr(s.request, "stale")); /* not a read */
    cli_http_close(&h);

    /* 404 is an answer when allowed. */
    one_shot_start(&s, &th, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    open_client(&h, s.port, NULL, NULL);
    assert_int_equal(cli_http_call(&h, "GET", "/v1/kv/k", NULL, 0, CLI_ALLOW_404, &res, &e), 0);
    assert_int_equal(res.status, 404);
    pthread_join(th, NULL);
    close(s.fd);
    cli_http_close(&h);

    /* Nothing listening: Go's dial error. Bind then close to get a port that refuses. */
    one_shot_start(&s, &th, "");
    shutdown(s.fd, SHUT_RDWR);
    pthread_join(th, NULL);
    close(s.fd);
    open_client(&h, s.port, NULL, NULL);
    int rc = cli_http_call(&h, "GET", "/v1/agent/members", NULL, 0, 0, &res, &e);
    assert_int_equal(rc, UV_ECONNREFUSED);
    char want[256];
    snprintf(want, sizeof(want),
             "Get \"http://127.0.0.1:%d/v1/agent/members\": dial tcp 127.0.0.1:%d: connect: "
             "connection refused",
             s.port, s.port);
    assert_string_equal(e.msg, want);
    cli_response_free(&res);
    cli_http_close(&h);
}

static void test_parse_flags(void **state)
{
    bool detailed = false;
    struct flag flags[] = {{.name = "detailed", .type = FLAG_BOOL, .ptr = &detailed}};
    char *ok[] = {"-detailed", "x"};
    char *bad[] = {"-nope"};
    int first = -1, code = -1;

    assert_true(cli_parse_flags(flags, 1, "t", 2, ok, &first, &code));
    assert_true(detailed);
    assert_int_equal(first, 1);
    assert_false(cli_parse_flags(flags, 1, "t", 1, bad, &first, &code));
    assert_int_equal(code, 1);
}

static void test_parse_command_counts_arguments(void **state)
{
    bool detailed = false;
    struct flag flags[] = {{.name = "detailed", .type = FLAG_BOOL, .ptr = &detailed}};
    char *none[] = {"-detailed"};
    char *two[] = {"-detailed", "x", "y"};
    int first = -1, code = -1;

    (void)state;
    assert_true(cli_parse_command(flags, 1, "t", 1, none, 0, &first, &code));
    assert_int_equal(first, 1);
    assert_true(cli_parse_command(flags, 1, "t", 3, two, 2, &first, &code));
    code = -1;
    assert_false(cli_parse_command(flags, 1, "t", 3, two, 1, &first, &code));
    assert_int_equal(code, 1); /* "Too many arguments (expected 1, got 2)" */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columnize),
        cmocka_unit_test(test_tabwrite),
        cmocka_unit_test(test_members_standard),
        cmocka_unit_test(test_members_filter_detailed),
        cmocka_unit_test(test_kv_render),
        cmocka_unit_test(test_catalog_render),
        cmocka_unit_test(test_query_add),
        cmocka_unit_test(test_http_ok),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_parse_flags),
        cmocka_unit_test(test_parse_command_counts_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
