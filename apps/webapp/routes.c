/*
 * webapp's endpoints: /, /health, /info, /work?duration=MS, /status/N. Every response carries
 * X-Served-By: NODE/INSTANCE so a client behind the load balancer sees who answered.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/url.h"
#include "webapp.h"

#ifndef MESH_VERSION
#define MESH_VERSION "0.0.0"
#endif

struct work_job {
    uv_work_t work;
    struct webapp *app;
    struct http_request *req; /* NULL once the client went away */
    int duration_ms;
    double elapsed_ms;
};

static void respond(struct webapp *app, struct http_request *req, int status, const char *ctype,
                    const void *body, size_t len)
{
    http_response_header(req, "X-Served-By", "%s/%s", app->node, app->instance);
    http_respond(req, status, ctype, body, len);
}

static void respond_text(struct webapp *app, struct http_request *req, int status, const char *text)
{
    respond(app, req, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* Steals the reference to v. */
static void respond_json(struct webapp *app, struct http_request *req, int status, json_t *v)
{
    struct buf out = BUF_INIT;

    json_append(&out, v, true);
    json_decref(v);
    respond(app, req, status, "application/json", out.data, out.len);
    buf_free(&out);
}

static void handle_root(struct webapp *app, struct http_request *req)
{
    json_t *o = json_object();

    json_object_set_new(o, "node", json_str_or_empty(app->node));
    json_object_set_new(o, "instance", json_str_or_empty(app->instance));
    json_object_set_new(o, "address", json_str_or_empty(app->address));
    json_object_set_new(o, "port", json_integer(app->port));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "uptime_s", json_real_round(webapp_uptime_s(app), 0.001));
    json_object_set_new(o, "requests", json_integer((json_int_t)app->requests));
    respond_json(app, req, 200, o);
}

static void handle_health(struct webapp *app, struct http_request *req)
{
    json_t *o = json_object();

    /* Handing over, the instance goes on serving: the check speaks for the successor. */
    bool down = app->draining && !app->handing_over;

    json_object_set_new(o, "status", json_string(down ? "draining" : "ok"));
    json_object_set_new(o, "node", json_str_or_empty(app->node));
    json_object_set_new(o, "instance", json_str_or_empty(app->instance));
    respond_json(app, req, down ? 503 : 200, o);
}

/* VmRSS from /proc/self/status in bytes; 0 when unavailable. A procfs read never blocks. */
static long long rss_bytes(void)
{
    char line[256];
    long long kb = 0;
    FILE *f = fopen("/proc/self/status", "r");

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtoll(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

static json_t *cpu_json(const struct webapp *app)
{
    struct rusage ru;
    json_t *o = json_object();

    getrusage(RUSAGE_SELF, &ru);
    double user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
    double sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    double up = webapp_uptime_s(app);
    json_object_set_new(o, "user_s", json_real_round(user, 0.001));
    json_object_set_new(o, "system_s", json_real_round(sys, 0.001));
    /* Average over the process's life, as a share of one core. */
    json_object_set_new(o, "percent",
                        json_real_round(up > 0 ? (user + sys) / up * 100.0 : 0.0, 0.1));
    return o;
}

static void handle_info(struct webapp *app, struct http_request *req)
{
    json_t *o = json_object();
    json_t *mem = json_object();
    json_t *load = json_array();
    double avg[3];
    char host[256];
    size_t host_len = sizeof(host);

    if (uv_os_gethostname(host, &host_len) != 0)
        snprintf(host, sizeof(host), "%s", "unknown");
    uv_loadavg(avg);
    for (int i = 0; i < 3; i++)
        json_array_append_new(load, json_real_round(avg[i], 0.01));
    json_object_set_new(mem, "rss_bytes", json_integer(rss_bytes()));
    json_object_set_new(o, "node", json_str_or_empty(app->node));
    json_object_set_new(o, "instance", json_str_or_empty(app->instance));
    json_object_set_new(o, "hostname", json_str_or_empty(host));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "version", json_string(MESH_VERSION));
    json_object_set_new(o, "uptime_s", json_real_round(webapp_uptime_s(app), 0.001));
    json_object_set_new(o, "requests", json_integer((json_int_t)app->requests));
    json_object_set_new(o, "cpu", cpu_json(app));
    json_object_set_new(o, "memory", mem);
    json_object_set_new(o, "loadavg", load);
    respond_json(app, req, 200, o);
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Threadpool side: spin on arithmetic until the duration has passed. */
static void work_run(uv_work_t *w)
{
    struct work_job *job = w->data;
    double start = now_ms();
    volatile unsigned long long x = 0;

    while (now_ms() - start < job->duration_ms) {
        for (int i = 0; i < 10000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    }
    job->elapsed_ms = now_ms() - start;
}

static void work_abort(struct http_request *req)
{
    struct work_job *job = req->data;

    job->req = NULL;
}

static void work_done(uv_work_t *w, int status)
{
    struct work_job *job = w->data;
    struct webapp *app = job->app;

    if (job->req) {
        json_t *o = json_object();
        json_object_set_new(o, "duration_ms", json_integer(job->duration_ms));
        json_object_set_new(o, "elapsed_ms", json_real_round(job->elapsed_ms, 0.01));
        json_object_set_new(o, "node", json_str_or_empty(app->node));
        json_object_set_new(o, "instance", json_str_or_empty(app->instance));
        job->req->on_abort = NULL;
        respond_json(app, job->req, 200, o);
    }
    free(job);
    app->in_flight--;
    if (app->draining)
        webapp_drain_check(app);
}

/* Parses a decimal 1..max with nothing else around it; -1 when bad. */
static int parse_bounded(const char *s, int min, int max)
{
    unsigned long long v;

    if (!s || !str_to_u64(str_from(s), &v) || v < (unsigned long long)min ||
        v > (unsigned long long)max)
        return -1;
    return (int)v;
}

static void handle_work(struct webapp *app, struct http_request *req)
{
    struct url_query q;
    char msg[160];

    if (url_query_parse(req->query, &q) != 0) {
        respond_text(app, req, 400, "bad query string\n");
        return;
    }
    const char *d = url_query_get(&q, "duration");
    int ms = parse_bounded(d, 1, WEBAPP_WORK_MAX_MS);
    url_query_free(&q);
    if (ms < 0) {
        snprintf(msg, sizeof(msg), "duration must be an integer number of ms, 1..%d\n",
                 WEBAPP_WORK_MAX_MS);
        respond_text(app, req, 400, msg);
        return;
    }
    struct work_job *job = xcalloc(1, sizeof(*job));
    job->app = app;
    job->req = req;
    job->duration_ms = ms;
    job->work.data = job;
    req->data = job;
    req->on_abort = work_abort;
    app->in_flight++;
    int rc = uv_queue_work(app->loop, &job->work, work_run, work_done);
    if (rc != 0) { /* cannot happen with a valid loop and callbacks; answer rather than hang */
        app->in_flight--;
        free(job);
        req->on_abort = NULL;
        respond_text(app, req, 503, "cannot queue work\n");
    }
}

static void handle_status(struct webapp *app, struct http_request *req, struct str code)
{
    unsigned long long v = 0;

    /* 101 would promise a protocol switch that never comes. */
    if (!str_to_u64(code, &v) || v < 100 || v > 599 || v == 101) {
        respond_text(app, req, 400, "status must be an integer 100..599 (not 101)\n");
        return;
    }
    int status = (int)v;
    /* 1xx, 204 and 304 carry no body. */
    if (status < 200 || status == 204 || status == 304) {
        respond(app, req, status, NULL, NULL, 0);
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "status", json_integer(status));
    json_object_set_new(o, "node", json_str_or_empty(app->node));
    json_object_set_new(o, "instance", json_str_or_empty(app->instance));
    respond_json(app, req, status, o);
}

void webapp_handle(struct http_request *req, void *data)
{
    struct webapp *app = data;
    struct str path = req->path;
    static const char status_prefix[] = "/status/";

    app->requests++;
    if (!str_eq_cstr(req->method, "GET") && !str_eq_cstr(req->method, "HEAD")) {
        http_response_header(req, "Allow", "GET, HEAD");
        respond_text(app, req, 405, "method not allowed\n");
    } else if (str_eq_cstr(path, "/")) {
        handle_root(app, req);
    } else if (str_eq_cstr(path, "/health")) {
        handle_health(app, req);
    } else if (str_eq_cstr(path, "/info")) {
        handle_info(app, req);
    } else if (str_eq_cstr(path, "/work")) {
        handle_work(app, req);
    } else if (str_has_prefix(path, str_from(status_prefix))) {
        handle_status(app, req, str_skip(path, sizeof(status_prefix) - 1));
    } else {
        respond_text(app, req, 404, "not found\n");
    }
}
