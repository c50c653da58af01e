/*
 * bench-watchers: park N HTTP watchers on one key, make one write, time every wake-up.
 *
 * Usage: bench-watchers consul|etcd PORT N KEY [INDEX]
 *
 * consul: each watcher sends GET /v1/kv/KEY?index=INDEX&wait=60s and is parked once its request
 * is written (a blocking query answers nothing until it fires); etcd: each watcher sends POST
 * /v3/watch to the JSON gateway and is parked once its "created" message arrives. After all are
 * parked and a settle delay, one extra connection writes KEY (PUT /v1/kv/KEY or POST
 * /v3/kv/put); t0 is taken just before that write. A watcher has answered when its response
 * (consul: "HTTP/1.1 200", etcd: an "events" message) is read. Prints one JSON line.
 *
 * One process holds every connection on one libuv loop, so the client side costs the same for
 * both peers. Every phase has a deadline; nothing retries.
 *
 * With BENCH_WATCHERS_HOLD=1 in the environment, for bench/watch-cost, which counts the server's
 * work for the wake-up alone: once every watcher is parked it waits for a line on stdin, only
 * then connects the writer (so the watchers may stay parked longer than a server lets a
 * connection wait for its first request) and makes the write, and after printing its result
 * it keeps every connection open until stdin ends.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define CONNECT_PARALLEL   64
#define SETTLE_MS          500
#define PARK_DEADLINE_MS   30000
#define ANSWER_DEADLINE_MS 15000
#define RBUF_CAP           8192

struct watcher {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    int idx;
    int parked;
    int answered;
    int failed;
    uint64_t latency_ns;
    size_t rlen;
    char rbuf[RBUF_CAP];
};

static struct {
    uv_loop_t *loop;
    int etcd;
    int port;
    int n;
    const char *key;
    char *watch_req;
    size_t watch_len;
    char *trigger_req;
    size_t trigger_len;
    struct watcher *w;
    struct watcher trig;
    int next_connect;
    int connecting;
    int parked;
    int answered;
    int failed;
    int early;
    int triggered;
    int trigger_acked;
    uint64_t t0;
    uint64_t trigger_ack_ns;
    uv_timer_t timer;
    int phase_timed_out;
    int hold;           /* BENCH_WATCHERS_HOLD */
    int trig_connected; /* the writer's connection is up */
} g;

static void start_connects(void);

static void base64(const char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Formats a request into a fresh heap string; aborts on OOM or truncation (a bench tool). */
static char *fmt_request(size_t *len, const char *method, const char *path, const char *body)
{
    size_t blen = strlen(body);
    size_t cap = strlen(path) + blen + 256;
    char *s = malloc(cap);
    if (!s)
        abort();
    int n = snprintf(s, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, g.port, blen, body);
    if (n < 0 || (size_t)n >= cap)
        abort();
    *len = (size_t)n;
    return s;
}

static void build_requests(const char *index)
{
    char path[512], body[512], k64[256], v64[64], val[32];
    snprintf(val, sizeof(val), "v-%" PRIu64, uv_hrtime());
    if (!g.etcd) {
        snprintf(path, sizeof(path), "/v1/kv/%s?index=%s&wait=60s", g.key, index);
        g.watch_req = fmt_request(&g.watch_len, "GET", path, "");
        snprintf(path, sizeof(path), "/v1/kv/%s", g.key);
        g.trigger_req = fmt_request(&g.trigger_len, "PUT", path, val);
        return;
    }
    base64(g.key, strlen(g.key), k64);
    base64(val, strlen(val), v64);
    snprintf(body, sizeof(body), "{\"create_request\":{\"key\":\"%s\"}}", k64);
    g.watch_req = fmt_request(&g.watch_len, "POST", "/v3/watch", body);
    snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
    g.trigger_req = fmt_request(&g.trigger_len, "POST", "/v3/kv/put", body);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct watcher *w = h->data;
    (void)hint;
    if (w->rlen >= RBUF_CAP - 1)
        w->rlen = 0; /* only the newest bytes matter for the markers */
    *buf = uv_buf_init(w->rbuf + w->rlen, (unsigned)(RBUF_CAP - 1 - w->rlen));
}

static void mark_failed(struct watcher *w)
{
    if (!w->failed && !w->answered) {
        w->failed = 1;
        g.failed++;
    }
}

static void note_answer(struct watcher *w)
{
    const char *marker = g.etcd ? "\"events\"" : "HTTP/1.1 200";
    if (w->answered || !strstr(w->rbuf, marker))
        return;
    w->answered = 1;
    w->latency_ns = uv_hrtime() - g.t0;
    g.answered++;
    if (g.answered + g.failed >= g.n && g.trigger_acked)
        uv_stop(g.loop);
}

static void watcher_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct watcher *w = s->data;
    (void)buf;
    if (nread < 0) {
        mark_failed(w);
        uv_read_stop(s);
        return;
    }
    w->rlen += (size_t)nread;
    w->rbuf[w->rlen] = '\0';
    if (g.triggered) {
        note_answer(w);
        return;
    }
    if (g.etcd && !w->parked && strstr(w->rbuf, "\"created\":true")) {
        w->parked = 1;
        g.parked++;
        w->rlen = 0;
    } else if (!g.etcd) {
        g.early++; /* a blocking query answered before any write: wrong index */
        mark_failed(w);
    }
}

