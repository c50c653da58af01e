/*
 * The Consul API client: the endpoint from flags and environment (one precedence for every
 * setting), the token header, the Go client's error texts, and the blocking-query watcher's
 * index rules against a fake agent (an http_server on the same loop with a scripted index).
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch.h"

#include "lib/alloc.h"
#include "lib/consul_client.h"
#include "lib/http_server.h"

static const char *const env_names[] = {
    "HTTP_ADDR", "HTTP_TOKEN",  "HTTP_TOKEN_FILE", "HTTP_SSL",        "HTTP_SSL_VERIFY",
    "CACERT",    "CLIENT_CERT", "CLIENT_KEY",      "TLS_SERVER_NAME",
};

static void clear_env(void)
{
    char name[64];

    for (size_t i = 0; i < ARRAY_LEN(env_names); i++) {
        snprintf(name, sizeof(name), "MESH_%s", env_names[i]);
        unsetenv(name);
        snprintf(name, sizeof(name), "CONSUL_%s", env_names[i]);
        unsetenv(name);
    }
}

static void test_endpoint_defaults_and_precedence(void **state)
{
    struct consul_endpoint ep;
    struct consul_flags f = {0};
    struct err e;

    clear_env();
    assert_int_equal(consul_endpoint_resolve(&ep, NULL, &e), 0);
    assert_string_equal(ep.addr, CONSUL_DEFAULT_ADDR);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_int_equal(ep.port, 8500);
    assert_false(ep.tls);
    assert_null(ep.token);
    consul_endpoint_free(&ep);

    setenv("CONSUL_HTTP_ADDR", "http://10.0.0.7:8501", 1);
    setenv("CONSUL_HTTP_TOKEN", "consul-tok", 1);
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.host, "10.0.0.7");
    assert_int_equal(ep.port, 8501);
    assert_string_equal(ep.token, "consul-tok");
    consul_endpoint_free(&ep);
    assert_null(ep.token);

    /* MESH_x before CONSUL_x; an empty one is skipped */
    setenv("MESH_HTTP_ADDR", "10.0.0.8:9500", 1);
    setenv("MESH_HTTP_TOKEN", "", 1);
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.host, "10.0.0.8");
    assert_int_equal(ep.port, 9500);
    assert_string_equal(ep.token, "consul-tok");
    consul_endpoint_free(&ep);

    /* flags before the environment */
    f.addr = "[::1]:7000";
    f.token = "flag-tok";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.host, "::1");
    assert_int_equal(ep.port, 7000);
    assert_string_equal(ep.token, "flag-tok");
    consul_endpoint_free(&ep);

    /* no port: Consul's */
    f.addr = "10.0.0.9";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_int_equal(ep.port, 8500);
    consul_endpoint_free(&ep);
    f.addr = "https://10.0.0.9/";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_int_equal(ep.port, 8501);
    assert_true(ep.tls);
    consul_endpoint_free(&ep);

    f.addr = "ftp://x:1";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "ftp://x:1"));
    assert_null(ep.addr);
    clear_env();
}

static void test_endpoint_tls(void **state)
{
    struct consul_endpoint ep;
    struct consul_flags f = {.addr = "https://10.0.0.1:8501"};
    struct err e;

    clear_env();
    setenv("CONSUL_CACERT", "/ca.pem", 1);
    setenv("MESH_CLIENT_CERT", "/c.pem", 1);
    setenv("CONSUL_CLIENT_KEY", "/k.pem", 1);
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_true(ep.tls);
    assert_string_equal(ep.tls_ca_file, "/ca.pem");
    assert_string_equal(ep.tls_cert_file, "/c.pem");
    assert_string_equal(ep.tls_key_file, "/k.pem");
    assert_null(ep.tls_server_name);
    assert_false(ep.tls_skip_verify);
    consul_endpoint_free(&ep);

    /* a flag's file wins over the variable's */
    f.cert_file = "/flag-c.pem";
    f.key_file = "/flag-k.pem";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.tls_cert_file, "/flag-c.pem");
    assert_string_equal(ep.tls_key_file, "/flag-k.pem");
    consul_endpoint_free(&ep);

    /* a bare host:port is https with CONSUL_HTTP_SSL (or the caller's flag) */
    f = (struct consul_flags){.addr = "10.0.0.1:8501"};
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_false(ep.tls);
    assert_null(ep.tls_ca_file); /* TLS settings only for https */
    consul_endpoint_free(&ep);
    f.tls = true;
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_true(ep.tls);
    consul_endpoint_free(&ep);
    f.tls = false;
    setenv("CONSUL_HTTP_SSL", "true", 1);
    setenv("CONSUL_HTTP_SSL_VERIFY", "false", 1);
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_true(ep.tls);
    assert_true(ep.tls_skip_verify);
    consul_endpoint_free(&ep);
    /* an explicit scheme wins over CONSUL_HTTP_SSL */
    f.addr = "http://10.0.0.1:8500";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_false(ep.tls);
    consul_endpoint_free(&ep);

    /* localhost is dialled at 127.0.0.1, its certificate checked for localhost */
    f.addr = "https://localhost:8501";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.host, "127.0.0.1");
    assert_string_equal(ep.tls_server_name, "localhost");
    consul_endpoint_free(&ep);
    setenv("CONSUL_TLS_SERVER_NAME", "server.dc1.consul", 1);
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.tls_server_name, "server.dc1.consul");
    consul_endpoint_free(&ep);
    clear_env();
}

