/*
 * Health check runners. Each check ID has one runner holding its definition and one timer (the
 * interval, or the TTL). A probe in flight is a separate object (an HTTP call, a TCP probe, a
 * script probe) that points back at its runner; stopping a runner detaches and aborts the probe,
 * which then frees itself from its own close callbacks. The runner itself is freed from its
 * timer's close callback, so it stays valid for the rest of any callback that stopped it.
 */
#include "registry/agent/checks.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/duration.h"
#include "lib/http_client.h"
#include "lib/log.h"
#include "lib/net.h"
#include "lib/smap.h"
#include "lib/url.h"

#define MIN_INTERVAL_MS           1000
#define DEFAULT_TIMEOUT_NS        (10 * DURATION_SEC)
#define DEFAULT_SCRIPT_TIMEOUT_NS (30 * DURATION_SEC)
#define DEFAULT_OUTPUT_MAX        4096
#define MAX_REDIRECTS             10
#define REAPER_PERIOD_MS          1000

struct tcp_probe;
struct script_probe;

struct reg_checks {
    uv_loop_t *loop;
    struct reg_state *st;
    char *node_name;
    reg_checks_reap_cb reap;
    void *reap_data;
    struct smap runners; /* check ID -> struct runner */
    struct http_client *http;
    uv_timer_t reaper;
    uint64_t rng;
};

struct runner {
    struct reg_checks *owner;
    struct reg_check_def *def;
    uv_timer_t timer; /* next probe, or TTL expiry */
    bool stopped;
    /* Consecutive results, for SuccessBeforePassing / FailuresBefore*. */
    int successes;
    int failures;
    /* Critical since (uv_now), for DeregisterCriticalServiceAfter. */
    bool critical;
    uint64_t critical_since;
    bool reaped;
    char *ttl_output; /* last output given through the API */
    /* HTTP probe: the call in flight and the hop it is on. */
    struct http_call *call;
    char *url;
    char *method;
    char *host_port; /* of the hop in flight, for error texts; NULL before the first */
    int hops;
    uint64_t deadline; /* uv_now() when the whole exchange must be over */
    struct tcp_probe *tcp;
    struct script_probe *script;
};

static void runner_probe_done(struct runner *r, enum reg_health status, const char *output);

/* ---- definitions --------------------------------------------------------------------------- */

/* reg_check_def_free() lives in decode.c, next to the decoder that fills a reg_check_def. */

static size_t def_output_max(const struct reg_check_def *d)
{
    return d->output_max_size ? d->output_max_size : DEFAULT_OUTPUT_MAX;
}

static uint64_t ns_to_ms(int64_t ns)
{
    return ns <= 0 ? 0 : (uint64_t)((ns + DURATION_MS - 1) / DURATION_MS);
}

static uint64_t def_interval_ms(const struct reg_check_def *d)
{
    uint64_t ms = ns_to_ms(d->interval);
    return ms < MIN_INTERVAL_MS ? MIN_INTERVAL_MS : ms;
}

static int64_t def_timeout_ns(const struct reg_check_def *d)
{
    if (d->timeout > 0)
        return d->timeout;
    return d->kind == REG_CHECK_SCRIPT ? DEFAULT_SCRIPT_TIMEOUT_NS : DEFAULT_TIMEOUT_NS;
}

/* ---- recording results --------------------------------------------------------------------- */

static struct reg_check *runner_check(const struct runner *r)
{
    struct reg_node *node = reg_node_get(r->owner->st, r->owner->node_name);
    return node ? reg_check_get(node, r->def->id) : NULL;
}

/* Follows the state's status: the start of a critical spell is what the reaper measures. */
static void runner_track(struct runner *r, const struct reg_check *chk)
{
    if (chk->status != REG_CRITICAL) {
        r->critical = false;
        r->reaped = false;
    } else if (!r->critical) {
        r->critical = true;
        r->critical_since = uv_now(r->owner->loop);
    }
}

static bool runner_reapable(const struct runner *r)
{
    const struct reg_check_def *d = r->def;

    if (r->stopped || r->reaped || !r->critical || d->deregister_critical_after <= 0 ||
        !d->service_id || !d->service_id[0])
        return false;
    uint64_t after = ns_to_ms(d->deregister_critical_after);
    return uv_now(r->owner->loop) - r->critical_since > after;
}

