/*
 * Blocking queries end to end on one loop: a real HTTP server whose handler is reg_api_handle on
 * the API context of a minimal agent (state, watch set, datacenter), and the project's HTTP
 * client parking GETs
 * on /v1/kv with ?index and ?wait.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "registry/agent/agent_internal.h"
#include "registry/api/api.h"
#include "registry/api/watch.h"

struct answer {
    bool done;
    int status; /* HTTP status, or the negative UV error */
    uint64_t index;
    char body[256];
    uint64_t at_ms; /* uv_now when answered */
    int *counter;   /* incremented on completion when set */
    uv_loop_t *loop;
};

struct fixture {
    uv_loop_t loop;
    struct reg_agent *a;
    struct http_client *client;
    int port;
};

static bool server_closed;

static void on_server_closed(struct http_server *srv)
{
    server_closed = true;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct reg_agent *a = xcalloc(1, sizeof(*a));
    struct err e;
    struct sockaddr_storage ss;
    int len = sizeof(ss);

    assert_int_equal(uv_loop_init(&f->loop), 0);
    a->loop = &f->loop;
    a->cfg.datacenter = xstrdup("dc1");
    a->cfg.node_name = xstrdup("node1");
    a->cfg.server = true; /* a server answers from its own state; a client would forward */
    reg_state_init(&a->state);
    reg_watch_set_init(&a->watches, &f->loop);
    a->state.on_change = reg_watch_on_change;
    a->state.change_data = &a->watches;
    reg_agent_api_init(a); /* the agent's real ops, over the parts set up above */
    http_server_init(&a->http, &f->loop, NULL, reg_api_handle, &a->api);
    assert_int_equal(http_server_listen(&a->http, "127.0.0.1", 0, &e), 0);
    assert_int_equal(uv_tcp_getsockname(&a->http.listener, (struct sockaddr *)&ss, &len), 0);
    f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    f->a = a;
    f->client = http_client_new(&f->loop);
    server_closed = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct reg_agent *a = f->a;

    http_client_free(f->client);
    reg_watch_set_close(&a->watches);
    http_server_close(&a->http, on_server_closed);
    while (!server_closed)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    reg_state_free(&a->state);
    free(a->cfg.datacenter);
    free(a->cfg.node_name);
    free(a);
    free(f);
    return 0;
}

/* ---- client helpers -------------------------------------------------------------------------- */

static void on_response(int status, const struct http_client_response *res, void *data)
{
    struct answer *ans = data;
    size_t len;

    ans->done = true;
    ans->at_ms = uv_now(ans->loop);
    if (ans->counter)
        (*ans->counter)++;
    if (status < 0) {
        ans->status = status;
        return;
    }
    ans->status = res->status;
    const char *idx = http_client_header(res, "X-Consul-Index", &len);
    ans->index = idx ? strtoull(idx, NULL, 10) : 0;
    snprintf(ans->body, sizeof(ans->body), "%.*s", (int)res->body_len, res->body);
}

static struct http_call *get(struct fixture *f, const char *target, struct answer *ans)
{
    struct http_client_request req = {
        .host = "127.0.0.1", .port = f->port, .target = target, .timeout_ms = 20000};

    memset(ans, 0, sizeof(*ans));
    ans->loop = &f->loop;
    return http_client_send(f->client, &req, on_response, ans);
}

struct guard {
    uv_timer_t timer;
    uint64_t deadline;
    bool expired;
};

static void on_guard(uv_timer_t *t)
{
    struct guard *g = t->data;
    if (uv_now(t->loop) >= g->deadline)
        g->expired = true;
}

/*
 * A repeating 5 ms tick: UV_RUN_ONCE blocks in poll until the next timer even after running
 * one, so a one-shot guard could let a single iteration sleep until some far timer.
 */
static void guard_start(struct fixture *f, struct guard *g, uint64_t ms)
{
    uv_update_time(&f->loop);
    g->deadline = uv_now(&f->loop) + ms;
    g->expired = false;
    uv_timer_init(&f->loop, &g->timer);
    g->timer.data = g;
    uv_timer_start(&g->timer, on_guard, 5, 5);
}

