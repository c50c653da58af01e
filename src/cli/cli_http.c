/*
 * The CLI's one way to the agent: resolve the address and token from flags and environment
 * as the consul CLI does, then run one request at a time on a private libuv loop until its
 * callback fires. Errors read like the Go API client's, so scripts written against the consul
 * CLI see the same text.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include "cli/cli_internal.h"
#include "lib/alloc.h"
#include "lib/http_client.h"
#include "lib/url.h"

#define CLI_DEFAULT_ADDR  "127.0.0.1:8500"
#define CLI_TIMEOUT_MS    (10 * 60 * 1000) /* the Go client sets none; bound it anyway */
#define CLI_MAX_BODY      (256u << 20)
#define CLI_MAX_TOKEN_LEN 4096

void cli_http_opts_free(struct cli_http_opts *o)
{
    FREE_NULL(o->http_addr);
    FREE_NULL(o->token);
    FREE_NULL(o->token_file);
    FREE_NULL(o->datacenter);
}

struct str cli_trim(struct str s)
{
    while (s.n && isspace((unsigned char)s.p[0]))
        s = str_skip(s, 1);
    while (s.n && isspace((unsigned char)s.p[s.n - 1]))
        s.n--;
    return s;
}

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Reads a token file: its content with surrounding whitespace trimmed, as consul does. */
static int read_token_file(const char *path, char **out, struct err *e)
{
    char chunk[512];
    struct buf b = BUF_INIT;
    size_t n;
    int rc = 0;
    FILE *f = fopen(path, "r");

    if (!f)
        return err_set(e, "Error loading token file: open %s: %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= CLI_MAX_TOKEN_LEN)
        buf_append(&b, chunk, n);
    if (ferror(f))
        rc = err_set(e, "Error loading token file: read %s: %s", path, strerror(errno));
    fclose(f);
    if (rc == 0) {
        struct str t = cli_trim(buf_str(&b));
        *out = xstrndup(t.p, t.n);
    }
    buf_free(&b);
    return rc;
}

static int resolve_token(const struct cli_http_opts *o, struct cli_endpoint *out, struct err *e)
{
    const char *v;

    if (o->token && *o->token) {
        out->token = xstrdup(o->token);
        return 0;
    }
    if (o->token_file && *o->token_file)
        return read_token_file(o->token_file, &out->token, e);
    if ((v = env_nonempty("MESH_HTTP_TOKEN")) || (v = env_nonempty("CONSUL_HTTP_TOKEN"))) {
        out->token = xstrdup(v);
        return 0;
    }
    if ((v = env_nonempty("MESH_HTTP_TOKEN_FILE")) || (v = env_nonempty("CONSUL_HTTP_TOKEN_FILE")))
        return read_token_file(v, &out->token, e);
    return 0;
}

/* The first of two variables that is set and not empty: MESH_x, else CONSUL_x. */
static const char *env_pair(const char *mesh, const char *consul)
{
    const char *v = env_nonempty(mesh);
    return v ? v : env_nonempty(consul);
}

/* Go's strconv.ParseBool for the true words; anything else is false. */
static bool env_true(const char *v)
{
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "t") == 0 || strcasecmp(v, "true") == 0);
}