/* Calls the reap callback, which may stop this runner (it stays readable until its close). */
static void runner_reap(struct runner *r)
{
    r->reaped = true;
    log_info("checks: service %s critical for too long (check %s), deregistering",
             r->def->service_id, r->def->id);
    r->owner->reap(r->def->service_id, r->owner->reap_data);
}

/* Writes a status to the state as is (no thresholds), then checks the reaping deadline. */
static void runner_record(struct runner *r, enum reg_health status, const char *output)
{
    struct reg_check *chk = runner_check(r);

    if (!chk)
        return; /* removed meanwhile */
    reg_check_set_status(r->owner->st, chk, status, output);
    runner_track(r, chk);
    if (runner_reapable(r))
        runner_reap(r);
}

/*
 * Consul's StatusHandler: a passing or warning result needs success_before_passing consecutive
 * ones before it is recorded, a critical one failures_before_critical (and turns warning after
 * failures_before_warning, which defaults to failures_before_critical). Unrecorded results
 * leave status and output alone.
 */
static void runner_result(struct runner *r, enum reg_health status, const char *output)
{
    const struct reg_check_def *d = r->def;

    if (status != REG_CRITICAL) {
        r->successes++;
        r->failures = 0;
        if (r->successes >= d->success_before_passing)
            runner_record(r, status, output);
        else
            log_debug("checks: %s passed, %d of %d successes needed", d->id, r->successes,
                      d->success_before_passing);
        return;
    }
    r->failures++;
    r->successes = 0;
    int warn =
        d->failures_before_warning ? d->failures_before_warning : d->failures_before_critical;
    if (r->failures >= d->failures_before_critical)
        runner_record(r, REG_CRITICAL, output);
    else if (r->failures >= warn)
        runner_record(r, REG_WARNING, output);
    else
        log_debug("checks: %s failed, %d of %d failures needed", d->id, r->failures,
                  d->failures_before_critical);
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

static void http_send_hop(struct runner *r);

/* Go's url.Error op: "Get", "Post", ... */
static void http_error_prefix(const struct runner *r, struct buf *out)
{
    const char *m = r->def->method && r->def->method[0] ? r->def->method : "GET";

    buf_append(out, m, 1);
    for (const char *p = m + 1; *p; p++) {
        char ch = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
        buf_append(out, &ch, 1);
    }
    char *url = url_redacted(r->url); /* the output is shown to readers of the service */
    buf_printf(out, " \"%s\": ", url);
    free(url);
}

/* Text close to what Go's net/http client reports for a transport error. */
static void http_error_text(const struct runner *r, int status, struct buf *out)
{
    const char *detail = http_client_error(r->owner->http);

    http_error_prefix(r, out);
    if (detail) { /* TLS failures: the client has Go's words for them */
        buf_append_cstr(out, detail);
        return;
    }
    switch (status) {
    case UV_ETIMEDOUT:
        buf_append_cstr(out, "context deadline exceeded (Client.Timeout exceeded while awaiting "
                             "headers)");
        break;
    case UV_EPROTO:
        buf_append_cstr(out, "malformed HTTP response");
        break;
    case UV_E2BIG:
        buf_append_cstr(out, "response body too large");
        break;
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL: {
        struct url_parts u;
        const char *host = url_split(r->url, &u) == 0 ? u.host : "?";
        buf_printf(out, "dial tcp: lookup %s: %s", host,
                   status == UV_EAI_AGAIN ? "temporary failure" : "no such host");
        if (u.path)
            url_parts_free(&u);
        break;
    }
    case UV_ECONNREFUSED:
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_EADDRNOTAVAIL:
        buf_printf(out, "dial tcp %s: connect: %s", r->host_port, uv_strerror(status));
        break;
    default:
        buf_printf(out, "read tcp %s: %s", r->host_port, uv_strerror(status));
        break;
    }
}

static bool is_redirect(int status)
{
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

static bool has_scheme(const char *s, size_t n)
{
    return (n >= 7 && strncasecmp(s, "http://", 7) == 0) ||
           (n >= 8 && strncasecmp(s, "https://", 8) == 0);
}

/* Resolves a Location against the URL it came from (RFC 3986 reference forms used in practice). */
static char *resolve_location(const char *base, const char *loc, size_t n)
{
    struct url_parts u;
    struct buf out = BUF_INIT;

    if (has_scheme(loc, n))
        return xstrndup(loc, n);
    if (url_split(base, &u) < 0)
        return xstrndup(loc, n);
    const char *scheme = u.https ? "https" : "http";
    if (n >= 2 && loc[0] == '/' && loc[1] == '/') {
        buf_printf(&out, "%s:%.*s", scheme, (int)n, loc);
    } else {
        bool v6 = strchr(u.host, ':') != NULL;
        buf_printf(&out, "%s://%s%s%s:%d", scheme, v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
        if (n > 0 && loc[0] == '/') {
            buf_append(&out, loc, n);
        } else {
            size_t dir = strcspn(u.path, "?");
            while (dir > 0 && u.path[dir - 1] != '/')
                dir--;
            buf_append(&out, u.path, dir);
            buf_append(&out, loc, n);
        }
    }
    url_parts_free(&u);
    return buf_steal(&out);
}

/*
 * Header fields from the definition ({"Name": ["v", ...]}), plus Consul's User-Agent and Accept
 * when the definition has none; only the first Host value is sent, as Go does. The fields
 * borrow the definition's strings. A name or value that cannot be sent (a line break, say) is
 * refused by the HTTP client, and the check goes critical saying which field, as Go's does.
 * Returns the number of fields in *out (heap; free it).
 */
static size_t http_build_headers(const struct reg_check_def *d, struct http_header **out)
{
    bool ua = false, accept = false, host = false;
    const char *name;
    json_t *vals;
    size_t n = 0, cap = 2;
    struct http_header *h = xmalloc(cap * sizeof(*h));

    if (json_is_object(d->header)) {
        json_object_foreach(d->header, name, vals)
        {
            bool is_host = strcasecmp(name, "Host") == 0;
            size_t i;
            json_t *v;
            json_array_foreach(vals, i, v)
            {
                const char *s = json_string_value(v);
                if (!s || (is_host && host))
                    continue;
                if (n + 2 >= cap)
                    h = xrealloc(h, (cap *= 2) * sizeof(*h));
                h[n++] = (struct http_header){.name = str_from(name), .value = str_from(s)};
                ua = ua || strcasecmp(name, "User-Agent") == 0;
                accept = accept || strcasecmp(name, "Accept") == 0;
                host = host || is_host;
            }
        }
    }
    if (!ua)
        h[n++] = (struct http_header){.name = STR_LIT("User-Agent"),
                                      .value = STR_LIT("Consul Health Check")};
    if (!accept)
        h[n++] = (struct http_header){.name = STR_LIT("Accept"),
                                      .value = STR_LIT("text/plain, text/*, */*")};
    *out = h;
    return n;
}

static void on_http_done(int status, const struct http_client_response *res, void *data);

static void http_start(struct runner *r)
{
    const struct reg_check_def *d = r->def;

    free(r->url);
    r->url = xstrdup(d->http ? d->http : "");
    free(r->method);
    r->method = xstrdup(d->method && d->method[0] ? d->method : "GET");
    r->hops = 0;
    r->deadline = uv_now(r->owner->loop) + ns_to_ms(def_timeout_ns(d));
    http_send_hop(r);
}

static void http_send_hop(struct runner *r)
{
    const struct reg_check_def *d = r->def;
    struct url_parts u;
    struct http_header *hdr = NULL;
    struct buf err = BUF_INIT;

    if (url_split(r->url, &u) < 0) {
        http_error_prefix(r, &err);
        buf_append_cstr(&err, "invalid URL");
        runner_probe_done(r, REG_CRITICAL, err.data);
        goto out;
    }
    bool v6 = strchr(u.host, ':') != NULL;
    free(r->host_port);
    r->host_port = xasprintf("%s%s%s:%d", v6 ? "[" : "", u.host, v6 ? "]" : "", u.port);
    size_t num_hdr = http_build_headers(d, &hdr);
    /* The body goes with the first request and with 307/308 redirects (method unchanged). */
    bool send_body =
        d->body && strcmp(r->method, d->method && d->method[0] ? d->method : "GET") == 0;
    uint64_t now = uv_now(r->owner->loop);
    struct http_client_request req = {
        .method = r->method,
        .host = u.host,
        .port = u.port,
        .target = u.path,
        .headers = hdr,
        .num_headers = num_hdr,
        .body = send_body ? d->body : NULL,
        .body_len = send_body ? strlen(d->body) : 0,
        .timeout_ms = r->deadline > now ? r->deadline - now : 1,
        .no_keep_alive = true,
        /* Go's TLS config: verified against the system CAs unless TLSSkipVerify; TLSServerName
         * names the certificate to expect and the SNI, else the URL's host does. */
        .tls = u.https,
        .tls_server_name = d->tls_server_name,
        .tls_skip_verify = d->tls_skip_verify,
    };
    r->call = http_client_send(r->owner->http, &req, on_http_done, r);
    url_parts_free(&u);
out:
    free(hdr);
    buf_free(&err);
}

/* Follows a redirect; returns false when the response is final. */
static bool http_follow(struct runner *r, const struct http_client_response *res)
{
    size_t n;
    const char *loc;

    if (r->def->disable_redirects || !is_redirect(res->status))
        return false;
    loc = http_client_header(res, "Location", &n);
    if (!loc)
        return false; /* Go hands back a 3xx without Location as the response */
    if (++r->hops > MAX_REDIRECTS) {
        struct buf err = BUF_INIT;
        http_error_prefix(r, &err);
        buf_printf(&err, "stopped after %d redirects", MAX_REDIRECTS);
        runner_probe_done(r, REG_CRITICAL, err.data);
        buf_free(&err);
        return true;
    }
    char *next = resolve_location(r->url, loc, n);
    free(r->url);
    r->url = next;
    /* 301/302/303 turn into GET without a body (HEAD stays HEAD), as Go does. */
    if (res->status <= 303 && strcmp(r->method, "HEAD") != 0) {
        free(r->method);
        r->method = xstrdup("GET");
    }
    http_send_hop(r);
    return true;
}

static void on_http_done(int status, const struct http_client_response *res, void *data)
{
    struct runner *r = data;
    struct buf out = BUF_INIT;

    r->call = NULL;
    if (r->stopped)
        return;
    if (status < 0) {
        http_error_text(r, status, &out);
        runner_probe_done(r, REG_CRITICAL, out.data);
        goto done;
    }
    if (http_follow(r, res))
        goto done;
    const struct reg_check_def *d = r->def;
    size_t body = res->body_len < def_output_max(d) ? res->body_len : def_output_max(d);
    char *url = url_redacted(d->http);
    buf_printf(&out, "HTTP %s %s: %d", d->method && d->method[0] ? d->method : "GET", url,
               res->status);
    free(url);
    if (res->reason.n)
        buf_printf(&out, " %.*s", STR_FMT(res->reason));
    buf_append_cstr(&out, " Output: ");
    buf_append(&out, res->body, body);
    enum reg_health h = REG_CRITICAL;
    if (res->status >= 200 && res->status < 300)
        h = REG_PASSING;
    else if (res->status == 429)
        h = REG_WARNING;
    runner_probe_done(r, h, out.data);
done:
    buf_free(&out);
}

/* ---- TCP ----------------------------------------------------------------------------------- */

struct tcp_probe {
    struct runner *runner; /* NULL once abandoned */
    char host[256];
    int port;
    uv_getaddrinfo_t gai;
    bool resolving;
    struct addrinfo *ai;
    struct addrinfo *next_ai;
    uv_tcp_t tcp;
    bool tcp_open;
    uv_connect_t req;
    uv_timer_t timer;
    char cur_name[80];
    int first_err;
    char first_name[80];
    bool done;
    int refs; /* timer handle, tcp handle, getaddrinfo in flight */
};

static void tcp_unref(struct tcp_probe *p)
{
    if (--p->refs > 0)
        return;
    if (p->ai)
        uv_freeaddrinfo(p->ai);
    free(p);
}

static void on_tcp_handle_closed(uv_handle_t *h)
{
    tcp_unref(h->data);
}

/* Ends the probe: reports (unless abandoned) and releases every handle. */
static void tcp_finish(struct tcp_probe *p, enum reg_health status, const char *output)
{
    if (p->done)
        return;
    p->done = true;
    struct runner *r = p->runner;
    if (r) {
        r->tcp = NULL;
        p->runner = NULL;
        runner_probe_done(r, status, output);
    }
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, on_tcp_handle_closed);
    if (p->tcp_open) {
        p->tcp_open = false;
        uv_close((uv_handle_t *)&p->tcp, on_tcp_handle_closed);
    }
    if (p->resolving)
        uv_cancel((uv_req_t *)&p->gai);
}

static void tcp_connect_next(struct tcp_probe *p);

static void tcp_fail_final(struct tcp_probe *p)
{
    char out[512];
    snprintf(out, sizeof(out), "dial tcp %s: connect: %s", p->first_name,
             uv_strerror(p->first_err));
    tcp_finish(p, REG_CRITICAL, out);
}

static void on_tcp_retry_closed(uv_handle_t *h)
{
    struct tcp_probe *p = h->data;

    if (!p->done)
        tcp_connect_next(p);
    tcp_unref(p);
}

static void tcp_attempt_failed(struct tcp_probe *p, int err)
{
    if (!p->first_err) {
        p->first_err = err;
        snprintf(p->first_name, sizeof(p->first_name), "%s", p->cur_name);
    }
    if (!p->next_ai) {
        tcp_fail_final(p);
        return;
    }
    /* Another address is left (A and AAAA): retry once this handle is closed. */
    p->tcp_open = false;
    uv_close((uv_handle_t *)&p->tcp, on_tcp_retry_closed);
}

static void on_tcp_connect(uv_connect_t *req, int status)
{
    struct tcp_probe *p = req->data;
    char out[512];

    if (p->done || status == UV_ECANCELED)
        return;
    if (status < 0) {
        tcp_attempt_failed(p, status);
        return;
    }
    snprintf(out, sizeof(out), "TCP connect %s: Success", p->runner->def->tcp);
    tcp_finish(p, REG_PASSING, out);
}

static void tcp_connect_addr(struct tcp_probe *p, const struct sockaddr *sa)
{
    uv_loop_t *loop = p->timer.loop;

    net_addr_name(sa, p->cur_name, sizeof(p->cur_name));
    uv_tcp_init(loop, &p->tcp);
    p->tcp.data = p;
    p->tcp_open = true;
    p->refs++;
    p->req.data = p;
    int rc = uv_tcp_connect(&p->req, &p->tcp, sa, on_tcp_connect);
    if (rc < 0)
        tcp_attempt_failed(p, rc);
}

static void tcp_connect_next(struct tcp_probe *p)
{
    struct addrinfo *ai = p->next_ai;
    struct sockaddr_storage ss;

    p->next_ai = ai->ai_next;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    tcp_connect_addr(p, (struct sockaddr *)&ss);
}

static void on_tcp_resolved(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    struct tcp_probe *p = gai->data;
    char out[512];

    p->resolving = false;
    if (p->done) {
        uv_freeaddrinfo(res);
        tcp_unref(p);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        snprintf(out, sizeof(out), "dial tcp: lookup %s: %s", p->host,
                 status == UV_EAI_NONAME || status == UV_EAI_NODATA || !res ? "no such host"
                                                                            : uv_strerror(status));
        tcp_finish(p, REG_CRITICAL, out);
    } else {
        p->ai = res;
        p->next_ai = res;
        tcp_connect_next(p);
    }
    tcp_unref(p);
}

static void on_tcp_timeout(uv_timer_t *t)
{
    struct tcp_probe *p = t->data;
    char out[512];

    if (p->resolving)
        snprintf(out, sizeof(out), "dial tcp: lookup %s: i/o timeout", p->host);
    else
        snprintf(out, sizeof(out), "dial tcp %s: i/o timeout", p->cur_name);
    tcp_finish(p, REG_CRITICAL, out);
}

static void tcp_start(struct runner *r)
{
    struct tcp_probe *p = xcalloc(1, sizeof(*p));
    uv_loop_t *loop = r->owner->loop;
    struct sockaddr_storage ss;
    char out[512];

    p->runner = r;
    r->tcp = p;
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->refs = 1;
    uv_timer_start(&p->timer, on_tcp_timeout, ns_to_ms(def_timeout_ns(r->def)), 0);
    const char *addr = r->def->tcp ? r->def->tcp : "";
    if (net_split_host_port(addr, p->host, sizeof(p->host), &p->port, 0) < 0 || p->port <= 0 ||
        p->port > 65535) {
        snprintf(out, sizeof(out), "dial tcp: address %s: missing port in address", addr);
        tcp_finish(p, REG_CRITICAL, out);
        return;
    }
    if (net_parse_addr(p->host, p->port, &ss) == 0) {
        tcp_connect_addr(p, (struct sockaddr *)&ss);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[16];
    snprintf(port, sizeof(port), "%d", p->port);
    p->gai.data = p;
    int rc = uv_getaddrinfo(loop, &p->gai, on_tcp_resolved, p->host, port, &hints);
    if (rc < 0) {
        snprintf(out, sizeof(out), "dial tcp: lookup %s: %s", p->host, uv_strerror(rc));
        tcp_finish(p, REG_CRITICAL, out);
        return;
    }
    p->resolving = true;
    p->refs++;
}

/* ---- script -------------------------------------------------------------------------------- */

struct script_probe {
    struct runner *runner; /* NULL once abandoned or reported */
    uv_process_t proc;
    uv_pipe_t pipe; /* the child's stdout and stderr */
    uv_timer_t timer;
    bool exited;
    bool pipe_open;
    bool timer_open;
    int64_t exit_status;
    int term_signal;
    /* The last `cap` bytes of output, as Consul's circular buffer keeps them. */
    char *out;
    size_t cap;
    size_t len;
    uint64_t total;
    char in[4096];
    int refs; /* one per open handle */
};

static void script_unref(struct script_probe *p)
{
    if (--p->refs > 0)
        return;
    free(p->out);
    free(p);
}

static void on_script_handle_closed(uv_handle_t *h)
{
    script_unref(h->data);
}

static void script_close_pipe(struct script_probe *p)
{
    if (!p->pipe_open)
        return;
    p->pipe_open = false;
    uv_close((uv_handle_t *)&p->pipe, on_script_handle_closed);
}

static void script_close_timer(struct script_probe *p)
{
    if (!p->timer_open)
        return;
    p->timer_open = false;
    uv_close((uv_handle_t *)&p->timer, on_script_handle_closed);
}

/* Detaches the probe from its runner and reports, once. */
static void script_report(struct script_probe *p, enum reg_health status, const char *output)
{
    struct runner *r = p->runner;

    if (!r)
        return;
    r->script = NULL;
    p->runner = NULL;
    runner_probe_done(r, status, output);
}

static void script_keep(struct script_probe *p, const char *data, size_t n)
{
    p->total += n;
    if (n >= p->cap) {
        memcpy(p->out, data + n - p->cap, p->cap);
        p->len = p->cap;
        return;
    }
    if (p->len + n > p->cap) {
        size_t drop = p->len + n - p->cap;
        memmove(p->out, p->out + drop, p->len - drop);
        p->len -= drop;
    }
    memcpy(p->out + p->len, data, n);
    p->len += n;
}

/* Both the exit and the end of output are in: the result is known. */
static void script_maybe_done(struct script_probe *p)
{
    struct buf out = BUF_INIT;

    if (!p->exited || p->pipe_open)
        return;
    script_close_timer(p);
    if (!p->runner)
        return;
    if (p->total > p->cap)
        buf_printf(&out, "Captured %zu of %llu bytes\n...\n", p->cap, (unsigned long long)p->total);
    buf_append(&out, p->out, p->len);
    enum reg_health h = REG_CRITICAL;
    if (p->term_signal == 0 && p->exit_status == 0)
        h = REG_PASSING;
    else if (p->term_signal == 0 && p->exit_status == 1)
        h = REG_WARNING;
    script_report(p, h, out.data);
    buf_free(&out);
}

static void on_script_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct script_probe *p = proc->data;

    p->exited = true;
    p->exit_status = exit_status;
    p->term_signal = term_signal;
    uv_close((uv_handle_t *)proc, on_script_handle_closed);
    script_maybe_done(p);
}

static void on_script_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct script_probe *p = h->data;
    *b = uv_buf_init(p->in, sizeof(p->in));
}

static void on_script_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct script_probe *p = s->data;

    if (nread > 0) {
        script_keep(p, b->base, (size_t)nread);
    } else if (nread < 0) {
        script_close_pipe(p);
        script_maybe_done(p);
    }
}

