/*
 * The types ?filter= is checked against, endpoint by endpoint: the selectors Consul's docs list
 * for each endpoint pass, and what the type lacks is refused with go-bexpr's words, whatever
 * the data (tests/e2e/test_filter.py asks the agent the same over HTTP).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "registry/api/api_filter.h"

struct filter_case {
    const char *route;
    const char *expr;
    const char *want; /* NULL: valid */
};

static const struct filter_case cases[] = {
    {"/v1/agent/services", "Service == web and Meta.env == prod and Port != 80", NULL},
    {"/v1/agent/services", "Weights.Passing == 1 and TaggedAddresses.lan.Port == 80", NULL},
    {"/v1/agent/services", "Proxy.Upstreams.DestinationName == db", NULL},
    {"/v1/agent/services", "ServiceName == web", "Selector \"ServiceName\" is not valid"},
    {"/v1/agent/checks", "Status == passing and ServiceTags contains v1", NULL},
    {"/v1/agent/checks", "Status is empty",
     "Invalid match operator \"Is Empty\" for selector \"Status\""},
    {"/v1/agent/members", "Tags.role == consul and Status == 1 and Name matches \"^n\"", NULL},
    {"/v1/agent/members", "Status == alive",
     "Failed to coerce value \"alive\" for selector \"Status\": strconv.ParseInt: parsing "
     "\"alive\": invalid syntax"},
    {"/v1/catalog/nodes", "Node == n1 and Meta.rack == r1 and TaggedAddresses.wan is not empty",
     "Invalid match operator \"Is Not Empty\" for selector \"TaggedAddresses.wan\""},
    {"/v1/catalog/nodes", "Node == n1 and rack in Meta and TaggedAddresses is not empty", NULL},
    {"/v1/catalog/service/", "ServicePort == 80 and NodeMeta.rack == r1 and v1 in ServiceTags",
     NULL},
    {"/v1/catalog/service/", "Service.Port == 80", "Selector \"Service\" is not valid"},
    {"/v1/catalog/node/", "Meta.env == prod and Tags contains v1", NULL},
    {"/v1/catalog/node-services/", "Port == 80", NULL},
    {"/v1/health/service/",
     "Node.Meta.rack == r1 and Service.Tags contains v1 and "
     "Checks.Status != critical",
     NULL},
    {"/v1/health/service/", "Service.Foo == x", "Selector \"Service.Foo\" is not valid"},
    {"/v1/health/service/", "Checks == x",
     "Invalid match operator \"Equal\" for selector \"Checks\""},
    {"/v1/health/checks/", "CheckID == c1 and Node == n1 and ExposedPort == 0", NULL},
    {"/v1/health/node/", "ServiceName == web", NULL},
    {"/v1/health/state/", "Nope == x", "Selector \"Nope\" is not valid"},
    {"/v1/internal/ui/services",
     "Service.Tags contains v1 and Node.Node == n1 and "
     "Checks.Status == passing",
     NULL},
    {"/v1/internal/ui/services", "InstanceCount == 1", "Selector \"InstanceCount\" is not valid"},
};

static void test_each_endpoint_checks_its_type(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct filter_case *c = &cases[i];
        const struct bexpr_field *fields = reg_api_filter_fields(c->route);
        struct err e = {{0}};
        if (!fields)
            fail_msg("%s: no fields", c->route);
        struct bexpr *x = bexpr_parse(c->expr, &e);
        if (!x)
            fail_msg("%s %s: parse failed: %s", c->route, c->expr, e.msg);
        int r = bexpr_check(x, fields, &e);
        if (!c->want && r != 0)
            fail_msg("%s %s: refused: %s", c->route, c->expr, e.msg);
        if (c->want && (r != -EINVAL || strcmp(e.msg, c->want) != 0))
            fail_msg("%s %s: got %d \"%s\", want \"%s\"", c->route, c->expr, r, e.msg, c->want);
        bexpr_free(x);
    }
}

static void test_endpoints_without_a_filter_have_no_fields(void **state)
{
    assert_null(reg_api_filter_fields("/v1/catalog/services"));
    assert_null(reg_api_filter_fields("/v1/kv/"));
    assert_non_null(reg_api_filter_fields("/v1/health/service/"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_endpoint_checks_its_type),
        cmocka_unit_test(test_endpoints_without_a_filter_have_no_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
