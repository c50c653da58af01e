/*
 * What the read-only operator commands show, gathered into flat JSON arrays ("views"), one
 * object per row with stable keys: `--json` prints them as they are, and one renderer turns
 * any of them into an aligned table. `mesh status` shows all of them at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_internal.h"
#include "cli/cluster.h"
#include "lib/alloc.h"
#include "lib/str.h"
#include "lib/url.h"

#define OUTPUT_MAX 60 /* one-line text shown in tables; --json has it whole */

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

json_t *cluster_view_nodes(const struct cluster_state *s, struct err *e)
{
    json_t *members = cluster_leader_json(s, "/v1/agent/members", e);
    json_t *checks = members ? cluster_registry_json(s, "/v1/health/state/any", e) : NULL;
    json_t *out = NULL;

    if (!checks)
        goto done;
    out = json_array();
    for (size_t i = 0; i < json_array_size(members); i++) {
        json_t *m = json_array_get(members, i);
        int total = 0, passing = 0;
        for (size_t k = 0; k < json_array_size(checks); k++) {
            json_t *c = json_array_get(checks, k);
            if (strcmp(jstr(c, "Node"), jstr(m, "Name")) != 0)
                continue;
            total++;
            passing += strcmp(jstr(c, "Status"), "passing") == 0;
        }
        char summary[64];
        snprintf(summary, sizeof(summary), "%d/%d passing", passing, total);
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:s, s:i, s:i, s:s}", "node", jstr(m, "Name"), "address",
                           jstr(m, "Addr"), "status",
                           cli_member_status(json_integer_value(json_object_get(m, "Status"))),
                           "checks_passing", passing, "checks_total", total, "checks", summary));
    }
done:
    json_decref(members);
    json_decref(checks);
    return out;
}

/* A counter of the Raft stats (Consul reports them as strings); 0 when absent. */
static json_int_t raft_counter(const json_t *raft, const char *key)
{
    const char *v = jstr(raft, key);

    return (json_int_t)strtoll(v, NULL, 10);
}

/* One server's row: what its own /v1/agent/self says of its Raft state, or why nothing does. */
static json_t *server_row(const struct cluster_state *s, const struct cluster_node *n)
{
    char api[96], state[32];
    struct err e;
    json_t *self = NULL, *raft = NULL;
    const char *why = NULL;

    snprintf(api, sizeof(api), "%s:%d", n->addr, n->agent_port);
    if (!cluster_pidfile_live(s, n, "agent.pid", NULL))
        why = "down";
    else if (!(self = cluster_server_json(s, n, "/v1/agent/self", &e)))
        why = "no answer";
    else if (!(raft = json_object_get(json_object_get(self, "Stats"), "raft")))
        why = "no raft stats";
    /* Consul's "Leader", "Follower", "Candidate": lower case, as the other views' states. */
    snprintf(state, sizeof(state), "%s", why ? why : jstr(raft, "state"));
    for (char *c = state; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
    json_t *row = json_pack("{s:s, s:s, s:s}", "node", n->name, "address", api, "state", state);
    if (!why) {
        json_object_update_new(row,
                               json_pack("{s:I, s:I, s:I, s:I}", "term", raft_counter(raft, "term"),
                                         "commit_index", raft_counter(raft, "commit_index"),
                                         "applied_index", raft_counter(raft, "applied_index"),
                                         "last_log_index", raft_counter(raft, "last_log_index")));
    }
    json_decref(self);
    return row;
}

json_t *cluster_view_servers(const struct cluster_state *s, struct err *e)
{
    json_t *out = json_array();

    (void)e; /* a server that does not answer is a row saying so */
    for (size_t i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].server)
            json_array_append_new(out, server_row(s, &s->nodes[i]));
    }
    return out;
}

json_t *cluster_view_checks(const struct cluster_state *s, struct err *e)
{
    json_t *checks = cluster_registry_json(s, "/v1/health/state/any", e);
    json_t *out = NULL;

    if (!checks)
        return NULL;
    out = json_array();
    for (size_t i = 0; i < json_array_size(checks); i++) {
        json_t *c = json_array_get(checks, i);
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s}", "node", jstr(c, "Node"),
                                             "check", jstr(c, "CheckID"), "service",
                                             jstr(c, "ServiceName"), "status", jstr(c, "Status"),
                                             "output", jstr(c, "Output")));
    }
    json_decref(checks);
    return out;
}

/* The worst status of an instance's checks: critical, then warning, else passing. */
static const char *instance_status(const json_t *checks)
{
    const char *worst = "passing";

    for (size_t i = 0; i < json_array_size(checks); i++) {
        const char *st = jstr(json_array_get(checks, i), "Status");
        if (strcmp(st, "critical") == 0 || strcmp(st, "maintenance") == 0)
            return st;
        if (strcmp(st, "warning") == 0)
            worst = st;
    }
    return worst;
}

static void add_instances(json_t *out, const char *service, const json_t *entries)
{
    for (size_t i = 0; i < json_array_size(entries); i++) {
        json_t *en = json_array_get(entries, i);
        json_t *svc = json_object_get(en, "Service");
        const char *addr = jstr(svc, "Address");
        if (!*addr)
            addr = jstr(json_object_get(en, "Node"), "Address");
        json_array_append_new(out,
                              json_pack("{s:s, s:s, s:s, s:s, s:I, s:s}", "service", service, "id",
                                        jstr(svc, "ID"), "node",
                                        jstr(json_object_get(en, "Node"), "Node"), "address", addr,
                                        "port", json_integer_value(json_object_get(svc, "Port")),
                                        "status", instance_status(json_object_get(en, "Checks"))));
    }
}