static void script_kill(struct script_probe *p)
{
    if (!p->exited)
        uv_process_kill(&p->proc, SIGKILL);
}

static void on_script_timeout(uv_timer_t *t)
{
    struct script_probe *p = t->data;
    char out[96], d[32];

    script_kill(p);
    script_close_pipe(p); /* a grandchild may hold it open */
    script_close_timer(p);
    duration_format(def_timeout_ns(p->runner->def), d, sizeof(d));
    snprintf(out, sizeof(out), "Timed out (%s) running check", d);
    script_report(p, REG_CRITICAL, out);
}

/* Spawns args[0] directly (no shell) with stdout and stderr on one pipe. */
static void script_start(struct runner *r)
{
    const struct reg_check_def *d = r->def;
    uv_loop_t *loop = r->owner->loop;
    struct script_probe *p = xcalloc(1, sizeof(*p));
    uv_file fds[2];
    char out[512];

    p->runner = r;
    r->script = p;
    p->cap = def_output_max(d);
    p->out = xmalloc(p->cap);
    uv_timer_init(loop, &p->timer);
    p->timer.data = p;
    p->timer_open = true;
    p->refs = 1;
    if (!d->args || !d->args[0]) {
        script_close_timer(p);
        script_report(p, REG_CRITICAL, "Failed to invoke: no Args");
        return;
    }
    int rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
    if (rc < 0) {
        snprintf(out, sizeof(out), "Failed to invoke: pipe: %s", uv_strerror(rc));
        script_close_timer(p);
        script_report(p, REG_CRITICAL, out);
        return;
    }
    uv_pipe_init(loop, &p->pipe, 0);
    p->pipe.data = p;
    p->pipe_open = true;
    p->refs++;
    uv_pipe_open(&p->pipe, fds[0]);
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
    };
    uv_process_options_t opts = {
        .exit_cb = on_script_exit,
        .file = d->args[0],
        .args = d->args,
        .stdio_count = 3,
        .stdio = stdio,
    };
    p->proc.data = p;
    p->refs++; /* the process handle is initialised even when the spawn fails */
    rc = uv_spawn(loop, &p->proc, &opts);
    close(fds[1]);
    if (rc < 0) {
        p->exited = true;
        uv_close((uv_handle_t *)&p->proc, on_script_handle_closed);
        script_close_pipe(p);
        script_close_timer(p);
        snprintf(out, sizeof(out), "fork/exec %s: %s", d->args[0], uv_strerror(rc));
        script_report(p, REG_CRITICAL, out);
        return;
    }
    uv_read_start((uv_stream_t *)&p->pipe, on_script_alloc, on_script_read);
    uv_timer_start(&p->timer, on_script_timeout, ns_to_ms(def_timeout_ns(d)), 0);
}