static void test_token_file_and_line_breaks(void **state)
{
    struct consul_endpoint ep;
    struct consul_flags f = {0};
    struct err e;
    const char *path = scratch_write("token", "  s3cret\n");

    clear_env();
    setenv("CONSUL_HTTP_TOKEN_FILE", path, 1);
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.token, "s3cret");
    consul_endpoint_free(&ep);
    /* a token variable beats a token file variable; a flag's file beats both */
    setenv("CONSUL_HTTP_TOKEN", "env-tok", 1);
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.token, "env-tok");
    consul_endpoint_free(&ep);
    f.token_file = path;
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    assert_string_equal(ep.token, "s3cret");
    consul_endpoint_free(&ep);

    f.token_file = "/nonexistent/token";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "/nonexistent/token"));
    f.token_file = NULL;
    f.token = "a\r\nX-Evil: 1";
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), -EINVAL);
    assert_string_equal(e.msg, "invalid ACL token: it contains a line break");
    assert_null(ep.token);
    clear_env();
}

static void test_request_and_errors(void **state)
{
    struct consul_endpoint ep;
    struct consul_flags f = {.addr = "https://10.0.0.1:8501", .token = "t1"};
    struct http_client_request r = {0};
    struct http_header fields[2] = {
        {.name = STR_LIT("Content-Type"), .value = STR_LIT("application/json")}};
    struct err e;

    clear_env();
    assert_int_equal(consul_endpoint_resolve(&ep, &f, &e), 0);
    consul_request_init(&r, &ep, fields, 1);
    assert_int_equal(r.num_headers, 2);
    assert_ptr_equal(r.headers, fields);
    assert_true(str_eq_cstr(fields[1].name, "X-Consul-Token"));
    assert_true(str_eq_cstr(fields[1].value, "t1"));
    assert_string_equal(r.host, "10.0.0.1");
    assert_int_equal(r.port, 8501);
    assert_true(r.tls);
    assert_int_equal(r.max_body, CONSUL_MAX_BODY);
    assert_int_equal(consul_token_field("", &fields[0]), 0);
    assert_int_equal(consul_token_field(NULL, &fields[0]), 0);

    consul_transport_error(&ep, "PUT", "/v1/kv/a", UV_ECONNREFUSED, NULL, &e);
    assert_string_equal(e.msg, "Put \"https://10.0.0.1:8501/v1/kv/a\": dial tcp 10.0.0.1:8501: "
                               "connect: connection refused");
    consul_transport_error(&ep, "GET", "/v1/kv/a", UV_EPROTO, "tls: bad certificate", &e);
    assert_string_equal(e.msg, "Get \"https://10.0.0.1:8501/v1/kv/a\": tls: bad certificate");
    consul_status_error(403, "Permission denied\n", 18, &e);
    assert_string_equal(e.msg, "Unexpected response code: 403 (Permission denied)");
    consul_status_error(500, " one\ntwo", 8, &e);
    assert_string_equal(e.msg, "Unexpected response code: 500 (one)");
    consul_endpoint_free(&ep);
}

static void test_index_rules(void **state)
{
    assert_int_equal(consul_watch_next_index(0, 5), 5);
    assert_int_equal(consul_watch_next_index(5, 5), 5);
    assert_int_equal(consul_watch_next_index(5, 9), 9);
    assert_int_equal(consul_watch_next_index(10, 3), 0); /* went backwards: start over */
    assert_int_equal(consul_watch_next_index(0, 0), 1);  /* never 0 */
    assert_int_equal(consul_watch_next_index(1, 0), 1);
}

/* ---- the watcher against a fake agent ---------------------------------------------------- */

#define WAIT_MS 5000

struct fixture {
    uv_loop_t loop;
    struct http_server srv;
    int port;
    int status;
    uint64_t index;
    int requests, answers, outages, recoveries;
    char target[512];
    char token[64];
    struct consul_endpoint ep;
    struct http_client *client;
    struct consul_watch *w;
};

static void on_agent(struct http_request *req, void *data)
{
    struct fixture *fx = data;
    const struct http_header *tok = http_request_header(req, "X-Consul-Token");

    fx->requests++;
    snprintf(fx->target, sizeof(fx->target), "%.*s", (int)req->target.n, req->target.p);
    snprintf(fx->token, sizeof(fx->token), "%.*s", tok ? (int)tok->value.n : 0,
             tok ? tok->value.p : "");
    http_response_header(req, "X-Consul-Index", "%llu", (unsigned long long)fx->index);
    http_respond(req, fx->status, "application/json", "[]", 2);
}

