/* A response's headers as Node's http gives them: see node_headers.h. */
#include "load/node_headers.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/buf.h"

/* Node's IncomingMessage drops the repeats of these (matchKnownFields). */
static bool kept_once(const char *name)
{
    static const char *const once[] = {
        "age",
        "authorization",
        "content-length",
        "content-type",
        "etag",
        "expires",
        "from",
        "host",
        "if-modified-since",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "proxy-authorization",
        "referer",
        "retry-after",
        "server",
        "user-agent",
    };

    for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++)
        if (strcmp(name, once[i]) == 0)
            return true;
    return false;
}

/* The value of a repeat of name joined to prev's, as Node joins them. */
static json_t *joined(const char *name, const json_t *prev, const struct str *value)
{
    struct buf b = BUF_INIT;
    json_t *v;

    buf_append(&b, json_string_value(prev), json_string_length(prev));
    buf_append_cstr(&b, strcmp(name, "cookie") == 0 ? "; " : ", ");
    buf_append(&b, value->p, value->n);
    v = json_stringn_nocheck(b.data, b.len);
    buf_free(&b);
    return v;
}

json_t *load_node_headers(const struct http_response_head *h)
{
    json_t *all = json_object();

    for (size_t i = 0; i < h->num_headers; i++) {
        const struct http_header *hd = &h->headers[i];
        char *name = xstrndup(hd->name.p, hd->name.n);
        json_t *prev;

        for (char *p = name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        prev = json_object_get(all, name);
        if (strcmp(name, "set-cookie") == 0) {
            if (!prev)
                json_object_set_new_nocheck(all, name, prev = json_array());
            json_array_append_new(prev, json_stringn_nocheck(hd->value.p, hd->value.n));
        } else if (!prev) {
            json_object_set_new_nocheck(all, name, json_stringn_nocheck(hd->value.p, hd->value.n));
        } else if (!kept_once(name)) {
            json_object_set_new_nocheck(all, name, joined(name, prev, &hd->value));
        }
        free(name);
    }
    return all;
}
