/*
 * The registry's route table against docs/acl.md: every route declares how it is authorized,
 * and the documentation states the same for every route (and lists no route that is gone).
 * tests/e2e/test_acl_routes.py then calls each documented route with limited tokens, so a new
 * route cannot ship without a permission check that someone wrote down and a test exercised.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/alloc.h"
#include "registry/api/api_routes.h"

static const char *kind_name(enum reg_api_acl_kind k)
{
    switch (k) {
    case REG_API_ACL_PUBLIC:
        return "public";
    case REG_API_ACL_ROUTE:
        return "route";
    case REG_API_ACL_HANDLER:
        return "handler";
    case REG_API_ACL_FILTER:
        return "filtered";
    case REG_API_ACL_UNSET:
        break;
    }
    return "UNSET";
}

/* One row of the endpoint table: | METHOD | `path` | needs | how | */
struct doc_row {
    char method[16];
    char path[160];
    char needs[400];
    char how[32];
    bool matched;
};

static char *trim_cell(char *s)
{
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        s[--n] = '\0';
    return s;
}

static size_t read_doc_rows(struct doc_row *rows, size_t max)
{
    const char *slash = strrchr(__FILE__, '/');
    char *path = xasprintf("%.*s/../../docs/acl.md", slash ? (int)(slash - __FILE__) : 1,
                           slash ? __FILE__ : ".");
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t n = 0;

    if (!f)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof(line), f)) {
        char *cells[6];
        size_t nc = 0;
        if (strncmp(line, "| ", 2) != 0 || !strstr(line, "`/v1/"))
            continue;
        line[strcspn(line, "\n")] = '\0';
        for (char *save = NULL, *c = strtok_r(line, "|", &save); c && nc < 6;
             c = strtok_r(NULL, "|", &save))
            cells[nc++] = trim_cell(c);
        if (nc != 4) {
            fail_msg("docs/acl.md: a row needs 4 cells: %s", line);
            continue; /* fail_msg ends the test; the analyzer cannot see that */
        }
        assert_true(n < max);
        struct doc_row *r = &rows[n++];
        size_t plen = strlen(cells[1]);
        assert_true(plen > 2 && cells[1][0] == '`' && cells[1][plen - 1] == '`');
        snprintf(r->method, sizeof(r->method), "%s", cells[0]);
        snprintf(r->path, sizeof(r->path), "%.*s", (int)(plen - 2), cells[1] + 1);
        snprintf(r->needs, sizeof(r->needs), "%s", cells[2]);
        snprintf(r->how, sizeof(r->how), "%s", cells[3]);
    }
    fclose(f);
    free(path);
    return n;
}

/* A prefix route /v1/kv/ is documented as /v1/kv/<key>: the prefix and one placeholder. */
static bool doc_path_is_route(const struct doc_row *d, const struct reg_api_route *r)
{
    size_t n = strlen(r->path);

    if (!r->prefix)
        return strcmp(d->path, r->path) == 0;
    if (strncmp(d->path, r->path, n) != 0)
        return false;
    const char *rest = d->path + n;
    return rest[0] == '<' && strchr(rest, '>') == rest + strlen(rest) - 1;
}