static void trigger_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct watcher *w = s->data;
    (void)buf;
    if (nread < 0) {
        uv_read_stop(s);
        return;
    }
    w->rlen += (size_t)nread;
    w->rbuf[w->rlen] = '\0';
    if (!g.trigger_acked && strstr(w->rbuf, "HTTP/1.1 200")) {
        g.trigger_acked = 1;
        g.trigger_ack_ns = uv_hrtime() - g.t0;
        if (g.answered + g.failed >= g.n)
            uv_stop(g.loop);
    }
}

static void watch_write_cb(uv_write_t *req, int status)
{
    struct watcher *w = req->data;
    if (status < 0) {
        mark_failed(w);
        return;
    }
    if (!g.etcd) {
        w->parked = 1;
        g.parked++;
    }
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct watcher *w = req->data;
    g.connecting--;
    if (w == &g.trig) {
        g.trig_connected = status == 0;
        if (g.hold) /* connected on its own after the hold */
            uv_stop(g.loop);
    }
    if (status < 0) {
        mark_failed(w);
    } else if (w == &g.trig) {
        uv_read_start((uv_stream_t *)&w->tcp, alloc_cb, trigger_read_cb);
    } else {
        uv_buf_t b = uv_buf_init(g.watch_req, (unsigned)g.watch_len);
        w->wr.data = w;
        uv_read_start((uv_stream_t *)&w->tcp, alloc_cb, watcher_read_cb);
        if (uv_write(&w->wr, (uv_stream_t *)&w->tcp, &b, 1, watch_write_cb) < 0)
            mark_failed(w);
    }
    start_connects();
}

static void connect_one(struct watcher *w)
{
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", g.port, &sa);
    uv_tcp_init(g.loop, &w->tcp);
    w->tcp.data = w;
    w->conn.data = w;
    uv_tcp_nodelay(&w->tcp, 1);
    g.connecting++;
    if (uv_tcp_connect(&w->conn, &w->tcp, (const struct sockaddr *)&sa, connect_cb) < 0) {
        g.connecting--;
        mark_failed(w);
    }
}

/* Keeps at most CONNECT_PARALLEL connects in flight so the listen backlog never overflows. */
static void start_connects(void)
{
    while (g.connecting < CONNECT_PARALLEL && g.next_connect < g.n)
        connect_one(&g.w[g.next_connect++]);
}

static void timer_stop_cb(uv_timer_t *t)
{
    (void)t;
    g.phase_timed_out = 1;
    uv_stop(g.loop);
}

static void park_poll_cb(uv_timer_t *t)
{
    if (g.parked + g.failed >= g.n && g.next_connect >= g.n && g.connecting == 0)
        uv_stop(g.loop);
    (void)t;
}

