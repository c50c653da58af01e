/*
 * Aligned tables for the operator commands. Colour is applied after the widths are measured,
 * so escape codes never skew the columns, and only on a terminal (no-color.org's NO_COLOR
 * turns it off), so pipes and scripts get plain text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/str.h"

void cluster_table_init(struct cluster_table *t, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
}

void cluster_table_row(struct cluster_table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->cells = xrealloc(t->cells, t->cap * t->ncols * sizeof(*t->cells));
        t->color = xrealloc(t->color, t->cap * t->ncols * sizeof(*t->color));
    }
    for (size_t c = 0; c < t->ncols; c++) {
        t->cells[t->nrows * t->ncols + c] = xstrdup(cells[c] ? cells[c] : "");
        t->color[t->nrows * t->ncols + c] = CLUSTER_PLAIN;
    }
    t->nrows++;
}

void cluster_table_color(struct cluster_table *t, size_t col, enum cluster_color c)
{
    if (t->nrows && col < t->ncols)
        t->color[(t->nrows - 1) * t->ncols + col] = c;
}

static const char *color_code(enum cluster_color c)
{
    switch (c) {
    case CLUSTER_GREEN:
        return "\033[32m";
    case CLUSTER_RED:
        return "\033[31m";
    case CLUSTER_YELLOW:
        return "\033[33m";
    case CLUSTER_BOLD:
        return "\033[1m";
    default:
        return NULL;
    }
}

/* Line k of a cell (cells may span lines; a missing line is empty). */
static struct str cell_line(const char *cell, size_t k)
{
    struct str line = str_from(cell);

    for (;;) {
        const char *nl = memchr(line.p, '\n', line.n);
        size_t len = nl ? (size_t)(nl - line.p) : line.n;
        if (k-- == 0)
            return (struct str){line.p, len};
        if (!nl)
            return (struct str){line.p + line.n, 0};
        line = str_skip(line, len + 1);
    }
}

static size_t cell_lines(const char *cell)
{
    size_t n = 1;

    for (const char *p = strchr(cell, '\n'); p; p = strchr(p + 1, '\n'))
        n++;
    return n;
}

/* Line k of row r, padded to the widths w. */
static void render_line(const struct cluster_table *t, size_t r, size_t k, const size_t *w,
                        bool color, struct buf *out)
{
    size_t line_start = out->len;

    for (size_t c = 0; c < t->ncols; c++) {
        struct str cell = cell_line(t->cells[r * t->ncols + c], k);
        const char *code =
            color ? color_code(r == 0 ? CLUSTER_BOLD : t->color[r * t->ncols + c]) : NULL;
        if (code && cell.n)
            buf_printf(out, "%s%.*s\033[0m", code, (int)cell.n, cell.p);
        else
            buf_append(out, cell.p, cell.n);
        if (c + 1 < t->ncols)
            buf_printf(out, "%*s", (int)(w[c] - cell.n + 2), "");
    }
    /* No trailing spaces when the last cells are empty. */
    while (out->len > line_start && out->data[out->len - 1] == ' ')
        out->len--;
    buf_append_cstr(out, "\n");
}

void cluster_table_render(const struct cluster_table *t, bool color, struct buf *out)
{
    size_t *w = xcalloc(t->ncols ? t->ncols : 1, sizeof(*w));
    size_t *lines = xcalloc(t->nrows ? t->nrows : 1, sizeof(*lines));

    for (size_t r = 0; r < t->nrows; r++) {
        lines[r] = 1;
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            size_t n = cell_lines(cell);
            lines[r] = n > lines[r] ? n : lines[r];
            for (size_t k = 0; k < n; k++) {
                size_t len = cell_line(cell, k).n;
                w[c] = len > w[c] ? len : w[c];
            }
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t k = 0; k < lines[r]; k++)
            render_line(t, r, k, w, color, out);
    }
    free(lines);
    free(w);
}

void cluster_table_free(struct cluster_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t->color);
    memset(t, 0, sizeof(*t));
}

enum cluster_color cluster_status_color(const char *status)
{
    static const char *const good[] = {"passing", "up", "online", "alive", "running", "ok"};
    static const char *const warn[] = {"warning", "launching",       "stopping", "drain",
                                       "maint",   "waiting restart", "no check"};

    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        if (strcasecmp(status, good[i]) == 0)
            return CLUSTER_GREEN;
    }
    for (size_t i = 0; i < ARRAY_LEN(warn); i++) {
        if (strncasecmp(status, warn[i], strlen(warn[i])) == 0)
            return CLUSTER_YELLOW;
    }
    return CLUSTER_RED;
}

bool cluster_use_color(void)
{
    const char *no = getenv("NO_COLOR");

    return isatty(STDOUT_FILENO) && !(no && *no);
}