static void test_every_route_declares_its_acl(void **state)
{
    size_t n;
    const struct reg_api_route *routes = reg_api_route_table(&n);

    (void)state;
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        const struct reg_api_route *r = &routes[i];
        if (r->acl.kind == REG_API_ACL_UNSET)
            fail_msg("route %s %s declares no ACL kind", r->method, r->path);
        bool needs_res = r->acl.kind != REG_API_ACL_PUBLIC;
        if (needs_res != (r->acl.res != REG_ACL_RES_NONE))
            fail_msg("route %s %s: a %s route %s a resource", r->method, r->path,
                     kind_name(r->acl.kind), needs_res ? "needs" : "takes no");
        if (r->acl.kind == REG_API_ACL_FILTER && (r->write || r->acl.acc != REG_ACL_ACCESS_READ))
            fail_msg("route %s %s: only reads filter", r->method, r->path);
        /* Reads need no write permission and writes no read: a mismatch is a typo. */
        if ((r->acl.kind == REG_API_ACL_ROUTE || r->acl.kind == REG_API_ACL_HANDLER) &&
            (r->acl.acc == REG_ACL_ACCESS_WRITE) != (r->write != NULL))
            fail_msg("route %s %s: %s access on a %s", r->method, r->path,
                     reg_acl_access_name(r->acl.acc), r->write ? "write" : "read");
        if (r->acl.kind != REG_API_ACL_ROUTE && r->acl.name != REG_API_ACL_NAME_NONE)
            fail_msg("route %s %s: only router-checked routes name what they check", r->method,
                     r->path);
        if (r->acl.name == REG_API_ACL_NAME_ARG && !r->prefix)
            fail_msg("route %s %s checks its path argument but has none", r->method, r->path);
    }
}

/* The public routes, by name: making a route public is a decision this list records. */
static void test_public_routes_are_the_known_ones(void **state)
{
    static const char *const allowed[] = {
        "GET /v1/catalog/datacenters",       "PUT /v1/acl/bootstrap", "GET /v1/acl/token/self",
        "GET /v1/internal/mesh/acl/resolve", "GET /v1/status/leader", "GET /v1/status/peers",
        "GET /v1/internal/mesh/raft/info", /* servers' names and addresses, as status/peers */
    };
    size_t n;
    const struct reg_api_route *routes = reg_api_route_table(&n);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        if (routes[i].acl.kind != REG_API_ACL_PUBLIC)
            continue;
        char *name = xasprintf("%s %s", routes[i].method, routes[i].path);
        bool ok = false;
        for (size_t k = 0; k < sizeof(allowed) / sizeof(allowed[0]) && !ok; k++)
            ok = strcmp(name, allowed[k]) == 0;
        if (!ok)
            fail_msg("%s is public: it must show nothing of the catalog, KV or tokens; if so, "
                     "add it to this list and to docs/acl.md",
                     name);
        free(name);
    }
}

static void test_docs_state_every_route(void **state)
{
    static struct doc_row rows[256];
    size_t n, nrows = read_doc_rows(rows, 256);
    const struct reg_api_route *routes = reg_api_route_table(&n);

    (void)state;
    for (size_t i = 0; i < n; i++) {
        const struct reg_api_route *r = &routes[i];
        struct doc_row *d = NULL;
        for (size_t k = 0; k < nrows && !d; k++)
            if (strcmp(rows[k].method, r->method) == 0 && doc_path_is_route(&rows[k], r))
                d = &rows[k];
        if (!d) {
            fail_msg("route %s %s is not in docs/acl.md: add a row stating its ACL rule", r->method,
                     r->path);
            continue;
        }
        d->matched = true;
        if (strcmp(d->how, kind_name(r->acl.kind)) != 0)
            fail_msg("docs/acl.md says %s %s is '%s'; the route table says '%s'", d->method,
                     d->path, d->how, kind_name(r->acl.kind));
        char *perm = r->acl.kind == REG_API_ACL_PUBLIC
                         ? xasprintf("none")
                         : xasprintf("`%s:%s`", reg_acl_resource_name(r->acl.res),
                                     reg_acl_access_name(r->acl.acc));
        if (!strstr(d->needs, perm))
            fail_msg("docs/acl.md: %s %s needs '%s', which does not mention %s", d->method, d->path,
                     d->needs, perm);
        free(perm);
    }
    for (size_t k = 0; k < nrows; k++)
        if (!rows[k].matched)
            fail_msg("docs/acl.md lists %s %s, which no route serves", rows[k].method,
                     rows[k].path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_route_declares_its_acl),
        cmocka_unit_test(test_public_routes_are_the_known_ones),
        cmocka_unit_test(test_docs_state_every_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