json_t *cluster_view_instances(const struct cluster_state *s, struct err *e)
{
    json_t *services = cluster_registry_json(s, "/v1/catalog/services", e);
    json_t *out = NULL;
    const char *name;
    json_t *tags;

    if (!services)
        return NULL;
    out = json_array();
    json_object_foreach(services, name, tags)
    {
        struct buf target = BUF_INIT;
        buf_printf(&target, "/v1/health/service/");
        url_encode(&target, str_from(name), false);
        json_t *entries = cluster_registry_json(s, target.data, e);
        buf_free(&target);
        if (!entries) {
            json_decref(out);
            out = NULL;
            break;
        }
        add_instances(out, name, entries);
        json_decref(entries);
    }
    json_decref(services);
    return out;
}

json_t *cluster_view_apps(const struct cluster_state *s, struct err *e)
{
    json_t *out = json_array();

    for (size_t i = 1; i < s->n_nodes; i++) {
        const struct cluster_node *n = &s->nodes[i];
        json_t *apps;
        if (n->server)
            continue;
        /* A killed node's supervisor stays down until revive-node: do not start it here. */
        if (!cluster_pm_daemon(s, n, NULL)) {
            json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "node", n->name, "name", "-",
                                                 "status", "supervisor down"));
            continue;
        }
        if (!(apps = cluster_pm_ls(s, n, e))) {
            json_decref(out);
            return NULL;
        }
        for (size_t k = 0; k < json_array_size(apps); k++) {
            json_t *a = json_deep_copy(json_array_get(apps, k));
            json_object_set_new(a, "node", json_string(n->name));
            json_array_append_new(out, a);
        }
        json_decref(apps);
    }
    return out;
}

json_t *cluster_view_lb(const struct cluster_state *s, struct err *e)
{
    json_t *rows = cluster_lb_stats(s, e);
    json_t *out = NULL;

    if (!rows)
        return NULL;
    out = json_array();
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *r = json_array_get(rows, i);
        json_int_t type = json_integer_value(json_object_get(r, "type"));
        if (type != 1 && type != 2)
            continue; /* the frontend row says nothing about backends */
        json_array_append_new(
            out, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "server", jstr(r, "svname"),
                           "address", type == 1 ? "" : jstr(r, "addr"), "status", jstr(r, "status"),
                           "check", jstr(r, "check_status"), "active",
                           json_integer_value(json_object_get(r, "scur")), "total",
                           json_integer_value(json_object_get(r, "stot")), "errors_5xx",
                           json_integer_value(json_object_get(r, "hrsp_5xx"))));
    }
    json_decref(rows);
    return out;
}

/*
 * A text value as a cell: its first line cut at OUTPUT_MAX, or with lines, all of it without
 * carriage returns and trailing newlines (a check's output often ends with one).
 */
static char *text_cell(const char *text, bool lines)
{
    size_t first = strcspn(text, "\r\n");

    if (!lines)
        return xasprintf("%.*s", (int)(first < OUTPUT_MAX ? first : OUTPUT_MAX), text);
    char *cell = xstrdup(text), *w = cell;
    for (const char *r = text; *r; r++) {
        if (*r != '\r')
            *w++ = *r;
    }
    while (w > cell && w[-1] == '\n')
        w--;
    *w = '\0';
    return cell;
}

void cluster_view_render(const json_t *view, const struct cluster_column *cols, size_t ncols,
                         bool color, struct buf *out)
{
    struct cluster_table t;
    const char **cells = xcalloc(ncols, sizeof(*cells));
    char **owned = xcalloc(ncols, sizeof(*owned));

    cluster_table_init(&t, ncols);
    for (size_t c = 0; c < ncols; c++)
        cells[c] = cols[c].header;
    cluster_table_row(&t, cells);
    for (size_t r = 0; r < json_array_size(view); r++) {
        json_t *row = json_array_get(view, r);
        for (size_t c = 0; c < ncols; c++) {
            json_t *v = json_object_get(row, cols[c].key);
            if (json_is_integer(v) && (cols[c].how & CLUSTER_COL_BYTES)) {
                char bytes[16];
                str_format_bytes((uint64_t)json_integer_value(v), bytes, sizeof(bytes));
                owned[c] = xstrdup(bytes);
            } else if (json_is_integer(v))
                owned[c] = xasprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
            else if (json_is_real(v))
                owned[c] = xasprintf("%.1f", json_real_value(v));
            else
                owned[c] = text_cell(json_is_string(v) ? json_string_value(v) : "",
                                     cols[c].how & CLUSTER_COL_LINES);
            cells[c] = owned[c];
        }
        cluster_table_row(&t, cells);
        for (size_t c = 0; c < ncols; c++) {
            if (cols[c].how & CLUSTER_COL_STATUS)
                cluster_table_color(&t, c, cluster_status_color(cells[c]));
            FREE_NULL(owned[c]);
        }
    }
    cluster_table_render(&t, color, out);
    cluster_table_free(&t);
    free(owned);
    free(cells);
}
