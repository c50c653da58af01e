/*
 * The registry watch against a fake registry (an http_server on the same loop that answers
 * /v1/health/service/web with a scripted body and X-Consul-Index): merging with static
 * servers, server identity across answers, publishing only on change, outages, index resets.
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

#include <cmocka.h>

#include "lb/config.h"
#include "lb/lb.h"
#include "lb/watch.h"
#include "lib/alloc.h"
#include "lib/http_server.h"

#define WAIT_MS 5000

struct fixture {
    uv_loop_t loop;
    uv_timer_t tick;
    struct http_server srv;
    bool srv_open;
    int port;
    char addr[64];
    const char *body;
    int index;
    int requests;
    char target[512];
    char token[64];
    int publishes;
    struct lb_backend b;
    struct lb_config cfg;
    struct lb_watch *w;
};

static void on_registry(struct http_request *req, void *data)
{
    struct fixture *fx = data;
    const struct http_header *tok = http_request_header(req, "X-Consul-Token");

    fx->requests++;
    snprintf(fx->target, sizeof(fx->target), "%.*s", (int)req->target.n, req->target.p);
    snprintf(fx->token, sizeof(fx->token), "%.*s", tok ? (int)tok->value.n : 0,
             tok ? tok->value.p : "");
    http_response_header(req, "X-Consul-Index", "%d", fx->index);
    http_respond(req, 200, "application/json", fx->body, strlen(fx->body));
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static void on_publish(void *data)
{
    ((struct fixture *)data)->publishes++;
}

#define RUN_UNTIL(fx, cond)                                                                        \
    ({                                                                                             \
        uint64_t deadline_ = uv_now(&(fx)->loop) + WAIT_MS;                                        \
        while (!(cond) && uv_now(&(fx)->loop) < deadline_)                                         \
            uv_run(&(fx)->loop, UV_RUN_ONCE);                                                      \
        (cond);                                                                                    \
    })

static void registry_listen(struct fixture *fx)
{
    struct err e;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    http_server_init(&fx->srv, &fx->loop, NULL, on_registry, fx);
    assert_int_equal(http_server_listen(&fx->srv, "127.0.0.1", fx->port, &e), 0);
    assert_int_equal(uv_tcp_getsockname(&fx->srv.listener, (struct sockaddr *)&ss, &len), 0);
    fx->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    fx->srv_open = true;
}

static const char two[] =
    "[{\"Node\":{\"Node\":\"web1\",\"Address\":\"127.0.0.1\"},"
    "\"Service\":{\"ID\":\"web-a\",\"Service\":\"web\",\"Address\":\"\",\"Port\":3001,"
    "\"Weights\":{\"Passing\":3,\"Warning\":1}}},"
    "{\"Node\":{\"Node\":\"web2\",\"Address\":\"10.0.0.9\"},"
    "\"Service\":{\"ID\":\"web-b\",\"Service\":\"web\",\"Address\":\"127.0.0.2\",\"Port\":3002}}]";
static const char one_changed[] =
    "[{\"Node\":{\"Node\":\"web1\",\"Address\":\"127.0.0.1\"},"
    "\"Service\":{\"ID\":\"web-a\",\"Service\":\"web\",\"Port\":3001,"
    "\"Weights\":{\"Passing\":7}}},"
    "{\"Node\":{\"Node\":\"web3\",\"Address\":\"127.0.0.3\"},"
    "\"Service\":{\"ID\":\"web-c\",\"Service\":\"web\",\"Port\":3003}}]";

static int setup(void **state)
{
    struct fixture *fx = xcalloc(1, sizeof(*fx));

    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->tick);
    uv_timer_start(&fx->tick, on_tick, 5, 5);
    fx->body = two;
    fx->index = 10;
    registry_listen(fx);
    snprintf(fx->addr, sizeof(fx->addr), "127.0.0.1:%d", fx->port);
    fx->b.name = "web";
    pthread_mutex_init(&fx->b.lock, NULL);
    fx->cfg.service = "web";
    fx->cfg.registry_addr = fx->addr;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    lb_watch_free(fx->w);
    lb_backend_publish(&fx->b, NULL);
    if (fx->srv_open)
        http_server_close(&fx->srv, NULL);
    uv_close((uv_handle_t *)&fx->tick, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    pthread_mutex_destroy(&fx->b.lock);
    free(fx);
    return 0;
}

static struct lb_server *find(struct lb_server_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->v[i]->name, name) == 0)
            return set->v[i];
    return NULL;
}

static size_t current_n(struct fixture *fx)
{
    struct lb_server_set *set = lb_backend_acquire(&fx->b);
    size_t n = set ? set->n : 0;
    lb_server_set_unref(set);
    return n;
}

static void test_registry_and_static_servers(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    char *statics[] = {"127.0.0.1:3000,2"};

    fx->cfg.servers = (struct flag_list){statics, 1};
    fx->cfg.service_tag = "v1";
    fx->cfg.registry_token = "s3cret";
    assert_int_equal(lb_watch_start(&fx->w, &fx->loop, &fx->cfg, &fx->b, on_publish, fx, &e), 0);
    assert_int_equal(current_n(fx), 1); /* the static server at once */
    assert_true(RUN_UNTIL(fx, current_n(fx) == 3));
    assert_string_equal(fx->target, "/v1/health/service/web?passing&tag=v1&index=0&wait=5m");
    assert_string_equal(fx->token, "s3cret");

    struct lb_server_set *set = lb_backend_acquire(&fx->b);
    struct lb_server *srv1 = find(set, "srv1");
    struct lb_server *a = find(set, "web1_3001");
    struct lb_server *b = find(set, "web2_3002");
    assert_non_null(srv1);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(srv1->id, "127.0.0.1:3000");
    assert_int_equal(atomic_load(&srv1->weight), 2);
    assert_string_equal(a->id, "web-a");
    assert_string_equal(a->host, "127.0.0.1"); /* Node.Address when Service.Address is empty */
    assert_int_equal(atomic_load(&a->weight), 3);
    assert_string_equal(b->host, "127.0.0.2");
    assert_int_equal(atomic_load(&b->weight), 1);
    lb_server_set_unref(set);

    /* the next query blocks on the index it was given */
    assert_true(RUN_UNTIL(fx, fx->requests >= 2));
    assert_string_equal(fx->target, "/v1/health/service/web?passing&tag=v1&index=10&wait=5m");
}

