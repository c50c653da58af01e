/*
 * Fuzz target for ?filter expressions (lib/bexpr): the input is the expression text, as a
 * client sends it. It must parse or fail with a positioned message, never crash, a parsed
 * expression must be checked against a type (0, or -EINVAL with go-bexpr's message) and must
 * evaluate (to 1, 0 or -EINVAL) against a health-service-shaped document.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/alloc.h"
#include "lib/bexpr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char doc_json[] =
    "{\"Node\": {\"Node\": \"web1\", \"Meta\": {\"rack\": \"r1\"}},"
    " \"Service\": {\"ID\": \"web-1\", \"Tags\": [\"primary\", 3, null], \"Port\": 8080,"
    "  \"Weight\": 1.5, \"On\": true, \"Meta\": {\"env\": \"prod\"}, \"Nothing\": null},"
    " \"Checks\": [{\"Status\": \"passing\"}, {\"Status\": \"critical\", \"Deep\": [[1], {}]}]}";

/* The document's type, every kind of field in it (bexpr_check walks whatever the input names). */
static const struct bexpr_field any_value[] = {{"", BEXPR_STRING, NULL}, {NULL, 0, NULL}};
static const struct bexpr_field check_fields[] = {
    {"Status", BEXPR_STRING, NULL}, {"Deep", BEXPR_OPAQUE, NULL}, {NULL, 0, NULL}};
static const struct bexpr_field service_fields[] = {
    {"ID", BEXPR_STRING, NULL}, {"Tags", BEXPR_STRINGS, NULL},  {"Port", BEXPR_INT, NULL},
    {"On", BEXPR_BOOL, NULL},   {"Meta", BEXPR_MAP, any_value}, {NULL, 0, NULL}};
static const struct bexpr_field node_fields[] = {
    {"Node", BEXPR_STRING, NULL}, {"Meta", BEXPR_MAP, any_value}, {NULL, 0, NULL}};
static const struct bexpr_field doc_fields[] = {{"Node", BEXPR_STRUCT, node_fields},
                                                {"Service", BEXPR_STRUCT, service_fields},
                                                {"Checks", BEXPR_LIST, check_fields},
                                                {NULL, 0, NULL}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *doc;
    if (!doc)
        doc = json_loads(doc_json, 0, NULL);

    char *src = xstrndup((const char *)data, size);
    struct err e = {{0}};
    struct bexpr *x = bexpr_parse(src, &e);
    if (!x) {
        if (strncmp(e.msg, "1:", 2) != 0)
            abort(); /* every parse error names its column */
    } else {
        int r = bexpr_check(x, doc_fields, &e);
        if (r != 0 && (r != -EINVAL || !e.msg[0]))
            abort(); /* a refusal always says why */
        r = bexpr_eval(x, doc, &e);
        if (r != 0 && r != 1 && r != -EINVAL)
            abort();
        bexpr_free(x);
    }
    free(src);
    return 0;
}
