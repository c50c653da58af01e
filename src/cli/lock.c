/*
 * `mesh lock PREFIX CMD...`: runs a command while holding a KV lock, as `consul lock` does with
 * the Go api.Lock defaults: a session named "Consul API Lock" with a 15 s TTL renewed every
 * ~7 s, the key PREFIX/.lock acquired with flags 0x2ddccbc058a50c18, and a blocking query on
 * that key that notices the lock being lost (its Session changes), in which case the command
 * is sent SIGTERM and mesh lock exits 1. Otherwise it releases the lock, destroys the session
 * and exits with the command's status.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "lib/alloc.h"
#include "lib/duration.h"
#include "lib/http_client.h"

#define LOCK_USAGE                                                                                 \
    "mesh lock [options] PREFIX CHILD...\n\n"                                                      \
    "  Acquires a lock at PREFIX/.lock (a KV key held through a session), runs CHILD while\n"      \
    "  holding it, then releases it. CHILD runs through /bin/sh -c when it is a single\n"          \
    "  argument. If the lock is lost, CHILD gets SIGTERM and mesh lock exits 1; otherwise it\n"    \
    "  exits with CHILD's status."

#define LOCK_FLAGS              "3304740253564472344" /* 0x2ddccbc058a50c18: Go's api.LockFlagValue */
#define LOCK_SESSION_TTL        "15s"
#define LOCK_RENEW_MS           7000 /* half the TTL, as the Go client renews */
#define LOCK_RETRY_MS           1000 /* after a failed acquire (lock-delay) or a failed query */
#define LOCK_WAIT               "15s"
#define LOCK_MONITOR_ERRORS_MAX 3

struct lock_run {
    struct cli_http h;
    char *key;      /* PREFIX/.lock */
    char *key_path; /* /v1/kv/<key>, encoded */
    char session[64];
    uv_timer_t renew;
    uv_timer_t retry;
    uv_process_t child;
    uv_signal_t sigs[2];
    struct http_call *monitor; /* the blocking query in flight, or NULL */
    uint64_t index;
    int monitor_errors;
    bool child_running;
    bool lost;
    int child_status;
    char **argv_child; /* NULL-terminated */
};

/* ---- async requests on the private loop -------------------------------------------------- */

static struct http_call *send_async(struct lock_run *l, const char *method, const char *target,
                                    const char *body, http_client_cb cb)
{
    struct http_header fields[1];
    struct http_client_request req = {
        .method = method,
        .target = target,
        .body = body,
        .body_len = body ? strlen(body) : 0,
        .timeout_ms = 60000,
    };

    consul_request_init(&req, &l->h.ep, fields, 0);
    return http_client_send(l->h.client, &req, cb, l);
}

static void lose_lock(struct lock_run *l, const char *why)
{
    if (l->lost)
        return;
    l->lost = true;
    fprintf(stderr, "Lock lost: %s\n", why);
    if (l->child_running)
        uv_process_kill(&l->child, SIGTERM);
}

static void on_renewed(int status, const struct http_client_response *res, void *data)
{
    struct lock_run *l = data;

    if (status == 0 && res->status == 404)
        lose_lock(l, "session expired");
    /* A transport error is retried at the next tick: the TTL leaves room for one miss. */
}

static void on_renew_tick(uv_timer_t *t)
{
    struct lock_run *l = t->data;
    char target[128];

    snprintf(target, sizeof(target), "/v1/session/renew/%s", l->session);
    send_async(l, "PUT", target, NULL, on_renewed);
}

/* ---- watching the key while the child runs ----------------------------------------------- */

static void start_monitor(struct lock_run *l);

static void on_retry(uv_timer_t *t)
{
    start_monitor(t->data);
}

/* The key's holder as a GET answered; NULL when the key is gone or has no holder. */
static const char *holder(const json_t *arr)
{
    return json_string_value(json_object_get(json_array_get(arr, 0), "Session"));
}

static void on_monitor(int status, const struct http_client_response *res, void *data)
{
    struct lock_run *l = data;

    l->monitor = NULL;
    if (status == UV_ECANCELED || !l->child_running)
        return;
    if (status < 0 || (res->status != 200 && res->status != 404)) {
        if (++l->monitor_errors >= LOCK_MONITOR_ERRORS_MAX)
            lose_lock(l, "cannot reach the agent");
        else
            uv_timer_start(&l->retry, on_retry, LOCK_RETRY_MS, 0);
        return;
    }
    l->monitor_errors = 0;
    size_t n;
    const char *idx = http_client_header(res, "X-Consul-Index", &n);
    if (idx)
        l->index = strtoull(idx, NULL, 10);
    json_t *arr = res->status == 200 ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    const char *h = holder(arr);
    bool ours = h && strcmp(h, l->session) == 0;
    json_decref(arr);
    if (!ours) {
        lose_lock(l, "the key is no longer held by this session");
        return;
    }
    start_monitor(l);
}

static void start_monitor(struct lock_run *l)
{
    char target[1024];

    if (!l->child_running || l->lost)
        return;
    snprintf(target, sizeof(target), "%s?index=%" PRIu64 "&wait=" LOCK_WAIT, l->key_path, l->index);
    l->monitor = send_async(l, "GET", target, NULL, on_monitor);
}

