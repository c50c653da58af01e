/*
 * A request's bytes: the request line with its query string, Host, the headers (the script's
 * and the config's defaults) and the body (json or body), templates rendered from the virtual
 * user's variables; and where it goes (the target, or an absolute URL's host). Requests that
 * hold no template are built once, at start (load_vu_prepare_static).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "lib/net.h"
#include "lib/url.h"
#include "load/engine_internal.h"
#include "load/template.h"

/* Whether out[from..) holds a control byte other than tab (space_too: or a space). */
static bool has_control(const struct buf *out, size_t from, bool space_too)
{
    for (size_t i = from; i < out->len; i++) {
        unsigned char ch = (unsigned char)out->data[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f || (space_too && ch == ' '))
            return true;
    }
    return false;
}

/* See engine_internal.h. A value with a line break would inject headers: refused. */
const char *load_request_append(struct buf *out, const struct load_request *r, const char *path,
                                const char *host, const json_t *vars, uint64_t *rng)
{
    struct buf body = BUF_INIT;
    bool has_ct = false;
    const char *bad = NULL;
    size_t from, ua;

    buf_printf(out, "%s ", r->method);
    from = out->len;
    /* path is rendered already (or static): rendering it again would expand "{{ }}" that a
     * captured value brought, e.g. "{{ $env.SECRET }}" from the server */
    buf_append_cstr(out, path);
    if (has_control(out, from, true))
        bad = "ERR_UNESCAPED_CHARACTERS";
    for (size_t i = 0; i < r->n_qs; i++) {
        struct buf v = BUF_INIT;

        buf_append_cstr(out, i == 0 && !strchr(path, '?') ? "?" : "&");
        url_encode(out, str_from(r->qs[i].name), false);
        buf_append_cstr(out, "=");
        load_tmpl_render(&v, r->qs[i].value, vars, rng);
        url_encode(out, buf_str(&v), false);
        buf_free(&v);
    }
    buf_printf(out, " HTTP/1.1\r\nHost: %s\r\n", host);
    for (ua = 0; ua < r->n_headers && strcasecmp(r->headers[ua].name, "User-Agent") != 0; ua++)
        ;
    if (ua == r->n_headers) /* the script's own, else ours */
        buf_append_cstr(out, "User-Agent: mesh-load/" MESH_VERSION "\r\n");
    for (size_t i = 0; i < r->n_headers; i++) {
        buf_printf(out, "%s: ", r->headers[i].name);
        from = out->len;
        load_tmpl_render(out, r->headers[i].value, vars, rng);
        if (!bad && has_control(out, from, false))
            bad = "ERR_INVALID_CHAR";
        buf_append_cstr(out, "\r\n");
        has_ct |= strcasecmp(r->headers[i].name, "Content-Type") == 0;
    }
    if (r->json) {
        json_t *doc = load_tmpl_json(r->json, vars, rng);

        json_append(&body, doc, false);
        json_decref(doc);
        if (!has_ct)
            buf_append_cstr(out, "Content-Type: application/json\r\n");
    } else if (r->body) {
        load_tmpl_render(&body, r->body, vars, rng);
    }
    if (r->json || r->body || strcmp(r->method, "POST") == 0 || strcmp(r->method, "PUT") == 0 ||
        strcmp(r->method, "PATCH") == 0)
        buf_printf(out, "Content-Length: %zu\r\n", body.len);
    buf_append_cstr(out, "\r\n");
    buf_append(out, body.data ? body.data : "", body.len);
    buf_free(&body);
    return bad;
}

static bool request_is_static(const struct load_request *r)
{
    if (r->before.n || !load_tmpl_is_static(r->url) || strncmp(r->url, "http", 4) == 0 ||
        !load_tmpl_is_static(r->body) || (r->json && !load_tmpl_json_is_static(r->json)))
        return false;
    for (size_t i = 0; i < r->n_headers; i++)
        if (!load_tmpl_is_static(r->headers[i].value))
            return false;
    for (size_t i = 0; i < r->n_qs; i++)
        if (!load_tmpl_is_static(r->qs[i].value))
            return false;
    return true;
}

static void prepare_steps(struct load_step *steps, size_t n, const struct load_target *t)
{
    for (size_t i = 0; i < n; i++) {
        struct load_request *r = &steps[i].req;
        struct buf b = BUF_INIT;
        uint64_t rng = 1;

        if (steps[i].kind == LOAD_STEP_LOOP)
            prepare_steps(steps[i].steps, steps[i].n_steps, t);
        if (steps[i].kind != LOAD_STEP_REQUEST || !request_is_static(r))
            continue;
        if (load_request_append(&b, r, r->url, t->dest.host_header, NULL, &rng)) {
            buf_free(&b); /* sent as a templated request, which fails it */
            continue;
        }
        r->wire_len = b.len;
        r->wire = buf_steal(&b);
    }
}

void load_vu_prepare_static(struct load_script *s, const struct load_target *t)
{
    for (size_t i = 0; i < s->n_scenarios; i++)
        prepare_steps(s->scenarios[i].steps, s->scenarios[i].n_steps, t);
}

/*
 * Where the request goes: the target, or an absolute http(s):// URL's host when it is the
 * target's or a numeric address (names would need a resolver on the loop; they fail with
 * ENOTFOUND). *path points into url or pathbuf.
 */
int load_request_dest(const struct load_target *t, const char *url, struct load_dest *d,
                      const char **path, struct buf *pathbuf)
{
    struct url_parts u;
    int rc = 0;

    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        *d = t->dest;
        *path = url;
        return 0;
    }
    if (url_split(url, &u) < 0)
        return -1;
    buf_append_cstr(pathbuf, u.path);
    *path = pathbuf->data;
    d->https = u.https;
    snprintf(d->host, sizeof(d->host), "%s", u.host);
    snprintf(d->host_header, sizeof(d->host_header),
             u.port == (u.https ? 443 : 80) ? "%s" : (strchr(u.host, ':') ? "[%s]:%d" : "%s:%d"),
             u.host, u.port);
    if (u.port == t->port && strcmp(u.host, t->dest.host) == 0)
        d->addr = t->dest.addr;
    else if (net_parse_addr(u.host, u.port, &d->addr) < 0)
        rc = -2;
    url_parts_free(&u);
    return rc;
}