/* ---- runners ------------------------------------------------------------------------------- */

static void on_tick(uv_timer_t *t);

/* A probe is over: record the result and, unless that stopped the runner, plan the next. */
static void runner_probe_done(struct runner *r, enum reg_health status, const char *output)
{
    runner_result(r, status, output);
    if (!r->stopped)
        uv_timer_start(&r->timer, on_tick, def_interval_ms(r->def), 0);
}

static void on_tick(uv_timer_t *t)
{
    struct runner *r = t->data;

    switch (r->def->kind) {
    case REG_CHECK_HTTP:
        http_start(r);
        break;
    case REG_CHECK_TCP:
        tcp_start(r);
        break;
    case REG_CHECK_SCRIPT:
        script_start(r);
        break;
    default:
        break;
    }
}

static char *ttl_expired_output(const struct runner *r)
{
    if (!r->ttl_output || !r->ttl_output[0])
        return xstrdup("TTL expired");
    return xasprintf("TTL expired (last output before timeout follows): %s", r->ttl_output);
}

static void on_ttl_expired(uv_timer_t *t)
{
    struct runner *r = t->data;
    char *out = ttl_expired_output(r);

    log_info("checks: TTL of %s expired", r->def->id);
    runner_record(r, REG_CRITICAL, out);
    free(out);
}