static void guard_stop(struct fixture *f, struct guard *g)
{
    uv_close((uv_handle_t *)&g->timer, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* Runs the loop until *flag (a bool) is set or ms pass; returns *flag. */
static bool run_until(struct fixture *f, const bool *flag, uint64_t ms)
{
    struct guard g;

    guard_start(f, &g, ms);
    while (!*flag && !g.expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    guard_stop(f, &g);
    return *flag;
}

/* Runs the loop until n watches are parked (or 5 s). */
static void run_until_parked(struct fixture *f, size_t n)
{
    struct guard g;

    guard_start(f, &g, 5000);
    while (f->a->watches.count != n && !g.expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    guard_stop(f, &g);
    assert_int_equal(f->a->watches.count, n);
}

/* Runs the loop for ms. */
static void run_for(struct fixture *f, uint64_t ms)
{
    bool never = false;
    run_until(f, &never, ms);
}

static uint64_t put(struct fixture *f, const char *key, const char *value)
{
    return reg_kv_set(&f->a->state, key, value, strlen(value), 0, NULL);
}

/* ---- tests ----------------------------------------------------------------------------------- */

static void test_watch_hash(void **state)
{
    /* FNV-1a 64 test vectors. */
    assert_true(reg_watch_hash("", 0) == 0xcbf29ce484222325ull);
    assert_true(reg_watch_hash("a", 1) == 0xaf63dc4c8601ec8cull);
    assert_true(reg_watch_hash("foobar", 6) == 0x85944171f73967e8ull);
}

static void test_no_index_answers_at_once(void **state)
{
    struct fixture *f = *state;
    struct answer ans;
    uint64_t w = put(f, "k", "v1");

    get(f, "/v1/kv/k", &ans);
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 200);
    assert_int_equal(ans.index, w);
    assert_non_null(strstr(ans.body, "\"Value\":\"djE=\""));

    /* An index below the current one answers at once too. */
    char target[128];
    snprintf(target, sizeof(target), "/v1/kv/k?index=%llu&wait=5s", (unsigned long long)(w - 1));
    get(f, target, &ans);
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 200);
    assert_int_equal(ans.index, w);
    assert_int_equal(f->a->watches.count, 0);
}

static void test_write_answers_parked_query(void **state)
{
    struct fixture *f = *state;
    struct answer ans;
    char target[128];
    uint64_t w = put(f, "k", "v1");

    snprintf(target, sizeof(target), "/v1/kv/k?index=%llu&wait=5s", (unsigned long long)w);
    get(f, target, &ans);
    run_until_parked(f, 1);
    assert_false(ans.done);

    uint64_t start = uv_now(&f->loop);
    uint64_t w2 = put(f, "k", "v2");
    /* The next loop iteration re-runs the parked query before polling and answers it. */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->a->watches.count, 0);
    assert_true(run_until(f, &ans.done, 2000));
    assert_true(ans.at_ms - start < 500);
    assert_int_equal(ans.status, 200);
    assert_int_equal(ans.index, w2);
    assert_true(ans.index > w);
    assert_non_null(strstr(ans.body, "\"Value\":\"djI=\""));
}

static void test_unrelated_write_does_not_answer(void **state)
{
    struct fixture *f = *state;
    struct answer ans;
    char target[128];
    uint64_t w = put(f, "k", "v1");

    snprintf(target, sizeof(target), "/v1/kv/k?index=%llu&wait=1s", (unsigned long long)w);
    uint64_t start = uv_now(&f->loop);
    get(f, target, &ans);
    run_until_parked(f, 1);
    put(f, "other", "x");
    put(f, "k2", "y");
    run_for(f, 300);
    assert_false(ans.done);
    assert_int_equal(f->a->watches.count, 1);

    /* Wait expiry: the same body and index, after about a second (plus up to 1/16 jitter). */
    assert_true(run_until(f, &ans.done, 3000));
    assert_true(ans.at_ms - start >= 990);
    assert_true(ans.at_ms - start < 1500);
    assert_int_equal(ans.status, 200);
    assert_int_equal(ans.index, w);
    assert_non_null(strstr(ans.body, "\"Value\":\"djE=\""));
    assert_int_equal(f->a->watches.count, 0);
}

static void test_missing_key_blocks_until_created(void **state)
{
    struct fixture *f = *state;
    struct answer ans;
    char target[128];

    put(f, "a", "1");
    get(f, "/v1/kv/k", &ans);
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 404);
    uint64_t idx = ans.index;
    assert_true(idx >= 1);

    snprintf(target, sizeof(target), "/v1/kv/k?index=%llu&wait=5s", (unsigned long long)idx);
    get(f, target, &ans);
    run_until_parked(f, 1);
    put(f, "b", "2"); /* moves the KV table index, but k is still missing */
    run_for(f, 100);
    assert_false(ans.done);
    uint64_t w = put(f, "k", "now");
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 200);
    assert_int_equal(ans.index, w);
}

static void test_delete_answers_with_higher_index(void **state)
{
    struct fixture *f = *state;
    struct answer ans;
    char target[128];
    uint64_t w = put(f, "k", "v1");

    snprintf(target, sizeof(target), "/v1/kv/k?index=%llu&wait=5s", (unsigned long long)w);
    get(f, target, &ans);
    run_until_parked(f, 1);
    uint64_t d = reg_kv_delete(&f->a->state, "k", NULL);
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 404);
    assert_int_equal(ans.index, d);
    assert_true(ans.index > w);
}

