/* config.payload: CSV files as virtual users' variables (see payload.h). */
#include "load/payload.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/alloc.h"
#include "lib/buf.h"
#include "lib/bug.h"
#include "lib/file.h"
#include "load/script_internal.h"
#include "load/template.h"

/* ---- CSV --------------------------------------------------------------------------------- */

json_t *load_csv_number(const char *s, size_t n)
{
    char text[64], *end;
    size_t i = 0, digits = 0;
    double d;

    /* Number() ignores surrounding white space; parseFloat must read the same number, which
     * leaves out "", hexadecimal, "Infinity" and "1_000" */
    while (n && isspace((unsigned char)*s))
        s++, n--;
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || n >= sizeof(text))
        return NULL;
    memcpy(text, s, n);
    text[n] = '\0';
    if (text[i] == '+' || text[i] == '-')
        i++;
    for (; isdigit((unsigned char)text[i]); i++)
        digits++;
    if (text[i] == '.')
        for (i++; isdigit((unsigned char)text[i]); i++)
            digits++;
    if (digits == 0)
        return NULL;
    if (text[i] == 'e' || text[i] == 'E') {
        size_t exp_at = ++i;

        if (text[i] == '+' || text[i] == '-')
            i++, exp_at++;
        while (isdigit((unsigned char)text[i]))
            i++;
        if (i == exp_at)
            return NULL;
    }
    if (i != n)
        return NULL;
    d = strtod(text, &end);
    if (!isfinite(d))
        return NULL;
    if (d == floor(d) && fabs(d) < 9007199254740992.0 && !(d == 0 && signbit(d)))
        return json_integer((json_int_t)d);
    return json_real(d);
}

struct csv {
    const char *p, *end;
    const struct load_csv_opts *o;
    size_t delim_len;
    int line;
    struct err *e;
};

/* A line end at p: its length (1 or 2), else 0. */
static size_t line_end(const struct csv *c, const char *p)
{
    if (p >= c->end)
        return 0;
    if (*p == '\n')
        return 1;
    if (*p == '\r')
        return p + 1 < c->end && p[1] == '\n' ? 2 : 1;
    return 0;
}

static bool at_delim(const struct csv *c, const char *p)
{
    return (size_t)(c->end - p) >= c->delim_len && memcmp(p, c->o->delimiter, c->delim_len) == 0;
}

/* Reads one field into f; *last: the record ended after it. 0 or -EINVAL. */
static int read_field(struct csv *c, struct buf *f, bool *quoted, bool *last)
{
    size_t n;

    *quoted = c->p < c->end && *c->p == '"';
    if (*quoted) {
        int opened = c->line;

        for (c->p++;; c->p++) {
            if (c->p >= c->end)
                return err_set(c->e, "line %d: a quote is never closed", opened);
            if (*c->p == '"' && c->p + 1 < c->end && c->p[1] == '"') {
                buf_append(f, "\"", 1);
                c->p++;
            } else if (*c->p == '"') {
                c->p++;
                break;
            } else {
                if ((n = line_end(c, c->p)) != 0)
                    c->line++;
                buf_append(f, c->p, n ? n : 1);
                c->p += n ? n - 1 : 0;
            }
        }
        if (c->p < c->end && !at_delim(c, c->p) && !line_end(c, c->p))
            return err_set(c->e, "line %d: text after a closing quote", c->line);
    } else {
        const char *start = c->p;

        while (c->p < c->end && !at_delim(c, c->p) && !line_end(c, c->p)) {
            if (*c->p == '"')
                return err_set(c->e, "line %d: a quote inside a field that does not start with one",
                               c->line);
            c->p++;
        }
        buf_append(f, start, (size_t)(c->p - start));
    }
    if (at_delim(c, c->p)) {
        c->p += c->delim_len;
        *last = false;
    } else {
        *last = true;
        if ((n = line_end(c, c->p)) != 0) {
            c->p += n;
            c->line++;
        }
    }
    return 0;
}

/* The field as JSON: a number when cast reads one, else a string (which must be UTF-8). */
static json_t *field_value(const struct csv *c, const struct buf *f, bool quoted)
{
    json_t *v = c->o->cast ? load_csv_number(f->data ? f->data : "", f->len) : NULL;

    (void)quoted; /* csv-parse casts quoted fields too */
    return v ? v : json_stringn(f->data ? f->data : "", f->len);
}