static void ttl_arm(struct runner *r)
{
    uint64_t ms = ns_to_ms(r->def->ttl);
    if (ms > 0)
        uv_timer_start(&r->timer, on_ttl_expired, ms, 0);
}

static void on_runner_closed(uv_handle_t *h)
{
    struct runner *r = h->data;

    reg_check_def_free(r->def);
    free(r->ttl_output);
    free(r->url);
    free(r->method);
    free(r->host_port);
    free(r);
}

/* Aborts the probe in flight and closes the runner; it is freed from the close callback. */
static void runner_stop(struct runner *r)
{
    if (r->stopped)
        return;
    r->stopped = true;
    if (r->call) {
        struct http_call *call = r->call;
        r->call = NULL;
        http_call_cancel(call); /* its callback sees r->stopped and returns */
    }
    if (r->tcp) {
        struct tcp_probe *p = r->tcp;
        r->tcp = NULL;
        p->runner = NULL;
        tcp_finish(p, REG_CRITICAL, NULL);
    }
    if (r->script) {
        struct script_probe *p = r->script;
        r->script = NULL;
        p->runner = NULL;
        script_kill(p);
        script_close_pipe(p);
        script_close_timer(p);
    }
    uv_close((uv_handle_t *)&r->timer, on_runner_closed);
}