static void test_identity_and_publish_on_change(void **state)
{
    struct fixture *fx = *state;
    struct err e;

    assert_int_equal(lb_watch_start(&fx->w, &fx->loop, &fx->cfg, &fx->b, on_publish, fx, &e), 0);
    assert_true(RUN_UNTIL(fx, current_n(fx) == 2));
    struct lb_server_set *first = lb_backend_acquire(&fx->b);
    struct lb_server *a = find(first, "web1_3001");
    int publishes = fx->publishes;

    /* the same answer again and again: no new set */
    int req = fx->requests;
    assert_true(RUN_UNTIL(fx, fx->requests >= req + 3));
    assert_int_equal(fx->publishes, publishes);
    assert_int_equal(atomic_load(&fx->b.generation), first->generation);

    /* one instance goes, one comes, one changes weight: same object for web-a */
    lb_shard_add(&lb_shard_of(&a->c, 0)->req_tot, 42);
    fx->body = one_changed;
    fx->index = 11;
    assert_true(RUN_UNTIL(fx, fx->publishes == publishes + 1));
    struct lb_server_set *second = lb_backend_acquire(&fx->b);
    assert_int_equal(second->n, 2);
    assert_ptr_equal(find(second, "web1_3001"), a);
    assert_int_equal(lb_read(&lb_shard_of(&a->c, 0)->req_tot), 42);
    assert_int_equal(atomic_load(&a->weight), 7);
    assert_null(find(second, "web2_3002"));
    assert_non_null(find(second, "web3_3003"));
    lb_server_set_unref(second);
    lb_server_set_unref(first);
}

static void test_outage_keeps_last_set(void **state)
{
    struct fixture *fx = *state;
    struct err e;

    assert_int_equal(lb_watch_start(&fx->w, &fx->loop, &fx->cfg, &fx->b, on_publish, fx, &e), 0);
    assert_true(RUN_UNTIL(fx, current_n(fx) == 2));
    assert_int_equal(atomic_load(&fx->b.registry_ok), 1);
    http_server_close(&fx->srv, NULL);
    fx->srv_open = false;
    assert_true(RUN_UNTIL(fx, atomic_load(&fx->b.registry_ok) == 0));
    assert_int_equal(current_n(fx), 2);

    /* back on the same port: the watch finds it after its backoff */
    registry_listen(fx);
    assert_true(RUN_UNTIL(fx, atomic_load(&fx->b.registry_ok) == 1));
    assert_int_equal(current_n(fx), 2);
}

static void test_lower_index_resets(void **state)
{
    struct fixture *fx = *state;
    struct err e;

    fx->index = 50;
    assert_int_equal(lb_watch_start(&fx->w, &fx->loop, &fx->cfg, &fx->b, on_publish, fx, &e), 0);
    assert_true(RUN_UNTIL(fx, strstr(fx->target, "index=50&") != NULL));
    fx->index = 5; /* the registry restarted with a fresh history */
    int req = fx->requests;
    assert_true(RUN_UNTIL(fx, fx->requests >= req + 2));
    /* 50 -> answer 5 -> refetch from 0 -> answer 5 -> block on 5 */
    assert_true(RUN_UNTIL(fx, strstr(fx->target, "index=5&") != NULL));
}

static void test_bad_static_server(void **state)
{
    struct fixture *fx = *state;
    struct err e;
    char *statics[] = {"web1:3000"};

    fx->cfg.service = NULL;
    fx->cfg.servers = (struct flag_list){statics, 1};
    assert_int_equal(lb_watch_start(&fx->w, &fx->loop, &fx->cfg, &fx->b, on_publish, fx, &e),
                     -EINVAL);
    fx->w = NULL;
    assert_string_equal(e.msg, "server \"web1:3000\": expected IP:PORT[,WEIGHT]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_registry_and_static_servers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identity_and_publish_on_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage_keeps_last_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lower_index_resets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_static_server, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