static void run_phase(uint64_t deadline_ms)
{
    g.phase_timed_out = 0;
    uv_timer_start(&g.timer, timer_stop_cb, deadline_ms, 0);
    uv_run(g.loop, UV_RUN_DEFAULT);
    uv_timer_stop(&g.timer);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void report(void)
{
    uint64_t *lat = calloc((size_t)g.n + 1, sizeof(*lat));
    int k = 0;
    if (!lat)
        abort();
    for (int i = 0; i < g.n; i++)
        if (g.w[i].answered)
            lat[k++] = g.w[i].latency_ns;
    qsort(lat, (size_t)k, sizeof(*lat), cmp_u64);
    uint64_t p50 = k ? lat[(k - 1) * 50 / 100] : 0;
    uint64_t p99 = k ? lat[(k - 1) * 99 / 100] : 0;
    uint64_t max = k ? lat[k - 1] : 0;
    char all[32] = "null"; /* the time until all answered exists only if all did */
    if (k == g.n)
        snprintf(all, sizeof(all), "%.3f", ms(max));
    printf("{\"peer\":\"%s\",\"watchers\":%d,\"parked\":%d,\"answered\":%d,\"failed\":%d,"
           "\"early\":%d,\"min_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"all_"
           "ms\":%s,"
           "\"write_ack_ms\":%.3f}\n",
           g.etcd ? "etcd" : "consul", g.n, g.parked, k, g.failed, g.early, ms(k ? lat[0] : 0),
           ms(p50), ms(p99), ms(max), all, ms(g.trigger_ack_ns));
    free(lat);
}

/* BENCH_WATCHERS_HOLD: blocks (the loop with it) until a line or the end of stdin. */
static void hold_until_line(void)
{
    int ch;

    while ((ch = getchar()) != EOF && ch != '\n')
        ;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[1], "consul") != 0 && strcmp(argv[1], "etcd") != 0)) {
        fprintf(stderr, "usage: %s consul|etcd PORT N KEY [INDEX]\n", argv[0]);
        return 2;
    }
    g.etcd = strcmp(argv[1], "etcd") == 0;
    g.port = atoi(argv[2]);
    g.n = atoi(argv[3]);
    g.key = argv[4];
    if (g.port <= 0 || g.n <= 0 || g.n > 100000 || strlen(g.key) > 100)
        return 2;
    const char *hold = getenv("BENCH_WATCHERS_HOLD");
    g.hold = hold && strcmp(hold, "1") == 0;
    g.loop = uv_default_loop();
    g.w = calloc((size_t)g.n, sizeof(*g.w));
    if (!g.w)
        abort();
    build_requests(argc > 5 ? argv[5] : "0");
    uv_timer_init(g.loop, &g.timer);

    /* Phase 1: connect and park every watcher, plus the trigger connection. */
    uv_timer_t poll;
    uv_timer_init(g.loop, &poll);
    uv_timer_start(&poll, park_poll_cb, 20, 20);
    if (!g.hold)
        connect_one(&g.trig);
    start_connects();
    run_phase(PARK_DEADLINE_MS);
    uv_timer_stop(&poll);
    int ok = g.parked == g.n && !g.phase_timed_out;

    /* Phase 2: let the server finish taking the requests in, so the write meets them parked. */
    if (ok && g.hold) {
        hold_until_line();
        connect_one(&g.trig);
        run_phase(PARK_DEADLINE_MS);
        ok = g.trig_connected;
    }
    if (ok) {
        uv_timer_start(&g.timer, timer_stop_cb, SETTLE_MS, 0);
        uv_run(g.loop, UV_RUN_DEFAULT);
        ok = g.early == 0;
    }

    /* Phase 3: one write; every read after t0 that carries the answer is timed. */
    if (ok) {
        uv_buf_t b = uv_buf_init(g.trigger_req, (unsigned)g.trigger_len);
        g.triggered = 1;
        g.t0 = uv_hrtime();
        if (uv_write(&g.trig.wr, (uv_stream_t *)&g.trig.tcp, &b, 1, NULL) == 0)
            run_phase(ANSWER_DEADLINE_MS);
    }
    report();
    if (g.hold) {
        fflush(stdout);
        hold_until_line();
    }
    uv_walk(g.loop, close_walk_cb, NULL);
    uv_run(g.loop, UV_RUN_DEFAULT);
    uv_loop_close(g.loop);
    free(g.w);
    free(g.watch_req);
    free(g.trigger_req);
    return ok && g.answered == g.n ? 0 : 1;
}