static uint64_t checks_random(struct reg_checks *c)
{
    /* xorshift64*: only spreads first probes over the interval, no quality needed. */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return c->rng * UINT64_C(2685821657736338717);
}

void reg_checks_start(struct reg_checks *c, struct reg_check_def *def)
{
    struct runner *r = xcalloc(1, sizeof(*r));

    r->owner = c;
    r->def = def;
    uv_timer_init(c->loop, &r->timer);
    r->timer.data = r;
    struct runner *old = smap_put(&c->runners, def->id, r);
    if (old)
        runner_stop(old);
    struct reg_check *chk = runner_check(r);
    if (chk) {
        runner_track(r, chk);
        if (def->kind == REG_CHECK_TTL && chk->output[0])
            r->ttl_output = xstrdup(chk->output);
    }
    switch (def->kind) {
    case REG_CHECK_TTL:
        ttl_arm(r);
        break;
    case REG_CHECK_HTTP:
    case REG_CHECK_TCP:
    case REG_CHECK_SCRIPT:
        uv_timer_start(&r->timer, on_tick, checks_random(c) % def_interval_ms(def), 0);
        break;
    default:
        break;
    }
}

void reg_checks_stop(struct reg_checks *c, const char *check_id)
{
    struct runner *r = smap_del(&c->runners, check_id);

    if (r)
        runner_stop(r);
}

