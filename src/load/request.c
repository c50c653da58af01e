/*
 * A request's bytes: the request line with its query string, Host, the headers (the script's
 * and the config's defaults) and the body (json or body), templates rendered from the virtual
 * user's variables; and where it goes (the target, or an absolute URL's host). Requests that
 * hold no template are built once, at start (load_vu_prepare_static).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/alloc.h"
#include "lib/base64.h"
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

/* auth: Basic credentials, as got sends a URL's username and password. True when a rendered
 * value would break the header. */
static bool append_auth(struct buf *out, const struct load_request *r, const json_t *vars,
                        uint64_t *rng)
{
    struct buf cred = BUF_INIT;
    bool bad;
    char *b64;

    load_tmpl_render(&cred, r->auth_user, vars, rng);
    buf_append_cstr(&cred, ":");
    load_tmpl_render(&cred, r->auth_pass, vars, rng);
    b64 = base64_encode(cred.data, cred.len);
    bad = has_control(&cred, 0, false);
    if (!bad)
        buf_printf(out, "Authorization: Basic %s\r\n", b64);
    free(b64);
    buf_free(&cred);
    return bad;
}

/* application/x-www-form-urlencoded as URLSearchParams writes it: space as '+'. */
static void form_encode(struct buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (isalnum(c) || c == '*' || c == '-' || c == '.' || c == '_') {
            buf_append(out, &s[i], 1);
        } else if (c == ' ') {
            buf_append(out, "+", 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

            buf_append(out, esc, sizeof(esc));
        }
    }
}

/*
 * form (url-encoded) or formData (multipart, as the form-data package writes it: a boundary of
 * 26 dashes and 24 hexadecimal digits, one part per field with its Content-Type when given) into
 * body, and their Content-Type header unless the script sets one.
 */
static void append_form(struct buf *out, struct buf *body, const struct load_request *r,
                        bool has_ct, const json_t *vars, uint64_t *rng)
{
    char boundary[64];
    int n = snprintf(boundary, sizeof(boundary), "--------------------------");

    for (int i = 0; i < 24; i++)
        boundary[n++] = "0123456789abcdef"[load_rand(rng) % 16];
    boundary[n] = '\0';
    for (size_t i = 0; i < r->n_form; i++) {
        struct buf v = BUF_INIT;

        if (r->form[i].file) /* a file part's bytes, as they are */
            buf_append(&v, r->form[i].value, r->form[i].value_len);
        else
            load_tmpl_render(&v, r->form[i].value, vars, rng);
        if (!r->multipart) {
            if (i)
                buf_append_cstr(body, "&");
            form_encode(body, r->form[i].name, strlen(r->form[i].name));
            buf_append_cstr(body, "=");
            form_encode(body, v.data ? v.data : "", v.len);
        } else {
            buf_printf(body, "--%s\r\nContent-Disposition: form-data; name=\"%s\"", boundary,
                       r->form[i].name);
            if (r->form[i].file)
                buf_printf(body, "; filename=\"%s\"", r->form[i].file);
            buf_append_cstr(body, "\r\n");
            if (r->form[i].type)
                buf_printf(body, "Content-Type: %s\r\n", r->form[i].type);
            buf_append_cstr(body, "\r\n");
            buf_append(body, v.data ? v.data : "", v.len);
            buf_append_cstr(body, "\r\n");
        }
        buf_free(&v);
    }
    if (r->multipart)
        buf_printf(body, "--%s--\r\n", boundary);
    if (has_ct)
        return;
    if (r->multipart)
        buf_printf(out, "Content-Type: multipart/form-data; boundary=%s\r\n", boundary);
    else
        buf_append_cstr(out, "Content-Type: application/x-www-form-urlencoded\r\n");
}