/* Reads one record into *rec (a new array). 0 or -EINVAL. */
static int read_record(struct csv *c, json_t **rec, bool *empty)
{
    struct buf f = BUF_INIT;
    bool quoted, last = false;
    int rc = 0;

    *rec = json_array();
    *empty = true;
    while (!last) {
        json_t *v;

        buf_reset(&f);
        if ((rc = read_field(c, &f, &quoted, &last)) < 0)
            break;
        *empty &= last && !quoted && f.len == 0 && json_array_size(*rec) == 0;
        if (!(v = field_value(c, &f, quoted))) {
            rc = err_set(c->e, "line %d: not UTF-8 text", c->line - (last ? 1 : 0));
            break;
        }
        json_array_append_new(*rec, v);
    }
    buf_free(&f);
    if (rc < 0)
        json_decref(*rec);
    return rc;
}

int load_csv_parse(const char *text, size_t len, const struct load_csv_opts *o, json_t **rows,
                   struct err *e)
{
    struct csv c = {text, text + len, o, strlen(o->delimiter), 1, e};
    json_t *out = json_array(), *rec;
    size_t width = 0;
    bool empty;
    int rc = 0;

    if (MESH_BUG_ON(c.delim_len == 0)) {
        rc = err_set(e, "empty delimiter");
        goto out;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) /* a byte order mark */
        c.p += 3;
    while (c.p < c.end) {
        int line = c.line;

        if ((rc = read_record(&c, &rec, &empty)) < 0)
            goto out;
        if ((empty && o->skip_empty) || (line == 1 && o->skip_header)) {
            json_decref(rec);
            continue;
        }
        if (width == 0) {
            width = json_array_size(rec);
        } else if (json_array_size(rec) != width) {
            rc = err_set(e, "line %d: %zu fields, where the first row has %zu", line,
                         json_array_size(rec), width);
            json_decref(rec);
            goto out;
        }
        json_array_append_new(out, rec);
    }
out:
    if (rc < 0)
        json_decref(out);
    else
        *rows = out;
    return rc;
}

/* ---- the script's config.payload ---------------------------------------------------------- */

/* With loadAll and fields: each row as an object of its fields. */
static json_t *rows_as_objects(const struct load_payload *p, json_t *rows)
{
    json_t *out = json_array(), *row;
    size_t i;

    json_array_foreach(rows, i, row)
    {
        json_t *o = json_object();

        for (size_t j = 0; j < p->n_fields && j < json_array_size(row); j++)
            json_object_set(o, p->fields[j], json_array_get(row, j));
        json_array_append_new(out, o);
    }
    json_decref(rows);
    return out;
}

static bool read_bool(struct script_ctx *c, const json_t *spec, const char *key, bool dflt,
                      const char *where)
{
    const json_t *v = json_object_get(spec, key);

    if (!v)
        return dflt;
    if (!json_is_boolean(v))
        script_diag(c, spec, key, 0, "%s.%s: want true or false", where, key);
    return json_is_true(v);
}

static void read_fields(struct script_ctx *c, const json_t *spec, const char *where,
                        struct load_payload *p)
{
    const json_t *f = json_object_get(spec, "fields"), *one;
    size_t i;

    if (!f)
        return;
    if (!json_is_array(f)) {
        script_diag(c, spec, "fields", 0, "%s.fields: want a list of variable names", where);
        return;
    }
    p->fields = xcalloc(json_array_size(f) + 1, sizeof(*p->fields));
    json_array_foreach(f, i, one)
    {
        if (json_is_string(one) && *json_string_value(one))
            p->fields[p->n_fields++] = xstrdup(json_string_value(one));
        else
            script_diag(c, f, NULL, i, "%s.fields: want a list of variable names", where);
    }
}

/* The CSV options of spec; false (after a diagnostic) when one is wrong. */
static bool read_opts(struct script_ctx *c, const json_t *spec, const char *where,
                      struct load_csv_opts *o)
{
    const json_t *d = json_object_get(spec, "delimiter");

    o->delimiter = ",";
    if (d) {
        const char *s = json_string_value(d);

        if (!s || !*s || strlen(s) > 8 || strpbrk(s, "\"\r\n")) {
            script_diag(c, spec, "delimiter", 0,
                        "%s.delimiter: want a string of 1 to 8 characters, without quotes or "
                        "line ends",
                        where);
            return false;
        }
        o->delimiter = s;
    }
    o->skip_header = read_bool(c, spec, "skipHeader", false, where);
    o->skip_empty = read_bool(c, spec, "skipEmptyLines", true, where);
    o->cast = read_bool(c, spec, "cast", true, where);
    return true;
}