static bool env_false(const char *v)
{
    return v && (strcmp(v, "0") == 0 || strcasecmp(v, "f") == 0 || strcasecmp(v, "false") == 0);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* The https settings of the consul CLI's environment variables. */
static void resolve_tls(struct cli_endpoint *out)
{
    out->tls_ca_file = dup_or_null(env_pair("MESH_CACERT", "CONSUL_CACERT"));
    out->tls_cert_file = dup_or_null(env_pair("MESH_CLIENT_CERT", "CONSUL_CLIENT_CERT"));
    out->tls_key_file = dup_or_null(env_pair("MESH_CLIENT_KEY", "CONSUL_CLIENT_KEY"));
    out->tls_server_name = dup_or_null(env_pair("MESH_TLS_SERVER_NAME", "CONSUL_TLS_SERVER_NAME"));
    out->tls_skip_verify = env_false(env_pair("MESH_HTTP_SSL_VERIFY", "CONSUL_HTTP_SSL_VERIFY"));
}

int cli_endpoint_resolve(const struct cli_http_opts *o, struct cli_endpoint *out, struct err *e)
{
    struct url_parts parts;
    const char *addr = o->http_addr && *o->http_addr ? o->http_addr : NULL;
    const char *ssl = env_pair("MESH_HTTP_SSL", "CONSUL_HTTP_SSL");
    int rc;

    memset(out, 0, sizeof(*out));
    if (!addr && !(addr = env_nonempty("MESH_HTTP_ADDR")) &&
        !(addr = env_nonempty("CONSUL_HTTP_ADDR")))
        addr = CLI_DEFAULT_ADDR;
    if (url_split(addr, &parts) < 0)
        return err_set(e, "Error parsing HTTP address %s: expected host:port or http://host:port",
                       addr);
    url_parts_free(&parts); /* only host and port are used: a path prefix is ignored */
    /* An explicit scheme wins over CONSUL_HTTP_SSL, as in the Go API client. */
    out->tls = parts.https || (env_true(ssl) && strncmp(addr, "http://", 7) != 0);
    if (out->tls)
        resolve_tls(out);
    snprintf(out->host, sizeof(out->host), "%s", parts.host);
    out->port = parts.port;
    rc = resolve_token(o, out, e);
    if (rc < 0)
        cli_endpoint_free(out);
    return rc;
}

void cli_endpoint_free(struct cli_endpoint *ep)
{
    FREE_NULL(ep->token);
    FREE_NULL(ep->tls_ca_file);
    FREE_NULL(ep->tls_cert_file);
    FREE_NULL(ep->tls_key_file);
    FREE_NULL(ep->tls_server_name);
}

int cli_http_open(struct cli_http *h, const struct cli_http_opts *o, struct err *e)
{
    int rc;

    memset(h, 0, sizeof(*h));
    rc = cli_endpoint_resolve(o, &h->ep, e);
    if (rc < 0)
        return rc;
    h->datacenter = o->datacenter && *o->datacenter ? xstrdup(o->datacenter) : NULL;
    h->stale = o->stale;
    rc = uv_loop_init(&h->loop);
    if (rc < 0) {
        err_set(e, "Error: event loop: %s", uv_strerror(rc));
        FREE_NULL(h->datacenter);
        cli_endpoint_free(&h->ep);
        return rc;
    }
    h->client = http_client_new(&h->loop);
    return 0;
}

void cli_http_close(struct cli_http *h)
{
    if (!h->client)
        return;
    http_client_free(h->client);
    h->client = NULL;
    /* Let the pool's close callbacks run before the loop goes. */
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_loop_close(&h->loop);
    FREE_NULL(h->datacenter);
    cli_endpoint_free(&h->ep);
}

void cli_response_free(struct cli_response *r)
{
    buf_free(&r->body);
}

void cli_query_add(struct buf *target, const char *name, const char *value)
{
    bool has_query = target->len && memchr(target->data, '?', target->len);

    buf_append_cstr(target, has_query ? "&" : "?");
    buf_append_cstr(target, name);
    if (value) {
        buf_append_cstr(target, "=");
        url_encode(target, str_from(value), false);
    }
}

struct call_wait {
    bool done;
    int status;
    struct cli_response *res;
    const struct http_client *client;
    char detail[256]; /* http_client_error() of a failure, e.g. a TLS verification error */
};

static void on_response(int status, const struct http_client_response *r, void *data)
{
    struct call_wait *w = data;
    const char *detail = status < 0 ? http_client_error(w->client) : NULL;

    w->done = true;
    w->status = status;
    if (detail)
        snprintf(w->detail, sizeof(w->detail), "%s", detail);
    if (status == 0) {
        w->res->status = r->status;
        buf_append(&w->res->body, r->body, r->body_len);
    }
}

/* Go's url.Error text for a transport failure: `Get "<url>": <reason>`. */
static void transport_error(const struct cli_http *h, const char *method, const char *target,
                            const struct call_wait *w, struct err *e)
{
    int status = w->status;
    const char *scheme = h->ep.tls ? "https" : "http";
    char op[16];
    const char *host = h->ep.host;
    bool v6 = strchr(host, ':') != NULL;
    char hp[300];

    snprintf(op, sizeof(op), "%s", method);
    for (size_t i = 1; op[i]; i++)
        op[i] = (char)tolower((unsigned char)op[i]);
    snprintf(hp, sizeof(hp), "%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "", h->ep.port);
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
                w->detail[0] ? w->detail : uv_strerror(status));
        break;
    }
}