/* Consul's suffix for output over OutputMaxSize. */
static char *ttl_truncate(const char *output, size_t max)
{
    size_t n = output ? strlen(output) : 0;

    if (n <= max)
        return xstrdup(output ? output : "");
    struct buf b = BUF_INIT;
    buf_append(&b, output, max);
    buf_printf(&b, " ... (captured %zu of %zu bytes)", max, n);
    return buf_steal(&b);
}

int reg_checks_ttl_update(struct reg_checks *c, const char *check_id, enum reg_health status,
                          const char *output)
{
    struct runner *r = smap_get(&c->runners, check_id);

    if (!r)
        return -ENOENT;
    if (r->def->kind != REG_CHECK_TTL)
        return -EINVAL;
    free(r->ttl_output);
    r->ttl_output = ttl_truncate(output, def_output_max(r->def));
    ttl_arm(r);
    runner_record(r, status, r->ttl_output);
    return 0;
}

/*
 * Every second: follow status changes made outside the runners and reap services past their
 * deadline. The reap callback may stop runners, so candidates are collected first; stopped
 * runners stay readable until the loop runs their close callbacks, after this one returns.
 */
static void on_reaper(uv_timer_t *t)
{
    struct reg_checks *c = t->data;
    size_t n = 0;

    if (c->runners.n == 0)
        return;
    struct runner **due = xmalloc(c->runners.n * sizeof(*due));
    smap_foreach(&c->runners, e)
    {
        struct runner *r = e->val;
        struct reg_check *chk = runner_check(r);
        if (chk)
            runner_track(r, chk);
        if (chk && runner_reapable(r))
            due[n++] = r;
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(due[j]->def->service_id, due[i]->def->service_id) == 0;
        if (dup || due[i]->stopped)
            due[i]->reaped = true;
        else
            runner_reap(due[i]);
    }
    free(due);
}

