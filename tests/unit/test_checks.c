/* Health check runners against a real loop: an in-process HTTP server, TCP ports, scripts. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/http_server.h"
#include "registry/agent/checks.h"
#include "registry/state/state.h"

struct fixture {
    uv_loop_t loop;
    struct reg_state st;
    struct reg_checks *checks;
    struct http_server srv;
    int port;  /* the HTTP server's */
    int code;  /* what it answers */
    bool hang; /* park requests instead of answering */
    struct http_request *parked;
    int requests;
    char ua[128];
    char accept[128];
    char host[128];
    char xtest[64];
    int reaped;
    char reaped_id[64];
    char tmp[256];
};

/* ---- helpers ------------------------------------------------------------------------------- */

static void copy_header(const struct http_request *req, const char *name, char *out, size_t n)
{
    const struct http_header *h = http_request_header(req, name);
    snprintf(out, n, "%.*s", h ? (int)h->value.n : 0, h ? h->value.p : "");
}

static void on_parked_abort(struct http_request *req)
{
    struct fixture *f = req->data;
    f->parked = NULL;
}

static void handler(struct http_request *req, void *data)
{
    struct fixture *f = data;

    f->requests++;
    copy_header(req, "User-Agent", f->ua, sizeof(f->ua));
    copy_header(req, "Accept", f->accept, sizeof(f->accept));
    copy_header(req, "Host", f->host, sizeof(f->host));
    copy_header(req, "X-Test", f->xtest, sizeof(f->xtest));
    if (f->hang) {
        req->data = f;
        req->on_abort = on_parked_abort;
        f->parked = req;
        return;
    }
    if (str_eq_cstr(req->path, "/redir")) {
        http_response_header(req, "Location", "/health");
        http_respond_text(req, 302, "moved");
        return;
    }
    http_respond_text(req, f->code, "hello");
}

static void on_reap(const char *service_id, void *data)
{
    struct fixture *f = data;

    f->reaped++;
    snprintf(f->reaped_id, sizeof(f->reaped_id), "%s", service_id);
    /* What the agent does: deregister the service, which stops its runners. */
    reg_checks_stop(f->checks, "svc-tcp");
}

static int bound_port(uv_tcp_t *tcp)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    assert_int_equal(uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* A port nothing listens on: bind an ephemeral one and close it again. */
static int closed_port(struct fixture *f)
{
    uv_tcp_t tcp;
    struct sockaddr_in sa;

    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(&f->loop, &tcp);
    assert_int_equal(uv_tcp_bind(&tcp, (struct sockaddr *)&sa, 0), 0);
    int port = bound_port(&tcp);
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return port;
}

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void on_deadline_closed(uv_handle_t *h)
{
    free(h);
}

static struct reg_check *get_check(struct fixture *f, const char *id)
{
    struct reg_node *n = reg_node_get(&f->st, "n1");
    return n ? reg_check_get(n, id) : NULL;
}

static bool check_is(struct fixture *f, const char *id, enum reg_health h)
{
    struct reg_check *c = get_check(f, id);
    return c && c->status == h;
}

/* Runs the loop until check `id` has status h (id NULL: for ms) or ms pass. */
static bool run_until(struct fixture *f, const char *id, enum reg_health h, uint64_t ms)
{
    bool expired = false;
    uv_timer_t *t = xcalloc(1, sizeof(*t));

    uv_timer_init(&f->loop, t);
    t->data = &expired;
    uv_timer_start(t, on_deadline, ms, 0);
    while (!expired && !(id && check_is(f, id, h)))
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)t, on_deadline_closed);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    return id && check_is(f, id, h);
}

static void run_for(struct fixture *f, uint64_t ms)
{
    run_until(f, NULL, REG_PASSING, ms);
}

static void add_check(struct fixture *f, const char *id, const char *service_id,
                      enum reg_health status)
{
    struct reg_check t = {.id = (char *)id, .status = status, .service_id = (char *)service_id};
    reg_check_upsert(&f->st, reg_node_get(&f->st, "n1"), &t);
}

