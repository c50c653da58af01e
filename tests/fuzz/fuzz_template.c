/*
 * Fuzz target for the template language: parses the input as a template and renders it twice,
 * first with no registry data (every data function yields its placeholder) and then with a
 * small store where services, keys and prefixes have data, checking that a failure always
 * comes with a "name:line:col:" message and that nothing leaks or overruns.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/tmpl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every failure names the template ("f:line:col: ..."); kept in release builds. */
static void check_message(const struct err *e)
{
    if (strncmp(e->msg, "f:", 2) != 0) {
        fprintf(stderr, "error without a position: %s\n", e->msg);
        abort();
    }
}

static void render(const struct tmpl *t, const struct smap *store)
{
    struct buf out = BUF_INIT;
    struct tmpl_used used;
    struct err e;

    if (tmpl_render(t, store, &out, &used, &e) < 0)
        check_message(&e);
    tmpl_used_free(&used);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tmpl *t = NULL;
    struct err e;
    struct smap store = SMAP_INIT;

    if (tmpl_parse("f", (const char *)data, size, &t, &e) < 0) {
        check_message(&e);
        return 0;
    }
    render(t, &store);
    smap_put(&store, "health.service(web|passing)",
             json_pack("[{s:s, s:s, s:i, s:[s,s], s:{s:s}}]", "Node", "n1", "Address", "10.0.0.1",
                       "Port", 80, "Tags", "a", "b", "ServiceMeta", "k", "v"));
    smap_put(&store, "kv.get(k)", json_string("12"));
    smap_put(&store, "kv.list(p)",
             json_pack("[{s:s, s:s, s:s}]", "Key", "p/x", "Path", "p/x", "Value", "1"));
    smap_put(&store, "catalog.services()", json_pack("[{s:s, s:[]}]", "Name", "web", "Tags"));
    render(t, &store);
    smap_foreach(&store, ent) json_decref(ent->val);
    smap_free(&store);
    tmpl_free(t);
    return 0;
}