static int on_answer(void *data, const struct http_client_response *res, struct err *e)
{
    struct fixture *fx = data;

    fx->answers++;
    if (res->status != 200) {
        consul_status_error(res->status, res->body, res->body_len, e);
        return -EINVAL;
    }
    return 0;
}

static void on_outage(void *data, const char *why)
{
    struct fixture *fx = data;

    if (why)
        fx->outages++;
    else
        fx->recoveries++;
}

static const struct consul_watch_ops ops = {.answer = on_answer, .outage = on_outage};

#define RUN_UNTIL(fx, cond)                                                                        \
    ({                                                                                             \
        uint64_t deadline_ = uv_now(&(fx)->loop) + WAIT_MS;                                        \
        while (!(cond) && uv_now(&(fx)->loop) < deadline_)                                         \
            uv_run(&(fx)->loop, UV_RUN_ONCE);                                                      \
        (cond);                                                                                    \
    })

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    struct consul_flags f = {.token = "s3cret"};
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    struct err e;
    char addr[64];

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    http_server_init(&fx->srv, &fx->loop, NULL, on_agent, fx);
    assert_int_equal(http_server_listen(&fx->srv, "127.0.0.1", 0, &e), 0);
    assert_int_equal(uv_tcp_getsockname(&fx->srv.listener, (struct sockaddr *)&ss, &len), 0);
    fx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx->port);
    f.addr = addr;
    clear_env();
    assert_int_equal(consul_endpoint_resolve(&fx->ep, &f, &e), 0);
    fx->client = http_client_new(&fx->loop);
    fx->status = 200;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    consul_watch_free(fx->w);
    http_client_free(fx->client);
    http_server_close(&fx->srv, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    consul_endpoint_free(&fx->ep);
    free(fx);
    return 0;
}

static void test_watch_index_rules(void **state)
{
    struct fixture *fx = *state;

    fx->index = 10;
    fx->w = consul_watch_start(fx->client, &fx->loop, &fx->ep, "/v1/health/service/web?passing",
                               false, &ops, fx);
    assert_true(RUN_UNTIL(fx, fx->requests >= 1));
    assert_string_equal(fx->target, "/v1/health/service/web?passing&index=0&wait=5m");
    assert_string_equal(fx->token, "s3cret");
    /* the next query blocks on the index it was given */
    assert_true(RUN_UNTIL(fx, fx->requests >= 2));
    assert_string_equal(fx->target, "/v1/health/service/web?passing&index=10&wait=5m");

    /* the agent restarted with a shorter history: start over from 0, then block on 3 */
    fx->index = 3;
    int req = fx->requests;
    assert_true(RUN_UNTIL(fx, fx->requests >= req + 2));
    assert_true(RUN_UNTIL(fx, strstr(fx->target, "index=3&") != NULL));

    /* an agent that answers index 0 is asked with index 1, never 0 again */
    fx->index = 0;
    assert_true(RUN_UNTIL(fx, strstr(fx->target, "index=1&") != NULL));
    req = fx->requests;
    assert_true(RUN_UNTIL(fx, fx->requests >= req + 3));
    assert_non_null(strstr(fx->target, "index=1&"));
    assert_int_equal(fx->outages, 0);
}

static void test_watch_failure_backs_off_and_recovers(void **state)
{
    struct fixture *fx = *state;

    fx->index = 7;
    fx->status = 403;
    fx->w = consul_watch_start(fx->client, &fx->loop, &fx->ep, "/v1/kv/a", false, &ops, fx);
    /* refused answers: one outage reported, retried after a backoff from index 0 */
    assert_true(RUN_UNTIL(fx, fx->requests >= 3));
    assert_int_equal(fx->outages, 1);
    assert_int_equal(fx->recoveries, 0);
    assert_string_equal(fx->target, "/v1/kv/a?index=0&wait=5m");
    fx->status = 200;
    assert_true(RUN_UNTIL(fx, fx->recoveries == 1));
    assert_int_equal(fx->outages, 1);
    assert_true(RUN_UNTIL(fx, strstr(fx->target, "index=7&") != NULL));
}

static void test_watch_once(void **state)
{
    struct fixture *fx = *state;

    fx->index = 4;
    fx->w = consul_watch_start(fx->client, &fx->loop, &fx->ep, "/v1/agent/self", true, &ops, fx);
    assert_true(RUN_UNTIL(fx, fx->answers == 1));
    assert_string_equal(fx->target, "/v1/agent/self");
    /* nothing more is asked */
    for (int i = 0; i < 20; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->requests, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint_defaults_and_precedence),
        cmocka_unit_test(test_endpoint_tls),
        cmocka_unit_test(test_token_file_and_line_breaks),
        cmocka_unit_test(test_request_and_errors),
        cmocka_unit_test(test_index_rules),
        cmocka_unit_test_setup_teardown(test_watch_index_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_failure_backs_off_and_recovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_once, setup, teardown),
    };
    int rc;

    if (scratch_make("test_consul_client") < 0)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    scratch_remove();
    return rc;
}
