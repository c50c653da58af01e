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

void cluster_table_render(const struct cluster_table *t, bool color, struct buf *out)
{
    size_t *w = xcalloc(t->ncols ? t->ncols : 1, sizeof(*w));

    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            size_t n = strlen(t->cells[r * t->ncols + c]);
            w[c] = n > w[c] ? n : w[c];
        }
    }
    for (size_t r = 0; r < t->nrows; r++) {
        size_t line_start = out->len;
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            const char *code =
                color ? color_code(r == 0 ? CLUSTER_BOLD : t->color[r * t->ncols + c]) : NULL;
            bool last = c + 1 == t->ncols;
            if (code && *cell)
                buf_printf(out, "%s%s\033[0m", code, cell);
            else
                buf_append_cstr(out, cell);
            if (!last)
                buf_printf(out, "%*s", (int)(w[c] - strlen(cell) + 2), "");
        }
        /* No trailing spaces when the last cells are empty. */
        while (out->len > line_start && out->data[out->len - 1] == ' ')
            out->len--;
        buf_append_cstr(out, "\n");
    }
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