/* ---- the child --------------------------------------------------------------------------- */

static void on_child_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct lock_run *l = p->data;

    l->child_running = false;
    l->child_status = term_signal ? 128 + term_signal : (int)exit_status;
    if (l->monitor)
        http_call_cancel(l->monitor);
    uv_timer_stop(&l->retry);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct lock_run *l = s->data;

    if (l->child_running)
        uv_process_kill(&l->child, signum);
}

static int spawn_child(struct lock_run *l)
{
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_INHERIT_FD, .data.fd = 0},
        {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t opts = {
        .exit_cb = on_child_exit,
        .file = l->argv_child[0],
        .args = l->argv_child,
        .stdio_count = 3,
        .stdio = stdio,
    };
    l->child.data = l;
    int rc = uv_spawn(&l->h.loop, &l->child, &opts);
    if (rc < 0) {
        fprintf(stderr, "Failed to run child: %s\n", uv_strerror(rc));
        uv_close((uv_handle_t *)&l->child, NULL);
        return rc;
    }
    l->child_running = true;
    return 0;
}

/* ---- session and lock -------------------------------------------------------------------- */

static int create_session(struct lock_run *l, struct err *e)
{
    static const char body[] =
        "{\"Name\":\"Consul API Lock\",\"TTL\":\"" LOCK_SESSION_TTL "\",\"Behavior\":\"release\"}";
    struct cli_response res = {0};
    json_t *v = NULL;
    int rc = cli_http_call(&l->h, "PUT", "/v1/session/create", body, sizeof(body) - 1, 0, &res, e);

    if (rc == 0 && (v = cli_json(&res, e)) && json_string_value(json_object_get(v, "ID")))
        snprintf(l->session, sizeof(l->session), "%s", json_string_value(json_object_get(v, "ID")));
    else if (rc == 0)
        rc = -EIO;
    json_decref(v);
    cli_response_free(&res);
    return rc;
}

/*
 * Tries to acquire until it holds the lock or timeout_ms passes (0: no limit). Between tries it
 * waits on the key with a blocking query until it is free (the renew timer keeps running on
 * the loop meanwhile). Returns 0 holding, -ETIMEDOUT, or another negative value with e set.
 */
static int acquire(struct lock_run *l, int64_t timeout_ms, struct err *e)
{
    struct cli_response res = {0};
    struct buf target = BUF_INIT;
    uint64_t start = uv_now(&l->h.loop);
    int rc;

    for (;;) {
        buf_reset(&target);
        buf_printf(&target, "%s?acquire=%s&flags=" LOCK_FLAGS, l->key_path, l->session);
        rc = cli_http_call(&l->h, "PUT", target.data, NULL, 0, 0, &res, e);
        if (rc < 0)
            break;
        if (res.body.len >= 4 && memcmp(res.body.data, "true", 4) == 0)
            break;
        uv_update_time(&l->h.loop);
        if (timeout_ms > 0 && uv_now(&l->h.loop) - start >= (uint64_t)timeout_ms) {
            rc = -ETIMEDOUT;
            break;
        }
        /* Held elsewhere: wait for a change of the key; free but refused: lock-delay. */
        buf_reset(&target);
        buf_printf(&target, "%s?index=%" PRIu64 "&wait=%s", l->key_path, l->index,
                   timeout_ms > 0 && timeout_ms < 15000 ? "1s" : LOCK_WAIT);
        rc = cli_http_call(&l->h, "GET", target.data, NULL, 0, CLI_ALLOW_404, &res, e);
        if (rc < 0)
            break;
        json_t *arr = res.status == 200 ? json_loadb(res.body.data, res.body.len, 0, NULL) : NULL;
        bool held = holder(arr) != NULL;
        /* A single key's X-Consul-Index is its ModifyIndex: the next GET parks until it moves. */
        l->index = held ? (uint64_t)json_integer_value(
                              json_object_get(json_array_get(arr, 0), "ModifyIndex"))
                        : 0;
        json_decref(arr);
        if (!held)
            uv_sleep(LOCK_RETRY_MS / 4); /* free, yet refused: lock-delay; retry soon */
    }
    buf_free(&target);
    cli_response_free(&res);
    return rc;
}

/* Releases the lock and destroys the session (best effort: the TTL cleans up otherwise). */
static void release_all(struct lock_run *l, bool held)
{
    struct cli_response res = {0};
    struct buf target = BUF_INIT;
    struct err e;

    if (held) {
        buf_printf(&target, "%s?release=%s&flags=" LOCK_FLAGS, l->key_path, l->session);
        if (cli_http_call(&l->h, "PUT", target.data, NULL, 0, 0, &res, &e) < 0)
            fprintf(stderr, "Lock release failed: %s\n", e.msg);
    }
    buf_reset(&target);
    buf_printf(&target, "/v1/session/destroy/%s", l->session);
    if (cli_http_call(&l->h, "PUT", target.data, NULL, 0, 0, &res, &e) < 0)
        fprintf(stderr, "Session destroy failed: %s\n", e.msg);
    buf_free(&target);
    cli_response_free(&res);
}