static void test_recurse_watch_sees_delete(void **state)
{
    struct fixture *f = *state;
    struct answer ans;
    char target[128];

    put(f, "app/a", "1");
    uint64_t w = put(f, "app/b", "2");
    snprintf(target, sizeof(target), "/v1/kv/app/?recurse&index=%llu&wait=5s",
             (unsigned long long)w);
    get(f, target, &ans);
    run_until_parked(f, 1);
    put(f, "zzz", "unrelated");
    run_for(f, 100);
    assert_false(ans.done);
    uint64_t d = reg_kv_delete(&f->a->state, "app/b", NULL);
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 200);
    assert_int_equal(ans.index, d);
    assert_null(strstr(ans.body, "app/b"));
}

static void test_wait_expiry_on_missing_key(void **state)
{
    struct fixture *f = *state;
    struct answer ans;
    char target[128];

    snprintf(target, sizeof(target), "/v1/kv/nothing?index=%llu&wait=200ms",
             (unsigned long long)f->a->state.table_index[REG_TABLE_KV]);
    get(f, target, &ans);
    run_until_parked(f, 1);
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 404);
    assert_int_equal(ans.index, 1);
    assert_string_equal(ans.body, "");
}

static void test_bad_blocking_params(void **state)
{
    struct fixture *f = *state;
    struct answer ans;

    get(f, "/v1/kv/k?index=abc", &ans);
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 400);
    assert_string_equal(ans.body, "Invalid index\n");
    get(f, "/v1/kv/k?index=1&wait=soon", &ans);
    assert_true(run_until(f, &ans.done, 2000));
    assert_int_equal(ans.status, 400);
    assert_string_equal(ans.body, "Invalid wait time\n");
}

static void test_disconnect_while_parked(void **state)
{
    struct fixture *f = *state;
    struct answer ans;
    char target[128];
    uint64_t w = put(f, "k", "v1");

    snprintf(target, sizeof(target), "/v1/kv/k?index=%llu&wait=5s", (unsigned long long)w);
    struct http_call *call = get(f, target, &ans);
    run_until_parked(f, 1);
    http_call_cancel(call);
    assert_true(ans.done);
    assert_int_equal(ans.status, UV_ECANCELED);
    /* The server notices the closed connection and drops the watch (ASan checks the rest). */
    run_until_parked(f, 0);
    /* A later write finds nothing parked and touches nothing freed. */
    put(f, "k", "v2");
    run_for(f, 50);
    assert_int_equal(f->a->watches.count, 0);
}

#define MANY 1000

static void test_many_watchers_one_write(void **state)
{
    struct fixture *f = *state;
    struct answer *ans = xcalloc(MANY, sizeof(*ans));
    char target[128];
    int answered = 0;
    uint64_t w = put(f, "k", "v1");

    snprintf(target, sizeof(target), "/v1/kv/k?index=%llu&wait=30s", (unsigned long long)w);
    for (int i = 0; i < MANY; i++) {
        get(f, target, &ans[i]);
        ans[i].counter = &answered;
    }
    run_until_parked(f, MANY);
    assert_int_equal(answered, 0);

    uint64_t renders = f->a->watches.renders;
    uint64_t w2 = put(f, "k", "v2");
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->a->watches.count, 0);             /* all re-run and answered in one batch */
    assert_int_equal(f->a->watches.renders - renders, 1); /* one read served them all */
    bool all = false;
    uint64_t deadline = uv_now(&f->loop) + 10000;
    while (!all && uv_now(&f->loop) < deadline) {
        run_for(f, 20);
        all = answered == MANY;
    }
    assert_int_equal(answered, MANY);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(ans[i].status, 200);
        assert_int_equal(ans[i].index, w2);
    }
    free(ans);
}

/* ---- the sharing key ------------------------------------------------------------------------ */

struct key_case {
    bool acl;
    const char *path;
    const char *query;
    const char *accept; /* NULL: no Accept header */
    const char *token;  /* NULL: none */
    bool token_given;
};

/* reg_api_call_share_key() of a call put together as reg_api_handle() and the ACL
 * resolution leave it. Returns a heap string of key_len bytes. */
