/* HTML escaping for generated pages; see html.h. */
#include <stdlib.h>

#include "lib/html.h"
#include "lib/json.h"

void html_escape(struct buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<':
            buf_append_cstr(out, "&lt;");
            break;
        case '>':
            buf_append_cstr(out, "&gt;");
            break;
        case '&':
            buf_append_cstr(out, "&amp;");
            break;
        case '"':
            buf_append_cstr(out, "&quot;");
            break;
        case '\'':
            buf_append_cstr(out, "&#39;");
            break;
        default:
            buf_append(out, s, 1);
        }
    }
}

void html_append_json(struct buf *out, const json_t *v, size_t flags)
{
    /* The caller's precision, else the house one. */
    if (!(flags & JSON_REAL_PRECISION(0x1F)))
        flags |= JSON_MESH_REAL_PRECISION;
    char *text = json_dumps(v, flags | JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);

    if (!text) {
        buf_append_cstr(out, "null");
        return;
    }
    /* With JSON_ENSURE_ASCII every byte is ASCII; < > & occur only inside strings. */
    for (const char *p = text; *p; p++) {
        if (*p == '<')
            buf_append_cstr(out, "\\u003c");
        else if (*p == '>')
            buf_append_cstr(out, "\\u003e");
        else if (*p == '&')
            buf_append_cstr(out, "\\u0026");
        else
            buf_append(out, p, 1);
    }
    free(text);
}
