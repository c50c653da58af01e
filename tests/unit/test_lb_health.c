/*
 * Active health checks against an in-process http_server on a real loop: DOWN after `fall`
 * failures, UP after `rise` passes, admin states kept, HAProxy's check_status texts, and the
 * checks following the backend's set. Every wait is bounded by a deadline.
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "lb/config.h"
#include "lb/health.h"
#include "lb/lb.h"
#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/http_server.h"

#define WAIT_MS 5000

struct fixture {
    uv_loop_t loop;
    uv_timer_t tick;
    struct http_server srv;
    int port;
    int status; /* answer of the check handler; 0 = never answer */
    int requests;
    struct lb_backend b;
    struct lb_config cfg;
    struct lb_server *s;
    struct lb_health *h;
    /* a raw server that answers garbage */
    uv_tcp_t raw;
    int raw_port;
};

static void on_check(struct http_request *req, void *data)
{
    struct fixture *fx = data;

    fx->requests++;
    if (fx->status)
        http_respond_text(req, fx->status, "ok\n");
}

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes uv_run so conditions are re-tested */
}

static int bound_port(uv_tcp_t *tcp)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    assert_int_equal(uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void config_init(struct lb_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->check = true;
    cfg->check_path = "/health";
    cfg->check_inter_ns = 20 * DURATION_MS;
    cfg->check_timeout_ns = 300 * DURATION_MS;
    cfg->check_rise = 2;
    cfg->check_fall = 3;
    cfg->eject_for_ns = 50 * DURATION_MS;
}

static void publish(struct fixture *fx, struct lb_server **v, size_t n)
{
    lb_backend_publish(&fx->b, lb_server_set_new(v, n));
    if (fx->h)
        lb_health_sync(fx->h);
}

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));
    struct err e;
    char id[64];

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, on_tick, 5, 5);
    http_server_init(&fx->srv, &fx->loop, NULL, on_check, fx);
    assert_int_equal(http_server_listen(&fx->srv, "127.0.0.1", 0, &e), 0);
    fx->port = bound_port(&fx->srv.listener);
    fx->status = 200;
    fx->b.name = "web";
    pthread_mutex_init(&fx->b.lock, NULL);
    config_init(&fx->cfg);
    snprintf(id, sizeof(id), "127.0.0.1:%d", fx->port);
    fx->s = lb_server_new(id, "srv1", "127.0.0.1", fx->port, 1);
    assert_non_null(fx->s);
    publish(fx, &fx->s, 1);
    *state = fx;
    return 0;
}

static void on_raw_closed(uv_handle_t *h)
{
    free(h);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    lb_health_free(fx->h);
    fx->h = NULL;
    lb_backend_publish(&fx->b, NULL);
    http_server_close(&fx->srv, NULL);
    if (fx->raw_port)
        uv_close((uv_handle_t *)&fx->raw, NULL);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    /* the health checks dropped their references: ours is the last one */
    assert_int_equal(atomic_load(&fx->s->refs), 1);
    lb_server_unref(fx->s);
    pthread_mutex_destroy(&fx->b.lock);
    free(fx);
    return 0;
}

/* Runs the loop until cond holds or WAIT_MS pass; returns cond's final value. */
#define RUN_UNTIL(fx, cond)                                                                        \
    ({                                                                                             \
        uint64_t deadline_ = uv_now(&(fx)->loop) + WAIT_MS;                                        \
        while (!(cond) && uv_now(&(fx)->loop) < deadline_)                                         \
            uv_run(&(fx)->loop, UV_RUN_ONCE);                                                      \
        (cond);                                                                                    \
    })

static void test_down_after_fall_up_after_rise(void **state)
{
    struct fixture *fx = *state;
    struct lb_server *s = fx->s;

    fx->h = lb_health_new(&fx->loop, &fx->cfg, &fx->b);
    assert_true(RUN_UNTIL(fx, strcmp(s->check_status, "L7OK") == 0));
    assert_int_equal(s->check_code, 200);
    assert_int_equal(atomic_load(&s->state), LB_SRV_UP);

    fx->status = 500;
    assert_true(RUN_UNTIL(fx, lb_read(&s->chkfail) == 2));
    assert_int_equal(atomic_load(&s->state), LB_SRV_UP); /* fall is 3 */
    assert_string_equal(s->check_status, "L7STS");
    assert_int_equal(s->check_code, 500);
    assert_true(RUN_UNTIL(fx, lb_read(&s->chkfail) == 3));
    assert_int_equal(atomic_load(&s->state), LB_SRV_DOWN);
    assert_int_equal(s->check_fall, 3);
    assert_int_equal(lb_read(&s->chkdown), 1);

    fx->status = 302; /* 3xx passes */
    assert_true(RUN_UNTIL(fx, s->check_rise == 1));
    assert_int_equal(atomic_load(&s->state), LB_SRV_DOWN); /* rise is 2 */
    assert_string_equal(s->check_status, "L7OK");
    assert_true(RUN_UNTIL(fx, atomic_load(&s->state) == LB_SRV_UP));
    assert_int_equal(s->check_rise, 2);
    assert_int_equal(s->check_fall, 0);
    assert_int_equal(lb_read(&s->chkdown), 1);
}

