/*
 * Table layout byte-compatible with the consul CLI, which prints through ryanuber/columnize
 * and Go's text/tabwriter: operators diff and grep that output, so widths and glue matter.
 */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#include "cli/cli_internal.h"
#include "lib/alloc.h"

#define TABWRITER_PADDING 6

void cli_lines_add(struct cli_lines *l, const char *fmt, ...)
{
    struct buf b = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = buf_steal(&b);
}

void cli_lines_free(struct cli_lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    FREE_NULL(l->v);
    l->n = 0;
    l->cap = 0;
}

/* The i-th delimited element of line (trimmed); false past the last one. */
static bool element(const char *line, char delim, size_t i, struct str *out)
{
    const char *p = line;

    for (size_t k = 0; k < i; k++) {
        p = strchr(p, delim);
        if (!p)
            return false;
        p++;
    }
    const char *end = strchr(p, delim);
    *out = cli_trim((struct str){p, end ? (size_t)(end - p) : strlen(p)});
    return true;
}

static size_t count_elements(const char *line, char delim)
{
    size_t n = 1;

    for (const char *p = line; (p = strchr(p, delim)) != NULL; p++)
        n++;
    return n;
}

void cli_columnize(struct buf *out, const struct cli_lines *l, char delim, const char *glue)
{
    size_t ncols = 0;
    size_t *widths;
    struct str el;

    for (size_t i = 0; i < l->n; i++) {
        size_t c = count_elements(l->v[i], delim);
        ncols = c > ncols ? c : ncols;
    }
    widths = xcalloc(ncols ? ncols : 1, sizeof(*widths));
    for (size_t i = 0; i < l->n; i++) {
        for (size_t c = 0; element(l->v[i], delim, c, &el); c++)
            widths[c] = el.n > widths[c] ? el.n : widths[c];
    }
    for (size_t i = 0; i < l->n; i++) {
        size_t cols = count_elements(l->v[i], delim);
        for (size_t c = 0; c < cols && element(l->v[i], delim, c, &el); c++) {
            if (c == cols - 1) {
                buf_append_str(out, el);
                break;
            }
            buf_printf(out, "%-*.*s%s", (int)widths[c], STR_FMT(el), glue);
        }
        buf_append_cstr(out, "\n");
    }
    free(widths);
}

void cli_tabwrite(struct buf *out, const struct cli_lines *l, bool trim)
{
    size_t width = 0;
    size_t start = out->len;

    for (size_t i = 0; i < l->n; i++) {
        const char *tab = strchr(l->v[i], '\t');
        size_t w = tab ? (size_t)(tab - l->v[i]) : 0;
        width = w > width ? w : width;
    }
    width += TABWRITER_PADDING;
    for (size_t i = 0; i < l->n; i++) {
        const char *tab = strchr(l->v[i], '\t');
        if (tab)
            buf_printf(out, "%-*.*s%s\n", (int)width, (int)(tab - l->v[i]), l->v[i], tab + 1);
        else
            buf_printf(out, "%s\n", l->v[i]);
    }
    if (!trim || out->len == start)
        return;
    /* strings.TrimSpace on the whole text, then UI.Output's newline. */
    while (out->len > start && isspace((unsigned char)out->data[out->len - 1]))
        out->len--;
    out->data[out->len] = '\0';
    if (out->len > start)
        buf_append_cstr(out, "\n");
}
