/* Consul's HTTP API from the client side: endpoint, token, error texts, blocking queries. */
#include "lib/consul_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/url.h"

#define CONSUL_MAX_TOKEN_LEN 4096

/* ---- the endpoint ------------------------------------------------------------------------ */

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

/* CONSUL_<name>, with MESH_<name> read first; empty values are skipped. */
static const char *env_var(const char *name)
{
    char mesh[64], consul[64];
    const char *v;

    snprintf(mesh, sizeof(mesh), "MESH_%s", name);
    snprintf(consul, sizeof(consul), "CONSUL_%s", name);
    v = nonempty(getenv(mesh));
    return v ? v : nonempty(getenv(consul));
}

/* Go's strconv.ParseBool: 1 for its true words, 0 for its false words, -1 otherwise. */
static int parse_bool(const char *v)
{
    if (!v)
        return -1;
    if (strcmp(v, "1") == 0 || strcasecmp(v, "t") == 0 || strcasecmp(v, "true") == 0)
        return 1;
    if (strcmp(v, "0") == 0 || strcasecmp(v, "f") == 0 || strcasecmp(v, "false") == 0)
        return 0;
    return -1;
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static struct str trim(struct str s)
{
    while (s.n && isspace((unsigned char)s.p[0]))
        s = str_skip(s, 1);
    while (s.n && isspace((unsigned char)s.p[s.n - 1]))
        s.n--;
    return s;
}

/* A token file's content with surrounding whitespace trimmed, as consul reads it. */
static int read_token_file(const char *path, char **out, struct err *e)
{
    char chunk[512];
    struct buf b = BUF_INIT;
    size_t n;
    int rc = 0;
    FILE *f = fopen(path, "r");

    if (!f)
        return err_set(e, "Error loading token file: open %s: %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= CONSUL_MAX_TOKEN_LEN)
        buf_append(&b, chunk, n);
    if (ferror(f))
        rc = err_set(e, "Error loading token file: read %s: %s", path, strerror(errno));
    fclose(f);
    if (rc == 0) {
        struct str t = trim(buf_str(&b));
        *out = xstrndup(t.p, t.n);
    }
    buf_free(&b);
    return rc;
}

static int resolve_token(struct consul_endpoint *ep, const struct consul_flags *f, struct err *e)
{
    const char *v;
    int rc = 0;

    if ((v = nonempty(f->token)))
        ep->token = xstrdup(v);
    else if ((v = nonempty(f->token_file)))
        rc = read_token_file(v, &ep->token, e);
    else if ((v = env_var("HTTP_TOKEN")))
        ep->token = xstrdup(v);
    else if ((v = env_var("HTTP_TOKEN_FILE")))
        rc = read_token_file(v, &ep->token, e);
    if (rc == 0 && ep->token && !ep->token[0])
        FREE_NULL(ep->token);
    /* The token goes into a header line: a line break in it would forge headers. */
    if (rc == 0 && ep->token && strpbrk(ep->token, "\r\n"))
        rc = err_set(e, "invalid ACL token: it contains a line break");
    return rc;
}

/* True when the authority of addr (after any scheme) names a port: "h:1", "[::1]:1". */
static bool has_port(const char *addr)
{
    const char *s = strstr(addr, "://");
    const char *end, *colon, *bracket;

    s = s ? s + 3 : addr;
    end = s + strcspn(s, "/?");
    colon = memrchr(s, ':', (size_t)(end - s));
    bracket = memrchr(s, ']', (size_t)(end - s));
    return colon && (!bracket || colon > bracket);
}

int consul_endpoint_resolve(struct consul_endpoint *ep, const struct consul_flags *flags,
                            struct err *e)
{
    static const struct consul_flags none;
    const struct consul_flags *f = flags ? flags : &none;
    const char *addr = nonempty(f->addr);
    struct url_parts u;
    int rc;

    memset(ep, 0, sizeof(*ep));
    if (!addr && !(addr = env_var("HTTP_ADDR")))
        addr = CONSUL_DEFAULT_ADDR;
    if (url_split(addr, &u) < 0)
        return err_set(e, "Error parsing HTTP address %s: expected host:port or http://host:port",
                       addr);
    url_parts_free(&u); /* host and port only: a path prefix is ignored */
    /* An explicit scheme wins over CONSUL_HTTP_SSL, as in the Go API client. */
    ep->tls = u.https || (strncmp(addr, "http://", 7) != 0 &&
                          (f->tls || parse_bool(env_var("HTTP_SSL")) == 1));
    if (!has_port(addr))
        u.port = ep->tls ? 8501 : 8500;
    ep->addr = xstrdup(addr);
    snprintf(ep->host, sizeof(ep->host), "%s", strcmp(u.host, "localhost") ? u.host : "127.0.0.1");
    ep->port = u.port;
    if (ep->tls) {
        const char *name = env_var("TLS_SERVER_NAME");
        if (!name && strcmp(u.host, "localhost") == 0)
            name = "localhost"; /* the certificate is for the name given, not the address */
        ep->tls_server_name = dup_or_null(name);
        ep->tls_ca_file = dup_or_null(nonempty(f->ca_file) ? f->ca_file : env_var("CACERT"));
        ep->tls_cert_file =
            dup_or_null(nonempty(f->cert_file) ? f->cert_file : env_var("CLIENT_CERT"));
        ep->tls_key_file = dup_or_null(nonempty(f->key_file) ? f->key_file : env_var("CLIENT_KEY"));
        ep->tls_skip_verify = parse_bool(env_var("HTTP_SSL_VERIFY")) == 0;
    }
    rc = resolve_token(ep, f, e);
    if (rc < 0)
        consul_endpoint_free(ep);
    return rc;
}

void consul_endpoint_free(struct consul_endpoint *ep)
{
    FREE_NULL(ep->addr);
    FREE_NULL(ep->token);
    FREE_NULL(ep->tls_ca_file);
    FREE_NULL(ep->tls_cert_file);
    FREE_NULL(ep->tls_key_file);
    FREE_NULL(ep->tls_server_name);
    memset(ep, 0, sizeof(*ep));
}

void consul_endpoint_copy(struct consul_endpoint *dst, const struct consul_endpoint *src)
{
    *dst = *src;
    dst->addr = dup_or_null(src->addr);
    dst->token = dup_or_null(src->token);
    dst->tls_ca_file = dup_or_null(src->tls_ca_file);
    dst->tls_cert_file = dup_or_null(src->tls_cert_file);
    dst->tls_key_file = dup_or_null(src->tls_key_file);
    dst->tls_server_name = dup_or_null(src->tls_server_name);
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool consul_endpoint_equal(const struct consul_endpoint *a, const struct consul_endpoint *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port && a->tls == b->tls &&
           a->tls_skip_verify == b->tls_skip_verify && same(a->token, b->token) &&
           same(a->tls_ca_file, b->tls_ca_file) && same(a->tls_cert_file, b->tls_cert_file) &&
           same(a->tls_key_file, b->tls_key_file) && same(a->tls_server_name, b->tls_server_name);
}

/* ---- requests and errors ----------------------------------------------------------------- */

size_t consul_token_field(const char *token, struct http_header *out)
{
    if (!token || !*token)
        return 0;
    *out = (struct http_header){.name = STR_LIT("X-Consul-Token"), .value = str_from(token)};
    return 1;
}

void consul_request_init(struct http_client_request *r, const struct consul_endpoint *ep,
                         struct http_header *fields, size_t n)
{
    r->host = ep->host;
    r->port = ep->port;
    r->headers = fields;
    r->num_headers = n + consul_token_field(ep->token, &fields[n]);
    r->max_body = CONSUL_MAX_BODY;
    r->tls = ep->tls;
    r->tls_skip_verify = ep->tls_skip_verify;
    r->tls_ca_file = ep->tls_ca_file;
    r->tls_cert_file = ep->tls_cert_file;
    r->tls_key_file = ep->tls_key_file;
    r->tls_server_name = ep->tls_server_name;
}

void consul_transport_error(const struct consul_endpoint *ep, const char *method,
                            const char *target, int status, const char *detail, struct err *e)
{
    const char *scheme = ep->tls ? "https" : "http";
    const char *host = ep->host;
    bool v6 = strchr(host, ':') != NULL;
    char op[16], hp[300];

    /* Go names the method capitalised: Get, Put, Delete. */
    snprintf(op, sizeof(op), "%s", method ? method : "GET");
    for (size_t i = 1; op[i]; i++)
        op[i] = (char)tolower((unsigned char)op[i]);
    snprintf(hp, sizeof(hp), "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", ep->port);
    switch (status) {
    case UV_ECONNREFUSED:
    case UV_EHOSTUNREACH:
    case UV_ENETUNREACH:
    case UV_EADDRNOTAVAIL:
        err_set(e, "%s \"%s://%s%s\": dial tcp %s: connect: %s", op, scheme, hp, target, hp,
                uv_strerror(status));
        break;
    case UV_EAI_NONAME:
    case UV_EAI_AGAIN:
    case UV_EAI_FAIL:
    case UV_EAI_NODATA:
        err_set(e, "%s \"%s://%s%s\": dial tcp: lookup %s: no such host", op, scheme, hp, target,
                host);
        break;
    case UV_ETIMEDOUT:
        err_set(e, "%s \"%s://%s%s\": context deadline exceeded", op, scheme, hp, target);
        break;
    case UV_EOF:
    case UV_ECONNRESET:
        err_set(e, "%s \"%s://%s%s\": EOF", op, scheme, hp, target);
        break;
    default:
        err_set(e, "%s \"%s://%s%s\": %s", op, scheme, hp, target,
                detail && *detail ? detail : uv_strerror(status));
        break;
    }
}

void consul_status_error(int status, const char *body, size_t len, struct err *e)
{
    struct str t = trim((struct str){body ? body : "", body ? len : 0});
    size_t line = 0;

    while (line < t.n && t.p[line] != '\r' && t.p[line] != '\n')
        line++;
    err_set(e, "Unexpected response code: %d (%.*s)", status, (int)line, t.p);
}

/* ---- blocking queries -------------------------------------------------------------------- */

struct consul_watch {
    uv_loop_t *loop;
    struct http_client *client;
    const struct consul_endpoint *ep;
    const struct consul_watch_ops *ops;
    void *data;
    char *target;
    bool once, stopping, outage;
    struct http_call *call;
    uv_timer_t timer;
    uint64_t index, last_fetch_ms, backoff_ms;
};

/* The server may hold a query for wait plus wait/16 of jitter; then allow for the network. */
#define WATCH_TIMEOUT_MS ((uint64_t)CONSUL_WATCH_WAIT_MS * 17 / 16 + 10000)

uint64_t consul_watch_next_index(uint64_t last, uint64_t answered)
{
    if (answered < 1)
        answered = 1;
    return answered < last ? 0 : answered;
}

static void watch_fetch(struct consul_watch *w);

static void on_timer(uv_timer_t *t)
{
    watch_fetch(t->data);
}

static void watch_failed(struct consul_watch *w, const char *why)
{
    if (!w->outage && w->ops->outage)
        w->ops->outage(w->data, why);
    w->outage = true;
    w->index = 0;
    w->backoff_ms = w->backoff_ms ? w->backoff_ms * 2 : CONSUL_WATCH_BACKOFF_MIN;
    if (w->backoff_ms > CONSUL_WATCH_BACKOFF_MAX)
        w->backoff_ms = CONSUL_WATCH_BACKOFF_MAX;
    uv_timer_start(&w->timer, on_timer, w->backoff_ms, 0);
}

static void on_answer(int status, const struct http_client_response *res, void *data)
{
    struct consul_watch *w = data;
    struct err e = {{0}};

    w->call = NULL;
    if (status == UV_ECANCELED || w->stopping)
        return;
    if (status < 0) {
        consul_transport_error(w->ep, "GET", w->target, status, http_client_error(w->client), &e);
        watch_failed(w, e.msg);
        return;
    }
    if (w->ops->answer(w->data, res, &e) < 0) {
        watch_failed(w, e.msg);
        return;
    }
    if (w->stopping) /* the consumer freed the watch from its callback */
        return;
    w->index = consul_watch_next_index(w->index, http_client_index(res));
    if (w->outage && w->ops->outage)
        w->ops->outage(w->data, NULL);
    w->outage = false;
    w->backoff_ms = 0;
    if (w->once || w->stopping)
        return;
    uint64_t since = uv_now(w->loop) - w->last_fetch_ms;
    uv_timer_start(&w->timer, on_timer,
                   since >= CONSUL_WATCH_MIN_GAP_MS ? 0 : CONSUL_WATCH_MIN_GAP_MS - since, 0);
}

static void watch_fetch(struct consul_watch *w)
{
    struct buf target = BUF_INIT;
    struct http_header fields[1];
    struct http_client_request req = {.method = "GET", .timeout_ms = WATCH_TIMEOUT_MS};

    if (w->stopping)
        return;
    buf_append_cstr(&target, w->target);
    if (!w->once)
        buf_printf(&target, "%cindex=%llu&wait=" CONSUL_WATCH_WAIT,
                   strchr(w->target, '?') ? '&' : '?', (unsigned long long)w->index);
    consul_request_init(&req, w->ep, fields, 0);
    req.target = target.data;
    w->last_fetch_ms = uv_now(w->loop);
    w->call = http_client_send(w->client, &req, on_answer, w);
    buf_free(&target);
}

struct consul_watch *consul_watch_start(struct http_client *client, uv_loop_t *loop,
                                        const struct consul_endpoint *ep, const char *target,
                                        bool once, const struct consul_watch_ops *ops, void *data)
{
    struct consul_watch *w = xcalloc(1, sizeof(*w));

    w->loop = loop;
    w->client = client;
    w->ep = ep;
    w->ops = ops;
    w->data = data;
    w->target = xstrdup(target);
    w->once = once;
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, on_timer, 0, 0);
    return w;
}

uint64_t consul_watch_index(const struct consul_watch *w)
{
    return w->index;
}

static void on_closed(uv_handle_t *h)
{
    struct consul_watch *w = h->data;

    free(w->target);
    free(w);
}

void consul_watch_free(struct consul_watch *w)
{
    if (!w)
        return;
    w->stopping = true;
    if (w->call)
        http_call_cancel(w->call);
    w->call = NULL;
    uv_close((uv_handle_t *)&w->timer, on_closed);
}