static struct reg_check_def *new_def(enum reg_check_kind kind, const char *id)
{
    struct reg_check_def *d = xcalloc(1, sizeof(*d));

    d->id = xstrdup(id);
    d->name = xstrdup(id);
    d->service_id = xstrdup("");
    d->kind = kind;
    d->interval = DURATION_SEC;
    return d;
}

static char **argv_of(const char *a0, const char *a1, const char *a2)
{
    char **v = xcalloc(4, sizeof(*v));
    v[0] = xstrdup(a0);
    v[1] = a1 ? xstrdup(a1) : NULL;
    v[2] = a1 && a2 ? xstrdup(a2) : NULL;
    return v;
}

static struct reg_check_def *script_def(const char *id, const char *cmd)
{
    struct reg_check_def *d = new_def(REG_CHECK_SCRIPT, id);
    d->args = argv_of("/bin/sh", "-c", cmd);
    return d;
}

static const char *output_of(struct fixture *f, const char *id)
{
    struct reg_check *c = get_check(f, id);
    assert_non_null(c);
    return c->output;
}

static int count_lines(const char *path)
{
    FILE *fp = fopen(path, "r");
    int n = 0, ch;

    if (!fp)
        return 0;
    while ((ch = fgetc(fp)) != EOF)
        n += ch == '\n';
    fclose(fp);
    return n;
}

/* ---- fixture ------------------------------------------------------------------------------- */

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct err e;

    assert_int_equal(uv_loop_init(&f->loop), 0);
    reg_state_init(&f->st);
    struct reg_node_fields nf = {.name = "n1", .address = "127.0.0.1", .datacenter = "dc1"};
    reg_node_upsert(&f->st, &nf);
    struct reg_service svc = {.id = "web", .name = "web", .port = 80};
    reg_service_upsert(&f->st, reg_node_get(&f->st, "n1"), &svc);
    http_server_init(&f->srv, &f->loop, NULL, handler, f);
    assert_int_equal(http_server_listen(&f->srv, "127.0.0.1", 0, &e), 0);
    f->port = bound_port(&f->srv.listener);
    f->code = 200;
    f->checks = reg_checks_new(&f->loop, &f->st, "n1", on_reap, f);
    const char *dir = getenv("MESH_TEST_TMPDIR");
    if (dir)
        mkdir(dir, 0755);
    snprintf(f->tmp, sizeof(f->tmp), "%s/test_checks.%d", dir ? dir : "/tmp", (int)getpid());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    reg_checks_free(f->checks);
    http_server_close(&f->srv, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* drains: killed children, closing probes */
    assert_int_equal(uv_loop_close(&f->loop), 0);
    reg_state_free(&f->st);
    char path[300];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s.%d", f->tmp, i);
        unlink(path);
    }
    free(f);
    return 0;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_http_status_codes(void **state)
{
    struct fixture *f = *state;
    char url[128], want[256];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/health", f->port);
    add_check(f, "web-http", "web", REG_CRITICAL);
    struct reg_check_def *d = new_def(REG_CHECK_HTTP, "web-http");
    d->http = xstrdup(url);
    d->header = json_pack("{s:[s], s:[s]}", "X-Test", "yes", "Host", "vhost.test");
    reg_checks_start(f->checks, d);

    assert_true(run_until(f, "web-http", REG_PASSING, 3000));
    snprintf(want, sizeof(want), "HTTP GET %s: 200 OK Output: hello", url);
    assert_string_equal(output_of(f, "web-http"), want);
    assert_string_equal(f->ua, "Consul Health Check");
    assert_string_equal(f->accept, "text/plain, text/*, */*");
    assert_string_equal(f->host, "vhost.test");
    assert_string_equal(f->xtest, "yes");

    f->code = 429;
    assert_true(run_until(f, "web-http", REG_WARNING, 3000));
    snprintf(want, sizeof(want), "HTTP GET %s: 429 Too Many Requests Output: hello", url);
    assert_string_equal(output_of(f, "web-http"), want);

    f->code = 500;
    assert_true(run_until(f, "web-http", REG_CRITICAL, 3000));
    snprintf(want, sizeof(want), "HTTP GET %s: 500 Internal Server Error Output: hello", url);
    assert_string_equal(output_of(f, "web-http"), want);
}