static char *share_key(const struct key_case *k, size_t *key_len)
{
    struct reg_settings cfg = {.acl_enabled = k->acl};
    struct reg_api api = {.cfg = &cfg};
    struct http_header accept = {.name = str_from("Accept"),
                                 .value = str_from(k->accept ? k->accept : "")};
    struct http_request req = {.headers = &accept, .num_headers = k->accept != NULL};
    struct reg_api_call c = {.api = &api,
                             .req = &req,
                             .path = (char *)k->path,
                             .token = (char *)k->token,
                             .token_picked = true,
                             .token_given = k->token_given};
    struct buf key = BUF_INIT;

    assert_int_equal(url_query_parse(str_from(k->query), &c.query), 0);
    reg_api_call_share_key(&c, &key);
    url_query_free(&c.query);
    *key_len = key.len;
    return buf_steal(&key);
}

static bool same_key(struct key_case a, struct key_case b)
{
    size_t na, nb;
    char *ka = share_key(&a, &na), *kb = share_key(&b, &nb);
    bool same = na == nb && memcmp(ka, kb, na) == 0;

    free(ka);
    free(kb);
    return same;
}

#define SVC "/v1/health/service/web"

static void test_share_key_ignores_index_and_wait(void **state)
{
    (void)state;
    struct key_case base = {.path = SVC, .query = "passing&filter=Service.Port%3D%3D80"};
    struct key_case later = {.path = SVC,
                             .query = "index=42&passing&wait=10s&filter=Service.Port%3D%3D80"};

    assert_true(same_key(base, later));
    later.query = "passing&index=7&filter=Service.Port%3D%3D80&wait=1m";
    assert_true(same_key(base, later));
}

static void test_share_key_tells_reads_apart(void **state)
{
    (void)state;
    struct key_case base = {.path = SVC, .query = "tag=a"};
    struct key_case other = base;

    other.path = "/v1/health/service/db";
    assert_false(same_key(base, other));
    other = base, other.query = "tag=b";
    assert_false(same_key(base, other));
    other = base, other.query = "tag=a&pretty";
    assert_false(same_key(base, other));
    other = base, other.query = "tag=a&stale";
    assert_false(same_key(base, other));
    other = base, other.query = "tag=a&near=_agent";
    assert_false(same_key(base, other));
    other = base, other.query = "tag=a&filter=Service.Port%3D%3D80";
    assert_false(same_key(base, other));
    /* a bare flag and an empty value are not the same request to every handler */
    base.query = "passing", other = base, other.query = "passing=";
    assert_false(same_key(base, other));
    /* fields cannot run into each other: name "a=b" is not a=b, and a path is not a name */
    base.query = "a%3Db", other = base, other.query = "a=b";
    assert_false(same_key(base, other));
    base.path = "/v1/kv/x", base.query = "", other = base;
    other.path = "/v1/kv/", other.query = "x";
    assert_false(same_key(base, other));
}

static void test_share_key_format_follows_accept(void **state)
{
    (void)state;
    struct key_case base = {.path = "/v1/agent/health/service/id/web1"};
    struct key_case other = base;

    other.accept = "text/plain";
    assert_false(same_key(base, other));
    other.accept = "";
    assert_false(same_key(base, other)); /* present but empty is not absent */
    base.accept = "text/plain";
    other.accept = "text/plain";
    assert_true(same_key(base, other));
}

static void test_share_key_follows_token_rights(void **state)
{
    (void)state;
    struct key_case a = {.acl = true, .path = SVC, .token = "secret-a", .token_given = true};
    struct key_case b = a;

    assert_true(same_key(a, b));
    b.token = "secret-b";
    assert_false(same_key(a, b));
    b = a, b.token = NULL, b.token_given = false; /* anonymous */
    assert_false(same_key(a, b));
    /* The same token as the agent's default: the same rights, but only a token the request
     * carried is told its results were filtered (X-Consul-Results-Filtered-By-ACLs). */
    b = a, b.token_given = false;
    assert_false(same_key(a, b));
    /* a ?token= stays in the key as a parameter too: it can only split watchers, not join them */
    b = a, b.query = "token=secret-a";
    assert_false(same_key(a, b));
    /* Without ACLs every caller has the same rights: tokens do not split the watchers. */
    a.acl = false, b = a, b.token = "secret-b";
    assert_true(same_key(a, b));
    b.token = NULL, b.token_given = false;
    assert_true(same_key(a, b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_hash),
        cmocka_unit_test(test_share_key_ignores_index_and_wait),
        cmocka_unit_test(test_share_key_tells_reads_apart),
        cmocka_unit_test(test_share_key_format_follows_accept),
        cmocka_unit_test(test_share_key_follows_token_rights),
        cmocka_unit_test_setup_teardown(test_no_index_answers_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_answers_parked_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unrelated_write_does_not_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_key_blocks_until_created, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_answers_with_higher_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recurse_watch_sees_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wait_expiry_on_missing_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_blocking_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disconnect_while_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_watchers_one_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