int cli_http_call(struct cli_http *h, const char *method, const char *target, const void *body,
                  size_t body_len, unsigned flags, struct cli_response *res, struct err *e)
{
    struct buf t = BUF_INIT;
    struct http_header headers[2] = {
        {STR_LIT("User-Agent"), STR_LIT("mesh-cli/" MESH_VERSION)},
        {STR_LIT("X-Consul-Token"), str_from(h->ep.token)},
    };
    struct call_wait w = {.res = res, .client = h->client};
    int rc = 0;

    res->status = 0;
    buf_reset(&res->body);
    buf_append_cstr(&t, target);
    if (h->datacenter)
        cli_query_add(&t, "dc", h->datacenter);
    if ((flags & CLI_READ) && h->stale)
        cli_query_add(&t, "stale", NULL);

    struct http_client_request req = {
        .method = method,
        .host = h->ep.host,
        .port = h->ep.port,
        .target = t.data,
        .headers = headers,
        .num_headers = h->ep.token ? 2 : 1,
        .body = body,
        .body_len = body_len,
        .timeout_ms = CLI_TIMEOUT_MS,
        .max_body = CLI_MAX_BODY,
        .tls = h->ep.tls,
        .tls_skip_verify = h->ep.tls_skip_verify,
        .tls_ca_file = h->ep.tls_ca_file,
        .tls_cert_file = h->ep.tls_cert_file,
        .tls_key_file = h->ep.tls_key_file,
        .tls_server_name = h->ep.tls_server_name,
    };
    http_client_send(h->client, &req, on_response, &w);
    /* The callback always comes (success, error or timeout); it ends the wait. */
    while (!w.done)
        uv_run(&h->loop, UV_RUN_ONCE);

    if (w.status < 0) {
        transport_error(h, method, t.data, &w, e);
        rc = w.status;
    } else if (res->status != 200 && !(res->status == 404 && (flags & CLI_ALLOW_404))) {
        struct str trimmed = cli_trim(buf_str(&res->body));
        err_set(e, "Unexpected response code: %d (%.*s)", res->status, STR_FMT(trimmed));
        buf_reset(&res->body);
        rc = -EIO;
    }
    buf_free(&t);
    return rc;
}

json_t *cli_json(const struct cli_response *res, struct err *e)
{
    json_error_t je;
    json_t *v =
        json_loadb(res->body.data ? res->body.data : "", res->body.len, JSON_DECODE_ANY, &je);

    if (!v)
        err_set(e, "Failed to decode response: %s", je.text);
    return v;
}

bool cli_parse_flags(struct flag *flags, size_t n, const char *usage, int argc, char **argv,
                     int *first_arg, int *exit_code)
{
    struct err e;
    int rc = flags_parse(flags, n, argc, argv, first_arg, &e);

    if (rc == 0)
        return true;
    if (rc == FLAGS_HELP) {
        flags_usage(stdout, usage, flags, n);
        *exit_code = 0;
    } else {
        fprintf(stderr, "%s\n", e.msg);
        flags_usage(stderr, usage, flags, n);
        *exit_code = 1;
    }
    return false;
}
