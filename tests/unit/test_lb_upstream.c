/*
 * The upstream keep-alive pool (lb/upstream.c) on one loop against a loopback listener that
 * accepts and holds connections: connections are lent, given back, reused and timed out, and
 * the pool keeps an entry (and a server reference) only while a server has idle connections,
 * so servers that come and go do not pile up in a long-running worker.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lb/upstream.h"

struct fixture {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_tcp_t accepted[256];
    int naccepted;
    int port;
    struct lb_pool pool;
    int connects_done;
    char rbuf[64];
    size_t nread; /* bytes the owner got */
    bool owner_eof;
};

static void on_conn(uv_stream_t *l, int status)
{
    struct fixture *fx = l->data;
    assert_int_equal(status, 0);
    assert_true(fx->naccepted < 256);
    uv_tcp_t *c = &fx->accepted[fx->naccepted++];
    uv_tcp_init(&fx->loop, c);
    assert_int_equal(uv_accept(l, (uv_stream_t *)c), 0);
}

static void owner_read(struct lb_upconn *u)
{
    struct fixture *fx = u->owner;
    ssize_t nread = pollsock_recv(&u->sock, fx->rbuf + fx->nread, sizeof(fx->rbuf) - fx->nread);
    if (nread == UV_EAGAIN)
        return;
    if (nread < 0)
        fx->owner_eof = true;
    else
        fx->nread += (size_t)nread;
}

static void owner_timeout(struct lb_upconn *u)
{
    (void)u;
    fail_msg("no test sets a lent connection's timeout");
}

static void owner_connected(struct lb_upconn *u, int status)
{
    struct fixture *fx = u->owner;
    assert_int_equal(status, 0);
    assert_true(u->connected);
    fx->connects_done++;
}

static const struct lb_upconn_ops owner_ops = {owner_read, owner_timeout, owner_connected};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct sockaddr_in sa;
    int len = sizeof(sa);

    uv_loop_init(&fx->loop);
    uv_tcp_init(&fx->loop, &fx->listener);
    fx->listener.data = fx;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    assert_int_equal(uv_tcp_bind(&fx->listener, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&fx->listener, 256, on_conn), 0);
    uv_tcp_getsockname(&fx->listener, (struct sockaddr *)&sa, &len);
    fx->port = ntohs(sa.sin_port);
    lb_pool_init(&fx->pool, &fx->loop, 20, &owner_ops);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    lb_pool_close(&fx->pool);
    uv_close((uv_handle_t *)&fx->listener, NULL);
    for (int i = 0; i < fx->naccepted; i++)
        uv_close((uv_handle_t *)&fx->accepted[i], NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    return 0;
}

/* Runs the loop until cond holds, for at most ~5 s of loop turns. */
#define RUN_UNTIL(fx, cond)                                                                        \
    do {                                                                                           \
        for (int turn_ = 0; !(cond) && turn_ < 5000; turn_++) {                                    \
            uv_run(&(fx)->loop, UV_RUN_NOWAIT);                                                    \
            if (!(cond))                                                                           \
                uv_sleep(1);                                                                       \
        }                                                                                          \
        assert_true(cond);                                                                         \
    } while (0)

static struct lb_upconn *connect_to(struct fixture *fx, struct lb_server *srv)
{
    int rc, before = fx->connects_done;
    struct lb_upconn *u = lb_pool_connect(&fx->pool, srv, fx, &rc);
    assert_non_null(u);
    RUN_UNTIL(fx, fx->connects_done == before + 1);
    return u;
}

static int refs(struct lb_server *s)
{
    return atomic_load(&s->refs);
}

static void test_idle_connection_is_reused_and_its_entry_dropped(void **state)
{
    struct fixture *fx = *state;
    struct lb_server *a = lb_server_new("a", "a", "127.0.0.1", fx->port, 1);

    struct lb_upconn *u = connect_to(fx, a);
    assert_int_equal(refs(a), 2); /* ours and the connection's */
    lb_pool_put(u);
    assert_non_null(fx->pool.servers);
    assert_int_equal(refs(a), 3); /* + the pool's entry */

    struct lb_upconn *again = lb_pool_get(&fx->pool, a, fx);
    assert_ptr_equal(again, u);
    assert_true(again->reused);
    assert_null(fx->pool.servers); /* no idle connection left: no entry */
    assert_int_equal(refs(a), 2);
    assert_null(lb_pool_get(&fx->pool, a, fx));

    lb_upconn_close(again);
    RUN_UNTIL(fx, refs(a) == 1);
    lb_server_unref(a);
}