static void test_http_refused(void **state)
{
    struct fixture *f = *state;
    char url[128], want[256];
    int port = closed_port(f);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    add_check(f, "refused", "", REG_PASSING);
    struct reg_check_def *d = new_def(REG_CHECK_HTTP, "refused");
    d->http = xstrdup(url);
    reg_checks_start(f->checks, d);
    assert_true(run_until(f, "refused", REG_CRITICAL, 3000));
    snprintf(want, sizeof(want), "Get \"%s\": dial tcp 127.0.0.1:%d: connect: connection refused",
             url, port);
    assert_string_equal(output_of(f, "refused"), want);
}

static void test_http_redirects(void **state)
{
    struct fixture *f = *state;
    char url[128], want[256];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/redir", f->port);
    add_check(f, "follow", "", REG_CRITICAL);
    add_check(f, "nofollow", "", REG_PASSING);
    struct reg_check_def *d = new_def(REG_CHECK_HTTP, "follow");
    d->http = xstrdup(url);
    reg_checks_start(f->checks, d);
    d = new_def(REG_CHECK_HTTP, "nofollow");
    d->http = xstrdup(url);
    d->disable_redirects = true;
    reg_checks_start(f->checks, d);

    assert_true(run_until(f, "follow", REG_PASSING, 3000));
    snprintf(want, sizeof(want), "HTTP GET %s: 200 OK Output: hello", url);
    assert_string_equal(output_of(f, "follow"), want);
    assert_true(run_until(f, "nofollow", REG_CRITICAL, 3000));
    snprintf(want, sizeof(want), "HTTP GET %s: 302 Found Output: moved", url);
    assert_string_equal(output_of(f, "nofollow"), want);
}

static void test_tcp(void **state)
{
    struct fixture *f = *state;
    char addr[64], want[128];
    int port = closed_port(f);

    add_check(f, "tcp-up", "", REG_CRITICAL);
    add_check(f, "tcp-down", "", REG_PASSING);
    struct reg_check_def *up = new_def(REG_CHECK_TCP, "tcp-up");
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
    up->tcp = xstrdup(addr);
    reg_checks_start(f->checks, up);
    struct reg_check_def *down = new_def(REG_CHECK_TCP, "tcp-down");
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    down->tcp = xstrdup(addr);
    reg_checks_start(f->checks, down);

    assert_true(run_until(f, "tcp-up", REG_PASSING, 3000));
    snprintf(want, sizeof(want), "TCP connect 127.0.0.1:%d: Success", f->port);
    assert_string_equal(output_of(f, "tcp-up"), want);
    assert_true(run_until(f, "tcp-down", REG_CRITICAL, 3000));
    snprintf(want, sizeof(want), "dial tcp 127.0.0.1:%d: connect: connection refused", port);
    assert_string_equal(output_of(f, "tcp-down"), want);
}

static void test_ttl(void **state)
{
    struct fixture *f = *state;

    add_check(f, "ttl", "", REG_CRITICAL);
    add_check(f, "none", "", REG_PASSING);
    struct reg_check_def *d = new_def(REG_CHECK_TTL, "ttl");
    d->interval = 0;
    d->ttl = 200 * DURATION_MS;
    d->output_max_size = 8;
    reg_checks_start(f->checks, d);
    reg_checks_start(f->checks, new_def(REG_CHECK_NONE, "none"));

    assert_int_equal(reg_checks_ttl_update(f->checks, "nope", REG_PASSING, ""), -ENOENT);
    assert_int_equal(reg_checks_ttl_update(f->checks, "none", REG_PASSING, ""), -EINVAL);

    /* Each update re-arms the TTL: 150 + 120 ms after the first it is still passing. */
    assert_int_equal(reg_checks_ttl_update(f->checks, "ttl", REG_PASSING, "all good"), 0);
    assert_true(check_is(f, "ttl", REG_PASSING));
    assert_string_equal(output_of(f, "ttl"), "all good");
    run_for(f, 150);
    assert_int_equal(reg_checks_ttl_update(f->checks, "ttl", REG_PASSING, "all good"), 0);
    run_for(f, 120);
    assert_true(check_is(f, "ttl", REG_PASSING));

    assert_true(run_until(f, "ttl", REG_CRITICAL, 1000));
    assert_string_equal(output_of(f, "ttl"),
                        "TTL expired (last output before timeout follows): all good");

    assert_int_equal(reg_checks_ttl_update(f->checks, "ttl", REG_WARNING, "0123456789"), 0);
    assert_true(check_is(f, "ttl", REG_WARNING));
    assert_string_equal(output_of(f, "ttl"), "01234567 ... (captured 8 of 10 bytes)");
}