/* See engine_internal.h. A value with a line break would inject headers: refused. */
const char *load_request_append(struct buf *out, const struct load_request *r, const char *path,
                                const char *host, const char *cookie, const json_t *vars,
                                uint64_t *rng)
{
    struct buf body = BUF_INIT;
    bool has_ct = false, has_auth = false;
    const char *bad = NULL;
    size_t from, ua;

    buf_printf(out, "%s ", r->method);
    from = out->len;
    /* path is rendered already (or static): rendering it again would expand "{{ }}" that a
     * captured value brought, e.g. "{{ $env.SECRET }}" from the server */
    /* qs replaces the url's query string, as got's searchParams does */
    buf_append(out, path, r->n_qs ? strcspn(path, "?") : strlen(path));
    if (has_control(out, from, true))
        bad = "ERR_UNESCAPED_CHARACTERS";
    for (size_t i = 0; i < r->n_qs; i++) {
        struct buf v = BUF_INIT;

        buf_append_cstr(out, i == 0 ? "?" : "&");
        form_encode(out, r->qs[i].name, strlen(r->qs[i].name));
        buf_append_cstr(out, "=");
        load_tmpl_render(&v, r->qs[i].value, vars, rng);
        form_encode(out, v.data ? v.data : "", v.len);
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
        has_auth |= strcasecmp(r->headers[i].name, "Authorization") == 0;
    }
    if (r->auth_user && !has_auth && append_auth(out, r, vars, rng))
        bad = bad ? bad : "ERR_INVALID_CHAR";
    if (cookie && *cookie)
        buf_printf(out, "Cookie: %s\r\n", cookie);
    if (r->n_form) {
        append_form(out, &body, r, has_ct, vars, rng);
    } else if (r->json) {
        json_t *doc = load_tmpl_json_body(r->json, vars, rng);

        json_append(&body, doc, false);
        json_decref(doc);
        if (!has_ct)
            buf_append_cstr(out, "Content-Type: application/json\r\n");
    } else if (r->body) {
        load_tmpl_render(&body, r->body, vars, rng);
    }
    if (r->json || r->body || r->n_form || strcmp(r->method, "POST") == 0 ||
        strcmp(r->method, "PUT") == 0 || strcmp(r->method, "PATCH") == 0)
        buf_printf(out, "Content-Length: %zu\r\n", body.len);
    buf_append_cstr(out, "\r\n");
    buf_append(out, body.data ? body.data : "", body.len);
    buf_free(&body);
    return bad;
}

static bool kvs_static(const struct load_kv *kv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!load_tmpl_is_static(kv[i].value))
            return false;
    return true;
}

/* Cookies go through the jar, and a redirect's next hop is built when it comes. */
static bool request_is_static(const struct load_request *r)
{
    if (r->before.n || r->n_cookies || !load_tmpl_is_static(r->url) ||
        strncmp(r->url, "http", 4) == 0 || !kvs_static(r->form, r->n_form) ||
        !load_tmpl_is_static(r->auth_user) || !load_tmpl_is_static(r->auth_pass) ||
        !load_tmpl_is_static(r->body) || (r->json && !load_tmpl_json_is_static(r->json)))
        return false;
    return kvs_static(r->headers, r->n_headers) && kvs_static(r->qs, r->n_qs);
}

static void prepare_steps(struct load_step *steps, size_t n, const struct load_target *t)
{
    for (size_t i = 0; i < n; i++) {
        struct load_request *r = &steps[i].req;
        struct buf b = BUF_INIT;
        uint64_t rng = 1;

        prepare_steps(steps[i].steps, steps[i].n_steps, t); /* a loop's or parallel's */
        if (steps[i].kind != LOAD_STEP_REQUEST || !request_is_static(r))
            continue;
        if (load_request_append(&b, r, r->url, t->dest.host_header, NULL, NULL, &rng)) {
            buf_free(&b); /* sent as a templated request, which fails it */
            continue;
        }
        r->wire_len = b.len;
        r->wire = buf_steal(&b);
    }
}

void load_vu_prepare_static(struct load_script *s, const struct load_target *t)
{
    struct load_scenario *sc;

    for (size_t i = 0; (sc = load_script_flow_at(s, i)) != NULL; i++)
        prepare_steps(sc->steps, sc->n_steps, t);
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

char *load_redirect_url(const char *base, const char *location)
{
    const char *scheme_end = strstr(base, "://"), *host_end, *query;
    size_t dir;

    if (strncmp(location, "http://", 7) == 0 || strncmp(location, "https://", 8) == 0)
        return xstrdup(location);
    if (!scheme_end) /* base is always absolute: not reached */
        return xstrdup(location);
    if (strncmp(location, "//", 2) == 0)
        return xasprintf("%.*s:%s", (int)(scheme_end - base), base, location);
    host_end = scheme_end + 3 + strcspn(scheme_end + 3, "/?#");
    if (location[0] == '/')
        return xasprintf("%.*s%s", (int)(host_end - base), base, location);
    if (location[0] == '?')
        return xasprintf("%.*s%s", (int)(host_end + strcspn(host_end, "?#") - base), base,
                         location);
    /* relative to the base path's directory */
    query = host_end + strcspn(host_end, "?#");
    for (dir = (size_t)(query - base); dir > (size_t)(host_end - base) && base[dir - 1] != '/';)
        dir--;
    if (dir == (size_t)(host_end - base))
        return xasprintf("%.*s/%s", (int)dir, base, location);
    return xasprintf("%.*s%s", (int)dir, base, location);
}