static void build_child_argv(struct lock_run *l, int argc, char **argv)
{
    if (argc == 1) {
        l->argv_child = xcalloc(4, sizeof(char *));
        l->argv_child[0] = "/bin/sh";
        l->argv_child[1] = "-c";
        l->argv_child[2] = argv[0];
        return;
    }
    l->argv_child = xcalloc((size_t)argc + 1, sizeof(char *));
    for (int i = 0; i < argc; i++)
        l->argv_child[i] = argv[i];
}

/* Runs the child while holding the lock; returns mesh lock's exit status. */
static int hold_and_run(struct lock_run *l)
{
    if (spawn_child(l) < 0)
        return 1;
    uv_signal_init(&l->h.loop, &l->sigs[0]);
    uv_signal_init(&l->h.loop, &l->sigs[1]);
    l->sigs[0].data = l->sigs[1].data = l;
    uv_signal_start(&l->sigs[0], on_signal, SIGINT);
    uv_signal_start(&l->sigs[1], on_signal, SIGTERM);
    start_monitor(l);
    while (l->child_running)
        uv_run(&l->h.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&l->child, NULL);
    uv_close((uv_handle_t *)&l->sigs[0], NULL);
    uv_close((uv_handle_t *)&l->sigs[1], NULL);
    return l->lost ? 1 : l->child_status;
}

static int lock_main(struct lock_run *l, int64_t timeout_ns)
{
    struct err e;
    int status = 1;

    if (create_session(l, &e) < 0) {
        fprintf(stderr, "Lock acquisition failed: failed to create session: %s\n", e.msg);
        return 1;
    }
    uv_timer_init(&l->h.loop, &l->renew);
    uv_timer_init(&l->h.loop, &l->retry);
    l->renew.data = l->retry.data = l;
    uv_timer_start(&l->renew, on_renew_tick, LOCK_RENEW_MS, LOCK_RENEW_MS);
    int rc = acquire(l, timeout_ns / DURATION_MS, &e);
    if (rc == 0) {
        status = hold_and_run(l);
    } else if (rc == -ETIMEDOUT) {
        fprintf(stderr, "Shutdown triggered or timeout during lock acquisition\n");
    } else {
        fprintf(stderr, "Lock acquisition failed: %s\n", e.msg);
    }
    uv_timer_stop(&l->renew);
    uv_close((uv_handle_t *)&l->renew, NULL);
    uv_close((uv_handle_t *)&l->retry, NULL);
    release_all(l, rc == 0 && !l->lost);
    return status;
}

int cli_lock(int argc, char **argv)
{
    struct cli_http_opts o = {0};
    struct lock_run l;
    int n = 1, first, status = 1;
    int64_t timeout_ns = 0;
    bool verbose = false;
    struct flag flags[] = {
        CLI_HTTP_FLAGS(&o),
        {"n", FLAG_INT, &n, "Maximum number of lock holders (1).", false},
        {"timeout", FLAG_DURATION, &timeout_ns,
         "Maximum amount of time to wait to acquire the lock (0: no limit).", false},
        {"verbose", FLAG_BOOL, &verbose, "Print progress.", false},
    };

    memset(&l, 0, sizeof(l));
    if (!cli_parse_flags(flags, ARRAY_LEN(flags), LOCK_USAGE, argc - 1, argv + 1, &first, &status))
        goto out;
    status = 1;
    first++; /* flags_parse saw argv + 1 */
    if (argc - first < 2) {
        fprintf(stderr, "Key prefix and child command must be specified\n");
        goto out;
    }
    if (n != 1) {
        fprintf(stderr, "Only -n=1 (a lock, not a semaphore) is supported\n");
        goto out;
    }
    if (cli_connect(&l.h, &o) < 0)
        goto out;
    const char *prefix = argv[first];
    while (*prefix == '/')
        prefix++;
    size_t plen = strlen(prefix);
    struct buf kp = BUF_INIT;
    l.key = xcalloc(plen + 8, 1);
    snprintf(l.key, plen + 8, "%.*s/.lock",
             (int)(plen && prefix[plen - 1] == '/' ? plen - 1 : plen), prefix);
    buf_append_cstr(&kp, "/v1/kv/");
    for (const char *p = l.key; *p; p++) /* keep '/' as is, encode the rest */
        buf_printf(&kp,
                   (*p == '/' || *p == '.' || *p == '-' || *p == '_' || (*p >= '0' && *p <= '9') ||
                    (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
                       ? "%c"
                       : "%%%02X",
                   (unsigned char)*p);
    l.key_path = buf_steal(&kp);
    build_child_argv(&l, argc - first - 1, argv + first + 1);
    if (verbose)
        fprintf(stderr, "Attempting lock acquisition on %s\n", l.key);
    status = lock_main(&l, timeout_ns);
    cli_http_close(&l.h);
out:
    free(l.key);
    free(l.key_path);
    free(l.argv_child);
    cli_http_opts_free(&o);
    return status;
}