static void test_ttl_expires_without_output(void **state)
{
    struct fixture *f = *state;

    add_check(f, "ttl2", "", REG_PASSING);
    struct reg_check_def *d = new_def(REG_CHECK_TTL, "ttl2");
    d->ttl = 100 * DURATION_MS;
    reg_checks_start(f->checks, d);
    assert_true(run_until(f, "ttl2", REG_CRITICAL, 1000));
    assert_string_equal(output_of(f, "ttl2"), "TTL expired");
}

static void test_script(void **state)
{
    struct fixture *f = *state;

    add_check(f, "s-warn", "", REG_CRITICAL);
    add_check(f, "s-pass", "", REG_CRITICAL);
    add_check(f, "s-crit", "", REG_PASSING);
    add_check(f, "s-slow", "", REG_PASSING);
    add_check(f, "s-missing", "", REG_PASSING);
    add_check(f, "s-big", "", REG_CRITICAL);
    reg_checks_start(f->checks, script_def("s-warn", "echo out; echo err >&2; exit 1"));
    reg_checks_start(f->checks, script_def("s-pass", "exit 0"));
    reg_checks_start(f->checks, script_def("s-crit", "exit 3"));
    struct reg_check_def *slow = script_def("s-slow", "exec sleep 5");
    slow->timeout = 300 * DURATION_MS;
    reg_checks_start(f->checks, slow);
    struct reg_check_def *missing = new_def(REG_CHECK_SCRIPT, "s-missing");
    missing->args = argv_of("/nonexistent/prog", NULL, NULL);
    reg_checks_start(f->checks, missing);
    struct reg_check_def *big = script_def("s-big", "printf abcdefgh");
    big->output_max_size = 4;
    reg_checks_start(f->checks, big);

    assert_true(run_until(f, "s-warn", REG_WARNING, 3000));
    assert_string_equal(output_of(f, "s-warn"), "out\nerr\n");
    assert_true(run_until(f, "s-pass", REG_PASSING, 3000));
    assert_true(run_until(f, "s-crit", REG_CRITICAL, 3000));
    assert_true(run_until(f, "s-slow", REG_CRITICAL, 3000));
    assert_string_equal(output_of(f, "s-slow"), "Timed out (300ms) running check");
    assert_true(run_until(f, "s-missing", REG_CRITICAL, 3000));
    assert_string_equal(output_of(f, "s-missing"),
                        "fork/exec /nonexistent/prog: no such file or directory");
    assert_true(run_until(f, "s-big", REG_PASSING, 3000));
    assert_string_equal(output_of(f, "s-big"), "Captured 4 of 8 bytes\n...\nefgh");
}

static void test_thresholds(void **state)
{
    struct fixture *f = *state;
    char cmd[400], ok_file[300], bad_file[300];

    snprintf(ok_file, sizeof(ok_file), "%s.0", f->tmp);
    snprintf(bad_file, sizeof(bad_file), "%s.1", f->tmp);
    unlink(ok_file);
    unlink(bad_file);
    add_check(f, "slow-pass", "", REG_CRITICAL);
    add_check(f, "slow-fail", "", REG_PASSING);
    snprintf(cmd, sizeof(cmd), "echo x >> '%s'; exit 0", ok_file);
    struct reg_check_def *ok = script_def("slow-pass", cmd);
    ok->success_before_passing = 2;
    reg_checks_start(f->checks, ok);
    snprintf(cmd, sizeof(cmd), "echo x >> '%s'; exit 2", bad_file);
    struct reg_check_def *bad = script_def("slow-fail", cmd);
    bad->failures_before_warning = 1;
    bad->failures_before_critical = 2;
    reg_checks_start(f->checks, bad);

    /* The status changes in the loop turn that delivers the deciding result. */
    assert_true(run_until(f, "slow-fail", REG_WARNING, 3000));
    assert_int_equal(count_lines(bad_file), 1);
    assert_true(run_until(f, "slow-pass", REG_PASSING, 4000));
    assert_int_equal(count_lines(ok_file), 2);
    assert_true(run_until(f, "slow-fail", REG_CRITICAL, 3000));
    assert_int_equal(count_lines(bad_file), 2);
}