static void test_servers_that_come_and_go_do_not_pile_up(void **state)
{
    struct fixture *fx = *state;
    enum { N = 50 };
    struct lb_server *gone[N];

    /* Each "instance" serves once, its connection goes idle, then the instance leaves the
     * registry (the worker drops its own reference) and the idle timeout closes it. */
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof(id), "web-%d", i);
        gone[i] = lb_server_new(id, id, "127.0.0.1", fx->port, 1);
        lb_pool_put(connect_to(fx, gone[i]));
    }
    /* (no count of the pooled connections here: on a busy machine the first ones may already
     * have reached their 20 ms idle timeout while the last ones connect) */
    RUN_UNTIL(fx, fx->pool.nconns == 0); /* idle timeout: 20 ms */
    RUN_UNTIL(fx, refs(gone[N - 1]) == 1);
    assert_null(fx->pool.servers);
    for (int i = 0; i < N; i++) {
        assert_int_equal(refs(gone[i]), 1); /* only ours: the pool let go */
        lb_server_unref(gone[i]);
    }
}

static void test_close_idle_drops_every_entry(void **state)
{
    struct fixture *fx = *state;
    struct lb_server *a = lb_server_new("a", "a", "127.0.0.1", fx->port, 1);
    struct lb_server *b = lb_server_new("b", "b", "127.0.0.1", fx->port, 1);

    lb_pool_put(connect_to(fx, a));
    lb_pool_put(connect_to(fx, a));
    lb_pool_put(connect_to(fx, b));
    assert_int_equal(fx->pool.servers->nidle + fx->pool.servers->next->nidle, 3);
    lb_pool_close_idle(&fx->pool);
    assert_null(fx->pool.servers);
    assert_int_equal(fx->pool.nconns, 0);
    RUN_UNTIL(fx, refs(a) == 1 && refs(b) == 1);
    lb_server_unref(a);
    lb_server_unref(b);
}

/* The server says something on the accepted side of connection i. */
static void server_says(struct fixture *fx, int i, const char *text)
{
    uv_buf_t b = uv_buf_init((char *)text, (unsigned)strlen(text));
    assert_int_equal(uv_try_write((uv_stream_t *)&fx->accepted[i], &b, 1), (int)strlen(text));
}

/*
 * A connection reads from its first lending on, for its owner while lent and for the pool
 * while idle: lending it again needs no new read start, and a server closing an idle one
 * takes it out of the pool at once.
 */
static void test_reads_reach_the_owner_and_an_idle_close_drops_the_connection(void **state)
{
    struct fixture *fx = *state;
    struct lb_server *a = lb_server_new("a", "a", "127.0.0.1", fx->port, 1);

    struct lb_upconn *u = connect_to(fx, a);
    lb_upconn_read(u, true);
    RUN_UNTIL(fx, fx->naccepted == 1);
    server_says(fx, 0, "one");
    RUN_UNTIL(fx, fx->nread == 3);
    lb_pool_put(u);
    assert_true(u->sock.reading);

    assert_ptr_equal(lb_pool_get(&fx->pool, a, fx), u);
    assert_true(u->sock.reading); /* the owner's reads go on without a new start */
    server_says(fx, 0, "two");
    RUN_UNTIL(fx, fx->nread == 6);
    assert_memory_equal(fx->rbuf, "onetwo", 6);

    lb_upconn_read(u, false); /* paused: bytes wait in the socket */
    server_says(fx, 0, "3");
    for (int i = 0; i < 20; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->nread, 6);
    lb_upconn_read(u, true);
    RUN_UNTIL(fx, fx->nread == 7);

    lb_pool_put(u);
    uv_close((uv_handle_t *)&fx->accepted[0], NULL); /* the server ends the idle connection */
    RUN_UNTIL(fx, fx->pool.nconns == 0);
    assert_null(fx->pool.servers);
    assert_false(fx->owner_eof); /* nobody owned it */
    fx->naccepted = 0;           /* closed already */
    RUN_UNTIL(fx, refs(a) == 1);
    lb_server_unref(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_idle_connection_is_reused_and_its_entry_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_servers_that_come_and_go_do_not_pile_up, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_idle_drops_every_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_reads_reach_the_owner_and_an_idle_close_drops_the_connection, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
