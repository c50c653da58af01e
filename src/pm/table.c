/* ls and describe output (see table.h). */
#include <stdio.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/json.h"
#include "lib/str.h"
#include "pm/policy.h"
#include "pm/table.h"

#define LS_COLS 9

static const char *const ls_head[LS_COLS] = {"name",     "id",     "instance", "pid",   "status",
                                             "restarts", "uptime", "cpu",      "memory"};

static char *int_or_dash(const json_t *v)
{
    return json_is_integer(v) ? xasprintf("%lld", (long long)json_integer_value(v)) : xstrdup("-");
}

/* The cells of one row, heap strings. */
static void ls_cells(const json_t *row, char **cells)
{
    char tmp[32];
    const char *status = json_string_value(json_object_get(row, "status"));
    bool up = json_is_integer(json_object_get(row, "pid"));
    const char *name = json_string_value(json_object_get(row, "name"));

    cells[0] = xstrdup(name ? name : "?");
    cells[1] = int_or_dash(json_object_get(row, "pm_id"));
    cells[2] = int_or_dash(json_object_get(row, "instance"));
    cells[3] = int_or_dash(json_object_get(row, "pid"));
    cells[4] = xstrdup(status ? status : "?");
    cells[5] = int_or_dash(json_object_get(row, "restarts"));
    pm_format_uptime(json_integer_value(json_object_get(row, "uptime_ms")), tmp, sizeof(tmp));
    cells[6] = xstrdup(up ? tmp : "0");
    cells[7] = xasprintf("%.0f%%", json_number_value(json_object_get(row, "cpu")));
    str_format_bytes((uint64_t)json_integer_value(json_object_get(row, "memory")), tmp,
                     sizeof(tmp));
    cells[8] = xstrdup(tmp);
}

void pm_format_ls(const json_t *rows, struct buf *out)
{
    size_t n = json_array_size(rows);
    char **cells = xcalloc((n + 1) * LS_COLS, sizeof(*cells));
    size_t width[LS_COLS] = {0};

    for (size_t c = 0; c < LS_COLS; c++)
        cells[c] = xstrdup(ls_head[c]);
    for (size_t r = 0; r < n; r++)
        ls_cells(json_array_get(rows, r), cells + (r + 1) * LS_COLS);
    for (size_t k = 0; k < (n + 1) * LS_COLS; k++) {
        size_t len = strlen(cells[k]);
        width[k % LS_COLS] = len > width[k % LS_COLS] ? len : width[k % LS_COLS];
    }
    for (size_t r = 0; r <= n; r++) {
        for (size_t c = 0; c < LS_COLS; c++) {
            const char *cell = cells[r * LS_COLS + c];
            if (c + 1 < LS_COLS)
                buf_printf(out, "%-*s  ", (int)width[c], cell);
            else
                buf_printf(out, "%s\n", cell);
        }
    }
    for (size_t k = 0; k < (n + 1) * LS_COLS; k++)
        free(cells[k]);
    free(cells);
}

/* One value as text: strings bare, null as "-", the rest as JSON. */
static void value_text(struct buf *out, const json_t *v)
{
    char *s;

    if (json_is_string(v)) {
        buf_append_cstr(out, json_string_value(v));
    } else if (!v || json_is_null(v)) {
        buf_append_cstr(out, "-");
    } else {
        s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_MESH_REAL_PRECISION);
        buf_append_cstr(out, s ? s : "?");
        free(s);
    }
}

/* Whether describe prints a row's member: the spec's members print after the row's own. */
static bool describe_shows(const char *key, const json_t *v, bool in_spec)
{
    return in_spec ? strcmp(key, "name") != 0 : !json_is_object(v);
}

/* The row's members, then its spec's, each "key  value" with the values in one column. */
static void describe_one(const json_t *row, struct buf *out)
{
    const json_t *parts[2] = {row, json_object_get(row, "spec")};
    size_t width = 0;
    const char *key;
    json_t *v;

    for (int p = 0; p < 2; p++) {
        json_object_foreach((json_t *)parts[p], key, v)
        {
            if (describe_shows(key, v, p == 1) && strlen(key) > width)
                width = strlen(key);
        }
    }
    for (int p = 0; p < 2; p++) {
        json_object_foreach((json_t *)parts[p], key, v)
        {
            if (!describe_shows(key, v, p == 1))
                continue;
            buf_printf(out, "%-*s  ", (int)width, key);
            value_text(out, v);
            buf_append_cstr(out, "\n");
        }
    }
}

void pm_format_describe(const json_t *rows, struct buf *out)
{
    size_t r;
    json_t *row;

    json_array_foreach(rows, r, row)
    {
        if (r)
            buf_append_cstr(out, "\n");
        describe_one(row, out);
    }
}