struct reg_checks *reg_checks_new(uv_loop_t *loop, struct reg_state *st, const char *node_name,
                                  reg_checks_reap_cb reap, void *reap_data)
{
    struct reg_checks *c = xcalloc(1, sizeof(*c));

    c->loop = loop;
    c->st = st;
    c->node_name = xstrdup(node_name);
    c->reap = reap;
    c->reap_data = reap_data;
    c->runners = SMAP_INIT;
    c->http = http_client_new(loop);
    c->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;
    if (c->rng == 0)
        c->rng = 1;
    uv_timer_init(loop, &c->reaper);
    c->reaper.data = c;
    uv_timer_start(&c->reaper, on_reaper, REAPER_PERIOD_MS, REAPER_PERIOD_MS);
    uv_unref((uv_handle_t *)&c->reaper); /* never keeps the loop alive on its own */
    return c;
}

static void on_reaper_closed(uv_handle_t *h)
{
    struct reg_checks *c = h->data;

    free(c->node_name);
    free(c);
}

void reg_checks_free(struct reg_checks *c)
{
    if (!c)
        return;
    smap_foreach(&c->runners, e) runner_stop(e->val);
    smap_free(&c->runners);
    http_client_free(c->http);
    c->http = NULL;
    uv_close((uv_handle_t *)&c->reaper, on_reaper_closed);
}
