/*
 * The CLI's one way to the agent: resolve the address and token from flags and environment
 * as the consul CLI does (lib/consul_client.h), then run one request at a time on a private libuv
 * loop until its callback fires. Errors read like the Go API client's, so scripts written against
 * the consul CLI see the same text.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/http_client.h"
#include "lib/url.h"

#define CLI_TIMEOUT_MS (10 * 60 * 1000) /* the Go client sets none; bound it anyway */

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

/*
 * With no agent named by a flag or the environment, a -secure cluster in the run directory
 * (MESH_RUN_DIR, else ./run) is the one meant, since its agents answer HTTPS only: true with
 * its server's address in addr and the environment set to reach it (its CA, client certificate
 * and token). A plain cluster needs nothing: the default address reaches it.
 */
static bool secure_cluster_addr(const struct cli_http_opts *o, char *addr, size_t len)
{
    static const char *const vars[] = {"MESH_HTTP_ADDR", "CONSUL_HTTP_ADDR"};
    struct cluster_state s;
    struct err e;

    if (o->http_addr && *o->http_addr)
        return false;
    for (size_t i = 0; i < ARRAY_LEN(vars); i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return false;
    }
    if (cluster_state_load(cluster_run_dir(NULL), &s, &e) < 0 || !s.secure)
        return false;
    cluster_secure_env(&s);
    snprintf(addr, len, "https://%s:%d", s.nodes[0].addr, s.nodes[0].agent_port);
    return true;
}

int cli_http_open(struct cli_http *h, const struct cli_http_opts *o, struct err *e)
{
    struct consul_flags flags = {
        .addr = o->http_addr, .token = o->token, .token_file = o->token_file};
    char addr[96];
    int rc;

    memset(h, 0, sizeof(*h));
    if (secure_cluster_addr(o, addr, sizeof(addr)))
        flags.addr = addr;
    rc = consul_endpoint_resolve(&h->ep, &flags, e);
    if (rc < 0)
        return rc;
    h->datacenter = o->datacenter && *o->datacenter ? xstrdup(o->datacenter) : NULL;
    h->stale = o->stale;
    rc = uv_loop_init(&h->loop);
    if (rc < 0) {
        err_set(e, "Error: event loop: %s", uv_strerror(rc));
        FREE_NULL(h->datacenter);
        consul_endpoint_free(&h->ep);
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
    consul_endpoint_free(&h->ep);
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

int cli_http_call(struct cli_http *h, const char *method, const char *target, const void *body,
                  size_t body_len, unsigned flags, struct cli_response *res, struct err *e)
{
    struct buf t = BUF_INIT;
    struct http_header fields[2] = {
        {.name = STR_LIT("User-Agent"), .value = STR_LIT("mesh-cli/" MESH_VERSION)}};
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
        .target = t.data,
        .body = body,
        .body_len = body_len,
        .timeout_ms = CLI_TIMEOUT_MS,
    };
    consul_request_init(&req, &h->ep, fields, 1);
    http_client_send(h->client, &req, on_response, &w);
    /* The callback always comes (success, error or timeout); it ends the wait. */
    while (!w.done)
        uv_run(&h->loop, UV_RUN_ONCE);

    if (w.status < 0) {
        consul_transport_error(&h->ep, method, t.data, w.status, w.detail, e);
        rc = w.status;
    } else if (res->status != 200 && !(res->status == 404 && (flags & CLI_ALLOW_404))) {
        consul_status_error(res->status, res->body.data, res->body.len, e);
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

int cli_connect(struct cli_http *h, const struct cli_http_opts *o)
{
    struct err e;

    if (cli_http_open(h, o, &e) == 0)
        return 0;
    fprintf(stderr, "Error connecting to the agent: %s\n", e.msg);
    return -1;
}

/* One request on a connection of its own; *out gets the answer parsed when out is given. */
static int call_once(const struct cli_http_opts *o, const char *method, const char *target,
                     unsigned flags, const char *what, json_t **out)
{
    struct cli_http h;
    struct cli_response res = {0};
    struct err e;
    int rc = -1;

    if (cli_connect(&h, o) < 0)
        return -1;
    if (cli_http_call(&h, method, target, NULL, 0, flags, &res, &e) < 0 ||
        (out && !(*out = cli_json(&res, &e))))
        fprintf(stderr, "%s: %s\n", what, e.msg);
    else
        rc = 0;
    cli_response_free(&res);
    cli_http_close(&h);
    return rc;
}

json_t *cli_call_json(const struct cli_http_opts *o, const char *method, const char *target,
                      unsigned flags, const char *what)
{
    json_t *v = NULL;

    call_once(o, method, target, flags, what, &v);
    return v;
}

int cli_call(const struct cli_http_opts *o, const char *method, const char *target,
             const char *what)
{
    return call_once(o, method, target, 0, what, NULL);
}

bool cli_parse_command(struct flag *flags, size_t n, const char *usage, int argc, char **argv,
                       int max_args, int *first_arg, int *exit_code)
{
    if (!cli_parse_flags(flags, n, usage, argc, argv, first_arg, exit_code))
        return false;
    int nargs = argc - *first_arg;
    if (nargs <= max_args)
        return true;
    fprintf(stderr, "Too many arguments (expected %d, got %d)\n", max_args, nargs);
    *exit_code = 1;
    return false;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "-help") == 0 || strcmp(arg, "--help") == 0;
}

int cli_subcommand(const char *cmd, const char *usage, const struct cli_subcommand *subs, size_t n,
                   int argc, char **argv)
{
    for (size_t i = 0; argc >= 2 && i < n; i++)
        if (strcmp(argv[1], subs[i].name) == 0)
            return subs[i].run(argc - 1, argv + 1);
    if (argc >= 2 && cli_is_help(argv[1])) {
        printf("Usage: %s", usage);
        return 0;
    }
    if (argc >= 2)
        fprintf(stderr, "%s: unknown subcommand \"%s\"\n\n", cmd, argv[1]);
    fprintf(stderr, "Usage: %s", usage);
    return 1;
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