static void test_ejected_server_comes_back_after_rise(void **state)
{
    struct fixture *fx = *state;
    struct lb_server *s = fx->s;

    fx->h = lb_health_new(&fx->loop, &fx->cfg, &fx->b);
    assert_true(RUN_UNTIL(fx, s->check_rise >= 3));
    lb_server_set_state(s, LB_SRV_DOWN); /* what a worker does on passive ejection */
    int before = fx->requests;
    assert_true(RUN_UNTIL(fx, atomic_load(&s->state) == LB_SRV_UP));
    /* it had to earn two fresh passes: the earlier ones do not count */
    assert_true(fx->requests - before >= 2);
    assert_int_equal(s->check_rise, 2);
}

static void test_admin_states_kept(void **state)
{
    struct fixture *fx = *state;
    struct lb_server *s = fx->s;

    lb_server_set_state(s, LB_SRV_DRAIN);
    fx->status = 503;
    fx->h = lb_health_new(&fx->loop, &fx->cfg, &fx->b);
    assert_true(RUN_UNTIL(fx, lb_read(&s->chkfail) >= 4));
    assert_int_equal(atomic_load(&s->state), LB_SRV_DRAIN);
    assert_int_equal(lb_read(&s->chkdown), 0);
    assert_string_equal(s->check_status, "L7STS");

    lb_server_set_state(s, LB_SRV_MAINT);
    fx->status = 200;
    assert_true(RUN_UNTIL(fx, s->check_rise >= 3));
    assert_int_equal(atomic_load(&s->state), LB_SRV_MAINT);
}

static void test_timeout_is_l7tout(void **state)
{
    struct fixture *fx = *state;

    fx->status = 0;
    fx->cfg.check_timeout_ns = 50 * DURATION_MS;
    fx->h = lb_health_new(&fx->loop, &fx->cfg, &fx->b);
    assert_true(RUN_UNTIL(fx, lb_read(&fx->s->chkfail) >= 1));
    assert_string_equal(fx->s->check_status, "L7TOUT");
    assert_true(fx->s->check_duration_ms >= 40);
}

static void test_refused_is_l4con(void **state)
{
    struct fixture *fx = *state;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    /* a port nothing listens on */
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    struct lb_server *dead = lb_server_new("dead", "srv2", "127.0.0.1", ntohs(sin.sin_port), 1);
    struct lb_server *both[] = {fx->s, dead};
    publish(fx, both, 2);
    fx->h = lb_health_new(&fx->loop, &fx->cfg, &fx->b);
    assert_true(RUN_UNTIL(fx, atomic_load(&dead->state) == LB_SRV_DOWN));
    assert_string_equal(dead->check_status, "L4CON");
    assert_int_equal(dead->check_code, 0);
    assert_int_equal(atomic_load(&fx->s->state), LB_SRV_UP);

    /* dropped from the set: its checks stop and release it */
    publish(fx, &fx->s, 1);
    assert_true(RUN_UNTIL(fx, atomic_load(&dead->refs) == 1));
    uint64_t fails = lb_read(&dead->chkfail);
    int before = fx->requests;
    assert_true(RUN_UNTIL(fx, fx->requests >= before + 3));
    assert_int_equal(lb_read(&dead->chkfail), fails);
    lb_server_unref(dead);
}

static void on_raw_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, on_raw_closed);
    free(w);
}

static void on_raw_connection(uv_stream_t *server, int status)
{
    static char garbage[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
    uv_tcp_t *c = xcalloc(1, sizeof(*c));
    uv_write_t *w = xcalloc(1, sizeof(*w));
    uv_buf_t b = uv_buf_init(garbage, sizeof(garbage) - 1);

    assert_int_equal(status, 0);
    uv_tcp_init(server->loop, c);
    assert_int_equal(uv_accept(server, (uv_stream_t *)c), 0);
    uv_write(w, (uv_stream_t *)c, &b, 1, on_raw_written);
}

static void test_garbage_is_l7rsp(void **state)
{
    struct fixture *fx = *state;
    struct sockaddr_in sin;

    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_tcp_init(&fx->loop, &fx->raw);
    assert_int_equal(uv_tcp_bind(&fx->raw, (struct sockaddr *)&sin, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx->raw, 16, on_raw_connection), 0);
    fx->raw_port = bound_port(&fx->raw);
    struct lb_server *odd = lb_server_new("odd", "srv3", "127.0.0.1", fx->raw_port, 1);
    publish(fx, &odd, 1);
    fx->h = lb_health_new(&fx->loop, &fx->cfg, &fx->b);
    assert_true(RUN_UNTIL(fx, lb_read(&odd->chkfail) >= 1));
    assert_string_equal(odd->check_status, "L7RSP");
    lb_server_unref(odd);
}

static void test_checks_off_ejection_expires(void **state)
{
    struct fixture *fx = *state;
    struct lb_server *s = fx->s;

    fx->cfg.check = false;
    fx->h = lb_health_new(&fx->loop, &fx->cfg, &fx->b);
    lb_server_set_state(s, LB_SRV_DOWN);
    uint64_t t0 = uv_now(&fx->loop);
    assert_true(RUN_UNTIL(fx, atomic_load(&s->state) == LB_SRV_UP));
    assert_true(uv_now(&fx->loop) - t0 >= 40);
    assert_int_equal(fx->requests, 0); /* no active checks were sent */
    assert_string_equal(s->check_status, "INI");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_down_after_fall_up_after_rise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ejected_server_comes_back_after_rise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_states_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_is_l7tout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_is_l4con, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_is_l7rsp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checks_off_ejection_expires, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