static void parse_one(struct script_ctx *c, const json_t *spec, const char *where,
                      struct load_script *s, struct load_payload *p)
{
    static const char *const allowed[] = {"path",      "fields", "order",          "skipHeader",
                                          "delimiter", "cast",   "skipEmptyLines", "name",
                                          "loadAll",   NULL};
    static const char *const unsupported[] = {"options", NULL};
    const json_t *path = json_object_get(spec, "path"), *order = json_object_get(spec, "order");
    const json_t *name = json_object_get(spec, "name");
    struct load_csv_opts o;
    struct buf text = BUF_INIT;
    struct err e = {0};
    bool load_all;

    script_check_keys(c, spec, where, allowed, unsupported);
    if (!json_is_string(path) || !*json_string_value(path)) {
        script_diag(c, spec, path ? "path" : NULL, SIZE_MAX, "%s.path: want the path of a CSV file",
                    where);
        return;
    }
    p->path = script_path_near(s->path, script_config_text(c, json_string_value(path), &text));
    buf_reset(&text);
    read_fields(c, spec, where, p);
    load_all = read_bool(c, spec, "loadAll", false, where);
    if (order && !(json_is_string(order) && (strcmp(json_string_value(order), "random") == 0 ||
                                             strcmp(json_string_value(order), "sequence") == 0)))
        script_diag(c, spec, "order", 0, "%s.order: want random or sequence", where);
    p->sequence = json_is_string(order) && strcmp(json_string_value(order), "sequence") == 0;
    if (load_all && !json_is_string(name))
        script_diag(c, spec, "loadAll", 0, "%s.loadAll: needs name (the variable to set)", where);
    else if (load_all)
        p->name = xstrdup(json_string_value(name));
    else if (!p->n_fields)
        script_diag(c, spec, NULL, SIZE_MAX,
                    "%s: want fields (the variables a row sets) or loadAll with name", where);
    if (!read_opts(c, spec, where, &o))
        return;
    if (script_read_file(p->path, LOAD_PAYLOAD_MAX_FILE, &text, &e) < 0 ||
        load_csv_parse(text.data ? text.data : "", text.len, &o, &p->rows, &e) < 0)
        script_diag(c, spec, "path", 0, "%s: %s: %s", where, p->path, e.msg);
    else if (p->name && p->n_fields)
        p->rows = rows_as_objects(p, p->rows);
    buf_free(&text);
}

void script_parse_payloads(struct script_ctx *c, const json_t *v, struct load_script *s)
{
    json_t *list = json_is_array(v) ? json_incref((json_t *)v) : json_pack("[O]", v);
    const json_t *spec;
    size_t i;

    s->payloads = xcalloc(json_array_size(list) + 1, sizeof(*s->payloads));
    json_array_foreach(list, i, spec)
    {
        char where[48];

        if (json_is_array(v))
            snprintf(where, sizeof(where), "config.payload[%zu]", i);
        else
            snprintf(where, sizeof(where), "config.payload");
        if (!json_is_object(spec)) {
            script_diag(c, list, NULL, i, "%s: want a mapping with path and fields", where);
            continue;
        }
        parse_one(c, spec, where, s, &s->payloads[s->n_payloads++]);
    }
    json_decref(list);
}

/* ---- per user ---------------------------------------------------------------------------- */

void load_payload_vars(struct load_payload *p, size_t n, json_t *vars, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++, p++) {
        size_t rows = json_array_size(p->rows), k;
        const json_t *row;

        if (p->name) { /* loadAll */
            json_object_set(vars, p->name, p->rows);
            continue;
        }
        if (rows == 0) /* an empty file sets nothing, as Artillery's reader gives no row */
            continue;
        k = p->sequence ? atomic_fetch_add(&p->next, 1) % rows : load_rand(rng) % rows;
        row = json_array_get(p->rows, k);
        for (size_t j = 0; j < p->n_fields && j < json_array_size(row); j++)
            json_object_set(vars, p->fields[j], json_array_get(row, j));
    }
}

void load_payload_free(struct load_payload *p)
{
    free(p->path);
    for (size_t i = 0; i < p->n_fields; i++)
        free(p->fields[i]);
    free(p->fields);
    free(p->name);
    json_decref(p->rows);
    memset(p, 0, sizeof(*p));
}
