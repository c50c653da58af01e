/*
 * Fuzz target for the JMESPath subset of expect's `jmespath` checks (load/jmespath): the input
 * is the expression, as a script gives it. It must compile or fail with a message naming a
 * column, and a compiled expression must evaluate over a document with every kind of value
 * (a new reference, or NULL with a message) without crashing, leaking or overrunning.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "load/jmespath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char doc_json[] =
    "{\"items\": [{\"id\": 1, \"name\": \"a\", \"tags\": [\"x\", \"y\"], \"price\": 2.5},"
    "            {\"id\": 2, \"name\": \"b\", \"tags\": [], \"ok\": false},"
    "            {\"id\": 3, \"deep\": [[1, [2]], {\"a\": {\"a\": null}}]}],"
    " \"count\": 3, \"ok\": true, \"empty\": \"\", \"zero\": 0, \"neg\": -1e300,"
    " \"a\": {\"a\": {\"a\": \"h\\u00e9\"}}, \"lists\": [[1, 2], [3], 4, \"s\", null]}";

/* Every message says where (the column, from 1), or what a function was given. */
static void check_message(const struct err *e)
{
    if (!strstr(e->msg, " at column ") && !strstr(e->msg, "() wants")) {
        fprintf(stderr, "error without a position: %s\n", e->msg);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *doc;
    struct load_jmes *q = NULL;
    struct err e = {""};
    char *expr;

    if (!doc)
        doc = json_loads(doc_json, 0, NULL);
    if (!doc)
        abort();
    /* the expression is a C string: a NUL ends it, as it ends the YAML scalar it comes from */
    expr = xmalloc(size + 1);
    memcpy(expr, data, size);
    expr[size] = '\0';
    if (load_jmes_compile(expr, &q, &e) < 0) {
        check_message(&e);
    } else {
        json_t *got = load_jmes_search(q, doc, &e);
        if (got)
            (void)load_jmes_js_truthy(got);
        else
            check_message(&e);
        json_decref(got);
        load_jmes_free(q);
    }
    free(expr);
    return 0;
}