static void test_deregister_critical(void **state)
{
    struct fixture *f = *state;
    char addr[64];

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", closed_port(f));
    add_check(f, "svc-tcp", "web", REG_CRITICAL);
    struct reg_check_def *d = new_def(REG_CHECK_TCP, "svc-tcp");
    free(d->service_id);
    d->service_id = xstrdup("web");
    d->tcp = xstrdup(addr);
    d->deregister_critical_after = DURATION_SEC;
    reg_checks_start(f->checks, d);

    for (int i = 0; i < 40 && f->reaped == 0; i++)
        run_for(f, 100);
    assert_int_equal(f->reaped, 1);
    assert_string_equal(f->reaped_id, "web");
    run_for(f, 1200);
    assert_int_equal(f->reaped, 1);
}

static void test_stop_in_flight(void **state)
{
    struct fixture *f = *state;
    char url[128], cmd[400], started[300];

    snprintf(started, sizeof(started), "%s.2", f->tmp);
    unlink(started);
    f->hang = true;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", f->port);
    for (int i = 0; i < 2; i++) {
        const char *id = i ? "hang2" : "hang1";
        add_check(f, id, "", REG_WARNING);
        struct reg_check_def *d = new_def(REG_CHECK_HTTP, id);
        d->http = xstrdup(url);
        reg_checks_start(f->checks, d);
    }
    add_check(f, "sleepy", "", REG_WARNING);
    snprintf(cmd, sizeof(cmd), "echo x > '%s'; exec sleep 10", started);
    reg_checks_start(f->checks, script_def("sleepy", cmd));
    add_check(f, "tcp-stop", "", REG_WARNING);
    struct reg_check_def *t = new_def(REG_CHECK_TCP, "tcp-stop");
    t->tcp = xasprintf("127.0.0.1:%d", f->port);
    reg_checks_start(f->checks, t);

    for (int i = 0; i < 30 && (f->requests < 2 || count_lines(started) < 1); i++)
        run_for(f, 100);
    assert_int_equal(f->requests, 2);
    assert_int_equal(count_lines(started), 1);
    reg_checks_stop(f->checks, "hang1");
    reg_checks_stop(f->checks, "sleepy");
    reg_checks_stop(f->checks, "tcp-stop");
    reg_checks_stop(f->checks, "not-running");
    /* A replaced runner is stopped as well. */
    struct reg_check_def *again = new_def(REG_CHECK_HTTP, "hang2");
    again->http = xstrdup(url);
    reg_checks_start(f->checks, again);
    run_for(f, 100);
    assert_true(check_is(f, "hang1", REG_WARNING));
    assert_true(check_is(f, "sleepy", REG_WARNING));
    assert_string_equal(output_of(f, "sleepy"), "");
    /* The teardown frees the set with hang2's replacement still scheduled or in flight. */
}

static void test_removed_check_is_ignored(void **state)
{
    struct fixture *f = *state;

    add_check(f, "gone", "", REG_CRITICAL);
    reg_checks_start(f->checks, script_def("gone", "exit 0"));
    reg_check_delete(&f->st, reg_node_get(&f->st, "n1"), "gone");
    run_for(f, 1300);
    assert_null(get_check(f, "gone"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_status_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_redirects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expires_without_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script, setup, teardown),
        cmocka_unit_test_setup_teardown(test_thresholds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deregister_critical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_check_is_ignored, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
